"""ltvkit: customer lifetime value from transaction logs, set against CAC."""

from importlib.metadata import PackageNotFoundError, version

from ._malloc import tune_malloc
from .load import Transactions, load_cdnow, read_transactions
from .summary import summarise, summarise_calibration_holdout

tune_malloc()

try:
    __version__ = version("ltvkit")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"

__all__ = [
    "Transactions",
    "load_cdnow",
    "read_transactions",
    "summarise",
    "summarise_calibration_holdout",
]
