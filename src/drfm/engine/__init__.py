"""Training, feature extraction, checkpoints and run evaluation."""
