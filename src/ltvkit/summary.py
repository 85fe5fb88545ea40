"""Recency-frequency-monetary summaries of a transaction log.

The rules, which every function here applies in the same way:

* A *purchase occasion* is a period (a calendar day by default) with at least
  one row whose amount is zero or more. Rows in the same period merge and
  their amounts are summed.
* ``frequency`` is the number of occasions after the first; ``recency`` is the
  time from the first to the last occasion and ``T`` the time from the first
  occasion to the end of observation, both in ``time_unit``.
* ``monetary_value`` is the mean total of the repeat occasions (the first is
  left out), 0 for customers with no repeat occasion.
* Refunds (negative amounts) are an error unless ``refunds="net"``. Then a
  refund is never an occasion; its amount is added to the latest occasion on
  or before it (or the customer's first occasion, if it comes earlier), so
  it lowers that occasion's total, ``monetary_value`` when that occasion is a
  repeat one, and ``total_spend``.
* Zero-amount rows and exact duplicate rows are kept by default, as the
  published CDNOW fits need, with a warning giving their counts; either can
  be dropped on request.
* Rows dated after the observation end are left out and counted in the log.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ._io import progress as _progress
from .errors import ConfigError, DataError, DataQualityWarning
from .load import Transactions, read_transactions

__all__ = [
    "DAYS_PER_UNIT",
    "PERIODS",
    "summarise",
    "summarise_calibration_holdout",
    "days_per_unit",
]

logger = logging.getLogger(__name__)

#: Length of each supported time unit in days. A month is 365.25 / 12 days.
DAYS_PER_UNIT: dict[str, float] = {
    "H": 1 / 24,
    "D": 1.0,
    "W": 7.0,
    "M": 365.25 / 12,
    "Q": 365.25 / 4,
}
#: Calendar periods that purchases can be merged into.
PERIODS = ("D", "W", "M", "Q")

Refunds = Literal["error", "net"]
KeepDrop = Literal["keep", "drop"]


def days_per_unit(time_unit: str) -> float:
    """Length of ``time_unit`` in days.

    >>> days_per_unit("W")
    7.0
    >>> round(days_per_unit("M"), 4)
    30.4375
    """
    try:
        return DAYS_PER_UNIT[time_unit]
    except (KeyError, TypeError):
        raise ConfigError(
            f"time_unit must be one of {', '.join(DAYS_PER_UNIT)} (hours, days, "
            f"weeks of 7 days, months and quarters of a 365.25-day year); got "
            f"{time_unit!r} instead."
        ) from None


@dataclass(frozen=True)
class _Rules:
    time_unit: str
    period: str
    refunds: str
    zero_amounts: str
    duplicates: str

    def to_units(self, periods):
        """Whole periods (integers) as floats in ``time_unit``.

        Every engine converts its integer period counts here, so that the
        same data give bit-identical summaries.
        """
        periods = np.asarray(periods, dtype=float)
        if self.period != "D" or self.time_unit == "D":
            return periods
        if self.time_unit == "H":
            return periods * 24.0
        return periods / days_per_unit(self.time_unit)


def _rules(time_unit, period, refunds, zero_amounts, duplicates) -> _Rules:
    if period not in PERIODS:
        raise ConfigError(
            f"period must be one of {', '.join(PERIODS)} (calendar day, week "
            f"starting Monday, month, quarter); got {period!r} instead."
        )
    if time_unit is None:
        time_unit = period  # "D" for daily occasions, else the period itself
    days_per_unit(time_unit)
    if period != "D" and time_unit != period:
        raise ConfigError(
            f"With period={period!r}, recency and T are counted in whole periods, "
            f"so time_unit must be {period!r} too (or left out); got {time_unit!r}."
        )
    for name, value, allowed in (
        ("refunds", refunds, ("error", "net")),
        ("zero_amounts", zero_amounts, ("keep", "drop")),
        ("duplicates", duplicates, ("keep", "drop")),
    ):
        if value not in allowed:
            raise ConfigError(
                f"{name} must be one of {', '.join(map(repr, allowed))}; "
                f"got {value!r} instead."
            )
    return _Rules(time_unit, period, refunds, zero_amounts, duplicates)


#: Money is summed in whole millionths, exactly, so that any order of
#: summation (threads, engines) gives the same bits.
MONEY_SCALE = 1_000_000


def money_sum(expr: str, where: str | None = None) -> str:
    """SQL summing amounts exactly in millionths; a DOUBLE in currency units."""
    filt = f" FILTER (WHERE {where})" if where else ""
    micros = f"CAST(round({expr} * {MONEY_SCALE}) AS HUGEINT)"
    return f"(CAST(sum({micros}){filt} AS DOUBLE) / {MONEY_SCALE})"


def _period_index(period: str, column: str) -> str:
    """SQL giving an integer index of the period that ``column`` falls in."""
    if period == "D":
        return f"date_diff('day', DATE '1970-01-01', {column})"
    if period == "W":
        # 1970-01-05 is a Monday: weeks run Monday to Sunday.
        days = f"date_diff('day', DATE '1970-01-05', {column})"
        return f"CAST(floor({days} / 7) AS BIGINT)"
    if period == "M":
        return f"(year({column}) * 12 + month({column}) - 1)"
    return f"(year({column}) * 4 + quarter({column}) - 1)"


def _to_day(value, name: str, tx: Transactions) -> pd.Timestamp:
    if isinstance(value, str) and tx.date_format:
        try:
            return pd.Timestamp(
                pd.to_datetime(value, format=tx.date_format)
            ).normalize()
        except (ValueError, TypeError):
            pass
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ConfigError(
            f"{name} must be a date such as '1997-09-30'; got {value!r} instead."
        ) from None
    if pd.isna(stamp):
        raise ConfigError(f"{name} must be a date; got {value!r} instead.")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return stamp.normalize()


def _as_transactions(data) -> Transactions:
    if isinstance(data, Transactions):
        return data
    if isinstance(data, pd.DataFrame):
        return read_transactions(data)
    raise ConfigError(
        "Pass a Transactions object (from ltvkit.read_transactions) or a DataFrame "
        f"with columns customer_id, date, amount; got {type(data).__name__}."
    )


def report_row_checks(
    rules: _Rules,
    end: pd.Timestamp,
    n_after,
    n_neg,
    neg_total,
    n_zero,
    n_dup,
    *,
    stacklevel: int = 4,
) -> None:
    """Log, refuse or warn about the rows counted up to ``end``.

    ``stacklevel`` is that of the warnings, as in :func:`warnings.warn`.

    Every engine counts the rows its own way and reports them here, so that
    the messages are the same.
    """
    if n_after:
        logger.info("left out %d rows dated after %s", n_after, end.date())
    if n_neg and rules.refunds == "error":
        raise DataError(
            f"The log has {n_neg} rows with a negative amount (refunds), "
            f"{neg_total:.2f} in total. Pass refunds='net' (--refunds net) to net "
            "refunds against the customer's spend without counting them as "
            "purchases, or remove them from the log."
        )
    if n_zero:
        action = "dropped" if rules.zero_amounts == "drop" else "kept as purchases"
        warnings.warn(
            f"{n_zero} zero-amount rows were {action}"
            + (
                "; pass zero_amounts='drop' (--drop-zero-amounts) to drop them."
                if rules.zero_amounts == "keep"
                else "."
            ),
            DataQualityWarning,
            stacklevel=stacklevel,
        )
    if n_dup:
        action = "dropped" if rules.duplicates == "drop" else "kept and summed"
        warnings.warn(
            f"{n_dup} rows are exact duplicates of another row (extra copies), "
            f"{action}"
            + (
                "; pass duplicates='drop' (--drop-duplicates) if they are export "
                "errors rather than repeat orders."
                if rules.duplicates == "keep"
                else "."
            ),
            DataQualityWarning,
            stacklevel=stacklevel,
        )


#: Logs with more rows than this are summarised in several passes, each over
#: a range of customer ids, so that memory holds the rows of one range at a
#: time. Scanning the log again costs less than the memory it saves.
ROWS_PER_PASS = 250_000
MAX_PASSES = 16


def _n_passes(n_rows: int) -> int:
    return int(min(MAX_PASSES, max(1, -(-n_rows // ROWS_PER_PASS))))


#: About how many log rows are sampled to choose the customer ranges.
RANGE_SAMPLE_ROWS = 100_000


def _range_bounds(tx: Transactions, end: pd.Timestamp, n_rows: int) -> list[str]:
    """Customer ids that cut the ``n_rows`` rows up to ``end`` into ranges of
    about :data:`ROWS_PER_PASS` rows (at most :data:`MAX_PASSES`), as SQL
    literals.

    The passes take the customers by ranges of ids so that their outputs,
    each sorted, follow one another in order. The cuts are quantiles of the
    rows of a sample of customers (picked by a hash of the id).
    """
    n_passes = _n_passes(n_rows)
    if n_passes == 1:
        return []
    qs = ", ".join(str(k / n_passes) for k in range(1, n_passes))
    every = max(1, n_rows // RANGE_SAMPLE_ROWS)
    bounds, id_type = tx.connection.execute(
        f"""SELECT CAST(quantile_disc(customer_id, [{qs}]) AS VARCHAR[]),
                   typeof(any_value(customer_id))
            FROM {tx.view}
            WHERE day <= DATE '{end.date()}' AND hash(customer_id) % {every} = 0"""
    ).fetchall()[0]
    literals = []
    for b in bounds or []:  # ascending; equal neighbours would make an empty range
        literal = "CAST('" + b.replace("'", "''") + f"' AS {id_type})"
        if not literals or literal != literals[-1]:
            literals.append(literal)
    return literals


def _share(bounds: list[str], k: int) -> str:
    """SQL condition picking the ``k``-th of the customer ranges cut at ``bounds``."""
    lower = f"customer_id >= {bounds[k - 1]}" if k > 0 else "TRUE"
    upper = f"customer_id < {bounds[k]}" if k < len(bounds) else "TRUE"
    return f"{lower} AND {upper}"


@dataclass(frozen=True)
class _RowCounts:
    n_after: int
    n_neg: int
    neg_total: float | None
    n_zero: int
    n_upto: int
    hash_sum: int
    abs_total: float | None

    @property
    def money_type(self) -> str:
        """The narrowest integer type that holds every sum of these rows'
        amounts in millionths exactly."""
        fits = self.abs_total is None or self.abs_total * MONEY_SCALE < 2.0**62
        return "BIGINT" if fits else "HUGEINT"


def _row_counts(tx: Transactions, end: pd.Timestamp) -> _RowCounts:
    """One scan: rows after ``end``, and refunds, zero amounts, all rows and the
    sum of the row hashes (the data fingerprint) up to it."""
    end_sql = f"DATE '{end.date()}'"
    upto = f"day <= {end_sql}"
    row = tx.connection.execute(
        f"""
        SELECT count(*) FILTER (WHERE NOT {upto}),
               count(*) FILTER (WHERE {upto} AND amount < 0),
               sum(amount) FILTER (WHERE {upto} AND amount < 0),
               count(*) FILTER (WHERE {upto} AND amount = 0),
               count(*) FILTER (WHERE {upto}),
               coalesce(sum(row_hash::HUGEINT) FILTER (WHERE {upto}), 0),
               sum(abs(amount)) FILTER (WHERE {upto})
        FROM {tx.view}
        """
    ).fetchall()[0]
    counts = _RowCounts(*row)
    tx.fingerprints[str(end.date())] = (counts.hash_sum, counts.n_upto)
    return counts


def _n_distinct_rows(tx: Transactions, end: pd.Timestamp, share: str) -> int:
    return tx.connection.execute(
        f"""SELECT count(DISTINCT row_hash) FROM {tx.view}
            WHERE day <= DATE '{end.date()}' AND {share}"""
    ).fetchall()[0][0]


def _counted_duplicates(tx: Transactions, table: str, end: pd.Timestamp) -> int:
    """Duplicate rows from a summary's ``dup_rows``, counted row by row for
    the customers with an occasion of more than two rows."""
    con = tx.connection
    known, n_unknown = con.execute(
        f"""SELECT coalesce(sum(dup_rows), 0), count(*) FILTER (WHERE dup_rows IS NULL)
            FROM {table}"""
    ).fetchall()[0]
    if not n_unknown:
        return int(known)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE ltvkit_recount AS
            SELECT customer_id FROM {table} WHERE dup_rows IS NULL"""
    )
    try:
        (recounted,) = con.execute(
            f"""SELECT count(*) - count(DISTINCT row_hash) FROM {tx.view}
                SEMI JOIN ltvkit_recount USING (customer_id)
                WHERE day <= DATE '{end.date()}'"""
        ).fetchall()[0]
    finally:
        con.execute("DROP TABLE ltvkit_recount")
    return int(known) + int(recounted)


