"""The train-and-score job on Spark, for logs beyond one machine.

The same steps as the local engine (:mod:`ltvkit.load`, :mod:`ltvkit.summary`,
:mod:`ltvkit.value`) on a Spark DataFrame or table: the raw log stays in
Spark, the RFM summary is computed there and only the per-customer result is
collected to the driver. Scoring runs in the executors with ``mapInPandas``
and the scores are written by Spark.

The occasion rules are those of :mod:`ltvkit.summary` and the results are the
same as the local engine's on the same data (up to the order in which floats
are summed). Differences, by design:

* customer ids are always strings (the local engine keeps the source type);
* Spark TIMESTAMP values and date strings with a UTC offset are instants: their
  calendar day is taken in the session time zone
  (``spark.sql.session.timeZone``). :func:`local_spark_session` sets it to
  UTC, the local engine's default ``timezone``;
* ``date_format`` takes the ``strptime`` directives listed in
  :func:`strptime_to_java`, not all of them.

Known limits: the summary is collected to the driver (one row per customer),
so tens of millions of customers need a large driver; row numbers in error
messages follow Spark's reading order, which is the file's order only for a
single file; weekly periods before 1970-01-05 are misnumbered, as in the
local engine (see :func:`_period_column`); only classic (not Spark Connect)
sessions are tested.

This module needs ``pyspark`` (``pip install ltvkit[spark]``).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from functools import cache
from types import SimpleNamespace
from typing import TYPE_CHECKING

import duckdb
import pandas as pd

from .errors import ConfigError, DataError, DataQualityWarning
from .load import (
    _COMPACT_RE,
    _DMY_RE,
    _ISO_RE,
    _ISO_TZ_RE,
    _YMD_SLASH_RE,
    _file_kind,
    _resolve_paths,
    check_mapped_columns,
    choose_date_form,
    invalid_row_kinds,
    report_invalid_rows,
)
from .summary import (
    MONEY_SCALE,
    _customers_frame,
    _Rules,
    _rules,
    _to_day,
    assemble_holdout,
    report_row_checks,
)

if TYPE_CHECKING:
    from .value import PurchaseModel, SpendModel

try:
    from pyspark.sql import Column, SparkSession, Window
    from pyspark.sql import DataFrame as SparkDataFrame
    from pyspark.sql import functions as F
    from pyspark.sql import types as T
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "ltvkit.spark needs pyspark; install it with `pip install ltvkit[spark]`."
    ) from exc

__all__ = [
    "local_spark_session",
    "strptime_to_java",
    "read_transactions_spark",
    "summarise_spark",
    "summarise_calibration_holdout_spark",
    "score_spark",
    "write_scores_spark",
]

logger = logging.getLogger(__name__)

#: Columns of a validated log, as :func:`read_transactions_spark` returns it.
LOG_COLUMNS = ("customer_id", "ts", "day", "amount", "segment", "row_hash")
_META = "ltvkit"


def local_spark_session(
    app_name: str = "ltvkit", *, cores: int = 2, shuffle_partitions: int = 8
) -> SparkSession:
    """Start (or reuse) a local-mode SparkSession bound to the loopback address.

    Parameters
    ----------
    app_name : str, default="ltvkit"
        Application name.
    cores : int, default=2
        Worker threads (``local[cores]``).
    shuffle_partitions : int, default=8
        ``spark.sql.shuffle.partitions``; Spark's default of 200 is far too
        many for one machine.

    Returns
    -------
    pyspark.sql.SparkSession
        With the driver, its block manager and any executor bound to
        127.0.0.1, no web UI, the session time zone UTC, Arrow transfers on
        and Spark's log level at ERROR.

    Notes
    -----
    ``getOrCreate`` returns a session already running in this process as it
    is, apart from the runtime options set here. Executors run this Python
    interpreter unless ``PYSPARK_PYTHON`` says otherwise, so that they can
    import ltvkit.
    """
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = (
        SparkSession.builder.master(f"local[{int(cores)}]")
        .appName(app_name)
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", str(int(shuffle_partitions)))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
    )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# strptime directive -> Java DateTimeFormatter pattern, as Spark parses them.
# Single letters (M, d, H, ...) accept one or two digits, as strptime does.
_STRPTIME_TO_JAVA = {
    "Y": "yyyy",
    "m": "M",
    "d": "d",
    "H": "H",
    "I": "h",
    "M": "m",
    "S": "s",
    "f": "SSSSSS",
    "p": "a",
    "b": "MMM",
    "B": "MMMM",
    "j": "D",
    "z": "XXX",
}


def strptime_to_java(date_format: str) -> str:
    """Translate a ``strptime`` format into the Java pattern Spark parses with.

    Supported directives: ``%Y %m %d %H %I %M %S %f %p %b %B %j %z %%``;
    other characters are kept as literals.

    >>> strptime_to_java("%m/%d/%Y")
    'M/d/yyyy'
    >>> strptime_to_java("%Y-%m-%dT%H:%M:%S")
    "yyyy-M-d'T'H:m:s"

    Raises
    ------
    ConfigError
        For a directive Spark cannot parse the way ``strptime`` does, such
        as ``%y`` (Spark reads two-digit years as 2000-2099, not 1969-2068).
    """
    out: list[str] = []
    i = 0
    while i < len(date_format):
        ch = date_format[i]
        if ch == "%":
            code = date_format[i + 1 : i + 2]
            if code == "%":
                out.append("%")
            elif code in _STRPTIME_TO_JAVA:
                out.append(_STRPTIME_TO_JAVA[code])
            else:
                raise ConfigError(
                    f"date_format {date_format!r} uses %{code}, which the Spark "
                    "engine cannot read like strptime; supported: "
                    + " ".join(f"%{c}" for c in _STRPTIME_TO_JAVA)
                    + ". Rewrite the dates, or read them as text and parse them "
                    "yourself."
                )
            i += 2
            continue
        if ch.isalpha():
            out.append("'" + ch + "'")
        elif ch == "'":
            out.append("''")
        else:
            out.append(ch)
        i += 1
    return "".join(out).replace("''", "")


def _source_frame(spark: SparkSession, source) -> tuple[SparkDataFrame, str]:
    """The raw rows of ``source`` as a Spark DataFrame, and a label for messages."""
    if isinstance(source, SparkDataFrame):
        return source, "a Spark DataFrame"
    if isinstance(source, pd.DataFrame):
        with warnings.catch_warnings():
            # pyspark 4.0 warns about pandas 3 on every conversion.
            warnings.filterwarnings("ignore", module=r"pyspark\.")
            return spark.createDataFrame(source), "a DataFrame"
    text = str(source)
    if "://" in text and not text.startswith("file://"):
        # A remote file system: Spark resolves it; the suffix says the format.
        kind = "parquet" if not text.lower().rstrip("/").endswith(".csv") else "csv"
        paths = [text]
    elif any(ch in text for ch in "*?[") or os.path.exists(text):
        paths = _resolve_paths(text)
        kind = _file_kind(paths)
    elif isinstance(source, str) and spark.catalog.tableExists(text):
        return spark.table(text), f"table {text}"
    else:
        raise DataError(
            f"{text!r} is neither a file, folder or glob that exists nor a table "
            "in the Spark catalog."
        )
    if kind == "parquet":
        frame = spark.read.parquet(*paths)
    else:
        # Everything is read as text so that bad values are counted and reported
        # by ltvkit instead of stopping the reader at the first one.
        frame = spark.read.csv(paths, header=True, inferSchema=False)
    label = paths[0] if len(paths) == 1 else f"{len(paths)} files like {paths[0]}"
    return frame, label


def _check_columns(raw: SparkDataFrame, mapping: dict[str, str | None]) -> None:
    check_mapped_columns(mapping, raw.columns)


def _parse_with(text: Column, java_pattern: str) -> Column:
    # try_to_timestamp gives an instant read in the session time zone; the cast
    # turns it back into that wall-clock time.
    return F.try_to_timestamp(text, F.lit(java_pattern)).cast("timestamp_ntz")


def _date_column(
    raw: SparkDataFrame, col: str, dtype: T.DataType, date_format: str | None
) -> Column:
    """An expression turning ``col`` into a naive TIMESTAMP_NTZ (NULL if unreadable)."""
    c = F.col(col)
    if isinstance(dtype, T.TimestampNTZType):
        return c
    if isinstance(dtype, (T.TimestampType, T.DateType)):
        return c.cast("timestamp_ntz")
    if not isinstance(dtype, T.StringType):
        if isinstance(dtype, T.IntegralType) and date_format in (None, "%Y%m%d"):
            return _parse_with(c.cast("string"), "yyyyMMdd")
        if date_format is None:
            raise DataError(
                f"The date column {col!r} has type {dtype.simpleString()}; give "
                "--date-format (date_format=) to say how to read it."
            )
        return _parse_with(c.cast("string"), strptime_to_java(date_format))

    s = F.trim(c)
    if date_format is not None:
        return _parse_with(s, strptime_to_java(date_format))

    def n(pattern: str) -> Column:
        return F.count(F.when(s.rlike(pattern), 1))

    dmy = s.rlike(_DMY_RE)
    row = raw.agg(
        F.count(F.when(s != "", 1)),
        n(_ISO_RE),
        n(_ISO_TZ_RE),
        n(_COMPACT_RE),
        n(_YMD_SLASH_RE),
        n(_DMY_RE),
        F.max(F.when(dmy, F.regexp_extract(s, _DMY_RE, 1).cast("int"))),
        F.max(F.when(dmy, F.regexp_extract(s, _DMY_RE, 3).cast("int"))),
        F.count_distinct(F.when(dmy, F.regexp_extract(s, _DMY_RE, 2))),
        F.first(F.when(dmy, F.regexp_extract(s, _DMY_RE, 2)), ignorenulls=True),
    ).first()
    form = choose_date_form(col, *row)
    if form is None:
        return _parse_with(s, "yyyy-M-d")
    if form == "ISO":
        return s.try_cast("timestamp_ntz")
    if form == "ISO_TZ":
        return s.try_cast("timestamp").cast("timestamp_ntz")
    # Single pattern letters also read one-digit months and days.
    lenient = {"%Y%m%d": "yyyyMMdd", "%Y/%m/%d": "yyyy/M/d"}
    return _parse_with(s, lenient.get(form) or strptime_to_java(form))


def _examples(parsed: SparkDataFrame, cond: Column) -> str:
    """'row N: date=..., amount=...' for the first three rows matching ``cond``."""
    first = (
        parsed.filter(cond)
        .orderBy("_row_id")
        .select("_row_id", "_raw_date", "_raw_amount")
        .limit(3)
        .collect()
    )
    # Row numbers count rows in Spark's reading order, from 1: for a single
    # file that is the file's order.
    numbers = parsed.agg(
        *[F.count(F.when(F.col("_row_id") <= r[0], 1)) for r in first]
    ).first()
    return "; ".join(
        f"row {k}: date={r[1]!r}, amount={r[2]!r}"
        for k, r in zip(numbers, first, strict=True)
    )


def read_transactions_spark(
    spark: SparkSession,
    source: SparkDataFrame | pd.DataFrame | str | os.PathLike,
    *,
    customer_id_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    segment_col: str | None = None,
    date_format: str | None = None,
    invalid_rows: str = "error",
) -> SparkDataFrame:
    """Read and validate a transaction log into a Spark DataFrame.

    Parameters
    ----------
    spark : pyspark.sql.SparkSession
        The session to read with.
    source : Spark DataFrame, pandas DataFrame, table name, path, glob or folder
        A DataFrame, a table in the Spark catalog, or CSV / Parquet files (by
        suffix; a remote ``scheme://`` path is Parquet unless it ends in
        ``.csv``).
    customer_id_col, date_col, amount_col, segment_col, date_format, invalid_rows
        As in :func:`ltvkit.read_transactions`. ``date_format`` is a
        ``strptime`` format, translated by :func:`strptime_to_java`. Without
        it, dates are read when their reading is unambiguous: ISO dates and
        timestamps, ``YYYYMMDD``, ``YYYY/MM/DD``, or ``NN/NN/YYYY`` when some
        value proves which field is the day.

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy; columns ``customer_id`` (string), ``ts`` (timestamp_ntz),
        ``day`` (date), ``amount`` (double), ``segment`` (string or NULL) and
        ``row_hash`` (long, a hash of the whole source row, to find
        duplicates). Column metadata records the source, the date format and
        whether there is a segment, for :func:`summarise_spark`.

    Raises
    ------
    DataError
        Missing columns, unreadable dates or amounts, missing ids, no rows.
    ConfigError
        An unknown ``invalid_rows`` or an unsupported ``date_format``.

    Notes
    -----
    The checks run two or three Spark jobs over the log (one more to find the
    date format when none is given); nothing but counts and up to three example
    rows per problem reaches the driver.
    """
    if invalid_rows not in ("error", "drop"):
        raise ConfigError(
            f"invalid_rows must be 'error' or 'drop'; got {invalid_rows!r} instead."
        )
    raw, label = _source_frame(spark, source)
    mapping = {
        "customer id": customer_id_col,
        "date": date_col,
        "amount": amount_col,
        "segment": segment_col,
    }
    _check_columns(raw, mapping)
    types = {f.name: f.dataType for f in raw.schema.fields}

    ts = _date_column(raw, date_col, types[date_col], date_format)
    id_c, amount_c = F.col(customer_id_col), F.col(amount_col)
    if isinstance(types[customer_id_col], T.StringType):
        customer_id = F.nullif(F.trim(id_c), F.lit(""))
    else:
        customer_id = id_c.cast("string")
    if isinstance(types[amount_col], T.StringType):
        amount = F.nullif(F.trim(amount_c), F.lit("")).try_cast("double")
    else:
        amount = amount_c.cast("double")
    segment = F.col(segment_col).cast("string") if segment_col else F.lit(None)
    # Spark's hashes skip NULLs, so the pattern of NULLs is hashed as well.
    nulls = F.concat(
        *[F.col(c).isNull().cast("int").cast("string") for c in raw.columns]
    )
    row_hash = F.xxhash64(*[F.col(c) for c in raw.columns], nulls)
    parsed = raw.select(
        customer_id.alias("customer_id"),
        ts.alias("ts"),
        amount.alias("amount"),
        segment.cast("string").alias("segment"),
        F.col(date_col).alias("_raw_date"),
        F.col(amount_col).alias("_raw_amount"),
        row_hash.alias("row_hash"),
    )

    bad_id = F.col("customer_id").isNull()
    bad_date = F.col("ts").isNull()
    a = F.col("amount")
    bad_amount = a.isNull() | F.isnan(a) | a.isin(float("inf"), float("-inf"))
    bad_any = bad_id | bad_date | bad_amount
    n_rows, n_id, n_date, n_amount, n_any, rev = parsed.agg(
        F.count(F.lit(1)),
        F.count(F.when(bad_id, 1)),
        F.count(F.when(bad_date, 1)),
        F.count(F.when(bad_amount, 1)),
        F.count(F.when(bad_any, 1)),
        F.sum(F.when((bad_id | bad_date) & ~bad_amount, a)),
    ).first()
    if n_rows == 0:
        raise DataError(f"The transaction log {label} has no rows.")

    if n_any:
        numbered = parsed.withColumn("_row_id", F.monotonically_increasing_id())
        problems = []
        kinds = invalid_row_kinds(customer_id_col, date_col, amount_col)
        for count, cond, what in zip(
            (n_id, n_date, n_amount), (bad_id, bad_date, bad_amount), kinds, strict=True
        ):
            if count:
                shown = _examples(numbered, cond)
                problems.append(f"{count} rows with {what}, e.g. {shown}")
        report_invalid_rows(
            label, n_rows, n_any, n_date, rev, problems, invalid_rows=invalid_rows
        )
    meta = {"source": label, "date_format": date_format}
    log = parsed.filter(~bad_any).select(
        "customer_id",
        F.col("ts").alias("ts", metadata={_META: meta}),
        F.to_date("ts").alias("day"),
        "amount",
        F.col("segment").alias(
            "segment", metadata={_META: {"has_segment": segment_col is not None}}
        ),
        "row_hash",
    )
    logger.info(
        "read %d transactions from %s (%d dropped)", n_rows - n_any, label, n_any
    )
    return log


def _log_info(sdf: SparkDataFrame) -> SimpleNamespace:
    """Source, date format and segment flag recorded by read_transactions_spark."""
    fields = {f.name: f for f in sdf.schema.fields}
    ts_meta = fields["ts"].metadata.get(_META, {})
    seg_meta = fields["segment"].metadata.get(_META, {})
    return SimpleNamespace(
        source=ts_meta.get("source", "a Spark DataFrame"),
        date_format=ts_meta.get("date_format"),
        has_segment=seg_meta.get("has_segment", True),
    )


def _as_log(data) -> SparkDataFrame:
    if isinstance(data, SparkDataFrame):
        if all(c in data.columns for c in LOG_COLUMNS):
            return data
        return read_transactions_spark(data.sparkSession, data)
    raise ConfigError(
        "Pass a Spark DataFrame from ltvkit.spark.read_transactions_spark, or one "
        f"with columns customer_id, date, amount; got {type(data).__name__}."
    )


def _money_sum(column: Column, where: Column | None = None) -> Column:
    """Sum of amounts in exact millionths, as ``summary.money_sum`` does."""
    micros = F.round(column * MONEY_SCALE).cast("decimal(38,0)")
    if where is not None:
        micros = F.when(where, micros)
    return F.sum(micros).cast("double") / MONEY_SCALE


def _period_column(period: str, day: Column) -> Column:
    """Integer index of the period that the date ``day`` falls in."""
    if period == "D":
        return F.datediff(day, F.lit("1970-01-01").cast("date"))
    if period == "W":
        # 1970-01-05 is a Monday; weeks before it get negative indexes.
        days = F.datediff(day, F.lit("1970-01-05").cast("date"))
        return F.floor(days / 7)
    if period == "M":
        return F.year(day) * 12 + F.month(day) - 1
    return F.year(day) * 4 + F.quarter(day) - 1


def _period_value(period: str, day: pd.Timestamp) -> int:
    """The same index for one date, on the driver."""
    if period == "D":
        return (day - pd.Timestamp("1970-01-01")).days
    if period == "W":
        return (day - pd.Timestamp("1970-01-05")).days // 7
    if period == "M":
        return day.year * 12 + day.month - 1
    return day.year * 4 + day.quarter - 1


def _scan(log: SparkDataFrame, end: pd.Timestamp | None) -> SimpleNamespace:
    """One pass over the log: its date range and the row counts up to ``end``.

    Without ``end`` the counts run to the last day, the default end.
    """
    upto = F.col("day") <= F.lit(end.date()) if end is not None else F.lit(True)
    a = F.col("amount")
    row = log.agg(
        F.min("day"),
        F.max("day"),
        F.count(F.when(~upto, 1)),
        F.count(F.when(upto & (a < 0), 1)),
        F.sum(F.when(upto & (a < 0), a)),
        F.count(F.when(upto & (a == 0), 1)),
        F.count(F.when(upto, 1)),
        F.count_distinct(F.when(upto, F.col("row_hash"))),
    ).first()
    first_day, last_day, n_after, n_neg, neg_total, n_zero, n_upto, n_hashes = row
    return SimpleNamespace(
        first_day=pd.Timestamp(first_day),
        last_day=pd.Timestamp(last_day),
        n_after=n_after,
        n_neg=n_neg,
        neg_total=neg_total,
        n_zero=n_zero,
        n_dup=n_upto - n_hashes,
    )


def _check_rows(log: SparkDataFrame, rules: _Rules, end: pd.Timestamp, counts):
    """Apply the row rules up to ``end``; return the rows to use.

    ``counts`` come from :func:`_scan`. The messages are those of
    ``summary._check_rows``, word for word.
    """
    a = F.col("amount")
    report_row_checks(
        rules,
        end,
        counts.n_after,
        counts.n_neg,
        counts.neg_total,
        counts.n_zero,
        counts.n_dup,
    )
    rows = log.filter(F.col("day") <= F.lit(end.date()))
    if rules.zero_amounts == "drop":
        rows = rows.filter(a != 0)
    if rules.duplicates == "drop":
        rows = rows.dropDuplicates(["row_hash"])
    return rows


@cache
def _local_dtypes() -> dict[str, object]:
    """The dtypes the local engine's DuckDB hands to pandas for text and dates."""
    probe = duckdb.sql("SELECT 'a' AS text, DATE '2000-01-01' AS day").df()
    return {"text": probe["text"].dtype, "day": probe["day"].dtype}


