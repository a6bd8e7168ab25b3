"""drfm: unsupervised cross-resolution person re-identification (DRFM, ACM MM 2024)."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`drfm.load` (drfm.api.load), imported on first use so that `import drfm` stays light."""
    if name == "load":
        from drfm.api import load

        return load
    raise AttributeError(f"module 'drfm' has no attribute {name!r}")
