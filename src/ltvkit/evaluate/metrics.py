"""Accuracy metrics of per-customer holdout predictions.

Every function takes the predicted and the actual holdout value of each
customer (spend, usually) as two aligned sequences or pandas Series, and
returns a float. Series are aligned on their index first, so that a
prediction can never be scored against another customer's outcome.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ..errors import DataError, format_examples

__all__ = [
    "METRIC_NAMES",
    "align",
    "mean_absolute_error",
    "root_mean_squared_error",
    "aggregate_bias_percent",
    "spearman_correlation",
    "normalized_gini",
    "decile_groups",
    "decile_table",
    "decile_mape",
    "top_decile_share",
    "gain_curve",
    "score_predictions",
]

#: Keys of :func:`score_predictions`, in the order of the report's tables.
METRIC_NAMES: tuple[str, ...] = (
    "mae",
    "rmse",
    "bias",
    "spearman",
    "gini",
    "decile_mape",
    "top_decile_share",
    "predicted_total",
    "actual_total",
    "n_customers",
)


def align(predicted, actual) -> tuple[np.ndarray, np.ndarray]:
    """Return ``predicted`` and ``actual`` as float arrays, one row per customer.

    Two Series must hold the same customers (in any order); the result
    follows the order of ``actual``. Plain sequences must have equal lengths.

    Raises
    ------
    DataError
        If the customers or lengths differ, or a value is missing or infinite.
    """
    if isinstance(predicted, pd.Series) and isinstance(actual, pd.Series):
        missing = actual.index.difference(predicted.index)
        extra = predicted.index.difference(actual.index)
        if len(missing) or len(extra):
            raise DataError(
                f"The predictions do not cover the same customers as the actual "
                f"values: {len(missing)} customers without a prediction "
                f"({format_examples(missing)}), {len(extra)} predicted customers "
                f"without an actual value ({format_examples(extra)})."
            )
        predicted = predicted.reindex(actual.index)
    p = np.asarray(predicted, dtype=float).ravel()
    a = np.asarray(actual, dtype=float).ravel()
    if p.shape != a.shape:
        raise DataError(
            f"predicted has {p.size} values and actual {a.size}; give one of each "
            "per customer."
        )
    if p.size == 0:
        raise DataError("There are no customers to score.")
    bad = ~(np.isfinite(p) & np.isfinite(a))
    if bad.any():
        raise DataError(
            f"{int(bad.sum())} customers have a missing or infinite predicted or "
            f"actual value (positions {format_examples(np.flatnonzero(bad))})."
        )
    return p, a


def mean_absolute_error(predicted, actual) -> float:
    """Mean of ``|predicted - actual|`` over customers.

    >>> mean_absolute_error([1.0, 2.0], [0.0, 4.0])
    1.5
    """
    p, a = align(predicted, actual)
    return float(np.mean(np.abs(p - a)))


def root_mean_squared_error(predicted, actual) -> float:
    """Square root of the mean of ``(predicted - actual) ** 2`` over customers.

    >>> root_mean_squared_error([1.0, 2.0], [0.0, 4.0])
    1.5811388300841898
    """
    p, a = align(predicted, actual)
    return float(np.sqrt(np.mean((p - a) ** 2)))


def aggregate_bias_percent(predicted, actual) -> float:
    """Total predicted over total actual, minus 1, in percent.

    Negative values mean the model under-predicts the period as a whole.
    NaN when the actual total is 0.

    >>> aggregate_bias_percent([1.0, 2.0], [0.0, 4.0])
    -25.0
    """
    p, a = align(predicted, actual)
    total = a.sum()
    if total == 0:
        return float("nan")
    return float(100.0 * (p.sum() / total - 1.0))


def spearman_correlation(predicted, actual) -> float:
    """Spearman rank correlation (average ranks for ties); NaN if constant.

    >>> spearman_correlation([1.0, 2.0, 3.0], [10.0, 30.0, 20.0])
    0.5
    """
    p, a = align(predicted, actual)
    if np.ptp(p) == 0 or np.ptp(a) == 0:
        return float("nan")
    return float(spearmanr(p, a)[0])


def _tie_shared_cumulative_share(p: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Cumulative share of ``a`` with customers sorted by ``p``, largest first.

    Customers with equal ``p`` share their group's actual total equally, so
    that the order among ties (which the prediction does not decide) has no
    effect.
    """
    values, inverse = np.unique(-p, return_inverse=True)
    sums = np.bincount(inverse, weights=a, minlength=len(values))
    counts = np.bincount(inverse, minlength=len(values))
    shared = np.repeat(sums / counts, counts)
    return np.cumsum(shared) / a.sum()