def _rows_sql(view: str, rules: _Rules, end: pd.Timestamp, share: str = "TRUE") -> str:
    """SQL of the rows to use up to ``end``, by the rules, in one range of
    customers (``share``, an SQL condition)."""
    where = [f"day <= DATE '{end.date()}'", share]
    if rules.zero_amounts == "drop":
        where.append("amount <> 0")
    rows = f"SELECT * FROM {view} WHERE {' AND '.join(where)}"
    if rules.duplicates == "drop":
        rows += " QUALIFY row_number() OVER (PARTITION BY row_hash) = 1"
    return rows


def _check_rows(tx: Transactions, rules: _Rules, end: pd.Timestamp) -> tuple[str, bool]:
    """Apply the row rules up to ``end``.

    Returns SQL of the rows to use, and whether they include refunds.
    """
    c = _row_counts(tx, end)
    n_dup = c.n_upto - _n_distinct_rows(tx, end, "TRUE")
    report_row_checks(rules, end, c.n_after, c.n_neg, c.neg_total, c.n_zero, n_dup)
    return _rows_sql(tx.view, rules, end), bool(c.n_neg)


def _occasions_sql(
    rows: str,
    period: str,
    *,
    netting: bool = True,
    segment: bool = True,
    duplicates: bool = False,
    money_type: str = "HUGEINT",
) -> str:
    """SQL of the purchase occasions: one row per customer and occasion.

    Columns: ``customer_id``, ``p`` (period index), ``micros`` (net amount
    in millionths, exact) and ``total`` (the same in currency units),
    ``first_day`` and ``first_ts`` (earliest purchase row), ``n_rows``
    (purchase rows) and ``segment`` (on the earliest purchase row). With
    ``netting`` (needed only when ``rows`` has refunds), each refund-only
    period is added to the latest occasion before it, or to the first.
    With ``duplicates`` (and without ``netting``), ``dup_rows`` counts the
    exact duplicates among an occasion's rows when it has two, and is NULL
    when it has more (two rows are copies when their row hashes agree).
    ``money_type`` is the integer type of ``micros``: BIGINT is faster and
    smaller, and may be used when no sum of the amounts can exceed it.
    """
    p = _period_index(period, "day")
    first_segment = (
        "min(ts) FILTER (WHERE amount >= 0) AS first_ts, "
        "arg_min(segment, (ts, segment)) FILTER (WHERE amount >= 0) AS segment"
        if segment
        else "NULL::TIMESTAMP AS first_ts, NULL::VARCHAR AS segment"
    )
    total = f"CAST(micros AS DOUBLE) / {MONEY_SCALE} AS total"
    per = f"""
        SELECT customer_id, {p} AS p, bool_or(amount >= 0) AS occ,
               CAST(sum(CAST(round(amount * {MONEY_SCALE}) AS {money_type}))
                    AS {money_type}) AS micros,
               min(day) FILTER (WHERE amount >= 0) AS first_day,
               count(*) FILTER (WHERE amount >= 0) AS n_rows,
               {first_segment}
               {", min(row_hash) AS h_lo, max(row_hash) AS h_hi" if duplicates else ""}
        FROM ({rows}) r GROUP BY customer_id, p
    """
    if not netting:
        dups = (
            """, CASE WHEN n_rows = 1 THEN 0
                      WHEN n_rows = 2 THEN CAST(h_lo = h_hi AS INTEGER)
                 END AS dup_rows"""
            if duplicates
            else ""
        )
        return f"SELECT *, {total}{dups} FROM ({per})"
    return f"""
        WITH per AS ({per}),
        occ AS (SELECT * FROM per WHERE occ),
        refund AS (SELECT customer_id, p, micros FROM per WHERE NOT occ),
        firsts AS (SELECT customer_id, min(p) AS p0 FROM occ GROUP BY customer_id),
        moved AS (
            SELECT refund.customer_id, coalesce(occ.p, firsts.p0) AS p,
                   sum(refund.micros) AS micros
            FROM refund
            ASOF LEFT JOIN occ
                ON refund.customer_id = occ.customer_id AND refund.p >= occ.p
            JOIN firsts ON refund.customer_id = firsts.customer_id
            GROUP BY ALL
        ),
        netted AS (
            SELECT occ.* REPLACE (occ.micros + coalesce(moved.micros, 0) AS micros)
            FROM occ LEFT JOIN moved USING (customer_id, p)
        )
        SELECT *, {total} FROM netted
    """


