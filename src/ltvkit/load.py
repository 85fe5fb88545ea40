"""Read transaction logs into a validated, engine-backed table.

A log has one row per transaction with a customer id, a date and an amount,
and optionally a segment. :func:`read_transactions` reads it from a CSV or
Parquet file (or a folder or glob of them), or from a pandas DataFrame, into
DuckDB, checks every row, and returns a :class:`Transactions` object. The raw
rows stay in DuckDB; only per-customer results are turned into pandas.
"""

from __future__ import annotations

import csv
import glob as _glob
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd
import pyarrow as pa

from .errors import ConfigError, DataError, DataQualityWarning

__all__ = ["Transactions", "read_transactions", "load_cdnow", "cdnow_path"]

logger = logging.getLogger(__name__)

InvalidRows = Literal["error", "drop"]

_ISO_RE = r"^\d{4}-\d{1,2}-\d{1,2}([ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?)?$"
_ISO_TZ_RE = (
    r"^\d{4}-\d{1,2}-\d{1,2}[ T]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?"
    r"\s*(Z|[+-]\d{2}(:?\d{2})?)$"
)
_COMPACT_RE = r"^\d{8}$"
_YMD_SLASH_RE = r"^\d{4}/\d{1,2}/\d{1,2}$"
_DMY_RE = r"^(\d{1,2})([/.-])(\d{1,2})([/.-])(\d{4})$"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


