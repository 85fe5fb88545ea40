"""Run a backtest: split the log, fit every candidate, score it on the holdout."""

from __future__ import annotations

import logging
import math
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import (
    ConfigError,
    ConvergenceError,
    DataError,
    LtvkitWarning,
    ModelError,
)
from ..load import Transactions, read_transactions
from ..summary import days_per_unit, summarise_calibration_holdout
from .candidates import BASELINES, CANDIDATES, CalibrationData, predict_candidate
from .metrics import decile_table, gain_curve, score_predictions

__all__ = [
    "BacktestResult",
    "CRITERIA",
    "run_backtest",
    "choose_best",
    "purchases_by_frequency_table",
]

logger = logging.getLogger(__name__)

#: Criteria of :func:`choose_best`.
CRITERIA: dict[str, str] = {
    "rmse_within_bias": (
        "lowest RMSE of holdout spend among candidates whose aggregate bias is "
        "within +/-10%; if none is, lowest RMSE overall (with a warning)"
    ),
    "rank_sum": (
        "smallest sum of ranks on RMSE, normalized Gini, |bias| and decile "
        "MAPE; ties broken by RMSE"
    ),
    "rmse": "lowest RMSE of holdout spend",
    "mae": "lowest MAE of holdout spend",
    "gini": "highest normalized Gini",
    "spearman": "highest Spearman rank correlation",
    "decile_mape": "lowest decile MAPE",
    "bias": "smallest |aggregate bias|",
}

#: Bias allowed by the default criterion, in percent.
MAX_ABS_BIAS_PERCENT = 10.0


@dataclass
class BacktestResult:
    """Predictions and scores of every candidate on one holdout period.

    Attributes
    ----------
    metrics : pandas.DataFrame
        One row per candidate (index ``model``), with ``label`` and the keys
        of :data:`ltvkit.evaluate.metrics.METRIC_NAMES` (``bias`` in percent).
    predictions : pandas.DataFrame
        Indexed by ``customer_id``: ``actual`` holdout spend and one column of
        predicted spend per candidate.
    split : pandas.DataFrame
        From :func:`ltvkit.summarise_calibration_holdout`.
    purchases_by_frequency : pandas.DataFrame
        Mean actual and expected holdout purchases by calibration frequency
        (``"0"`` ... ``"7+"``), one ``expected_<model>`` column per purchase
        model, with ``n_customers`` and ``actual``.
    cumulative_purchases : pandas.DataFrame
        Indexed by ``period`` (time units since the log's first day), with
        ``actual`` cumulative repeat purchases and one column per purchase
        model; ``attrs["calibration_period"]`` is the period of the end of
        calibration.
    details : dict
        Per candidate, the facts of its fit (parameters, chosen estimator...).
    settings : dict
        ``calibration_end``, ``observation_end``, ``time_unit``,
        ``horizon`` (in ``time_unit``), ``inner_cutoff``, ``n_customers``,
        ``candidates`` (asked for), ``random_state`` and ``skipped`` (the
        candidates that could not be fitted, with the reason).
    out_of_fold_metrics, out_of_fold_predictions : pandas.DataFrame or None
        The second, not honest, view of
        :func:`ltvkit.evaluate.literature.out_of_fold_view`, when asked for.
    """

    metrics: pd.DataFrame
    predictions: pd.DataFrame
    split: pd.DataFrame
    purchases_by_frequency: pd.DataFrame
    cumulative_purchases: pd.DataFrame
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    out_of_fold_metrics: pd.DataFrame | None = None
    out_of_fold_predictions: pd.DataFrame | None = None

    def label(self, name: str) -> str:
        """The display label of candidate ``name``."""
        return str(self.metrics.loc[name, "label"])

    def decile_table(self, name: str) -> pd.DataFrame:
        """:func:`~ltvkit.evaluate.metrics.decile_table` of candidate ``name``."""
        return decile_table(self.predictions[name], self.predictions["actual"])

    def gain_curve(self, name: str) -> pd.DataFrame:
        """:func:`~ltvkit.evaluate.metrics.gain_curve` of candidate ``name``."""
        return gain_curve(self.predictions[name], self.predictions["actual"])