def _customer_rows(rows: SparkDataFrame, rules: _Rules, end, has_segment: bool):
    """One row per customer in ``rows``, computed in Spark (not yet collected)."""
    a = F.col("amount")
    buy = a >= 0
    aggs = [
        F.bool_or(buy).alias("occ"),
        _money_sum(a).alias("total"),
        F.count(F.when(buy, 1)).alias("n_buy"),
        F.min(F.when(buy, F.col("day"))).alias("first_day"),
    ]
    if has_segment:
        # summary uses DuckDB's arg_min(segment, (ts, segment)), which skips
        # NULL segments: the earliest row with one, ties to the smallest.
        aggs.append(
            F.min(
                F.when(buy & F.col("segment").isNotNull(), F.struct("ts", "segment"))
            ).alias("seg_key")
        )
    per = rows.groupBy(
        "customer_id", _period_column(rules.period, F.col("day")).alias("p")
    ).agg(*aggs)

    # A refund goes to the latest occasion on or before it, else the first.
    by_customer = Window.partitionBy("customer_id")
    running = by_customer.orderBy("p").rowsBetween(
        Window.unboundedPreceding, Window.currentRow
    )
    occ_p = F.when(F.col("occ"), F.col("p"))
    assigned = per.select(
        "customer_id",
        "total",
        F.coalesce(F.max(occ_p).over(running), F.min(occ_p).over(by_customer)).alias(
            "p"
        ),
    )
    occasions = (
        assigned.filter(F.col("p").isNotNull())
        .groupBy("customer_id", "p")
        .agg(_money_sum(F.col("total")).alias("total"))
    )
    ranked = occasions.withColumn("k", F.row_number().over(by_customer.orderBy("p")))
    end_p = F.lit(_period_value(rules.period, end))
    c = ranked.groupBy("customer_id").agg(
        (F.count(F.lit(1)) - 1).alias("frequency"),
        (F.max("p") - F.min("p")).alias("recency"),
        (end_p - F.min("p")).alias("T"),
        F.coalesce(
            _money_sum(F.col("total"), F.col("k") > 1) / (F.count(F.lit(1)) - 1),
            F.lit(0.0),
        ).alias("monetary_value"),
        _money_sum(F.col("total")).alias("total_spend"),
    )
    extra = [F.min(F.col("seg_key")).getField("segment").alias("segment")]
    r = per.groupBy("customer_id").agg(
        F.bool_or("occ").alias("has_occasion"),
        F.sum("total").alias("all_total"),
        F.min("first_day").alias("first_purchase"),
        F.sum("n_buy").alias("n_transactions"),
        *(extra if has_segment else [F.lit(None).cast("string").alias("segment")]),
    )
    return r.join(c, on="customer_id", how="left")


