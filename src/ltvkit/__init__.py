"""ltvkit: customer lifetime value from transaction logs, set against CAC."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ltvkit")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