def _refund_only_sql(rows: str, period: str) -> str:
    """SQL counting customers with refunds but no occasion, and their total."""
    return f"""
        WITH per AS ({_occasions_sql(rows, period, netting=False, segment=False)})
        SELECT count(*), sum(total) FROM (
            SELECT customer_id, sum(total) AS total FROM per
            GROUP BY customer_id HAVING NOT bool_or(occ)
        )
    """


def _customers_sql(
    occasions: str, end_p: str, segment: bool, duplicates: bool = False
) -> str:
    """SQL of one row per customer from the occasions, recency and T in periods.

    With ``duplicates``, ``dup_rows`` adds up the occasions' ``dup_rows``,
    NULL if any of them is. Counts are 32-bit and days are dates, to keep
    the table small; readers widen them.
    """
    money = f"CAST({{}} AS DOUBLE) / {MONEY_SCALE}"
    dups = (
        """, CAST(CASE WHEN count(dup_rows) = count(*) THEN sum(dup_rows) END
                  AS INTEGER) AS dup_rows"""
        if duplicates
        else ""
    )
    repeat = money.format("sum(micros) - arg_min(micros, p)")
    return f"""
        SELECT customer_id,
               CAST(count(*) - 1 AS INTEGER) AS frequency,
               CAST(max(p) - min(p) AS INTEGER) AS recency,
               CAST({end_p} - min(p) AS INTEGER) AS T,
               CASE WHEN count(*) > 1 THEN {repeat} / (count(*) - 1) ELSE 0.0 END
                   AS monetary_value,
               {money.format("sum(micros)")} AS total_spend,
               min(first_day) AS first_purchase,
               CAST(sum(n_rows) AS INTEGER) AS n_transactions,
               {"arg_min(segment, (first_ts, segment))" if segment else "NULL"}
                   AS segment
               {dups}
        FROM ({occasions}) o GROUP BY customer_id
    """


