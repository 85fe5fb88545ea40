"""Errors and warnings raised by ltvkit.

Every error is also a built-in exception (``ValueError`` or ``RuntimeError``)
so that callers may catch either the ltvkit class or the built-in one.
Warnings are named classes, so that they can be filtered one by one.
"""

from __future__ import annotations

__all__ = [
    "LtvkitError",
    "DataError",
    "ConfigError",
    "ModelError",
    "ModelFolderError",
    "ConvergenceError",
    "LtvkitWarning",
    "DataQualityWarning",
    "AssumptionWarning",
    "StaleModelWarning",
    "format_examples",
]


class LtvkitError(Exception):
    """Base class of every error that ltvkit raises on purpose."""


class DataError(LtvkitError, ValueError):
    """The input data break a rule: missing columns, bad values, bad dates."""


class ConfigError(LtvkitError, ValueError):
    """An option has a value that ltvkit does not accept."""


class ModelError(LtvkitError, ValueError):
    """A model cannot be used as asked (not fitted, wrong kind, bad parameters)."""


class ModelFolderError(ModelError):
    """A saved model folder is missing, edited, or of another format."""


class ConvergenceError(LtvkitError, RuntimeError):
    """The optimiser did not reach a maximum of the likelihood."""


class LtvkitWarning(UserWarning):
    """Base class of ltvkit's warnings."""


class DataQualityWarning(LtvkitWarning):
    """The data were used as documented, but contain something worth checking."""


class AssumptionWarning(LtvkitWarning):
    """The data appear to violate an assumption of the model."""


class StaleModelWarning(LtvkitWarning):
    """A model is applied to data far past the period it was trained on."""


def format_examples(values, limit: int = 5) -> str:
    """Format the first few of ``values`` for an error message.

    >>> format_examples([3, 7, 9, 12, 15, 20, 22])
    '3, 7, 9, 12, 15, ... (7 in all)'
    >>> format_examples(["a"])
    'a'
    """
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values)} in all)"
    return shown