def _collect(sdf: SparkDataFrame) -> pd.DataFrame:
    """``toPandas``, silencing pyspark's warnings about pandas 3 and its API."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"pyspark\.")
        return sdf.toPandas()


def _summary_frame(
    collected: pd.DataFrame, has_segment: bool, source, end, rules: _Rules
):
    """The collected per-customer rows as summary.summarise returns them."""
    refund_only = ~collected["has_occasion"].astype(bool)
    if refund_only.any():
        n = int(refund_only.sum())
        total = float(collected.loc[refund_only, "all_total"].sum())
        warnings.warn(
            f"{n} customers have refunds but no purchase up to the observation end "
            f"({total:.2f} in all); they are left out of the summary.",
            DataQualityWarning,
            stacklevel=3,
        )
    df = collected.loc[~refund_only]
    if df.empty:
        raise DataError(f"No purchases up to {end.date()} in {source}.")
    dtypes = _local_dtypes()
    df = pd.DataFrame(
        {
            "customer_id": pd.array(df["customer_id"].tolist(), dtype=dtypes["text"]),
            "frequency": df["frequency"].to_numpy(dtype="int64"),
            "recency": df["recency"].to_numpy(dtype=float),
            "T": df["T"].to_numpy(dtype=float),
            "monetary_value": df["monetary_value"].to_numpy(dtype=float),
            "total_spend": df["total_spend"].to_numpy(dtype=float),
            "first_purchase": pd.to_datetime(df["first_purchase"]).astype(
                dtypes["day"]
            ),
            "n_transactions": df["n_transactions"].to_numpy(dtype="int64"),
            "segment": pd.array(
                [None if pd.isna(v) else v for v in df["segment"]],
                dtype=dtypes["text"],
            ),
        }
    )
    return _customers_frame(df, has_segment, rules)


def summarise_spark(
    sdf: SparkDataFrame,
    *,
    time_unit: str | None = None,
    observation_end=None,
    period: str = "D",
    refunds: str = "error",
    zero_amounts: str = "keep",
    duplicates: str = "keep",
) -> pd.DataFrame:
    """Summarise a Spark transaction log into one RFM row per customer.

    The Spark twin of :func:`ltvkit.summarise`: same options, same rules,
    same warnings and errors, and the same frame.

    Parameters
    ----------
    sdf : pyspark.sql.DataFrame
        From :func:`read_transactions_spark`, or a DataFrame with columns
        ``customer_id``, ``date`` and ``amount`` (read with it first).
    time_unit, observation_end, period, refunds, zero_amounts, duplicates
        As in :func:`ltvkit.summarise`.

    Returns
    -------
    pandas.DataFrame
        As :func:`ltvkit.summarise`: indexed by ``customer_id`` (sorted), with
        ``frequency``, ``recency``, ``T``, ``monetary_value``, ``total_spend``,
        ``first_purchase``, ``n_transactions`` and, if the log has one,
        ``segment``; ``attrs`` holds ``time_unit``, ``period`` and
        ``observation_end``.

    Raises
    ------
    DataError, ConfigError
        As :func:`ltvkit.summarise`.

    Notes
    -----
    Two Spark jobs: one pass for the date range and the row checks, and the
    summary, of which only one row per customer (refund-only customers included, then
    left out) is collected to the driver. The driver must hold that many rows;
    for tens of millions of customers keep the RFM table in Spark instead and
    score it with :func:`score_spark`.
    """
    log = _as_log(sdf)
    info = _log_info(log)
    rules = _rules(time_unit, period, refunds, zero_amounts, duplicates)
    given = (
        None
        if observation_end is None
        else _to_day(observation_end, "observation_end", info)
    )
    counts = _scan(log, given)
    end = counts.last_day if given is None else given
    if end < counts.first_day:
        raise DataError(
            f"observation_end {end.date()} is before the first transaction "
            f"({counts.first_day.date()})."
        )

    rows = _check_rows(log, rules, end, counts)
    collected = _collect(_customer_rows(rows, rules, end, info.has_segment))
    df = _summary_frame(collected, info.has_segment, info.source, end, rules)
    df.attrs.update(
        time_unit=rules.time_unit, period=rules.period, observation_end=str(end.date())
    )
    logger.info(
        "summarised %d customers (%d repeat buyers) up to %s in unit %s",
        len(df),
        int((df["frequency"] > 0).sum()),
        end.date(),
        rules.time_unit,
    )
    return df


def summarise_calibration_holdout_spark(
    sdf: SparkDataFrame,
    *,
    calibration_end,
    observation_end=None,
    time_unit: str | None = None,
    period: str = "D",
    refunds: str = "error",
    zero_amounts: str = "keep",
    duplicates: str = "keep",
) -> pd.DataFrame:
    """Summarise a calibration period and its holdout period, in Spark.

    The Spark twin of :func:`ltvkit.summarise_calibration_holdout`, with the
    same parameters, the same frame and the same errors.

    Parameters
    ----------
    sdf : pyspark.sql.DataFrame
        As in :func:`summarise_spark`.
    calibration_end, observation_end, time_unit, period, refunds
        As in :func:`ltvkit.summarise_calibration_holdout`.
    zero_amounts, duplicates
        As in :func:`ltvkit.summarise_calibration_holdout`.

    Returns
    -------
    pandas.DataFrame
        As :func:`ltvkit.summarise_calibration_holdout`: the calibration
        columns with ``_cal`` suffixes, ``first_purchase``, (``segment``),
        ``frequency_holdout``, ``spend_holdout``, ``monetary_value_holdout``
        and ``duration_holdout``.

    Raises
    ------
    DataError
        If ``calibration_end`` is not before ``observation_end``, or no
        customer bought by ``calibration_end``.
    """
    log = _as_log(sdf)
    info = _log_info(log)
    rules = _rules(time_unit, period, refunds, zero_amounts, duplicates)
    cal_end = _to_day(calibration_end, "calibration_end", info)
    given = (
        None
        if observation_end is None
        else _to_day(observation_end, "observation_end", info)
    )
    counts = _scan(log, given)
    first_day = counts.first_day
    end = counts.last_day if given is None else given
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

    rows = _check_rows(log, rules, end, counts)
    with warnings.catch_warnings():
        # The whole window was just checked; the calibration part would only
        # repeat a subset of the same counts.
        warnings.simplefilter("ignore", DataQualityWarning)
        cal = summarise_spark(
            log,
            time_unit=rules.time_unit,
            observation_end=cal_end,
            period=rules.period,
            refunds=rules.refunds,
            zero_amounts=rules.zero_amounts,
            duplicates=rules.duplicates,
        )
    p = _period_column(rules.period, F.col("day"))
    cal_p = _period_value(rules.period, cal_end)
    end_p = _period_value(rules.period, end)
    hold = _collect(
        rows.filter(p > F.lit(cal_p))
        .groupBy("customer_id")
        .agg(
            F.count_distinct(F.when(F.col("amount") >= 0, p)).alias(
                "frequency_holdout"
            ),
            _money_sum(F.col("amount")).alias("spend_holdout"),
        )
    ).set_index("customer_id")
    duration = float(rules.to_units(end_p - cal_p))

    return assemble_holdout(cal, hold, duration, cal_end, end)


_RFM_TYPES = {
    "customer_id": "string",
    "frequency": "bigint",
    "recency": "double",
    "T": "double",
    "monetary_value": "double",
    "total_spend": "double",
    "segment": "string",
}


def _slim(model):
    """The model with its parameters only, so that tasks do not ship its data."""
    if hasattr(model, "to_dict") and hasattr(type(model), "from_dict"):
        return type(model).from_dict(model.to_dict())
    return model


def _spark_type(dtype) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        return "bigint"
    if pd.api.types.is_float_dtype(dtype):
        return "double"
    return "string"


def score_spark(
    rfm: pd.DataFrame | SparkDataFrame,
    purchase_model: PurchaseModel,
    spend_model: SpendModel,
    *,
    time_unit: str,
    horizon_months: int = 12,
    margin: float = 1.0,
    annual_discount_rate: float = 0.10,
    spark: SparkSession | None = None,
) -> SparkDataFrame:
    """Score customers in the executors with :func:`ltvkit.value.score_customers`.

    Parameters
    ----------
    rfm : pandas.DataFrame or pyspark.sql.DataFrame
        A summary from :func:`summarise_spark` or :func:`ltvkit.summarise`
        (indexed by ``customer_id``), or a Spark DataFrame with the columns
        ``customer_id``, ``frequency``, ``recency``, ``T``,
        ``monetary_value`` and optionally ``total_spend`` and ``segment``.
    purchase_model, spend_model
        Fitted models, e.g. :class:`ltvkit.models.BGNBDModel` and
        :class:`ltvkit.models.GammaGammaModel`. Models with ``to_dict`` are
        sent to the executors as their parameters; others are pickled.
    time_unit, horizon_months, margin, annual_discount_rate
        As in :func:`ltvkit.value.score_customers`: the unit of ``recency``
        and ``T``, the horizon in months of 365.25 / 12 days, the margin as
        a fraction of revenue and the yearly discount rate.
    spark : SparkSession, optional
        Needed only for a pandas ``rfm``; default the active session.

    Returns
    -------
    pyspark.sql.DataFrame
        Lazy, one row per customer, with ``customer_id`` and the columns of
        :func:`ltvkit.value.score_customers` (``p_alive``,
        ``expected_purchases``, ``expected_spend_per_purchase``,
        ``expected_spend``, ``clv``, ``realised_margin``, ``ltv``, ...). Write
        it with :func:`write_scores_spark`.

    Raises
    ------
    ConfigError, DataError
        As :func:`ltvkit.value.score_customers`, raised on the driver before
        any task runs: the options and the summary's recorded ``time_unit``
        are checked on a one-row probe.

    Notes
    -----
    Each partition is scored on its own, so the scores do not depend on the
    partitioning. ``attrs`` (the options used) do not travel with a Spark
    DataFrame; keep them from the arguments.
    """
    from .value import score_customers

    if isinstance(rfm, pd.DataFrame):
        attrs = dict(rfm.attrs)
        session = spark or SparkSession.getActiveSession()
        if session is None:
            raise ConfigError(
                "Scoring a pandas summary on Spark needs a session: pass spark= "
                "(e.g. ltvkit.spark.local_spark_session())."
            )
        frame = rfm.reset_index()
        if "customer_id" not in frame:
            raise DataError(
                "The summary has no customer_id index or column; build it with "
                "summarise_spark or ltvkit.summarise."
            )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"pyspark\.")
            sdf = session.createDataFrame(frame)
    elif isinstance(rfm, SparkDataFrame):
        attrs, sdf = {}, rfm
    else:
        raise ConfigError(
            "rfm must be a pandas summary or a Spark DataFrame; got "
            f"{type(rfm).__name__}."
        )
    missing = [
        c
        for c in ("customer_id", "frequency", "recency", "T", "monetary_value")
        if c not in sdf.columns
    ]
    if missing:
        raise DataError(
            f"The summary lacks the columns {', '.join(missing)}; it has "
            f"{', '.join(sdf.columns)}. Build it with summarise_spark."
        )
    sdf = sdf.select(
        *[
            F.col(c).cast(_RFM_TYPES[c]).alias(c) if c in _RFM_TYPES else F.col(c)
            for c in sdf.columns
        ]
    )
    in_types = {f.name: f.dataType for f in sdf.schema.fields}
    dates = [c for c, t in in_types.items() if isinstance(t, T.DateType)]
    options = dict(
        time_unit=time_unit,
        horizon_months=horizon_months,
        margin=margin,
        annual_discount_rate=annual_discount_rate,
    )
    purchase_model, spend_model = _slim(purchase_model), _slim(spend_model)
    day_dtype = _local_dtypes()["day"]

    def as_local(batch: pd.DataFrame) -> pd.DataFrame:
        # Dates arrive as datetime.date objects; the local engine has datetimes.
        for c in dates:
            batch[c] = pd.to_datetime(batch[c]).astype(day_dtype)
        frame = batch.set_index("customer_id")
        frame.attrs = dict(attrs)
        return frame

    # A made-up repeat buyer: checks every option on the driver and gives the
    # output columns and their types.
    values = dict(frequency=1, recency=1.0, T=2.0, monetary_value=1.0, total_spend=2.0)
    probe_row = {}
    for c, t in in_types.items():
        if c in values:
            probe_row[c] = values[c]
        elif isinstance(t, (T.DateType, T.TimestampType, T.TimestampNTZType)):
            probe_row[c] = pd.Timestamp("2000-01-01")
        elif isinstance(t, T.NumericType):
            probe_row[c] = 1
        else:
            probe_row[c] = "probe"
    probe = as_local(pd.DataFrame({c: [v] for c, v in probe_row.items()}))
    quiet = logging.getLogger("ltvkit.value")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # the probe's own log line would mislead
    try:
        shape = score_customers(probe, purchase_model, spend_model, **options)
    finally:
        quiet.setLevel(level)
    shape = shape.reset_index()
    out_columns = list(shape.columns)
    out_types = {
        c: in_types[c].simpleString() if c in in_types else _spark_type(shape[c].dtype)
        for c in out_columns
    }
    schema = ", ".join(f"`{c}` {t}" for c, t in out_types.items())
    out_dates = [c for c in out_columns if out_types[c] == "date"]

    def score_batches(batches):
        for batch in batches:
            if batch.empty:
                continue
            scores = score_customers(
                as_local(batch), purchase_model, spend_model, **options
            ).reset_index()[out_columns]
            for c in out_dates:
                scores[c] = scores[c].dt.date
            yield scores

    logger.info("scoring on Spark, horizon %s months", horizon_months)
    return sdf.mapInPandas(score_batches, schema)


def write_scores_spark(
    scores: SparkDataFrame,
    path: str | os.PathLike,
    *,
    file_format: str = "parquet",
    mode: str = "errorifexists",
) -> str:
    """Write scores from :func:`score_spark` with Spark, ordered by customer id.

    Parameters
    ----------
    scores : pyspark.sql.DataFrame
        The scores.
    path : str or path-like
        Output folder (Spark writes one file per partition into it).
    file_format : {"parquet", "csv"}, default="parquet"
        CSV files get a header row.
    mode : {"errorifexists", "overwrite", "append", "ignore"}, default="errorifexists"
        Spark's save mode; by default an existing folder is an error.

    Returns
    -------
    str
        The path written.
    """
    if file_format not in ("parquet", "csv"):
        raise ConfigError(
            f"file_format must be 'parquet' or 'csv'; got {file_format!r} instead."
        )
    if mode not in ("errorifexists", "overwrite", "append", "ignore"):
        raise ConfigError(
            "mode must be one of 'errorifexists', 'overwrite', 'append', 'ignore'; "
            f"got {mode!r} instead."
        )
    writer = scores.orderBy("customer_id").write.mode(mode)
    if file_format == "csv":
        writer = writer.option("header", True)
    writer.format(file_format).save(str(path))
    logger.info("wrote scores to %s (%s)", path, file_format)
    return str(path)