def _customers_by_sorting(
    con, rows: str, period: str, end_p: int, segment: bool = True
) -> pa.Table:
    """The rows of :func:`_customers_sql` for ``rows`` that have no refunds,
    by sorting the rows instead of grouping them, with ``dup_rows`` always
    counted; sorted by ``customer_id``.

    Sorted by customer and time (then segment and row hash), a customer's
    rows come in one run, each occasion in a run within it, with exact
    copies next to each other; the first row is the first purchase.
    Without ``segment``, the day stands for the time.
    """
    p = _period_index(period, "day")
    query = f"""
        SELECT customer_id, CAST({p} AS INTEGER) AS p, day,
               CAST(round(amount * {MONEY_SCALE}) AS BIGINT) AS micros, row_hash,
               {"ts, segment" if segment else "NULL::VARCHAR AS segment"}
        FROM ({rows}) r
    """
    tab = con.sql(query).to_arrow_reader().read_all()
    order = ["customer_id", *(["ts", "segment"] if segment else ["day"]), "row_hash"]
    # Arrow sorts in less memory than DuckDB, nulls last as DuckDB does.
    tab = tab.take(pc.sort_indices(tab, [(c, "ascending") for c in order]))
    n = tab.num_rows
    ids = tab.column("customer_id").combine_chunks()
    period_index = tab.column("p").to_numpy()
    micros = tab.column("micros").to_numpy()
    row_hash = tab.column("row_hash").to_numpy()
    first_row = np.ones(n, dtype=bool)
    if n > 1:
        first_row[1:] = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    new_occasion = first_row.copy()
    new_occasion[1:] |= period_index[1:] != period_index[:-1]
    copy = np.zeros(n, dtype=np.int32)
    copy[1:] = ~new_occasion[1:] & (row_hash[1:] == row_hash[:-1])
    starts = np.flatnonzero(first_row)
    ends = np.append(starts[1:], n)[: starts.size]
    occasions = np.flatnonzero(new_occasion)
    first_ends = np.append(occasions[1:], n)[np.searchsorted(occasions, starts)]
    cum = np.concatenate([np.zeros(1, dtype=np.int64), np.cumsum(micros)])
    total = cum[ends] - cum[starts]
    repeat = total - (cum[first_ends] - cum[starts])
    frequency = starts  # none when there are no rows
    if n:
        frequency = np.add.reduceat(new_occasion.astype(np.int32), starts) - 1
    monetary = np.zeros(starts.size)
    some = frequency > 0
    monetary[some] = repeat[some].astype(float) / MONEY_SCALE / frequency[some]
    first_p = period_index[starts]
    return pa.table(
        {
            "customer_id": ids.take(starts),
            "frequency": np.asarray(frequency, dtype=np.int32),
            "recency": (period_index[ends - 1] - first_p).astype(np.int32),
            "T": (end_p - first_p).astype(np.int32),
            "monetary_value": monetary,
            "total_spend": total.astype(float) / MONEY_SCALE,
            "first_purchase": tab.column("day").take(starts),
            "n_transactions": (ends - starts).astype(np.int32),
            "segment": _first_valid(tab.column("segment"), starts, ends),
            "dup_rows": np.asarray(
                np.add.reduceat(copy, starts) if n else copy, dtype=np.int32
            ),
        }
    )


