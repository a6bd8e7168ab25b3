"""drfm: unsupervised cross-resolution person re-identification (DRFM, ACM MM 2024)."""

__version__ = "0.1.0"
