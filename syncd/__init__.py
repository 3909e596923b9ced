"""syncd: keep camera and drop folders in sync with a remote video-understanding service."""

__version__ = "0.1.0"
__all__ = ["__version__"]