def _first_valid(values: pa.ChunkedArray, starts, ends) -> pa.ChunkedArray:
    """The first non-null value in each run ``starts[i]:ends[i]``; null if none."""
    valid = np.flatnonzero(pc.is_valid(values).to_numpy(zero_copy_only=False))
    if valid.size == 0:
        return pa.chunked_array([pa.nulls(starts.size, values.type)])
    pos = np.minimum(np.searchsorted(valid, starts), valid.size - 1)
    picks = valid[pos]
    found = (picks >= starts) & (picks < ends)
    return pc.if_else(found, values.take(picks), pa.scalar(None, values.type))


def _customers_frame(
    df: pd.DataFrame, has_segment: bool, rules: _Rules
) -> pd.DataFrame:
    """The per-customer rows, with ``recency`` and ``T`` still in periods."""
    df = df.set_index("customer_id").sort_index()
    df["recency"] = rules.to_units(df["recency"])
    df["T"] = rules.to_units(df["T"])
    df["frequency"] = df["frequency"].astype("int64")
    if not has_segment:
        df = df.drop(columns="segment")
    return df


def _report_counts(rules: _Rules, end, counts: _RowCounts, n_dup: int) -> None:
    # Called by _fill, summary_table and summarise: warn at the caller's.
    c = counts
    report_row_checks(
        rules, end, c.n_after, c.n_neg, c.neg_total, c.n_zero, n_dup, stacklevel=6
    )


def _report_refund_only(tx: Transactions, rows: str, period: str) -> None:
    n, total = tx.connection.execute(_refund_only_sql(rows, period)).fetchall()[0]
    if n:
        warnings.warn(
            f"{n} customers have refunds but no purchase up to the observation end "
            f"({total:.2f} in all); they are left out of the summary.",
            DataQualityWarning,
            stacklevel=5,
        )


def summarise(
    data: Transactions | pd.DataFrame,
    *,
    time_unit: str | None = None,
    observation_end=None,
    period: str = "D",
    refunds: Refunds = "error",
    zero_amounts: KeepDrop = "keep",
    duplicates: KeepDrop = "keep",
) -> pd.DataFrame:
    """Summarise a transaction log into one RFM row per customer.

    Parameters
    ----------
    data : Transactions or pandas.DataFrame
        The log, from :func:`ltvkit.read_transactions`, or a DataFrame with
        columns ``customer_id``, ``date`` and ``amount``.
    time_unit : {"H", "D", "W", "M", "Q"}, optional
        Unit of ``recency`` and ``T``, by default the ``period`` (days): hours,
        days, weeks of 7 days, months (365.25 / 12 days) or quarters. With
        ``period="D"`` the unit only rescales time; it does not merge
        purchases into longer periods.
    observation_end : date-like, optional
        Last day of observation; rows dated later are left out and counted.
        Default: the latest date in the log.
    period : {"D", "W", "M", "Q"}, default="D"
        Calendar period that makes one purchase occasion: a day, a week
        (Monday to Sunday), a month or a quarter. With a period longer than a
        day, recency and T count whole periods and ``time_unit`` must equal
        ``period``.
    refunds : {"error", "net"}, default="error"
        How to treat negative amounts (see the module notes).
    zero_amounts, duplicates : {"keep", "drop"}, default="keep"
        Whether to keep zero-amount rows and exact duplicate rows.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (sorted), with columns ``frequency``,
        ``recency``, ``T``, ``monetary_value``, ``total_spend`` (net spend of
        all occasions, the first included), ``first_purchase`` (date),
        ``n_transactions`` (rows used) and, if the log has one, ``segment``.
        ``attrs`` holds ``time_unit``, ``period`` and ``observation_end``.

    Raises
    ------
    DataError
        Refunds without ``refunds="net"``; an observation end before the
        first purchase.
    ConfigError
        An unknown time unit, period or option value.
    """
    table = summary_table(
        data,
        time_unit=time_unit,
        observation_end=observation_end,
        period=period,
        refunds=refunds,
        zero_amounts=zero_amounts,
        duplicates=duplicates,
    )
    try:
        return table.frame()
    finally:
        table.close()