@dataclass
class Transactions:
    """A validated transaction log held by DuckDB.

    Attributes
    ----------
    connection : duckdb.DuckDBPyConnection
        The connection that holds the view ``transactions``.
    view : str
        Name of the view with the columns ``customer_id``, ``ts`` (timestamp),
        ``day`` (calendar date), ``amount`` (float), ``segment`` (or NULL)
        and ``row_hash`` (a hash of the whole source row, to find duplicates).
    has_segment : bool
        Whether the log has a segment column.
    n_rows : int
        Rows in the view (after any rows dropped on request).
    n_dropped : int
        Rows dropped because ``invalid_rows="drop"`` was given.
    source : str
        A description of where the rows came from.
    date_format : str or None
        The date format the log was read with, if one was given.
    columns : dict or None
        How the log was read: ``customer_id_col``, ``date_col``,
        ``amount_col``, ``segment_col``, ``date_format`` and ``timezone``.
    """

    connection: duckdb.DuckDBPyConnection
    view: str
    has_segment: bool
    n_rows: int
    n_dropped: int = 0
    source: str = ""
    date_format: str | None = None
    columns: dict | None = None
    _date_range: tuple | None = field(default=None, init=False, repr=False)
    #: Sum of the row hashes and number of rows up to each day asked for.
    fingerprints: dict = field(default_factory=dict, init=False, repr=False)

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run ``query`` on this log's connection."""
        return self.connection.sql(query)

    def to_pandas(self) -> pd.DataFrame:
        """The validated rows as a DataFrame (``customer_id, date, amount``...),
        sorted by customer, time and amount."""
        cols = "customer_id, ts AS date, amount"
        if self.has_segment:
            cols += ", segment"
        query = f"SELECT {cols} FROM {self.view} ORDER BY customer_id, ts, amount"
        return self.connection.execute(query).df()

    def date_range(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """First and last calendar day in the log."""
        if self._date_range is None:
            lo, hi = self.connection.execute(
                f"SELECT min(day), max(day) FROM {self.view}"
            ).fetchall()[0]
            self._date_range = (pd.Timestamp(lo), pd.Timestamp(hi))
        return self._date_range

    def release_memory(self) -> None:
        """Return the memory that DuckDB's queries and Arrow freed to the system.

        DuckDB's and Arrow's allocators keep freed pages for later use; when
        pandas and NumPy work follows, those pages add to the process's peak.
        DuckDB flushes its allocator whenever its thread pool is resized, so
        this resizes the pool and restores it.
        """
        con = self.connection
        (threads,) = con.execute("SELECT current_setting('threads')").fetchall()[0]
        con.execute(f"SET threads = {1 if threads > 1 else 2}")
        con.execute(f"SET threads = {threads}")
        pa.default_memory_pool().release_unused()

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        return f"Transactions({self.n_rows} rows from {self.source or 'memory'})"


def _resolve_paths(source: str | os.PathLike) -> list[str]:
    text = str(source)
    if any(ch in text for ch in "*?["):
        paths = sorted(_glob.glob(text, recursive=True))
    elif os.path.isdir(text):
        paths = sorted(
            p
            for p in _glob.glob(os.path.join(text, "**", "*"), recursive=True)
            if p.lower().endswith((".csv", ".parquet", ".pq", ".csv.gz", ".txt"))
        )
    else:
        paths = [text]
    if not paths:
        raise DataError(f"No transaction files match {text!r}.")
    for p in paths:
        if not os.path.isfile(p):
            raise DataError(f"Transaction file {p!r} does not exist.")
    return paths


def _file_kind(paths: list[str]) -> str:
    kinds = {
        "parquet" if p.lower().endswith((".parquet", ".pq")) else "csv" for p in paths
    }
    if len(kinds) > 1:
        raise DataError("A transaction source mixes CSV and Parquet files; use one.")
    return kinds.pop()


def _raw_relation(con: duckdb.DuckDBPyConnection, source) -> tuple[str, str]:
    """Register ``source`` as the view ``raw`` and return (its kind, a label)."""
    if isinstance(source, pd.DataFrame):
        con.register("raw_df", source)
        con.execute("CREATE VIEW raw AS SELECT * FROM raw_df")
        return "pandas", "a DataFrame"
    if isinstance(source, duckdb.DuckDBPyRelation):
        raise ConfigError(
            "A DuckDB relation belongs to its own connection; pass "
            "relation.df() or write it to Parquet first."
        )
    paths = _resolve_paths(source)
    kind = _file_kind(paths)
    listing = "[" + ", ".join(_literal(p) for p in paths) + "]"
    if kind == "parquet":
        con.execute(f"CREATE VIEW raw AS SELECT * FROM read_parquet({listing})")
    else:
        # Everything is read as text so that bad values are counted and reported
        # by ltvkit instead of stopping the reader at the first one.
        delim, names = _csv_layout(paths[0])
        columns = "{" + ", ".join(f"{_literal(n)}: 'VARCHAR'" for n in names) + "}"
        con.execute(
            "CREATE VIEW raw AS SELECT * FROM read_csv("
            f"{listing}, header=true, auto_detect=false, delim={_literal(delim)}, "
            f"quote='\"', escape='\"', columns={columns})"
        )
    label = paths[0] if len(paths) == 1 else f"{len(paths)} files like {paths[0]}"
    return kind, label


def _csv_layout(path: str) -> tuple[str, list[str]]:
    """The delimiter and column names of a CSV file, from its first lines.

    DuckDB's own sniffer, given ragged rows, can settle on a layout that
    reads no rows at all; reading with the header's layout stated makes a
    bad row an error that names its line instead.
    """
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        head = handle.read(64 * 1024)
    if not head.strip():
        raise DataError(f"The transaction file {path} is empty.")
    first = head.splitlines()[0]
    try:
        delim = csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
    except csv.Error:
        delim = ","
    names = next(csv.reader([first], delimiter=delim))
    return delim, [n.strip() for n in names]


def _read_error(exc: duckdb.Error, what: str) -> DataError:
    """A short DataError from a DuckDB reading error."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    if lines and "CSV Error on Line" in lines[0]:
        # "CSV Error on Line: N", "Original Line: ...", "Expected ... Found ..."
        line = lines[0].split(":")[-1].strip()
        detail = "; ".join(lines[1:3])
        return DataError(
            f"{what}: line {line} of the file does not fit the header ({detail}). "
            "Fix that row (a stray delimiter, or unbalanced quotes)."
        )
    return DataError(f"{what}: {lines[0] if lines else exc}")


def check_mapped_columns(mapping: dict[str, str | None], present: list[str]) -> None:
    """Refuse a log that lacks a mapped column, naming what it has instead."""
    missing = [
        f"{role} column {col!r}"
        for role, col in mapping.items()
        if col is not None and col not in present
    ]
    if missing:
        raise DataError(
            f"The transaction log has no {', no '.join(missing)}. Columns present: "
            f"{', '.join(present)}. Map yours with the column options "
            "(customer_id_col=, date_col=, amount_col=; in the CLI --customer-id-col,"
            " --date-col, --amount-col)."
        )


def _check_columns(con, mapping: dict[str, str | None]) -> dict[str, str]:
    types = {r[0]: r[1] for r in con.execute("DESCRIBE raw").fetchall()}
    check_mapped_columns(mapping, list(types))
    return types


def _date_expression(
    con, col: str, col_type: str, date_format: str | None, timezone: str
) -> str:
    """A SQL expression turning ``col`` into a naive local TIMESTAMP."""
    q = _quote(col)
    upper = col_type.upper()
    if upper.startswith("TIMESTAMP WITH TIME ZONE") or upper == "TIMESTAMPTZ":
        return f"timezone({_literal(timezone)}, {q})"
    if upper.startswith("TIMESTAMP") or upper == "DATE":
        return f"CAST({q} AS TIMESTAMP)"
    if upper not in ("VARCHAR", "TEXT", "STRING"):
        if upper in ("INTEGER", "BIGINT", "UBIGINT", "UINTEGER") and (
            date_format in (None, "%Y%m%d")
        ):
            return f"try_strptime(CAST({q} AS VARCHAR), '%Y%m%d')"
        if date_format is None:
            raise DataError(
                f"The date column {col!r} has type {col_type}; give --date-format "
                "(date_format=) to say how to read it."
            )
        return f"try_strptime(CAST({q} AS VARCHAR), {_literal(date_format)})"

    s = f"trim({q})"
    if date_format is not None:
        if "%z" in date_format or "%Z" in date_format:
            parsed = f"try_strptime({s}, {_literal(date_format)})"
            return f"timezone({_literal(timezone)}, {parsed})"
        return f"try_strptime({s}, {_literal(date_format)})"

    counts = con.execute(
        f"""
        SELECT count({q}) FILTER (WHERE {s} <> ''),
               count(*) FILTER (WHERE regexp_full_match({s}, '{_ISO_RE}')),
               count(*) FILTER (WHERE regexp_full_match({s}, '{_ISO_TZ_RE}')),
               count(*) FILTER (WHERE regexp_full_match({s}, '{_COMPACT_RE}')),
               count(*) FILTER (WHERE regexp_full_match({s}, '{_YMD_SLASH_RE}')),
               count(*) FILTER (WHERE regexp_full_match({s}, '{_DMY_RE}')),
               max(try_cast(regexp_extract({s}, '{_DMY_RE}', 1) AS INTEGER))
                   FILTER (WHERE regexp_full_match({s}, '{_DMY_RE}')),
               max(try_cast(regexp_extract({s}, '{_DMY_RE}', 3) AS INTEGER))
                   FILTER (WHERE regexp_full_match({s}, '{_DMY_RE}')),
               count(DISTINCT regexp_extract({s}, '{_DMY_RE}', 2))
                   FILTER (WHERE regexp_full_match({s}, '{_DMY_RE}')),
               any_value(regexp_extract({s}, '{_DMY_RE}', 2))
                   FILTER (WHERE regexp_full_match({s}, '{_DMY_RE}'))
        FROM raw
        """
    ).fetchall()[0]
    form = choose_date_form(col, *counts)
    if form is None:
        return f"try_strptime({s}, '%Y-%m-%d')"
    if form == "ISO":
        return f"try_cast({s} AS TIMESTAMP)"
    if form == "ISO_TZ":
        return f"timezone({_literal(timezone)}, try_cast({s} AS TIMESTAMPTZ))"
    return f"try_strptime({s}, {_literal(form)})"


def choose_date_form(
    col, total, iso, iso_tz, compact, ymd, dmy, max_first, max_second, n_seps, sep
) -> str | None:
    """How to read a text date column, from counts of the forms its values take.

    Returns ``None`` for a column with no value, ``"ISO"`` or ``"ISO_TZ"``
    (ISO timestamps without or with a UTC offset), or a strptime format.
    Values that fit none of the known forms are left to be reported as
    unreadable rows; values in two forms, or day/month orders that no value
    settles, are an error asking for the format. Every engine decides here.
    """
    if total == 0:
        return None
    if iso and iso_tz:
        raise DataError(
            f"The date column {col!r} mixes timestamps with a UTC offset "
            f"({iso_tz} rows) and without one ({iso} rows), so their time zone "
            "is ambiguous. Make them all carry an offset, or none."
        )
    forms = {"iso": iso, "iso_tz": iso_tz, "compact": compact, "ymd": ymd, "dmy": dmy}
    found = [name for name, n in forms.items() if n]
    if len(found) != 1 or (found == ["dmy"] and n_seps != 1):
        what = "several formats" if found else "a format ltvkit does not recognise"
        raise DataError(
            f"The dates in column {col!r} are in {what}. Give the format, e.g. "
            "--date-format '%d.%m.%Y' (date_format=...)."
        )
    form = found[0]
    fixed = {"iso": "ISO", "iso_tz": "ISO_TZ", "compact": "%Y%m%d", "ymd": "%Y/%m/%d"}
    if form in fixed:
        return fixed[form]
    if max_first > 12 and max_second <= 12:
        fmt = f"%d{sep}%m{sep}%Y"
    elif max_second > 12 and max_first <= 12:
        fmt = f"%m{sep}%d{sep}%Y"
    else:
        raise DataError(
            f"The dates in column {col!r} (like 'NN{sep}NN{sep}YYYY') could be "
            "day-first or month-first, and no value proves which. Give the "
            "format, e.g. --date-format '%m/%d/%Y' (date_format='%m/%d/%Y')."
        )
    logger.info("dates read as %s (the only order the values allow)", fmt)
    return fmt


def _amount_expression(col: str, col_type: str) -> str:
    q = _quote(col)
    if col_type.upper() in ("VARCHAR", "TEXT", "STRING"):
        return f"try_cast(nullif(trim({q}), '') AS DOUBLE)"
    return f"CAST({q} AS DOUBLE)"


def _id_expression(col: str, col_type: str) -> str:
    q = _quote(col)
    if col_type.upper() in ("VARCHAR", "TEXT", "STRING"):
        return f"nullif(trim({q}), '')"
    return q


def invalid_row_kinds(customer_id_col, date_col, amount_col) -> tuple[str, ...]:
    """How each kind of unusable row is named in messages (id, date, amount)."""
    return (
        f"a missing customer id ({customer_id_col!r})",
        f"a date that cannot be read ({date_col!r})",
        f"a missing or non-numeric amount ({amount_col!r})",
    )


def report_invalid_rows(
    label, n_rows, n_any, n_date, revenue, problems, *, invalid_rows
) -> None:
    """Refuse, or warn about dropping, the unusable rows of a log.

    ``problems`` are the sentences of each kind with examples; every engine
    reports through here, so that the messages are the same.
    """
    if invalid_rows == "error":
        hint = (
            " Give date_format= (--date-format) if the dates are in another format."
            if n_date
            else ""
        )
        raise DataError(
            f"{n_any} of {n_rows} rows in {label} cannot be used: "
            + "; ".join(problems)
            + ". Fix them, or pass invalid_rows='drop' (--drop-invalid-rows) "
            "to leave them out with a warning." + hint
        )
    warnings.warn(
        f"Dropped {n_any} of {n_rows} rows ({float(revenue or 0):.2f} of revenue "
        "on rows that had an amount): " + "; ".join(problems) + ".",
        DataQualityWarning,
        stacklevel=3,
    )


def _default_memory() -> str:
    """DuckDB's share of this machine's memory: 40%, leaving room for the
    per-customer frames that pandas holds beside it."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "4GB"
    return f"{max(1, int(total * 0.4 / 2**30))}GB"


def _spill_directory() -> str:
    return os.path.join(tempfile.gettempdir(), "ltvkit-duckdb-spill")


def read_transactions(
    source: str | os.PathLike | pd.DataFrame,
    *,
    customer_id_col: str = "customer_id",
    date_col: str = "date",
    amount_col: str = "amount",
    segment_col: str | None = None,
    date_format: str | None = None,
    timezone: str = "UTC",
    invalid_rows: InvalidRows = "error",
    threads: int | None = None,
    memory_limit: str | None = None,
) -> Transactions:
    """Read and validate a transaction log.

    Parameters
    ----------
    source : path, glob, folder or pandas.DataFrame
        A CSV or Parquet file (by suffix), a folder or glob of such files, or
        a DataFrame.
    customer_id_col, date_col, amount_col : str
        Names of the customer id, date and amount columns in ``source``.
    segment_col : str, optional
        Name of a segment column (channel, campaign...). A customer's segment
        is the value on their first purchase.
    date_format : str, optional
        ``strptime`` format of the dates, e.g. ``"%m/%d/%Y"``. Without it,
        dates are accepted only when their reading is unambiguous: ISO dates
        and timestamps, ``YYYYMMDD``, ``YYYY/MM/DD``, or ``NN/NN/YYYY`` when
        some value proves which field is the day.
    timezone : str, default="UTC"
        Timestamps that carry a UTC offset are converted to this zone before
        their calendar day is taken. Naive timestamps are taken as local time.
    invalid_rows : {"error", "drop"}, default="error"
        What to do with rows whose customer id is missing, whose date cannot
        be read or whose amount is missing or not a number: ``"error"``
        raises :class:`~ltvkit.errors.DataError` with counts and example row
        numbers; ``"drop"`` leaves them out with a
        :class:`~ltvkit.errors.DataQualityWarning` that counts the rows and
        the revenue dropped.
    threads, memory_limit : optional
        DuckDB settings for large logs. ``memory_limit`` (e.g. ``"8GB"``)
        defaults to 40% of the machine's memory; larger aggregations spill
        to a folder in the system's temporary directory.

    Returns
    -------
    Transactions
        The validated log; see :class:`Transactions`.

    Raises
    ------
    DataError
        Missing columns, unreadable dates or amounts, missing ids.

    Notes
    -----
    Row numbers in messages count data rows from 1, not counting the header.
    """
    if invalid_rows not in ("error", "drop"):
        raise ConfigError(
            f"invalid_rows must be 'error' or 'drop'; got {invalid_rows!r} instead."
        )
    con = duckdb.connect()
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:  # in Jupyter without ipywidgets, DuckDB refuses the SET
        pass
    if threads:
        con.execute(f"SET threads = {int(threads)}")
    con.execute(f"SET memory_limit = {_literal(memory_limit or _default_memory())}")
    # Aggregations larger than the limit spill here instead of failing.
    con.execute(f"SET temp_directory = {_literal(_spill_directory())}")
    try:
        kind, label = _raw_relation(con, source)
    except duckdb.Error as exc:
        raise _read_error(exc, f"Could not read {source!s}") from None
    mapping = {
        "customer id": customer_id_col,
        "date": date_col,
        "amount": amount_col,
        "segment": segment_col,
    }
    types = _check_columns(con, mapping)

    try:
        date_sql = _date_expression(
            con, date_col, types[date_col], date_format, timezone
        )
    except duckdb.Error as exc:
        raise _read_error(exc, f"Could not read {source!s}") from None
    id_sql = _id_expression(customer_id_col, types[customer_id_col])
    amount_sql = _amount_expression(amount_col, types[amount_col])
    segment_sql = (
        f"CAST({_quote(segment_col)} AS VARCHAR)" if segment_col else "NULL::VARCHAR"
    )
    con.execute(
        f"""
        CREATE VIEW parsed AS
        SELECT {id_sql} AS customer_id,
               {date_sql} AS ts,
               {amount_sql} AS amount,
               {segment_sql} AS segment,
               {_quote(date_col)} AS raw_date,
               {_quote(amount_col)} AS raw_amount,
               hash(raw) AS row_hash
        FROM raw
        """
    )
    bad_id = "customer_id IS NULL"
    bad_date = "ts IS NULL"
    bad_amount = "amount IS NULL OR isnan(amount) OR isinf(amount)"
    try:
        n_rows, n_id, n_date, n_amount, n_any, rev = con.execute(
            f"""
            SELECT count(*),
                   count(*) FILTER (WHERE {bad_id}),
                   count(*) FILTER (WHERE {bad_date}),
                   count(*) FILTER (WHERE {bad_amount}),
                   count(*) FILTER (WHERE {bad_id} OR {bad_date} OR {bad_amount}),
                   sum(amount) FILTER (WHERE ({bad_id} OR {bad_date})
                                       AND NOT ({bad_amount}))
            FROM parsed
            """
        ).fetchall()[0]
    except duckdb.Error as exc:
        raise _read_error(exc, f"Could not read {label}") from None
    if n_rows == 0:
        raise DataError(f"The transaction log {label} has no rows.")

    if n_any:
        problems = []
        kinds = invalid_row_kinds(customer_id_col, date_col, amount_col)
        for count, cond, what in zip(
            (n_id, n_date, n_amount), (bad_id, bad_date, bad_amount), kinds, strict=True
        ):
            if count:
                examples = con.execute(
                    f"""SELECT n, raw_date, raw_amount FROM (
                          SELECT row_number() OVER () AS n, * FROM parsed)
                        WHERE {cond} ORDER BY n LIMIT 3"""
                ).fetchall()
                shown = "; ".join(
                    f"row {n}: date={d!r}, amount={a!r}" for n, d, a in examples
                )
                problems.append(f"{count} rows with {what}, e.g. {shown}")
        report_invalid_rows(
            label, n_rows, n_any, n_date, rev, problems, invalid_rows=invalid_rows
        )
    where = f"WHERE NOT ({bad_id} OR {bad_date} OR {bad_amount})"
    con.execute(
        f"""
        CREATE VIEW transactions AS
        SELECT customer_id, ts, CAST(ts AS DATE) AS day, amount, segment, row_hash
        FROM parsed {where}
        """
    )
    # Row order mattered only for the row numbers above; from here on every
    # result is sorted, and unordered scans use less memory.
    con.execute("SET preserve_insertion_order = false")
    logger.info(
        "read %d transactions from %s (%d dropped)", n_rows - n_any, label, n_any
    )
    tx = Transactions(
        connection=con,
        view="transactions",
        has_segment=segment_col is not None,
        n_rows=n_rows - n_any,
        n_dropped=n_any,
        source=label,
        date_format=date_format,
        columns={
            "customer_id_col": customer_id_col,
            "date_col": date_col,
            "amount_col": amount_col,
            "segment_col": segment_col,
            "date_format": date_format,
            "timezone": timezone,
        },
    )
    tx.release_memory()
    return tx


def cdnow_path(kind: Literal["master", "sample"] = "master") -> Path:
    """Path of a CDNOW log file shipped inside the ``lifetimes`` package."""
    names = {"master": "CDNOW_master.txt", "sample": "CDNOW_sample.txt"}
    if kind not in names:
        raise ConfigError(f"kind must be 'master' or 'sample'; got {kind!r} instead.")
    path = Path(str(resources.files("lifetimes") / "datasets" / names[kind]))
    if not path.is_file():
        raise DataError(f"The CDNOW file {path} is missing from the lifetimes package.")
    return path


def load_cdnow(kind: Literal["master", "sample"] = "master") -> pd.DataFrame:
    """Load the CDNOW transaction log (Fader & Hardie) from ``lifetimes``.

    Parameters
    ----------
    kind : {"master", "sample"}, default="master"
        ``"master"``: all 23,570 customers who first bought in Q1 1997, with
        purchases to June 1998. ``"sample"``: the 1/10 sample of 2,357.

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (str), ``date`` (datetime64), ``n_cds``
        (int) and ``amount`` (float, US dollars), one row per record as in
        the file, in file order.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005), "Counting Your
    Customers the Easy Way: An Alternative to the Pareto/NBD Model",
    Marketing Science 24(2), 275-284.
    """
    path = cdnow_path(kind)
    if kind == "master":
        names = ["customer_id", "date", "n_cds", "amount"]
        skip = 1
    else:
        # The sample's first column is the customer's id in the master log.
        names = ["master_id", "customer_id", "date", "n_cds", "amount"]
        skip = 0
    frame = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        names=names,
        skiprows=skip,
        dtype={"customer_id": str, "master_id": str, "date": str},
    )
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame[["customer_id", "date", "n_cds", "amount"]]
