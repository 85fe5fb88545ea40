"""Customer value: expected purchases, expected spend and CLV over a horizon.

A fitted purchase model (BG/NBD or Pareto/NBD) gives, for each customer, the
expected number of purchases in the weeks or days after the observation end;
a spend model (Gamma-Gamma) gives the expected spend per purchase. This module
combines them into a customer lifetime value (CLV): the discounted margin
expected over a horizon counted in calendar months, and sets it beside the
margin the customer has already brought in.

The horizon is always in months of 365.25 / 12 days, whatever unit the model
counts time in, so that a 12-month CLV is the same on a daily, a weekly or an
hourly model of the same customers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Protocol

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, format_examples
from .models._base import _Data
from .summary import days_per_unit

__all__ = [
    "DAYS_PER_MONTH",
    "clv",
    "expected_monthly_margin",
    "payback_months",
    "score_customers",
]

logger = logging.getLogger(__name__)

#: Length of a calendar month in days: a 365.25-day year over 12.
DAYS_PER_MONTH: float = 365.25 / 12
#: Customers per block when scoring, to bound memory (a block needs about
#: ``(horizon_months + 1) * chunk_size * 8`` bytes per intermediate array).
DEFAULT_CHUNK_SIZE: int = 200_000


class PurchaseModel(Protocol):
    def conditional_probability_alive(self, frequency, recency, T) -> np.ndarray: ...

    def conditional_expected_purchases(
        self, t, frequency, recency, T
    ) -> np.ndarray: ...


class SpendModel(Protocol):
    def conditional_expected_spend(self, frequency, monetary_value) -> np.ndarray: ...


# -- validation ----------------------------------------------------------------


def _check_horizon(horizon_months) -> int:
    ok = isinstance(horizon_months, Integral) and not isinstance(horizon_months, bool)
    if (
        not ok
        and isinstance(horizon_months, Real)
        and not isinstance(horizon_months, bool)
    ):
        ok = float(horizon_months).is_integer()
    if not ok or horizon_months <= 0:
        raise ConfigError(
            "The 'horizon_months' parameter must be a whole number of months "
            f"greater than 0 (e.g. 12). Got {horizon_months!r} instead."
        )
    return int(horizon_months)


def _check_margin(margin) -> float:
    if (
        isinstance(margin, bool)
        or not isinstance(margin, Real)
        or not 0 < float(margin) <= 1
    ):
        raise ConfigError(
            "The 'margin' parameter must be a fraction of revenue in (0, 1] "
            f"(e.g. 0.3 for a 30% gross margin). Got {margin!r} instead."
        )
    return float(margin)


def _check_discount(annual_discount_rate) -> float:
    if (
        isinstance(annual_discount_rate, bool)
        or not isinstance(annual_discount_rate, Real)
        or not float(annual_discount_rate) >= 0
        or not np.isfinite(float(annual_discount_rate))
    ):
        raise ConfigError(
            "The 'annual_discount_rate' parameter must be a finite rate of 0 or "
            f"more per year (e.g. 0.10 for 10%). Got {annual_discount_rate!r} "
            "instead."
        )
    return float(annual_discount_rate)


def _check_chunk_size(chunk_size) -> int:
    if chunk_size is None:
        return DEFAULT_CHUNK_SIZE
    if (
        isinstance(chunk_size, bool)
        or not isinstance(chunk_size, Integral)
        or chunk_size < 1
    ):
        raise ConfigError(
            "The 'chunk_size' parameter must be a whole number of customers of "
            f"1 or more, or None. Got {chunk_size!r} instead."
        )
    return int(chunk_size)


def _as_arrays(frequency, recency, T, monetary_value, index=None):
    arrays = [
        np.asarray(a, dtype=float).reshape(-1)
        for a in (frequency, recency, T, monetary_value)
    ]
    sizes = {a.size for a in arrays}
    if len(sizes) > 1:
        raise DataError(
            "frequency, recency, T and monetary_value must have one value per "
            f"customer each; got lengths {', '.join(str(a.size) for a in arrays)}."
        )
    labels = np.arange(arrays[0].size) if index is None else np.asarray(index)
    problems = []
    for name, a in zip(
        ("frequency", "recency", "T", "monetary_value"), arrays, strict=True
    ):
        bad = ~np.isfinite(a)
        if bad.any():
            problems.append(
                f"'{name}' has NaN or infinite values for {int(bad.sum())} "
                f"customers ({format_examples(labels[bad])})"
            )
    f, r, t, _ = arrays
    for name, bad in (
        ("'frequency' has negative values", f < 0),
        ("'recency' has negative values", r < 0),
        ("'T' has negative values", t < 0),
        ("'recency' is larger than 'T'", r > t * (1 + 1e-12) + 1e-12),
    ):
        if bad.any():
            problems.append(
                f"{name} for {int(bad.sum())} customers "
                f"({format_examples(labels[bad])})"
            )
    if problems:
        raise DataError(
            "Cannot score these customers: "
            + "; ".join(problems)
            + ". Build the summary with ltvkit.summarise, which never produces them."
        )
    return arrays


# -- core ----------------------------------------------------------------------


def _month_times(horizon_months: int, time_unit: str) -> np.ndarray:
    """Ends of months 1..H after the observation end, in the model's unit, (H, 1)."""
    unit_days = days_per_unit(time_unit)
    k = np.arange(1, horizon_months + 1, dtype=float)
    return (k * DAYS_PER_MONTH / unit_days)[:, None]