class FrameSummary:
    """A summary held as a DataFrame (as :func:`summarise` returns it), with
    the methods that the pipeline reads a summary by."""

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame
        self.attrs = dict(frame.attrs)
        self.n_customers = len(frame)
        self.n_repeat = int((frame["frequency"] > 0).sum())

    def frame(self) -> pd.DataFrame:
        """The whole summary, indexed by ``customer_id`` (sorted)."""
        out = self._frame.copy(deep=False)
        out.attrs = dict(self.attrs)
        return out

    def chunks(self, rows: int) -> Iterator[pd.DataFrame]:
        """The summary ``rows`` customers at a time, in order."""
        for start in range(0, max(self.n_customers, 1), rows):
            part = self._frame.iloc[start : start + rows].copy(deep=False)
            part.attrs = dict(self.attrs)
            yield part

    def purchase_counts(self) -> pd.DataFrame:
        """Distinct (frequency, recency, T) with the number of customers, ``n``."""
        keys = ["frequency", "recency", "T"]
        return self._frame.groupby(keys).size().rename("n").reset_index()

    def frequency_T(self) -> pd.DataFrame:
        """Distinct (frequency, T)."""
        return self._frame[["frequency", "T"]].drop_duplicates()

    def repeat_spend(self) -> pd.DataFrame:
        """``frequency`` and ``monetary_value`` of the repeat buyers."""
        repeat = self._frame[self._frame["frequency"] > 0]
        return repeat[["frequency", "monetary_value"]]

    def close(self) -> None:
        """Nothing to release; for symmetry with :class:`SummaryTable`."""


@contextlib.contextmanager
def _settings(con, **values):
    """DuckDB settings for the block, restored after it."""
    names = ", ".join(f"current_setting('{name}')" for name in values)
    before = con.execute(f"SELECT {names}").fetchall()[0]
    for name, value in values.items():
        con.execute(f"SET {name} = {value}")
    try:
        yield
    finally:
        for name, value in zip(values, before, strict=True):
            con.execute(f"SET {name} = {value}")


def _in_order(con):
    """Let DuckDB keep rows in the order they are read, for the block."""
    return _settings(con, preserve_insertion_order=True)


class SummaryTable:
    """A summary in temporary Parquet files, read whole or a chunk at a time.

    One row per customer, sorted by ``customer_id``, with recency and T in
    whole periods; each read converts them to the time unit as
    :func:`summarise` does, so all reads give the same values. Between
    reads, memory holds none of it. The files are in a temporary folder,
    deleted by :meth:`close` or when the object is garbage-collected.
    """

    _ids = itertools.count()

    def __init__(self, tx: Transactions, rules: _Rules, end: pd.Timestamp):
        self.tx = tx
        self.rules = rules
        self.name = f"ltvkit_summary_{next(self._ids)}"
        self.attrs = dict(
            time_unit=rules.time_unit,
            period=rules.period,
            observation_end=str(end.date()),
        )
        self.n_customers = self.n_repeat = 0
        self._columns = (
            "customer_id, CAST(frequency AS BIGINT) AS frequency, recency, T, "
            "monetary_value, total_spend, "
            "CAST(first_purchase AS TIMESTAMP) AS first_purchase, "
            "CAST(n_transactions AS BIGINT) AS n_transactions"
            + (", segment" if tx.has_segment else "")
        )
        self.folder = tempfile.mkdtemp(prefix="ltvkit-summary-")
        self._parts: list[str] = []
        self._finalizer = weakref.finalize(
            self, _discard, tx.connection, self.name, self.folder
        )

    def _append(self, query: str) -> None:
        """Write the customers of ``query``, all with ids above those written
        so far, sorted, and make the view show them after the others."""
        con = self.tx.connection
        path = self._next_part()
        with _in_order(con):
            con.execute(
                f"COPY ({query} ORDER BY customer_id) TO '{path}' (FORMAT parquet)"
            )
        self._add_part(path)

    def _append_table(self, customers: pa.Table) -> None:
        """:meth:`_append` for customers already summarised and sorted."""
        path = self._next_part()
        # A temporary file, written once and read a few times: no dictionary
        # pages and no compression, which would cost more than they save.
        pq.write_table(customers, path, use_dictionary=False, compression="none")
        self._add_part(path)

    def _next_part(self) -> str:
        return os.path.join(self.folder, f"part-{len(self._parts)}.parquet")

    def _add_part(self, path: str) -> None:
        self._parts.append(path)
        files = ", ".join(f"'{p}'" for p in self._parts)
        self.tx.connection.execute(
            f"CREATE OR REPLACE VIEW {self.name} AS "
            f"SELECT * FROM read_parquet([{files}])"
        )

    def _convert(self, df: pd.DataFrame, after=None) -> pd.DataFrame:
        df = df.set_index("customer_id")
        if not df.index.is_monotonic_increasing or (
            after is not None and len(df) and not df.index[0] > after
        ):
            raise RuntimeError(f"The rows of summary {self.name} are out of order.")
        df["recency"] = self.rules.to_units(df["recency"])
        df["T"] = self.rules.to_units(df["T"])
        df.attrs = dict(self.attrs)
        return df

    def _scan(self) -> str:
        return f"SELECT {self._columns} FROM {self.name}"

    def frame(self) -> pd.DataFrame:
        """The whole summary, indexed by ``customer_id`` (sorted)."""
        with _in_order(self.tx.connection):
            arrow = self.tx.connection.sql(self._scan()).to_arrow_table()
        return self._convert(arrow.to_pandas(self_destruct=True))

    def chunks(self, rows: int) -> Iterator[pd.DataFrame]:
        """The summary ``rows`` customers at a time, in order.

        The rows stream from DuckDB: nothing else may run on the log's
        connection until the iteration ends.
        """
        # One thread reads in order with the least memory, and it keeps up
        # with the chunks' consumer.
        with _settings(self.tx.connection, preserve_insertion_order=True, threads=1):
            reader = self.tx.connection.sql(self._scan()).to_arrow_reader(rows)
            try:
                yield from self._gathered(reader, rows)
            finally:
                reader.close()

    def _gathered(self, reader, rows: int) -> Iterator[pd.DataFrame]:
        # The reader's batches may be smaller than asked: gather them.
        pending, n_pending, last = [], 0, None
        for batch in reader:
            pending.append(batch)
            n_pending += batch.num_rows
            if n_pending >= rows:
                table = pa.Table.from_batches(pending)
                part = self._convert(table.slice(0, rows).to_pandas(), last)
                last = part.index[-1]
                yield part
                pending, n_pending = table.slice(rows).to_batches(), n_pending - rows
        if n_pending:
            yield self._convert(pa.Table.from_batches(pending).to_pandas(), last)

    def _df(self, query: str) -> pd.DataFrame:
        df = self.tx.connection.sql(query).df()
        self.tx.release_memory()
        return df

    def purchase_counts(self) -> pd.DataFrame:
        """Distinct (frequency, recency, T) with the number of customers, ``n``."""
        df = self._df(
            f"""SELECT CAST(frequency AS BIGINT) AS frequency, recency, T,
                       count(*) AS n
                FROM {self.name} GROUP BY ALL ORDER BY ALL"""
        )
        df["recency"] = self.rules.to_units(df["recency"])
        df["T"] = self.rules.to_units(df["T"])
        return df

    def frequency_T(self) -> pd.DataFrame:
        """Distinct (frequency, T)."""
        df = self._df(
            f"""SELECT DISTINCT CAST(frequency AS BIGINT) AS frequency, T
                FROM {self.name} ORDER BY ALL"""
        )
        df["T"] = self.rules.to_units(df["T"])
        return df

    def repeat_spend(self) -> pd.DataFrame:
        """``frequency`` and ``monetary_value`` of the repeat buyers, in
        ``customer_id`` order."""
        with _in_order(self.tx.connection):
            return self._df(
                f"""SELECT CAST(frequency AS BIGINT) AS frequency, monetary_value
                    FROM {self.name} WHERE frequency > 0"""
            )

    def close(self) -> None:
        """Drop the view and delete the files."""
        self._finalizer()


