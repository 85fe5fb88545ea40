"""Common base of the purchase-count models (BG/NBD, MBG/NBD, Pareto/NBD)."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable

import numpy as np
import pandas as pd

from ltvkit.errors import DataError, ModelError
from ltvkit.models._base import _Data, _FittedModel, validate_rfm


def dedup_over_customers(
    func: Callable[..., np.ndarray], t, *customer_arrays
) -> np.ndarray:
    """Evaluate ``func(t, *customer_arrays)`` once per distinct customer row.

    ``func`` must be elementwise. When ``t`` does not vary along the customer
    axes (a scalar, or shape ``(H, 1)`` against customers ``(N,)``), the
    customer arrays are reduced to their distinct rows first, so the cost
    grows with the number of distinct (frequency, T) pairs, not customers.
    """
    t = np.asarray(t, dtype=float)
    arrays = np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in customer_arrays))
    shape = arrays[0].shape
    k = len(shape)
    separable = t.ndim <= k and all(d == 1 for d in t.shape)
    separable = separable or (t.ndim > k and all(d == 1 for d in t.shape[t.ndim - k :]))
    if not separable or arrays[0].size < 64:
        return func(t, *arrays)
    lead = t.shape[: max(t.ndim - k, 0)]
    t_lead = t.reshape(lead)
    uniq, inverse = _distinct_rows([a.ravel() for a in arrays])
    values = func(t_lead[..., None], *uniq)
    return np.take(values, inverse, axis=-1).reshape(lead + shape)


def _distinct_rows(columns: list[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Distinct rows of the columns and the index of each row into them.

    Rows already in lexicographic order (as ltvkit.value passes its blocks)
    are grouped by comparing neighbours; others are hashed.
    """
    steps = [np.diff(c) for c in columns]
    in_order = np.zeros(steps[0].size, dtype=bool)
    tied = np.ones(steps[0].size, dtype=bool)
    for d in steps:
        in_order |= tied & (d > 0)
        tied &= d == 0
    if np.all(in_order | tied):
        new = np.empty(columns[0].size, dtype=bool)
        new[0] = True
        new[1:] = ~tied
        starts = np.flatnonzero(new)
        return [c[starts] for c in columns], np.cumsum(new) - 1
    rows = _Data({str(i): c for i, c in enumerate(columns)})
    return [rows[str(i)] for i in range(len(columns))], rows.inverse


class _PurchaseModel(_FittedModel):
    """Shared fitting and pandas-level predictions of the purchase models."""

    def _prepare(self, rfm):
        x, t_x, T = validate_rfm(rfm)
        if not np.any(x > 0):
            raise DataError(
                f"No customer in the {len(x)} rows has a repeat purchase (frequency "
                f"is 0 everywhere), so {self.display_name} cannot be estimated. Use "
                "a longer observation period or check how frequency was computed."
            )
        return {"x": x, "t_x": t_x, "T": T}, 1.0 / float(T.max())

    def _scale_columns(self, columns, scale):
        return {
            "x": columns["x"],
            "t_x": columns["t_x"] * scale,
            "T": columns["T"] * scale,
        }

    def _start_points(self, data: _Data) -> list[np.ndarray]:
        w = data.weights
        mean_x = max(float(w @ data["x"]) / data.n, 1e-3)
        mean_T = float(w @ data["T"]) / data.n
        alpha0 = mean_T / mean_x  # so that r / alpha is the mean rate at r = 1
        k = len(self.param_names)
        first = np.zeros(k)
        first[list(self.time_params)] = np.log(alpha0)
        return [first, np.full(k, 0.1), np.log(np.r_[0.5, alpha0, 2.0, 2.0][:k])]

    # -- numpy level -------------------------------------------------------------

    @abstractmethod
    def conditional_probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(alive at T | x, t_x, T), broadcast over the arguments."""

    @abstractmethod
    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[number of purchases in (T, T + t] | x, t_x, T], broadcast."""

    @abstractmethod
    def expected_purchases_if_alive(self, t, frequency, T) -> np.ndarray:
        """E[purchases in (T, T + t] | alive at T, x, T], broadcast; times
        :meth:`conditional_probability_alive` it gives
        :meth:`conditional_expected_purchases`."""

    @abstractmethod
    def expected_purchases_new_customer(self, t) -> np.ndarray:
        """E[X(t)]: expected repeat purchases of a new customer in (0, t]."""

    @abstractmethod
    def probability_of_purchases(self, n, t) -> np.ndarray:
        """P(X(t) = n) for a new customer, broadcast over ``n`` and ``t``."""

    # -- pandas level ------------------------------------------------------------

    def predict_probability_alive(self, rfm: pd.DataFrame) -> pd.Series:
        """Probability that each customer is still active at the end of the data.

        Parameters
        ----------
        rfm : DataFrame
            Indexed by customer_id with columns frequency, recency, T.

        Returns
        -------
        Series named ``p_alive``, indexed like ``rfm``.
        """
        self._require_fitted()
        x, t_x, T = validate_rfm(rfm)
        return pd.Series(
            self.conditional_probability_alive(x, t_x, T),
            index=rfm.index,
            name="p_alive",
        )

    def predict_purchases(self, rfm: pd.DataFrame, *, horizon: float) -> pd.Series:
        """Expected purchases of each customer in the next ``horizon`` time units.

        Parameters
        ----------
        rfm : DataFrame
            Indexed by customer_id with columns frequency, recency, T.
        horizon : float
            Length of the future period, in the time unit of ``rfm``
            (that of recency and T), >= 0.

        Returns
        -------
        Series named ``expected_purchases``, indexed like ``rfm``.
        """
        self._require_fitted()
        if not (np.isscalar(horizon) and np.isfinite(horizon) and horizon >= 0):
            raise ModelError(
                f"horizon must be a finite number >= 0 in the time unit of the "
                f"data; got {horizon!r}."
            )
        x, t_x, T = validate_rfm(rfm)
        return pd.Series(
            self.conditional_expected_purchases(float(horizon), x, t_x, T),
            index=rfm.index,
            name="expected_purchases",
        )