def _discount_factors(horizon_months: int, annual_discount_rate: float) -> np.ndarray:
    """1 / (1 + d)^(k/12) for months k = 1..H: margin of month k counts at its end."""
    k = np.arange(1, horizon_months + 1, dtype=float)
    return (1.0 + annual_discount_rate) ** (-k / 12.0)


def _spend_per_purchase(spend_model, frequency, monetary_value) -> np.ndarray:
    # Netted refunds can leave a repeat buyer with a mean spend of 0 or less,
    # which the Gamma-Gamma model cannot condition on: such customers get the
    # population mean, as customers without repeat purchases do.
    no_spend = (frequency > 0) & (monetary_value <= 0)
    if no_spend.any():
        logger.info(
            "%d repeat customers have a mean spend of 0 or less (zero-amount or "
            "refunded purchases); "
            "they are scored with the population mean spend per purchase",
            int(no_spend.sum()),
        )
        frequency = np.where(no_spend, 0.0, frequency)
    spend = np.asarray(
        spend_model.conditional_expected_spend(frequency, monetary_value), dtype=float
    )
    return np.broadcast_to(spend, frequency.shape)


def _iter_blocks(
    purchase_model,
    frequency,
    recency,
    T,
    *,
    time_unit: str,
    horizon_months: int,
    chunk_size: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (customer positions, cumulative expected purchases (H, n)) by block.

    Blocks follow the order of (frequency, T), so that customers who share
    them fall in the same block: the models evaluate their costly terms once
    per distinct (frequency, T) pair within a call.
    """
    t = _month_times(horizon_months, time_unit)
    n = frequency.size
    order = np.arange(n) if n <= chunk_size else np.lexsort((T, frequency))
    for start in range(0, n, chunk_size):
        idx = order[start : start + chunk_size]
        cum = np.asarray(
            purchase_model.conditional_expected_purchases(
                t, frequency[idx], recency[idx], T[idx]
            ),
            dtype=float,
        )
        yield idx, np.broadcast_to(cum, (horizon_months, idx.size))


def _weighted_months(weights: np.ndarray, inc: np.ndarray) -> np.ndarray:
    """``weights @ inc`` with einsum's own loop: a (12,) by (12, n) product
    gains nothing from BLAS threads, which on a busy machine cost more than
    the arithmetic."""
    return np.einsum("h,hn->n", weights, inc)


def _monthly_increments(cum: np.ndarray) -> np.ndarray:
    """E[purchases in month k] from E[purchases in months 1..k], along axis 0."""
    inc = np.diff(cum, axis=0, prepend=0.0)
    # The cumulative curve is non-decreasing; tiny negative steps are rounding.
    return np.maximum(inc, 0.0)


def _curve_sums(
    purchase_model,
    frequency,
    recency,
    T,
    weights,
    *,
    time_unit: str,
    horizon_months: int,
    chunk_size: int,
    p_alive: np.ndarray | None = None,
    curves: PurchaseCurves | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected purchases over the horizon, and their sum weighted month by
    month by ``weights``, for each customer.

    A model that splits its prediction into P(alive) times the purchases of a
    live customer (``expected_purchases_if_alive``) has the monthly curve
    evaluated once per distinct (frequency, T); others are evaluated for
    every customer, block by block.
    """
    if_alive = getattr(purchase_model, "expected_purchases_if_alive", None)
    if if_alive is None:
        purchases, weighted = np.empty(frequency.size), np.empty(frequency.size)
        for s, cum in _iter_blocks(
            purchase_model,
            frequency,
            recency,
            T,
            time_unit=time_unit,
            horizon_months=horizon_months,
            chunk_size=chunk_size,
        ):
            purchases[s] = cum[-1]
            weighted[s] = _weighted_months(weights, _monthly_increments(cum))
        return purchases, weighted
    options = dict(time_unit=time_unit, horizon_months=horizon_months)
    if curves is None or not curves.serves(purchase_model, weights, **options):
        curves = PurchaseCurves(
            purchase_model, frequency, T, weights, chunk_size=chunk_size, **options
        )
    last, summed = curves.at(frequency, T)
    if p_alive is None:
        p_alive = purchase_model.conditional_probability_alive(frequency, recency, T)
    alive = np.asarray(p_alive, dtype=float)
    return last * alive, summed * alive


#: Largest grid of distinct frequency by distinct T that PurchaseCurves keeps.
_GRID_CELLS = 2**22


class PurchaseCurves:
    """A live customer's expected purchases over the horizon, and their sum
    weighted month by month, for each distinct (frequency, T).

    Built once for a whole summary, it serves every chunk of it; a pair it
    was not built with is computed when asked for.
    """

    def __init__(
        self,
        purchase_model,
        frequency,
        T,
        weights,
        *,
        time_unit: str,
        horizon_months: int,
        chunk_size: int = 200_000,
    ):
        self.weights = weights
        self._model = purchase_model
        self._options = dict(
            time_unit=time_unit, horizon_months=horizon_months, chunk_size=chunk_size
        )
        pairs = _Data({"x": frequency, "T": T})
        self.x, self.T = pairs["x"], pairs["T"]  # in lexicographic order
        (self._ux, ix), (self._uT, iT) = pairs.factor("x"), pairs.factor("T")
        # Positions of the pairs by their codes: a grid of the distinct x by
        # the distinct T (-1 where a combination does not occur), or, when
        # that would be large, the sorted codes.
        self._grid = self._codes = None
        if self._ux.size * self._uT.size <= _GRID_CELLS:
            self._grid = np.full((self._ux.size, self._uT.size), -1, dtype=np.intp)
            self._grid[ix, iT] = np.arange(self.x.size)
        else:
            self._codes = ix.astype(np.int64) * self._uT.size + iT
        t = _month_times(horizon_months, time_unit)
        self.last, self.summed = np.empty(self.x.size), np.empty(self.x.size)
        for start in range(0, self.x.size, chunk_size):
            s = slice(start, start + chunk_size)
            x = self.x[s]
            cum = purchase_model.expected_purchases_if_alive(t, x, self.T[s])
            cum = np.broadcast_to(np.asarray(cum, float), (horizon_months, x.size))
            self.last[s] = cum[-1]
            # P(alive) >= 0 scales the whole curve, so it can be applied after.
            self.summed[s] = _weighted_months(weights, _monthly_increments(cum))

    def serves(self, purchase_model, weights, *, time_unit, horizon_months) -> bool:
        """Whether these curves are those of this model, unit, horizon and
        monthly weights."""
        return (
            self._model is purchase_model
            and self._options["time_unit"] == time_unit
            and self._options["horizon_months"] == horizon_months
            and np.array_equal(self.weights, weights)
        )

    def _positions(self, x, T) -> np.ndarray:
        """Index of each (x, T) among the distinct pairs; -1 if not one."""
        ix = np.searchsorted(self._ux, x).clip(max=self._ux.size - 1)
        iT = np.searchsorted(self._uT, T).clip(max=self._uT.size - 1)
        known = (self._ux[ix] == x) & (self._uT[iT] == T)
        if self._grid is not None:
            return np.where(known, self._grid[ix, iT], -1)
        code = ix.astype(np.int64) * self._uT.size + iT
        pos = np.searchsorted(self._codes, code).clip(max=self._codes.size - 1)
        return np.where(known & (self._codes[pos] == code), pos, -1)

    def at(self, frequency, T) -> tuple[np.ndarray, np.ndarray]:
        """``last`` and ``summed`` for each customer."""
        frequency = np.asarray(frequency, float) + 0.0
        T = np.asarray(T, float) + 0.0
        pos = self._positions(frequency, T)
        found = pos >= 0
        if found.all():
            return self.last[pos], self.summed[pos]
        new = PurchaseCurves(
            self._model, frequency[~found], T[~found], self.weights, **self._options
        )
        last, summed = self.last[pos], self.summed[pos]
        last[~found], summed[~found] = new.at(frequency[~found], T[~found])
        return last, summed


def month_weights(
    horizon_months: int, *, margin: float = 1.0, annual_discount_rate: float = 0.10
) -> np.ndarray:
    """The weight of each month's expected purchases in CLV: the margin, discounted
    from the end of the month (see :func:`clv`)."""
    return margin * _discount_factors(
        _check_horizon(horizon_months), _check_discount(annual_discount_rate)
    )


def _value_inputs(
    frequency,
    recency,
    T,
    monetary_value,
    time_unit,
    horizon_months,
    margin,
    annual_discount_rate,
    chunk_size,
):
    """Checked options, the monthly discounted margin weights, and the arrays."""
    horizon_months = _check_horizon(horizon_months)
    margin = _check_margin(margin)
    d = _check_discount(annual_discount_rate)
    chunk_size = _check_chunk_size(chunk_size)
    days_per_unit(time_unit)
    arrays = _as_arrays(frequency, recency, T, monetary_value)
    weights = month_weights(horizon_months, margin=margin, annual_discount_rate=d)
    return horizon_months, chunk_size, weights, arrays


def clv(
    purchase_model: PurchaseModel,
    spend_model: SpendModel,
    frequency,
    recency,
    T,
    monetary_value,
    *,
    time_unit: str,
    horizon_months: int = 12,
    margin: float = 1.0,
    annual_discount_rate: float = 0.10,
    chunk_size: int | None = None,
) -> np.ndarray:
    r"""Customer lifetime value: discounted expected margin over a horizon.

    Parameters
    ----------
    purchase_model : BGNBDModel or another fitted purchase model
        Gives ``conditional_expected_purchases(t, frequency, recency, T)``,
        ``t`` in the model's time unit.
    spend_model : GammaGammaModel
        Gives ``conditional_expected_spend(frequency, monetary_value)``.
    frequency, recency, T : array-like of shape (n,)
        Repeat purchases, and times from the first purchase to the last one
        and to the observation end, in ``time_unit``.
    monetary_value : array-like of shape (n,)
        Mean spend of the repeat purchases, in currency.
    time_unit : {"H", "D", "W", "M", "Q"}
        The unit the purchase model was fitted in (that of ``recency``, ``T``).
    horizon_months : int, default=12
        Length of the horizon in calendar months of 365.25 / 12 days.
    margin : float, default=1.0
        Share of revenue kept as profit, in (0, 1]. 1.0 gives discounted
        revenue.
    annual_discount_rate : float, default=0.10
        Discount rate per year, 0 or more. Applied monthly: the margin of
        month ``k`` is divided by ``(1 + annual_discount_rate) ** (k / 12)``.
    chunk_size : int, optional
        Customers scored per block, to bound memory (default 200,000).

    Returns
    -------
    numpy.ndarray of shape (n,)
        CLV of each customer, in currency.

    Raises
    ------
    ConfigError
        An unsupported ``time_unit`` or an option out of range.
    DataError
        Inputs of different lengths, missing values, negative frequency or
        recency, recency beyond ``T``.

    Notes
    -----
    .. math::

        \mathrm{CLV} = \sum_{k=1}^{H} \frac{m \, \bar s \,
        (E[N(t_k)] - E[N(t_{k-1})])}{(1 + d)^{k/12}},
        \qquad t_k = k \cdot \frac{365.25}{12} \text{ days},

    where :math:`E[N(t)]` is the expected number of purchases in the time
    :math:`t` after the observation end given the customer's history, and
    :math:`\bar s` the expected spend per purchase (Fader, Hardie & Lee 2005,
    section 4, with monthly instead of continuous discounting).

    Assumptions and limits:

    * Spend per purchase is independent of the purchase process (the
      Gamma-Gamma assumption); check the correlation of ``frequency`` and
      ``monetary_value`` among repeat buyers.
    * A month is 365.25 / 12 = 30.4375 days in every time unit, so the
      horizon does not depend on the unit the model was fitted in.
    * Margin of a month is discounted from the end of that month.
    * Repeat buyers whose mean spend is 0 or less (after netted refunds) get
      the population mean spend per purchase; their number is logged.
    * The horizon is finite: value beyond it is not counted.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005). RFM and CLV: Using
    iso-value curves for customer base analysis. *Journal of Marketing
    Research*, 42(4), 415-430.

    Examples
    --------
    A made-up model with one purchase a month for ever, and 10 per purchase:

    >>> class Monthly:
    ...     def conditional_expected_purchases(self, t, frequency, recency, T):
    ...         return t + 0 * frequency
    >>> class Ten:
    ...     def conditional_expected_spend(self, frequency, monetary_value):
    ...         return 10.0 + 0 * frequency
    >>> clv(Monthly(), Ten(), [1], [1], [2], [10], time_unit="M",
    ...     horizon_months=12, annual_discount_rate=0.0)
    array([120.])
    """
    horizon_months, chunk_size, weights, (f, r, t, m) = _value_inputs(
        frequency,
        recency,
        T,
        monetary_value,
        time_unit,
        horizon_months,
        margin,
        annual_discount_rate,
        chunk_size,
    )
    spend = _spend_per_purchase(spend_model, f, m)
    _, weighted = _curve_sums(
        purchase_model,
        f,
        r,
        t,
        weights,
        time_unit=time_unit,
        horizon_months=horizon_months,
        chunk_size=chunk_size,
    )
    return weighted * spend


def expected_monthly_margin(
    purchase_model: PurchaseModel,
    spend_model: SpendModel,
    frequency,
    recency,
    T,
    monetary_value,
    *,
    time_unit: str,
    horizon_months: int = 12,
    margin: float = 1.0,
    annual_discount_rate: float = 0.10,
    groups=None,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Discounted expected margin in each month after the observation end.

    The terms of the sum that :func:`clv` adds up, kept month by month.

    Parameters
    ----------
    purchase_model, spend_model, frequency, recency, T, monetary_value,
    time_unit, horizon_months, margin, annual_discount_rate, chunk_size
        As in :func:`clv`.
    groups : array-like of int of shape (n,), optional
        Group codes ``0..G-1`` (for example segments). When given, the margin
        is summed over the customers of each group, block by block, so that
        the full (H, n) table is never held in memory.

    Returns
    -------
    numpy.ndarray
        Of shape (H, n), or (H, G) with ``groups``: row ``k - 1`` holds the
        discounted expected margin of month ``k``, in currency. Each column
        sums to the CLV (of the customer, or the group's total CLV).
    """
    horizon_months, chunk_size, weights, (f, r, t, m) = _value_inputs(
        frequency,
        recency,
        T,
        monetary_value,
        time_unit,
        horizon_months,
        margin,
        annual_discount_rate,
        chunk_size,
    )
    if groups is not None:
        groups = np.asarray(groups, dtype=np.int64).reshape(-1)
        if groups.size != f.size or (groups.size and groups.min() < 0):
            raise DataError(
                "groups must hold one code of 0 or more per customer; got "
                f"{groups.size} codes for {f.size} customers."
            )
        n_groups = int(groups.max()) + 1 if groups.size else 0

    spend = _spend_per_purchase(spend_model, f, m)
    weights = weights[:, None]
    if groups is None:
        out = np.empty((horizon_months, f.size))
    else:
        out = np.zeros((horizon_months, n_groups))
    for s, cum in _iter_blocks(
        purchase_model,
        f,
        r,
        t,
        time_unit=time_unit,
        horizon_months=horizon_months,
        chunk_size=chunk_size,
    ):
        block = weights * _monthly_increments(cum) * spend[s]
        if groups is None:
            out[:, s] = block
        else:
            for k in range(horizon_months):
                out[k] += np.bincount(groups[s], weights=block[k], minlength=n_groups)
    return out


def payback_months(
    cac,
    realised_margin,
    age_months,
    monthly_margin,
) -> np.ndarray:
    """Months from acquisition until the cumulative margin reaches the CAC.

    Parameters
    ----------
    cac : array-like of shape (G,)
        Acquisition cost per customer, in currency.
    realised_margin : array-like of shape (G,)
        Margin brought in from acquisition to the observation end, in
        currency (per customer, or the mean over a segment's customers).
    age_months : array-like of shape (G,)
        Months from acquisition to the observation end (the mean over a
        segment's customers).
    monthly_margin : array-like of shape (H, G)
        Expected margin in each month after the observation end, discounted
        as in :func:`clv` (per customer, or the segment mean), from
        :func:`expected_monthly_margin`.

    Returns
    -------
    numpy.ndarray of shape (G,)
        Payback time in months since acquisition; NaN where the CAC is
        missing or is not reached within the horizon.

    Notes
    -----
    The cumulative margin curve starts at ``realised_margin``, placed at the
    age ``age_months``, and grows by ``monthly_margin[k - 1]`` by the end of
    month ``k`` after the observation end; it is taken as linear within a
    month. Then:

    * if ``realised_margin >= cac``, the payback is ``age_months``. This is an
      upper bound: the summary does not say when, before the observation end,
      the realised margin passed the CAC;
    * otherwise it is ``age_months + x``, where ``x`` is the (fractional)
      month after the observation end at which the curve reaches the CAC;
    * NaN if the curve stays below the CAC to the end of the horizon.

    The expected margin is discounted to the observation end, as in
    :func:`clv`, and the realised margin is not discounted, so the curve ends
    at the LTV (``realised_margin + clv``): the payback lies within the
    horizon exactly when the LTV reaches the CAC. A CAC of 0 pays back at 0.

    For a segment, pass segment means: the mean of per-customer curves is
    the curve of the means. Placing it at the segment's mean age is exact
    when the customers were acquired together and within half a month when
    the segment is an acquisition month.

    Examples
    --------
    >>> payback_months([25.0, 5.0, 100.0], [10.0, 10.0, 10.0], [3.0, 3.0, 3.0],
    ...                [[10.0] * 3, [10.0] * 3, [10.0] * 3])
    array([4.5, 3. , nan])
    """
    cac = np.asarray(cac, dtype=float).reshape(-1)
    realised = np.broadcast_to(np.asarray(realised_margin, dtype=float), cac.shape)
    age = np.broadcast_to(np.asarray(age_months, dtype=float), cac.shape)
    monthly = np.asarray(monthly_margin, dtype=float)
    if monthly.ndim == 1:
        monthly = monthly[:, None]
    monthly = np.broadcast_to(monthly, (monthly.shape[0], cac.size))

    # curve[j] is the cumulative margin j months after the observation end.
    curve = realised + np.vstack([np.zeros((1, cac.size)), np.cumsum(monthly, axis=0)])
    out = np.full(cac.shape, np.nan)
    with np.errstate(invalid="ignore"):
        reached = curve >= cac
    ok = np.isfinite(cac) & reached.any(axis=0)
    j = np.argmax(reached, axis=0)
    cols = np.arange(cac.size)
    at_start = ok & (j == 0)
    out[at_start] = age[at_start]
    later = ok & (j > 0)
    jl, cl = j[later], cols[later]
    before, after = curve[jl - 1, cl], curve[jl, cl]
    frac = (cac[later] - before) / (after - before)
    out[later] = age[later] + (jl - 1) + frac
    out[np.isfinite(cac) & (cac <= 0)] = 0.0
    return out


# -- per-customer table --------------------------------------------------------


def score_customers(
    rfm: pd.DataFrame,
    purchase_model: PurchaseModel,
    spend_model: SpendModel,
    *,
    time_unit: str,
    horizon_months: int = 12,
    margin: float = 1.0,
    annual_discount_rate: float = 0.10,
    chunk_size: int | None = None,
    curves: PurchaseCurves | None = None,
) -> pd.DataFrame:
    """Score every customer: probability alive, expected purchases, spend, CLV.

    Parameters
    ----------
    rfm : pandas.DataFrame
        From :func:`ltvkit.summarise`: indexed by ``customer_id`` with
        ``frequency``, ``recency``, ``T``, ``monetary_value`` and
        ``total_spend`` (optional: without it the realised margin is 0) and
        optionally ``segment``.
    purchase_model, spend_model
        Fitted models, as in :func:`clv`.
    time_unit : {"H", "D", "W", "M", "Q"}
        The unit of ``recency`` and ``T`` and of the purchase model. If
        ``rfm.attrs`` records a different unit, a ConfigError is raised.
    horizon_months, margin, annual_discount_rate, chunk_size
        As in :func:`clv`.
    curves : PurchaseCurves, optional
        Built for the whole summary with the same model, horizon and
        weights, when it is scored in chunks: each distinct (frequency, T)
        is then evaluated once, not once per chunk.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``, with columns ``frequency``, ``recency``,
        ``T``, ``monetary_value``, ``segment`` and ``first_purchase`` (if
        ``rfm`` has them),
        ``p_alive`` (probability of being alive at the observation end),
        ``expected_purchases`` (over the horizon), ``expected_spend_per_purchase``
        (currency), ``expected_spend`` (expected purchases times spend per
        purchase: undiscounted revenue over the horizon), ``clv`` (discounted
        margin over the horizon), ``realised_margin`` (``margin`` times
        ``total_spend``: margin from acquisition to the observation end),
        ``ltv`` (``realised_margin + clv``) and ``horizon_months``. ``attrs``
        holds the options used (``time_unit``, ``horizon_months``, ``margin``,
        ``annual_discount_rate``) and those of ``rfm``.

    Raises
    ------
    ConfigError
        An unsupported ``time_unit``, a unit that disagrees with
        ``rfm.attrs``, or an option out of range.
    DataError
        Missing columns or values that no summary can have (see :func:`clv`).

    Notes
    -----
    See :func:`clv` for the formula and its assumptions. The realised margin
    is not discounted: it was earned before the observation end.
    """
    horizon_months = _check_horizon(horizon_months)
    margin = _check_margin(margin)
    d = _check_discount(annual_discount_rate)
    chunk_size = _check_chunk_size(chunk_size)
    days_per_unit(time_unit)
    recorded = rfm.attrs.get("time_unit")
    if recorded is not None and recorded != time_unit:
        raise ConfigError(
            f"The summary counts recency and T in {recorded!r} (rfm.attrs), but "
            f"time_unit={time_unit!r} was given. Pass time_unit={recorded!r} with "
            "a model fitted in that unit."
        )
    missing = [
        c for c in ("frequency", "recency", "T", "monetary_value") if c not in rfm
    ]
    if missing:
        raise DataError(
            f"The summary lacks the columns {', '.join(missing)}; it has "
            f"{format_examples(rfm.columns, limit=10)}. Build it with "
            "ltvkit.summarise."
        )
    f, r, t, m = _as_arrays(
        rfm["frequency"], rfm["recency"], rfm["T"], rfm["monetary_value"], rfm.index
    )

    p_alive = np.asarray(
        purchase_model.conditional_probability_alive(f, r, t), dtype=float
    )
    spend = _spend_per_purchase(spend_model, f, m)
    weights = month_weights(horizon_months, margin=margin, annual_discount_rate=d)
    purchases, weighted = _curve_sums(
        purchase_model,
        f,
        r,
        t,
        weights,
        time_unit=time_unit,
        horizon_months=horizon_months,
        chunk_size=chunk_size,
        p_alive=p_alive,
        curves=curves,
    )
    value = weighted * spend
    total = (
        rfm["total_spend"].to_numpy(dtype=float)
        if "total_spend" in rfm
        else np.zeros(f.size)
    )

    cols = ["frequency", "recency", "T", "monetary_value"]
    cols += [c for c in ("segment", "first_purchase") if c in rfm]
    out = rfm[cols].copy()
    out["p_alive"] = p_alive
    out["expected_purchases"] = purchases
    out["expected_spend_per_purchase"] = spend
    out["expected_spend"] = purchases * spend
    out["clv"] = value
    out["realised_margin"] = margin * total
    out["ltv"] = out["realised_margin"] + value
    out["horizon_months"] = horizon_months
    out.attrs = dict(rfm.attrs)
    out.attrs.update(
        time_unit=time_unit,
        horizon_months=horizon_months,
        margin=margin,
        annual_discount_rate=d,
    )
    logger.debug(
        "scored %d customers over %d months: total CLV %.2f, mean %.2f",
        f.size,
        horizon_months,
        float(value.sum()),
        float(value.mean()) if f.size else 0.0,
    )
    return out
