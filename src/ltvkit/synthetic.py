"""Synthetic transaction logs at any size, with segments and a spend table.

:func:`write_simulated_log` streams a log drawn from known BG/NBD and
Gamma-Gamma parameters to CSV or Parquet in chunks of customers, so that
logs far larger than memory can be written, and writes a matching
acquisition spend table. It backs ``ltvkit simulate`` and the benchmarks.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ._io import atomic_path, check_table_suffix, write_table
from .errors import ConfigError
from .simulate import simulate_transactions

__all__ = [
    "DEFAULT_PURCHASE_PARAMS",
    "DEFAULT_SPEND_PARAMS",
    "DEFAULT_SEGMENTS",
    "Segment",
    "write_simulated_log",
]

logger = logging.getLogger(__name__)

#: BG/NBD parameters of the CDNOW sample, time in weeks (Fader, Hardie & Lee
#: 2005, table 1).
DEFAULT_PURCHASE_PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
#: Gamma-Gamma parameters of the CDNOW sample (Fader & Hardie's note).
DEFAULT_SPEND_PARAMS = {"p": 6.25, "q": 3.74, "v": 15.44}


@dataclass(frozen=True)
class Segment:
    """An acquisition segment of a simulated customer base.

    Attributes
    ----------
    name : str
    share : float
        Fraction of the customers acquired through it.
    alpha_factor : float
        Multiplies BG/NBD ``alpha``: above 1, customers buy less often.
    v_factor : float
        Multiplies Gamma-Gamma ``v``: above 1, customers spend more.
    cost_per_customer : float
        Acquisition cost per new customer, for the spend table.
    """

    name: str
    share: float
    alpha_factor: float
    v_factor: float
    cost_per_customer: float


#: Four channels that differ in value and cost, chosen so that the CAC flags
#: differ (with margin 1.0, a 12-month horizon and the default target 3).
DEFAULT_SEGMENTS = (
    Segment("search", 0.35, 1.0, 1.0, 20.0),
    Segment("social", 0.30, 1.8, 0.8, 90.0),
    Segment("email", 0.20, 0.7, 1.2, 8.0),
    Segment("affiliate", 0.15, 1.2, 1.0, 55.0),
)


def _check(n_customers: int, segments, chunk_customers: int) -> None:
    if not isinstance(n_customers, int | np.integer) or n_customers < 1:
        raise ConfigError(
            f"n_customers must be a whole number of at least 1; got {n_customers!r}."
        )
    if chunk_customers < 1:
        raise ConfigError(f"chunk_customers must be at least 1; got {chunk_customers}.")
    shares = np.array([s.share for s in segments], dtype=float)
    if len(segments) == 0 or (shares <= 0).any() or abs(shares.sum() - 1) > 1e-9:
        raise ConfigError("Segment shares must be positive and add up to 1.")


class _Writer:
    """Append Arrow tables to a CSV or Parquet file."""

    def __init__(self, path: Path, kind: str):
        self.path = path
        self.kind = kind
        self._writer = None

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            if self.kind == "parquet":
                self._writer = pq.ParquetWriter(self.path, table.schema)
            else:
                self._writer = pacsv.CSVWriter(self.path, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _chunk(
    n: int,
    first_id: int,
    rng: np.random.Generator,
    *,
    segments,
    params,
    spend_params,
    end: pd.Timestamp,
    acquisition_days: int,
    history_days: int,
) -> pd.DataFrame:
    names = np.array([s.name for s in segments])
    which = rng.choice(len(segments), size=n, p=[s.share for s in segments])
    parts = []
    for k, seg in enumerate(segments):
        ids = first_id + np.flatnonzero(which == k)
        if ids.size == 0:
            continue
        log = simulate_transactions(
            "bgnbd",
            {**params, "alpha": params["alpha"] * seg.alpha_factor},
            ids.size,
            spend_params={**spend_params, "v": spend_params["v"] * seg.v_factor},
            observation_end=end,
            acquisition_days=acquisition_days,
            history_days=history_days,
            time_unit_days=7.0,
            seed=rng,
        )
        log["customer_id"] = ids[log["customer_id"].to_numpy()]
        log["segment"] = names[k]
        parts.append(log)
    log = pd.concat(parts, ignore_index=True)
    log["amount"] = log["amount"].round(2)
    # Microseconds: what Spark and most Parquet readers accept.
    log["date"] = log["date"].astype("datetime64[us]")
    return log.sort_values(["customer_id", "date"], kind="stable", ignore_index=True)


def write_simulated_log(
    path: str | os.PathLike,
    *,
    n_customers: int,
    seed: int = 0,
    params: dict | None = None,
    spend_params: dict | None = None,
    segments=DEFAULT_SEGMENTS,
    start: str = "2022-01-01",
    acquisition_days: int = 365,
    history_days: int = 730,
    spend_path: str | os.PathLike | None = None,
    chunk_customers: int = 500_000,
    progress: bool = False,
) -> dict:
    """Write a synthetic transaction log and its acquisition spend table.

    Parameters
    ----------
    path : path
        Log to write, ``.csv`` or ``.parquet``; columns ``customer_id``
        (int), ``date`` (timestamp), ``amount`` (2 decimals), ``segment``.
    n_customers : int
        Number of customers.
    seed : int, default=0
        Seed; the same seed, size and ``chunk_customers`` give the same log.
    params : dict, optional
        BG/NBD ``r, alpha, a, b`` with time in weeks; default
        :data:`DEFAULT_PURCHASE_PARAMS` (CDNOW).
    spend_params : dict, optional
        Gamma-Gamma ``p, q, v``; default :data:`DEFAULT_SPEND_PARAMS`.
    segments : sequence of Segment
        Default :data:`DEFAULT_SEGMENTS`.
    start : date-like, default="2022-01-01"
        First day of the acquisition window.
    acquisition_days, history_days : int, default=365, 730
        First purchases are spread uniformly over ``acquisition_days`` days
        from ``start``; observation goes on ``history_days`` days after.
    spend_path : path, optional
        Spend table to write (CSV: ``segment, period, spend``, one row per
        segment and acquisition month); default beside the log, named
        ``<stem>_spend.csv``. The spend is each segment's cost per customer
        times the customers acquired that month.
    chunk_customers : int, default=500_000
        Customers drawn and written at a time: memory is bounded by this.
    progress : bool, default=False
        Show a progress bar on stderr.

    Returns
    -------
    dict
        ``n_customers``, ``n_transactions``, ``observation_end``, ``path``,
        ``spend_path``.
    """
    path = Path(path)
    kind = check_table_suffix(path)
    _check(n_customers, segments, chunk_customers)
    params = {**DEFAULT_PURCHASE_PARAMS, **(params or {})}
    spend_params = {**DEFAULT_SPEND_PARAMS, **(spend_params or {})}
    end = pd.Timestamp(start) + pd.Timedelta(days=acquisition_days + history_days)
    spend_path = (
        Path(spend_path)
        if spend_path is not None
        else path.with_name(f"{path.stem}_spend.csv")
    )
    starts = range(0, n_customers, chunk_customers)
    seeds = np.random.SeedSequence(seed).spawn(len(starts))
    rngs = [np.random.default_rng(s) for s in seeds]

    acquired = []
    n_tx = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n_customers, unit="customer", unit_scale=True, leave=False)
    with atomic_path(path) as tmp:
        writer = _Writer(tmp, kind)
        try:
            for first_id, rng in zip(starts, rngs, strict=True):
                n = min(chunk_customers, n_customers - first_id)
                log = _chunk(
                    n,
                    first_id,
                    rng,
                    segments=segments,
                    params=params,
                    spend_params=spend_params,
                    end=end,
                    acquisition_days=acquisition_days,
                    history_days=history_days,
                )
                writer.write(pa.Table.from_pandas(log, preserve_index=False))
                firsts = log.drop_duplicates("customer_id")
                month = firsts["date"].dt.strftime("%Y-%m")
                acquired.append(firsts.groupby(["segment", month]).size())
                n_tx += len(log)
                if bar is not None:
                    bar.update(n)
        finally:
            writer.close()
            if bar is not None:
                bar.close()

    counts = pd.concat(acquired).groupby(level=[0, 1]).sum()
    cost = {s.name: s.cost_per_customer for s in segments}
    table = counts.rename("customers").rename_axis(["segment", "period"]).reset_index()
    table["spend"] = (table["segment"].map(cost) * table["customers"]).round(2)
    write_table(table[["segment", "period", "spend"]], spend_path, index=False)
    logger.info(
        "simulated %d customers, %d transactions -> %s (spend table %s)",
        n_customers,
        n_tx,
        path,
        spend_path,
    )
    return {
        "n_customers": n_customers,
        "n_transactions": n_tx,
        "observation_end": str(end.date()),
        "path": str(path),
        "spend_path": str(spend_path),
    }
