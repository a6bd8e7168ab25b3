"""Evaluation: the cross-resolution re-ID protocols (CMC, mAP, mINP) and the features file format."""