def _discard(con, name: str, folder: str) -> None:
    try:
        con.execute(f"DROP VIEW IF EXISTS {name}")
    except duckdb.Error:  # the connection is already closed
        pass
    shutil.rmtree(folder, ignore_errors=True)


def summary_table(
    data: Transactions | pd.DataFrame,
    *,
    time_unit: str | None = None,
    observation_end=None,
    period: str = "D",
    refunds: Refunds = "error",
    zero_amounts: KeepDrop = "keep",
    duplicates: KeepDrop = "keep",
) -> SummaryTable:
    """:func:`summarise`, leaving the summary in temporary files; see
    :class:`SummaryTable`."""
    tx = _as_transactions(data)
    rules = _rules(time_unit, period, refunds, zero_amounts, duplicates)
    first_day, last_day = tx.date_range()
    end = (
        last_day
        if observation_end is None
        else _to_day(observation_end, "observation_end", tx)
    )
    if end < first_day:
        raise DataError(
            f"observation_end {end.date()} is before the first transaction "
            f"({first_day.date()})."
        )

    counts = _row_counts(tx, end)
    if counts.n_neg and rules.refunds == "error":
        report_row_checks(rules, end, 0, counts.n_neg, counts.neg_total, 0, 0)
    table = SummaryTable(tx, rules, end)
    try:
        _fill(table, counts, end)
    except BaseException:
        table.close()
        raise
    tx.release_memory()
    logger.info(
        "summarised %d customers (%d repeat buyers) up to %s in unit %s",
        table.n_customers,
        table.n_repeat,
        end.date(),
        rules.time_unit,
    )
    return table


def _fill(table: SummaryTable, counts: _RowCounts, end: pd.Timestamp) -> None:
    """Summarise the log into ``table``, a range of customers at a time, and
    report the row checks."""
    tx, rules, con = table.tx, table.rules, table.tx.connection
    netting = bool(counts.n_neg)
    end_p = _period_index(rules.period, f"DATE '{end.date()}'")
    bounds = _range_bounds(tx, end, counts.n_upto)
    # With every row of the log in the occasions, duplicates are counted on
    # the way (row by row only for the rare occasions of three rows or more).
    in_occasions = not netting and rules.zero_amounts == rules.duplicates == "keep"
    # Then, if the money sums fit 64 bits, sorting the rows is faster than
    # grouping them by occasion, and counts every duplicate.
    by_sorting = in_occasions and counts.money_type == "BIGINT"
    if by_sorting:
        (end_index,) = con.execute(f"SELECT {end_p}").fetchall()[0]
    n_distinct = 0
    for k in _progress(range(len(bounds) + 1), "summarising", len(bounds) + 1):
        share = _share(bounds, k)
        rows = _rows_sql(tx.view, rules, end, share)
        if by_sorting:
            table._append_table(
                _customers_by_sorting(
                    con, rows, rules.period, end_index, tx.has_segment
                )
            )
            continue
        if not in_occasions:
            n_distinct += _n_distinct_rows(tx, end, share)
        occasions = _occasions_sql(
            rows,
            rules.period,
            netting=netting,
            segment=tx.has_segment,
            duplicates=in_occasions,
            money_type=counts.money_type,
        )
        table._append(_customers_sql(occasions, end_p, tx.has_segment, in_occasions))
    if in_occasions:
        n_dup = _counted_duplicates(tx, table.name, end)
    else:
        n_dup = counts.n_upto - n_distinct
    _report_counts(rules, end, counts, n_dup)
    if netting:
        _report_refund_only(tx, _rows_sql(tx.view, rules, end), rules.period)
    n, n_repeat = con.execute(
        f"SELECT count(*), count(*) FILTER (WHERE frequency > 0) FROM {table.name}"
    ).fetchall()[0]
    if n == 0:
        raise DataError(f"No purchases up to {end.date()} in {tx.source}.")
    table.n_customers, table.n_repeat = int(n), int(n_repeat)


