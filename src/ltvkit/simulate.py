"""Simulate customers from the purchase models, as RFM summaries or transaction logs.

Every draw is vectorised and seeded through :class:`numpy.random.Generator`.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ltvkit.errors import ConfigError
from ltvkit.models import PURCHASE_MODELS
from ltvkit.models._base import check_params

__all__ = ["simulate_rfm", "simulate_transactions"]

logger = logging.getLogger(__name__)


def _draw_histories(model_kind, params, T, rng):
    """Per customer: repeat purchases x in (0, T], recency, and the total
    number of Poisson arrivals n >= x in (0, min(T, death)] (for the log)."""
    if model_kind not in PURCHASE_MODELS:
        raise ConfigError(
            f"model_kind must be one of {', '.join(PURCHASE_MODELS)}; "
            f"got {model_kind!r}."
        )
    cls = PURCHASE_MODELS[model_kind]
    p = check_params(params, cls.param_names, kind=cls.display_name)
    size = T.size
    lam = rng.gamma(p["r"], 1.0 / p["alpha"], size=size)
    if model_kind == "paretonbd":
        mu = rng.gamma(p["s"], 1.0 / p["beta"], size=size)
        horizon = np.minimum(rng.exponential(1.0 / mu), T)
        x = rng.poisson(lam * horizon)
        n = x
    else:
        # Repeat purchases that happen before dropping out, given unlimited time:
        # BG/NBD drops out after a repeat purchase w.p. p (K >= 1); MBG/NBD also
        # right after the first purchase (K >= 0).
        drop = rng.beta(p["a"], p["b"], size=size)
        K = rng.geometric(drop)
        if model_kind == "mbgnbd":
            K = K - 1
        horizon = T
        n = rng.poisson(lam * T)
        x = np.minimum(K, n)
    return x, n, horizon


def simulate_rfm(
    model_kind: str,
    params: dict[str, float],
    n_customers: int,
    *,
    T,
    seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Draw RFM summaries of customers from a purchase model.

    Parameters
    ----------
    model_kind : {"bgnbd", "mbgnbd", "paretonbd"}
    params : dict
        Model parameters, time parameters in the unit of ``T``.
    n_customers : int
    T : float or array-like of shape (n_customers,)
        Age of each customer at the end of observation, in the model's unit.
    seed : int or Generator, optional

    Returns
    -------
    DataFrame indexed by ``customer_id`` (0..n-1) with columns frequency,
    recency, T.

    Notes
    -----
    Given ``n`` Poisson arrivals in the customer's active period, their times
    are uniform order statistics, so recency (the time of the x-th arrival)
    is drawn directly from a Beta distribution: no per-customer loop.
    """
    rng = np.random.default_rng(seed)
    T = np.broadcast_to(np.asarray(T, dtype=float), (int(n_customers),)).copy()
    if np.any(~np.isfinite(T)) or np.any(T < 0):
        raise ConfigError("T must be finite and >= 0.")
    x, n, horizon = _draw_histories(model_kind, params, T, rng)
    # The x-th smallest of n uniforms on (0, horizon] is horizon * Beta(x, n-x+1).
    xs = np.maximum(x, 1)
    recency = np.where(x > 0, horizon * rng.beta(xs, np.maximum(n - x, 0) + 1.0), 0.0)
    frame = pd.DataFrame(
        {"frequency": x.astype(np.int64), "recency": recency, "T": T},
        index=pd.RangeIndex(int(n_customers), name="customer_id"),
    )
    return frame


def simulate_transactions(
    model_kind: str,
    params: dict[str, float],
    n_customers: int,
    *,
    spend_params: dict[str, float] | None = None,
    observation_end: str | pd.Timestamp = "2024-12-31",
    acquisition_days: int = 365,
    history_days: int = 0,
    time_unit_days: float = 1.0,
    seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Draw a transaction log from a purchase model and a Gamma-Gamma spend model.

    Parameters
    ----------
    model_kind : {"bgnbd", "mbgnbd", "paretonbd"}
    params : dict
        Purchase-model parameters, time parameters in units of
        ``time_unit_days`` days.
    n_customers : int
    spend_params : dict, optional
        Gamma-Gamma ``p``, ``q``, ``v``: each customer's purchases are
        Gamma(p, nu) with nu ~ Gamma(q, v). Default ``p=6, q=4, v=15``.
    observation_end : date-like, default "2024-12-31"
        End of the observation period; all transactions are before it.
    acquisition_days : int, default=365
        First purchases are spread uniformly over ``acquisition_days`` days
        that end ``history_days`` before ``observation_end``.
    history_days : int, default=0
        Days of observation after the last acquisition day.
    time_unit_days : float, default=1.0
        Length of the model's time unit in days (7 for weekly parameters).
    seed : int or Generator, optional

    Returns
    -------
    DataFrame with columns customer_id, date (datetime64, with time of day),
    amount; one row per purchase, the first purchase included, sorted by
    customer and date.

    Notes
    -----
    Times are continuous, so two purchases can fall on the same calendar
    day; a summary that merges same-day orders then counts fewer repeat
    purchases than were drawn.
    """
    rng = np.random.default_rng(seed)
    n_customers = int(n_customers)
    spend = spend_params or {"p": 6.0, "q": 4.0, "v": 15.0}
    spend = check_params(spend, ("p", "q", "v"), kind="Gamma-Gamma")
    end = pd.Timestamp(observation_end)
    age_days = history_days + rng.uniform(0.0, float(acquisition_days), n_customers)
    T = age_days / time_unit_days
    x, n, horizon = _draw_histories(model_kind, params, T, rng)

    # Times of the first x of n uniform arrivals on (0, horizon], per customer.
    owner = np.repeat(np.arange(n_customers), n)
    u = rng.uniform(size=owner.size) * np.repeat(horizon, n)
    order = np.lexsort((u, owner))
    u, owner = u[order], owner[order]
    start = np.repeat(np.cumsum(n) - n, n)
    rank = np.arange(owner.size) - start
    keep = rank < x[owner]
    times = np.concatenate([np.zeros(n_customers), u[keep]])
    who = np.concatenate([np.arange(n_customers), owner[keep]])

    nu = rng.gamma(spend["q"], 1.0 / spend["v"], size=n_customers)
    amount = rng.gamma(spend["p"], 1.0 / nu[who])
    first = end - pd.to_timedelta(age_days, unit="D")
    dates = first.values[who] + pd.to_timedelta(times * time_unit_days, unit="D").values
    log = pd.DataFrame({"customer_id": who, "date": dates, "amount": amount})
    log = log.sort_values(["customer_id", "date"], kind="stable", ignore_index=True)
    logger.debug(
        "simulated %d transactions of %d customers (%s)",
        len(log),
        n_customers,
        model_kind,
    )
    return log