def _default_inner_cutoff(
    first_day: pd.Timestamp, calibration_end: pd.Timestamp, horizon_days: int
) -> pd.Timestamp:
    span = (calibration_end - first_day).days
    window = max(1, min(span // 2, horizon_days))
    return calibration_end - pd.Timedelta(days=window)


def purchases_by_frequency_table(
    split: pd.DataFrame,
    expected: dict[str, pd.Series],
    *,
    max_frequency: int = 7,
) -> pd.DataFrame:
    """Mean actual and expected holdout purchases by calibration frequency.

    Parameters
    ----------
    split : pandas.DataFrame
        From :func:`ltvkit.summarise_calibration_holdout`.
    expected : dict of str to pandas.Series
        Expected holdout purchases of each customer, per model.
    max_frequency : int, default=7
        Frequencies of this many or more are pooled (``"7+"``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``frequency_cal`` (``"0"``, ..., ``"7+"``), with
        ``n_customers``, ``actual`` and ``expected_<model>`` (means).
    """
    group = np.minimum(split["frequency_cal"].to_numpy(), max_frequency)
    frame = pd.DataFrame(
        {"order": group, "actual": split["frequency_holdout"].to_numpy(float)},
        index=split.index,
    )
    for name, series in expected.items():
        frame[f"expected_{name}"] = series.reindex(split.index).to_numpy(float)
    table = frame.groupby("order").agg(
        n_customers=("actual", "size"),
        **{c: (c, "mean") for c in frame.columns if c != "order"},
    )
    table.index = [
        str(g) if g < max_frequency else f"{max_frequency}+" for g in table.index
    ]
    return table.rename_axis("frequency_cal")


def _repeat_purchases_by_period(tx, first_day, end, time_unit) -> pd.Series:
    """Actual repeat purchases (purchase days after a customer's first) per period.

    A purchase day is a day with a row of non-negative amount, as in the
    default rules of :func:`ltvkit.summarise`; period 0 starts on
    ``first_day``.
    """
    unit_days = days_per_unit(time_unit)
    df = tx.connection.execute(
        f"""
        WITH d AS (
            SELECT DISTINCT customer_id, day FROM {tx.view}
            WHERE amount >= 0 AND day <= DATE '{end.date()}'
        ),
        k AS (
            SELECT day,
                   row_number() OVER (PARTITION BY customer_id ORDER BY day) AS k
            FROM d
        )
        SELECT CAST(floor(date_diff('day', DATE '{first_day.date()}', day)
                          / {unit_days}) AS BIGINT) AS period,
               count(*) AS repeat_purchases
        FROM k WHERE k > 1 GROUP BY period ORDER BY period
        """
    ).df()
    return df.set_index("period")["repeat_purchases"]


def _cumulative_purchases(tx, split, models, first_day, cal_end, end, time_unit):
    unit_days = days_per_unit(time_unit)
    n_periods = int(math.ceil(((end - first_day).days + 1) / unit_days))
    cal_period = ((cal_end - first_day).days + 1) / unit_days
    periods = np.arange(1, n_periods + 1, dtype=float)
    actual = _repeat_purchases_by_period(tx, first_day, end, time_unit)
    actual = actual.reindex(range(n_periods), fill_value=0).cumsum().to_numpy(float)
    out = pd.DataFrame({"actual": actual}, index=pd.Index(periods, name="period"))

    # Each customer's age (time units since first purchase) at each period end.
    start = ((pd.to_datetime(split["first_purchase"]) - first_day).dt.days).to_numpy()
    start = start / unit_days
    cal_total = float(split["frequency_cal"].sum())
    f, r, T = (
        split[c].to_numpy(float) for c in ("frequency_cal", "recency_cal", "T_cal")
    )
    for name, model in models.items():
        values = np.empty(len(periods))
        for i, t in enumerate(periods):
            if t <= cal_period:
                age = np.clip(t - start - 1.0 / unit_days, 0.0, None)
                values[i] = float(np.sum(model.expected_purchases_new_customer(age)))
            else:
                ahead = t - cal_period
                values[i] = cal_total + float(
                    np.sum(model.conditional_expected_purchases(ahead, f, r, T))
                )
        out[name] = values
    out.attrs["calibration_period"] = cal_period
    out.attrs["time_unit"] = time_unit
    return out


def _check_candidates(candidates) -> list[str]:
    if candidates is None:
        return list(CANDIDATES)
    if isinstance(candidates, str):
        candidates = [candidates]
    names = list(dict.fromkeys(candidates))
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown or not names:
        raise ConfigError(
            "The 'candidates' parameter of run_backtest must list names among "
            f"{', '.join(CANDIDATES)}; got {', '.join(map(repr, unknown)) or 'none'}"
            " instead."
        )
    return names


def run_backtest(
    tx: Transactions | pd.DataFrame,
    *,
    calibration_end,
    observation_end=None,
    time_unit: str = "W",
    candidates: Sequence[str] | None = None,
    inner_cutoff=None,
    random_state: int = 0,
    out_of_fold_view: bool = False,
    progress: bool = False,
) -> BacktestResult:
    """Fit candidates on a calibration period and score them on the holdout.

    Parameters
    ----------
    tx : Transactions or pandas.DataFrame
        The log, from :func:`ltvkit.read_transactions`.
    calibration_end : date-like
        Last day of the calibration period.
    observation_end : date-like, optional
        Last day of the holdout period; default the last day in the log.
    time_unit : {"D", "W", "M", "Q"}, default="W"
        Unit of recency, T and the horizon of the purchase models.
    candidates : sequence of str, optional
        Names among :data:`~ltvkit.evaluate.candidates.CANDIDATES`; default
        all of them. With the default, a candidate that cannot be fitted on
        the data (too few customers before the inner cut-off, say) is
        skipped with a :class:`~ltvkit.errors.LtvkitWarning`; a candidate
        asked for by name raises instead.
    inner_cutoff : date-like, optional
        End of the features of the window the regressor, the hybrid and the
        blend learn on (the target is the spend after it up to
        ``calibration_end``). Default: half-way between the log's first day
        and ``calibration_end``, but no more than the holdout length before
        ``calibration_end``.
    random_state : int, default=0
        Seed of the cross-validation folds and of the tree models.
    out_of_fold_view : bool, default=False
        Also score regressors fitted out of fold, by customer, on the holdout
        spend itself (see :mod:`ltvkit.evaluate.literature`): a view for
        comparison with published figures, which breaks the honesty rule and
        is kept apart from ``metrics``.
    progress : bool, default=False
        Show a progress bar over the candidates on stderr.

    Returns
    -------
    BacktestResult

    Raises
    ------
    ConfigError
        Unknown candidates, or an inner cut-off outside the calibration period.
    DataError
        As :func:`ltvkit.summarise_calibration_holdout`; or when no
        candidate can be fitted.

    Notes
    -----
    Honesty: every candidate reads the log through a view of the rows dated
    on or before ``calibration_end`` (see
    :class:`~ltvkit.evaluate.candidates.CalibrationData`); the holdout is
    used only to score. Choices inside a candidate (the hybrid's estimator
    and penalty, its horizon scaling, the blend weight) are made by
    cross-validation or checks on the calibration period alone.

    The customers scored are those with a purchase by ``calibration_end``;
    customers acquired in the holdout are not predicted by any candidate.
    Holdout spend is the sum of each customer's holdout amounts.
    """
    if isinstance(tx, pd.DataFrame):
        tx = read_transactions(tx)
    names = _check_candidates(candidates)
    split = summarise_calibration_holdout(
        tx,
        calibration_end=calibration_end,
        observation_end=observation_end,
        time_unit=time_unit,
    )
    cal_end = pd.Timestamp(split.attrs["calibration_end"])
    end = pd.Timestamp(split.attrs["observation_end"])
    first_day, _ = tx.date_range()
    horizon = float(split["duration_holdout"].iloc[0])
    if inner_cutoff is None:
        inner = _default_inner_cutoff(first_day, cal_end, (end - cal_end).days)
    else:
        try:
            inner = pd.Timestamp(inner_cutoff).normalize()
        except (TypeError, ValueError):
            raise ConfigError(
                f"inner_cutoff must be a date such as '1997-05-17'; got "
                f"{inner_cutoff!r} instead."
            ) from None
        if not first_day < inner < cal_end:
            raise ConfigError(
                f"inner_cutoff must fall inside the calibration period, after "
                f"{first_day.date()} and before {cal_end.date()}; got "
                f"{inner.date()} instead."
            )
    data = CalibrationData(
        tx,
        calibration_end=cal_end,
        horizon=horizon,
        time_unit=time_unit,
        inner_cutoff=inner,
        random_state=random_state,
    )
    logger.info(
        "backtest: calibration to %s, holdout to %s (%g %s), inner cut-off %s, "
        "%d customers, %d candidates",
        cal_end.date(),
        end.date(),
        horizon,
        time_unit,
        inner.date(),
        len(split),
        len(names),
    )

    iterator = names
    if progress:
        from tqdm import tqdm

        iterator = tqdm(names, desc="backtest", file=sys.stderr, leave=False)
    actual = split["spend_holdout"]
    predictions = pd.DataFrame({"actual": actual})
    rows, details, expected, models = [], {}, {}, {}
    skipped: dict[str, str] = {}
    for name in iterator:
        try:
            pred = predict_candidate(data, name)
        except (DataError, ModelError, ConvergenceError) as exc:
            # With the default list, one model that cannot be fitted on these
            # data (a short log, no repeat buyers) must not stop the others.
            if candidates is not None:
                raise
            skipped[name] = str(exc)
            warnings.warn(
                f"Backtest candidate {name!r} was skipped: {exc}",
                LtvkitWarning,
                stacklevel=2,
            )
            continue
        spend = pred.spend.reindex(actual.index)
        if spend.isna().any():
            raise DataError(
                f"Candidate {name!r} gave no prediction for "
                f"{int(spend.isna().sum())} customers of the holdout."
            )
        predictions[name] = spend
        rows.append({"model": name, "label": CANDIDATES[name]})
        rows[-1].update(score_predictions(spend, actual))
        details[name] = pred.details
        if pred.purchases is not None:
            expected[name] = pred.purchases
            models[name] = pred.purchase_model
        logger.info(
            "%s: RMSE %.2f, Gini %.3f, bias %+.1f%%",
            name,
            rows[-1]["rmse"],
            rows[-1]["gini"],
            rows[-1]["bias"],
        )
    if not rows:
        raise DataError(
            "No backtest candidate could be fitted on the calibration period: "
            + "; ".join(f"{n}: {m}" for n, m in skipped.items())
        )
    metrics = pd.DataFrame(rows).set_index("model")
    oof_metrics = oof_predictions = None
    if out_of_fold_view:
        from .literature import out_of_fold_view as _view

        oof_metrics, oof_predictions = _view(data, actual)

    return BacktestResult(
        metrics=metrics,
        predictions=predictions,
        split=split,
        purchases_by_frequency=purchases_by_frequency_table(split, expected),
        cumulative_purchases=_cumulative_purchases(
            tx, split, models, first_day, cal_end, end, time_unit
        ),
        details=details,
        settings={
            "calibration_end": str(cal_end.date()),
            "observation_end": str(end.date()),
            "time_unit": time_unit,
            "horizon": horizon,
            "inner_cutoff": str(inner.date()),
            "n_customers": len(split),
            "candidates": names,
            "random_state": random_state,
            "skipped": skipped,
        },
        out_of_fold_metrics=oof_metrics,
        out_of_fold_predictions=oof_predictions,
    )


def choose_best(
    result: BacktestResult,
    *,
    criterion: str = "rmse_within_bias",
    include_baselines: bool = False,
) -> str:
    """Name of the best candidate of a backtest on a stated criterion.

    Parameters
    ----------
    result : BacktestResult
        From :func:`run_backtest`.
    criterion : str, default="rmse_within_bias"
        A key of :data:`CRITERIA`: ``"rmse_within_bias"`` (lowest RMSE among
        candidates with ``|bias| <= 10%``), ``"rank_sum"`` (ranks on RMSE,
        Gini, ``|bias|`` and decile MAPE added up), or a single metric.
    include_baselines : bool, default=False
        Whether the naive baselines may be chosen.

    Returns
    -------
    str
        The candidate's name (a key of ``result.metrics``).

    Raises
    ------
    ConfigError
        If the criterion is unknown or no candidate is left to choose from.
    """
    if criterion not in CRITERIA:
        raise ConfigError(
            f"criterion must be one of {', '.join(CRITERIA)}; got {criterion!r} "
            "instead."
        )
    table = result.metrics
    if not include_baselines:
        table = table.drop(index=[n for n in BASELINES if n in table.index])
    table = table.dropna(subset=["rmse"])
    if table.empty:
        raise ConfigError(
            "No candidate to choose from: the backtest ran only baselines; pass "
            "include_baselines=True or run more candidates."
        )
    abs_bias = table["bias"].abs()

    if criterion == "rmse_within_bias":
        ok = table[abs_bias <= MAX_ABS_BIAS_PERCENT]
        if ok.empty:
            warnings.warn(
                f"No candidate has |bias| <= {MAX_ABS_BIAS_PERCENT:g}%; choosing the "
                "lowest RMSE regardless of bias.",
                LtvkitWarning,
                stacklevel=2,
            )
            ok = table
        return str(ok["rmse"].idxmin())
    if criterion == "rank_sum":
        ranks = (
            table["rmse"].rank()
            + (-table["gini"]).rank()
            + abs_bias.rank()
            + table["decile_mape"].rank()
        )
        order = pd.DataFrame({"ranks": ranks, "rmse": table["rmse"]})
        return str(order.sort_values(["ranks", "rmse"]).index[0])
    if criterion == "bias":
        return str(abs_bias.idxmin())
    if criterion in ("gini", "spearman"):
        return str(table[criterion].idxmax())
    return str(table[criterion].idxmin())
