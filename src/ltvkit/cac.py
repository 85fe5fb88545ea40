"""Customer acquisition cost (CAC) set against lifetime value, segment by segment.

Acquisition spend comes from a small table, one row per segment (and, if
given, acquisition month). Customers are attributed to a segment and an
acquisition month, from the transaction log or from a customers table; CAC is
the spend over the customers acquired, and each segment's mean LTV (from
:func:`ltvkit.value.score_customers`) is set against it.
"""

from __future__ import annotations

import logging
import os
import re
import warnings

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, DataQualityWarning, format_examples
from .summary import days_per_unit
from .value import (
    DAYS_PER_MONTH,
    PurchaseModel,
    SpendModel,
    expected_monthly_margin,
    payback_months,
)

__all__ = [
    "FLAGS",
    "acquisitions",
    "read_customers",
    "read_spend",
    "segment_by_acquisition_month",
    "segment_table",
]

logger = logging.getLogger(__name__)

#: Flags of :func:`segment_table`, in the order they are checked.
FLAGS = (
    "no_new_customers",
    "no_spend_data",
    "unprofitable",
    "below_target",
    "profitable",
)
#: Segment given to customers that have none.
UNASSIGNED = "unassigned"
_PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_ROWS_NOTE = "rows count data rows from 1, not counting the header"


# -- reading -------------------------------------------------------------------


def _read_table(source, what: str) -> tuple[pd.DataFrame, str]:
    if isinstance(source, pd.DataFrame):
        df = source.reset_index(drop=True).astype(object)
        df = df.where(df.notna(), "").astype(str)
        label = "a DataFrame"
    elif isinstance(source, str | os.PathLike):
        if not os.path.isfile(source):
            raise DataError(f"The {what} file {str(source)!r} does not exist.")
        try:
            df = pd.read_csv(source, dtype=str, keep_default_na=False)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeError) as e:
            raise DataError(
                f"Could not read the {what} file {str(source)!r} as CSV: {e}"
            ) from e
        label = repr(str(source))
    else:
        raise ConfigError(
            f"Pass the {what} table as a CSV path or a DataFrame; got "
            f"{type(source).__name__}."
        )
    df.columns = [str(c).strip() for c in df.columns]
    return df.apply(lambda col: col.str.strip()), label


def _rows(mask) -> str:
    return format_examples(np.flatnonzero(np.asarray(mask)) + 1)


def _require_columns(df, required, what: str, label: str, example: str) -> None:
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"The {what} table {label} lacks the column(s) {', '.join(missing)}; it "
            f"has {format_examples(df.columns, limit=10) or 'none'}. Expected a "
            f"header like {example!r}."
        )