def assemble_holdout(
    cal: pd.DataFrame,
    hold: pd.DataFrame,
    duration: float,
    cal_end: pd.Timestamp,
    end: pd.Timestamp,
) -> pd.DataFrame:
    """Join a calibration summary and per-customer holdout counts.

    ``hold`` is indexed by ``customer_id`` with ``frequency_holdout`` and
    ``spend_holdout``; every engine builds its own and finishes here.
    """
    out = cal.rename(
        columns={
            c: f"{c}_cal"
            for c in ("frequency", "recency", "T", "monetary_value", "total_spend")
        }
    )
    out = out.join(hold, how="left")
    out["frequency_holdout"] = out["frequency_holdout"].fillna(0).astype("int64")
    out["spend_holdout"] = out["spend_holdout"].fillna(0.0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["monetary_value_holdout"] = np.where(
            out["frequency_holdout"] > 0,
            out["spend_holdout"] / out["frequency_holdout"].clip(lower=1),
            0.0,
        )
    out["duration_holdout"] = duration
    out.attrs.update(
        cal.attrs, calibration_end=str(cal_end.date()), observation_end=str(end.date())
    )
    logger.info(
        "holdout %s to %s: %d repeat transactions",
        cal_end.date(),
        end.date(),
        int(out["frequency_holdout"].sum()),
    )
    return out


def summarise_calibration_holdout(
    data: Transactions | pd.DataFrame,
    *,
    calibration_end,
    observation_end=None,
    time_unit: str | None = None,
    period: str = "D",
    refunds: Refunds = "error",
    zero_amounts: KeepDrop = "keep",
    duplicates: KeepDrop = "keep",
) -> pd.DataFrame:
    """Summarise a calibration period and the holdout period that follows it.

    Customers are those with a purchase on or before ``calibration_end``.
    Both periods follow the same occasion rules (see :func:`summarise`).

    Parameters
    ----------
    data : Transactions or pandas.DataFrame
        The log.
    calibration_end : date-like
        Last day of the calibration period.
    observation_end : date-like, optional
        Last day of the holdout period; default the latest date in the log.
    time_unit, period, refunds, zero_amounts, duplicates
        As in :func:`summarise`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``, with ``frequency_cal``, ``recency_cal``,
        ``T_cal``, ``monetary_value_cal``, ``total_spend_cal``,
        ``first_purchase``, (``segment``), ``frequency_holdout`` (occasions
        in the holdout period), ``monetary_value_holdout``
        (``spend_holdout / frequency_holdout``, 0 without occasions),
        ``spend_holdout`` (sum of all holdout amounts) and
        ``duration_holdout`` (length of the holdout period in ``time_unit``).

    Raises
    ------
    DataError
        If ``calibration_end`` is not before ``observation_end``, or no
        customer bought by ``calibration_end``.
    """
    tx = _as_transactions(data)
    rules = _rules(time_unit, period, refunds, zero_amounts, duplicates)
    first_day, last_day = tx.date_range()
    cal_end = _to_day(calibration_end, "calibration_end", tx)
    end = (
        last_day
        if observation_end is None
        else _to_day(observation_end, "observation_end", tx)
    )
    if cal_end >= end:
        raise DataError(
            f"calibration_end {cal_end.date()} must be before the observation end "
            f"{end.date()} (the latest date in the log unless given)."
        )
    if cal_end < first_day:
        raise DataError(
            f"calibration_end {cal_end.date()} is before the first transaction "
            f"({first_day.date()}): the calibration period is empty."
        )

    rows, _ = _check_rows(tx, rules, end)
    with warnings.catch_warnings():
        # The whole window was just checked; the calibration part would only
        # repeat a subset of the same counts.
        warnings.simplefilter("ignore", DataQualityWarning)
        cal = summarise(
            tx,
            time_unit=rules.time_unit,
            observation_end=cal_end,
            period=rules.period,
            refunds=rules.refunds,
            zero_amounts=rules.zero_amounts,
            duplicates=rules.duplicates,
        )
    p = _period_index(rules.period, "day")
    cal_p = _period_index(rules.period, f"DATE '{cal_end.date()}'")
    end_p = _period_index(rules.period, f"DATE '{end.date()}'")
    hold = (
        tx.connection.execute(
            f"""
        SELECT customer_id,
               count(DISTINCT {p}) FILTER (WHERE amount >= 0) AS frequency_holdout,
               {money_sum("amount")} AS spend_holdout
        FROM ({rows}) WHERE {p} > {cal_p}
        GROUP BY customer_id
        """
        )
        .df()
        .set_index("customer_id")
    )
    periods = tx.connection.execute(f"SELECT {end_p} - {cal_p}").fetchall()[0][0]
    duration = float(rules.to_units(periods))

    return assemble_holdout(cal, hold, duration, cal_end, end)
