"""Package version (single source: pyproject.toml, read from the installed metadata)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mis-pipeline")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