def read_spend(source: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Read and check a table of acquisition spend.

    Parameters
    ----------
    source : path or pandas.DataFrame
        A CSV file (or frame) with columns ``segment``, ``spend`` (currency,
        0 or more) and optionally ``period``: the acquisition month as
        ``YYYY-MM``. Other columns are ignored.

    Returns
    -------
    pandas.DataFrame
        Columns ``segment`` (str), ``spend`` (float) and, if given, ``period``
        (str ``YYYY-MM``), in the order read.

    Raises
    ------
    DataError
        A missing file or column; and, all reported together, empty
        segments, spend that is not a number or is negative, a period that is
        not ``YYYY-MM``, and repeated (segment, period) rows. Rows count data
        rows from 1, not counting the header.

    Examples
    --------
    >>> read_spend(pd.DataFrame({"segment": ["a", "b"], "spend": ["100", "2.5"]}))
      segment  spend
    0       a  100.0
    1       b    2.5
    """
    df, label = _read_table(source, "spend")
    _require_columns(df, ("segment", "spend"), "spend", label, "segment,spend[,period]")
    has_period = "period" in df.columns

    problems = []
    empty = df["segment"] == ""
    if empty.any():
        problems.append(f"empty segment at rows {_rows(empty)}")
    spend = pd.to_numeric(df["spend"].str.replace(",", "", regex=False), "coerce")
    not_number = spend.isna() | ~np.isfinite(spend.fillna(0))
    if not_number.any():
        shown = format_examples(df.loc[not_number, "spend"].map(repr))
        problems.append(
            f"spend is not a number at rows {_rows(not_number)} ({shown}); write "
            "plain numbers such as 1250.50, without currency signs"
        )
    negative = spend < 0
    if negative.any():
        problems.append(
            f"spend is negative at rows {_rows(negative)}; spend must be 0 or more "
            "(net refunds of spend into the month they belong to)"
        )
    keys = ["segment"]
    if has_period:
        bad = ~df["period"].map(lambda s: bool(_PERIOD_RE.match(s)))
        if bad.any():
            shown = format_examples(df.loc[bad, "period"].map(repr))
            problems.append(
                f"period is not a month written YYYY-MM at rows {_rows(bad)} "
                f"({shown}); write e.g. '1997-01'"
            )
        keys.append("period")
    dup = df.duplicated(keys, keep=False) & ~empty
    if dup.any():
        problems.append(
            f"repeated ({', '.join(keys)}) at rows {_rows(dup)}; give one row per "
            f"{' and '.join(keys)} (add the amounts up)"
        )
    if problems:
        raise DataError(
            f"The spend table {label} has problems: " + "; ".join(problems) + "."
        )

    out = pd.DataFrame({"segment": df["segment"], "spend": spend.astype(float)})
    if has_period:
        out["period"] = df["period"]
    logger.info(
        "read spend for %d rows (%d segments), %.2f in all",
        len(out),
        out["segment"].nunique(),
        float(out["spend"].sum()),
    )
    return out


def read_customers(source: str | os.PathLike | pd.DataFrame) -> pd.DataFrame:
    """Read and check a customers table: segment and acquisition date.

    Parameters
    ----------
    source : path or pandas.DataFrame
        A CSV file (or frame) with a column ``customer_id`` and at least one
        of ``segment`` and ``acquired_at`` (a date such as ``1997-01-15``).
        Empty cells mean "not known": the log's value is used instead.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (str), with ``segment`` (str or missing)
        and ``acquired_at`` (datetime64 or NaT), whichever were given.

    Raises
    ------
    DataError
        A missing file or column; and, all reported together, empty or
        repeated customer ids and dates that cannot be read.
    """
    df, label = _read_table(source, "customers")
    _require_columns(
        df, ("customer_id",), "customers", label, "customer_id,segment,acquired_at"
    )
    if "segment" not in df.columns and "acquired_at" not in df.columns:
        raise DataError(
            f"The customers table {label} has neither a 'segment' nor an "
            "'acquired_at' column, so it adds nothing; give at least one."
        )

    problems = []
    empty = df["customer_id"] == ""
    if empty.any():
        problems.append(f"empty customer_id at rows {_rows(empty)}")
    dup = df["customer_id"].duplicated(keep=False) & ~empty
    if dup.any():
        shown = format_examples(df.loc[dup, "customer_id"].unique())
        problems.append(
            f"customer_id repeated at rows {_rows(dup)} ({shown}); give one row per "
            "customer"
        )
    out = pd.DataFrame(index=pd.Index(df["customer_id"], name="customer_id"))
    if "segment" in df.columns:
        out["segment"] = df["segment"].replace("", np.nan).to_numpy()
    if "acquired_at" in df.columns:
        dates = pd.to_datetime(df["acquired_at"], errors="coerce", format="mixed")
        bad = dates.isna() & (df["acquired_at"] != "")
        if bad.any():
            shown = format_examples(df.loc[bad, "acquired_at"].map(repr))
            problems.append(
                f"acquired_at is not a date at rows {_rows(bad)} ({shown}); write "
                "dates as YYYY-MM-DD"
            )
        if getattr(dates.dt, "tz", None) is not None:
            dates = dates.dt.tz_localize(None)
        out["acquired_at"] = dates.dt.normalize().to_numpy()
    if problems:
        raise DataError(
            f"The customers table {label} has problems: " + "; ".join(problems) + "."
        )
    logger.info("read %d customers from %s", len(out), label)
    return out


# -- attribution ---------------------------------------------------------------


def segment_by_acquisition_month(rfm: pd.DataFrame) -> pd.DataFrame:
    """Segment customers by the month of their first purchase.

    Parameters
    ----------
    rfm : pandas.DataFrame
        A summary (or scored table) with the column ``first_purchase``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``rfm`` whose ``segment`` is the first purchase's month as
        ``YYYY-MM`` (any earlier ``segment`` is replaced). ``attrs`` are kept.

    Raises
    ------
    DataError
        If ``rfm`` has no ``first_purchase`` column.
    """
    if "first_purchase" not in rfm:
        raise DataError(
            "The summary has no 'first_purchase' column; build it with "
            "ltvkit.summarise, which records each customer's first purchase."
        )
    out = rfm.copy()
    out["segment"] = pd.to_datetime(out["first_purchase"]).dt.strftime("%Y-%m")
    return out


def _ids_as_text(index: pd.Index) -> pd.Index:
    return pd.Index(index.astype(str), name=index.name)


def acquisitions(
    scored_or_rfm: pd.DataFrame, *, customers: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Attribute each customer to a segment and an acquisition month.

    Parameters
    ----------
    scored_or_rfm : pandas.DataFrame
        A summary or a scored table, indexed by ``customer_id``, with
        ``first_purchase`` and optionally ``segment`` and ``T``.
    customers : pandas.DataFrame, optional
        From :func:`read_customers`. Its ``segment`` and ``acquired_at``
        take precedence over the log where given; ids are matched as text.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``scored_or_rfm``, with ``segment`` (str; "unassigned"
        where neither source gives one, "all" when no source has segments),
        ``acquired_at`` (date), ``period`` (the acquisition month,
        ``YYYY-MM``) and ``age_months`` (months of 365.25 / 12 days from
        acquisition to the observation end; NaN if that end is not known).

    Raises
    ------
    DataError
        If neither ``first_purchase`` nor a full ``acquired_at`` is available.

    Notes
    -----
    Customers in ``customers`` but not in the log never bought and cannot be
    scored; they are left out and their number is logged. A CAC computed
    from the log therefore counts buying customers only.
    """
    rfm = scored_or_rfm
    n = len(rfm)
    acquired = (
        pd.to_datetime(rfm["first_purchase"]).to_numpy()
        if "first_purchase" in rfm
        else np.full(n, np.datetime64("NaT"), dtype="datetime64[ns]")
    )
    acquired = pd.Series(acquired, index=rfm.index, dtype="datetime64[ns]")
    if "segment" in rfm:
        segment = rfm["segment"].astype(object).where(rfm["segment"].notna(), None)
    else:
        segment = pd.Series(None, index=rfm.index, dtype=object)
    has_segments = "segment" in rfm

    if customers is not None:
        text_ids = _ids_as_text(rfm.index)
        table = customers.copy()
        table.index = _ids_as_text(table.index)
        unknown = ~table.index.isin(text_ids)
        if unknown.any():
            logger.info(
                "%d customers of the customers table have no purchase in the "
                "summary and are left out (%s)",
                int(unknown.sum()),
                format_examples(table.index[unknown]),
            )
        matched = table.reindex(text_ids)
        if "acquired_at" in matched:
            given = matched["acquired_at"].to_numpy()
            acquired = acquired.where(pd.isna(given), given)
        if "segment" in matched:
            given = matched["segment"].to_numpy()
            segment = segment.where(pd.isna(given), given)
            has_segments = True
        logger.info(
            "customers table matched %d of %d customers",
            int((~matched.isna().all(axis=1)).sum()),
            n,
        )

    if acquired.isna().any():
        raise DataError(
            f"No acquisition date for {int(acquired.isna().sum())} customers "
            f"({format_examples(rfm.index[acquired.isna().to_numpy()])}): the "
            "summary has no 'first_purchase' for them and the customers table no "
            "'acquired_at'. Build the summary with ltvkit.summarise."
        )
    if not has_segments:
        segment = pd.Series("all", index=rfm.index, dtype=object)
    elif segment.isna().any():
        logger.info(
            "%d customers have no segment and are counted as %r",
            int(segment.isna().sum()),
            UNASSIGNED,
        )
        segment = segment.fillna(UNASSIGNED)

    out = pd.DataFrame(
        {
            "segment": segment.astype(str),
            "acquired_at": acquired,
            "period": acquired.dt.strftime("%Y-%m"),
        },
        index=rfm.index,
    )
    out["age_months"] = _age_months(rfm, acquired)
    late = out["age_months"] < 0
    if late.any():
        warnings.warn(
            f"{int(late.sum())} customers were acquired after the observation end "
            f"({format_examples(rfm.index[late.to_numpy()])}); check acquired_at "
            "in the customers table.",
            DataQualityWarning,
            stacklevel=2,
        )
    return out


def _age_months(rfm: pd.DataFrame, acquired: pd.Series) -> np.ndarray:
    end = rfm.attrs.get("observation_end")
    if end is not None:
        days = (pd.Timestamp(end) - acquired).dt.days.to_numpy(dtype=float)
        return days / DAYS_PER_MONTH
    unit = rfm.attrs.get("time_unit")
    if unit is not None and "T" in rfm:
        return rfm["T"].to_numpy(dtype=float) * days_per_unit(unit) / DAYS_PER_MONTH
    return np.full(len(rfm), np.nan)


# -- the segment table ---------------------------------------------------------


def _check_target(target_ratio) -> float:
    try:
        value = float(target_ratio)
    except (TypeError, ValueError):
        value = np.nan
    if isinstance(target_ratio, bool) or not (np.isfinite(value) and value > 0):
        raise ConfigError(
            "The 'target_ratio' parameter must be a number greater than 0 (the "
            f"LTV:CAC ratio to aim for, e.g. 3). Got {target_ratio!r} instead."
        )
    return value


def _option(scored: pd.DataFrame, name: str, given):
    recorded = scored.attrs.get(name)
    if given is None:
        return recorded
    if recorded is not None and recorded != given:
        raise ConfigError(
            f"The scored table was computed with {name}={recorded!r}, but "
            f"{name}={given!r} was given; leave it out or score again."
        )
    return given


def _payback(scored, groups, cac, means, models, options, chunk_size):
    purchase_model, spend_model = models
    if purchase_model is None or spend_model is None:
        logger.info(
            "payback_months left empty: pass purchase_model and spend_model to "
            "compute it"
        )
        return np.full(len(cac), np.nan)
    missing = [k for k, v in options.items() if v is None]
    if missing:
        raise ConfigError(
            f"Cannot compute payback: the scored table does not record "
            f"{', '.join(missing)} (scored.attrs); pass them to segment_table."
        )
    total = expected_monthly_margin(
        purchase_model,
        spend_model,
        scored["frequency"],
        scored["recency"],
        scored["T"],
        scored["monetary_value"],
        groups=groups,
        chunk_size=chunk_size,
        **options,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        monthly = total / means["customers_acquired"].to_numpy()
    return payback_months(cac, means["realised_margin"], means["age_months"], monthly)


def segment_table(
    scored: pd.DataFrame,
    spend: pd.DataFrame,
    *,
    customers: pd.DataFrame | None = None,
    purchase_model: PurchaseModel | None = None,
    spend_model: SpendModel | None = None,
    target_ratio: float = 3.0,
    by_period: bool | None = None,
    time_unit: str | None = None,
    horizon_months: int | None = None,
    margin: float | None = None,
    annual_discount_rate: float | None = None,
    chunk_size: int | None = None,
) -> pd.DataFrame:
    """LTV against CAC per segment (and acquisition month), with a verdict.

    Parameters
    ----------
    scored : pandas.DataFrame
        From :func:`ltvkit.value.score_customers`, with ``first_purchase``
        carried over or a ``customers`` table giving ``acquired_at``.
    spend : pandas.DataFrame
        From :func:`read_spend`.
    customers : pandas.DataFrame, optional
        From :func:`read_customers`; see :func:`acquisitions`.
    purchase_model, spend_model : optional
        The models ``scored`` was computed with. Needed for
        ``payback_months`` only (NaN without them).
    target_ratio : float, default=3.0
        LTV:CAC ratio below which a profitable segment is flagged
        ``below_target``; greater than 0.
    by_period : bool, optional
        One row per segment and acquisition month (True) or per segment
        (False). Default: True if ``spend`` has a ``period`` column. With
        False, a ``period`` column in ``spend`` is summed over.
    time_unit, horizon_months, margin, annual_discount_rate : optional
        The scoring options, for the payback curve. Default (and they must
        agree with): those recorded in ``scored.attrs`` by ``score_customers``.
    chunk_size : int, optional
        Customers per block for the payback curve; see :func:`ltvkit.value.clv`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``segment`` (and ``period``, the acquisition month
        ``YYYY-MM``), sorted, with columns

        * ``customers_acquired``: customers whose acquisition falls in the row;
        * ``spend``: acquisition spend (NaN without a spend row);
        * ``cac``: ``spend / customers_acquired`` (NaN without customers or
          spend);
        * ``ltv_per_customer``: mean of ``scored["ltv"]``, realised margin
          since acquisition plus CLV over the horizon;
        * ``ltv_cac_ratio``: ``ltv_per_customer / cac`` (inf for a spend of 0);
        * ``payback_months``: months from acquisition until the segment's mean
          cumulative margin reaches the CAC, NaN if not within the horizon
          (see :func:`ltvkit.value.payback_months`);
        * ``flag``: the first that applies of ``no_new_customers`` (spend but
          no customer: CAC undefined), ``no_spend_data`` (customers but no
          spend row), ``unprofitable`` (LTV < CAC), ``below_target`` (ratio
          < ``target_ratio``), ``profitable``.

        ``attrs`` records ``target_ratio`` and the scoring options.

    Raises
    ------
    ConfigError
        A ``target_ratio`` of 0 or less; ``by_period=True`` with a spend table
        without periods; scoring options that disagree with ``scored.attrs``.
    DataError
        ``scored`` lacks ``ltv`` or ``realised_margin``; no acquisition dates.

    Notes
    -----
    The LTV counts margin since acquisition plus the discounted expected margin
    over the horizon; value beyond the horizon is not counted, so a ratio is a
    lower bound of the lifetime one. Only customers with a purchase in the log
    count as acquired.
    """
    target_ratio = _check_target(target_ratio)
    has_period = "period" in spend.columns
    if by_period is None:
        by_period = has_period
    if by_period and not has_period:
        raise ConfigError(
            "by_period=True needs a 'period' column (acquisition month, YYYY-MM) "
            "in the spend table; it has none. Pass by_period=False or add periods."
        )
    missing = [c for c in ("ltv", "realised_margin") if c not in scored]
    if missing:
        raise DataError(
            f"The scored table lacks {', '.join(missing)}; build it with "
            "ltvkit.value.score_customers."
        )
    options = {
        name: _option(scored, name, given)
        for name, given in (
            ("time_unit", time_unit),
            ("horizon_months", horizon_months),
            ("margin", margin),
            ("annual_discount_rate", annual_discount_rate),
        )
    }

    keys = ["segment", "period"] if by_period else ["segment"]
    acq = acquisitions(scored, customers=customers)
    acq["ltv"] = scored["ltv"].to_numpy(dtype=float)
    acq["realised_margin"] = scored["realised_margin"].to_numpy(dtype=float)
    grouped = acq.groupby(keys, sort=True)
    means = grouped.agg(
        customers_acquired=("ltv", "size"),
        ltv_per_customer=("ltv", "mean"),
        realised_margin=("realised_margin", "mean"),
        age_months=("age_months", "mean"),
    )
    codes = grouped.ngroup().to_numpy()
    costs = spend.groupby(keys, sort=True)["spend"].sum().rename("spend")

    table = means.join(costs, how="outer").sort_index()
    table["customers_acquired"] = table["customers_acquired"].fillna(0).astype(int)
    n_customers = table["customers_acquired"].to_numpy()
    cost = table["spend"].to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        cac = np.where(n_customers > 0, cost / np.maximum(n_customers, 1), np.nan)
        ratio = table["ltv_per_customer"].to_numpy() / cac
    ratio = np.where(cac == 0, np.inf, ratio)
    table["cac"] = cac
    table["ltv_cac_ratio"] = ratio

    # ngroup numbers the groups in the sorted order of ``means``.
    table["payback_months"] = np.nan
    if len(means):
        group_cac = table.loc[means.index, "cac"].to_numpy()
        table.loc[means.index, "payback_months"] = _payback(
            scored,
            codes,
            group_cac,
            means,
            (purchase_model, spend_model),
            options,
            chunk_size,
        )

    ltv = table["ltv_per_customer"].to_numpy()
    table["flag"] = np.select(
        [
            n_customers == 0,
            np.isnan(cost),
            ltv < cac,
            ratio < target_ratio,
        ],
        list(FLAGS[:4]),
        default=FLAGS[4],
    )
    table = table[
        [
            "customers_acquired",
            "spend",
            "cac",
            "ltv_per_customer",
            "ltv_cac_ratio",
            "payback_months",
            "flag",
        ]
    ]
    table.attrs = {"target_ratio": target_ratio, "by_period": by_period, **options}
    logger.info(
        "segment table: %d rows; %s",
        len(table),
        ", ".join(f"{k} {v}" for k, v in table["flag"].value_counts().items()),
    )
    return table