def normalized_gini(predicted, actual) -> float:
    """Normalised Gini coefficient of the ordering that the prediction gives.

    ``(A - 1/2) / (A* - 1/2)``, where ``A`` is the mean, over the ``n``
    positions, of the cumulative share of actual value when customers are
    sorted by prediction (largest first) and ``A*`` the same for customers
    sorted by their actual value. Customers with tied predictions share their
    actual value equally. 1 is a perfect ordering; a random one scores
    about ``1 / n`` above 0, because ``A`` averages the cumulative share at
    positions 1 to ``n`` (so a constant prediction over two customers scores
    0.5, below).

    Returns NaN when the actual total is 0 or all actual values are equal.

    >>> normalized_gini([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    1.0
    >>> round(normalized_gini([3.0, 2.0, 1.0], [0.0, 1.0, 2.0]), 6)
    -0.142857
    >>> normalized_gini([1.0, 1.0], [0.0, 2.0])
    0.5
    """
    p, a = align(predicted, actual)
    if a.sum() == 0:
        return float("nan")
    area = _tie_shared_cumulative_share(p, a).mean()
    best = np.cumsum(np.sort(a)[::-1]) / a.sum()
    best_area = best.mean()
    if best_area == 0.5:
        return float("nan")
    return float((area - 0.5) / (best_area - 0.5))


def decile_groups(predicted, *, n_groups: int = 10) -> np.ndarray:
    """Group of each customer by predicted value, 0 the lowest.

    Customers are ranked by prediction, ascending, with ties kept in the
    order given (for a summary frame: sorted ``customer_id``), and cut into
    ``n_groups`` groups of equal size (sizes differ by at most one).
    """
    p = np.asarray(predicted, dtype=float).ravel()
    if p.size < n_groups:
        raise DataError(
            f"{p.size} customers cannot be cut into {n_groups} groups; score at "
            f"least {n_groups} customers."
        )
    ranks = pd.Series(p).rank(method="first").to_numpy()
    return pd.qcut(ranks, n_groups, labels=False).astype(int)


def decile_table(predicted, actual, *, n_groups: int = 10) -> pd.DataFrame:
    """Predicted and actual totals by decile of the prediction.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``decile`` (1 = highest predictions, ``n_groups`` the
        lowest), with columns ``n_customers``, ``predicted_total``,
        ``actual_total``, ``predicted_mean``, ``actual_mean`` and
        ``abs_pct_error`` (``|predicted - actual| / actual``, NaN if the
        actual total is 0).
    """
    p, a = align(predicted, actual)
    group = n_groups - decile_groups(p, n_groups=n_groups)
    frame = pd.DataFrame({"decile": group, "predicted": p, "actual": a})
    table = frame.groupby("decile").agg(
        n_customers=("actual", "size"),
        predicted_total=("predicted", "sum"),
        actual_total=("actual", "sum"),
    )
    table["predicted_mean"] = table["predicted_total"] / table["n_customers"]
    table["actual_mean"] = table["actual_total"] / table["n_customers"]
    with np.errstate(divide="ignore", invalid="ignore"):
        err = (table["predicted_total"] - table["actual_total"]).abs()
        table["abs_pct_error"] = np.where(
            table["actual_total"] != 0, err / table["actual_total"], np.nan
        )
    return table


def decile_mape(predicted, actual, *, n_groups: int = 10) -> float:
    """Mean over prediction deciles of ``|predicted total - actual total| / actual``.

    Deciles as in :func:`decile_groups`. Groups whose actual total is 0 are
    left out of the mean (NaN if all are).

    >>> decile_mape([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [2] * 10, n_groups=2)
    1.75
    """
    table = decile_table(predicted, actual, n_groups=n_groups)
    errors = table["abs_pct_error"].dropna()
    return float(errors.mean()) if len(errors) else float("nan")


def top_decile_share(predicted, actual) -> float:
    """Share of the actual total that the top tenth by prediction produced.

    The top tenth is ``ceil(n / 10)`` customers, ties shared as in
    :func:`normalized_gini`.

    >>> top_decile_share(list(range(10)), [0] * 9 + [5.0])
    1.0
    """
    p, a = align(predicted, actual)
    if a.sum() == 0:
        return float("nan")
    share = _tie_shared_cumulative_share(p, a)
    return float(share[int(np.ceil(len(p) / 10)) - 1])


def gain_curve(predicted, actual, *, n_points: int = 101) -> pd.DataFrame:
    """Cumulative share of actual value against share of customers targeted.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_share`` (0 to 1, ``n_points`` values) and
        ``value_share`` (share of the actual total among the customers with
        the highest predictions, ties shared).
    """
    p, a = align(predicted, actual)
    share = np.concatenate([[0.0], _tie_shared_cumulative_share(p, a)])
    x = np.linspace(0.0, 1.0, n_points)
    y = np.interp(x * len(p), np.arange(len(p) + 1), share)
    return pd.DataFrame({"customer_share": x, "value_share": y})


def score_predictions(predicted, actual) -> dict[str, float]:
    """All the spend metrics of one model, keyed as in :data:`METRIC_NAMES`.

    ``bias`` is in percent; ``predicted_total`` and ``actual_total`` are the
    sums, ``n_customers`` the count. ``decile_mape`` is NaN for fewer than
    10 customers.
    """
    p, a = align(predicted, actual)
    return {
        "mae": mean_absolute_error(p, a),
        "rmse": root_mean_squared_error(p, a),
        "bias": aggregate_bias_percent(p, a),
        "spearman": spearman_correlation(p, a),
        "gini": normalized_gini(p, a),
        "decile_mape": decile_mape(p, a) if p.size >= 10 else float("nan"),
        "top_decile_share": top_decile_share(p, a),
        "predicted_total": float(p.sum()),
        "actual_total": float(a.sum()),
        "n_customers": int(p.size),
    }
