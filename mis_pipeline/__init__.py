"""mis-pipeline: unsupervised interaction simulation for click-based interactive segmentation.

Importing the package is cheap: torch, timm and Ray are imported only by the functions that
need them.
"""

from ._version import __version__
from .errors import ConfigError, ImageError, MISError

__all__ = ["__version__", "MISError", "ConfigError", "ImageError"]
