"""The whole job in two calls: train models on a log, score a log with them.

:func:`train` summarises a transaction log, fits the purchase model and the
Gamma-Gamma spend model (and, by default, the scikit-learn spend regressor)
and returns a :class:`TrainedModel`; :func:`score` applies one to a log and
returns the scored customer list. The CLI commands ``ltvkit train`` and
``ltvkit score`` are thin wrappers around these.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ._io import TableWriter, progress
from .errors import (
    ConfigError,
    DataError,
    DataQualityWarning,
    LtvkitWarning,
    StaleModelWarning,
)
from .load import Transactions
from .models import PURCHASE_MODELS, GammaGammaModel
from .summary import FrameSummary, days_per_unit, summary_table
from .value import PurchaseCurves, month_weights, score_customers

__all__ = [
    "TrainedModel",
    "SUMMARY_OPTIONS",
    "fit_spend_model",
    "train",
    "score",
    "score_to_file",
    "data_fingerprint",
    "save_trained",
    "load_trained",
]

logger = logging.getLogger(__name__)

#: Options of :func:`ltvkit.summarise` that a trained model remembers, so that
#: scoring summarises a log by the same rules.
SUMMARY_OPTIONS = ("time_unit", "period", "refunds", "zero_amounts", "duplicates")

#: A model applied to a log that runs this many days past its training data
#: gets a :class:`~ltvkit.errors.StaleModelWarning`.
STALE_AFTER_DAYS = 365

#: Fewer customers (or repeat buyers) than this cannot identify the purchase
#: and spend models' parameters; train refuses them.
MIN_CUSTOMERS = 10
MIN_REPEAT_BUYERS = 5

#: The spend regressor needs at least this many days of features before its
#: target window.
MIN_FEATURE_DAYS = 28


@dataclass
class TrainedModel:
    """Fitted models with what is needed to apply them again.

    Attributes
    ----------
    purchase_model : BGNBDModel, MBGNBDModel or ParetoNBDModel
        The fitted purchase model.
    spend_model : GammaGammaModel
        The fitted spend model.
    regressor : SpendRegressor or None
        The fitted scikit-learn spend regressor, if one was trained.
    options : dict
        The summary rules used (``time_unit``, ``period``, ``refunds``...).
    observation_end : str
        Last day of the training data (ISO date).
    metrics : dict
        Fit metrics: log-likelihoods, customer counts.
    data_fingerprint : str
        Hash of the training rows.
    n_rows : int
        Transaction rows up to the observation end.
    summary : pandas.DataFrame or None
        The RFM summary the models were fitted on (not saved), read when
        first asked for.
    source : Transactions or None
        The log object trained on (not saved); scoring the same object as of
        the same day reuses the summary.
    """

    purchase_model: Any
    spend_model: GammaGammaModel
    regressor: Any = None
    options: dict = field(default_factory=dict)
    observation_end: str = ""
    metrics: dict = field(default_factory=dict)
    data_fingerprint: str = ""
    n_rows: int = 0
    summary_source: Any = field(default=None, repr=False, compare=False)
    source: Any = field(default=None, repr=False, compare=False)

    @property
    def summary(self) -> pd.DataFrame | None:
        if self.summary_source is None:
            return None
        return self.summary_source.frame()

    @property
    def time_unit(self) -> str:
        return self.options["time_unit"]


def _is_spark(data) -> bool:
    return type(data).__module__.startswith("pyspark")


def _summarise_spark(data, **options) -> pd.DataFrame:
    from .spark import summarise_spark

    return summarise_spark(data, **options)


def _spark_fingerprint(sdf, observation_end: str) -> tuple[str, int]:
    from pyspark.sql import functions as F

    row = (
        sdf.filter(F.col("day") <= F.lit(pd.Timestamp(observation_end).date()))
        .agg(F.sum(F.col("row_hash").cast("decimal(38,0)")), F.count(F.lit(1)))
        .first()
    )
    total, n_rows = row
    digest = hashlib.sha256(f"{total}:{n_rows}".encode()).hexdigest()[:16]
    return digest, int(n_rows)


def data_fingerprint(tx: Transactions, observation_end: str) -> tuple[str, int]:
    """An order-independent hash of the rows up to ``observation_end``.

    Returns the hash (16 hex digits) and the number of rows.
    """
    if observation_end not in tx.fingerprints:  # summarise records it
        tx.fingerprints[observation_end] = tx.connection.execute(
            f"""SELECT coalesce(sum(row_hash::HUGEINT), 0), count(*) FROM {tx.view}
                WHERE day <= DATE '{observation_end}'"""
        ).fetchall()[0]
    hash_sum, n_rows = tx.fingerprints[observation_end]
    value = tx.connection.execute(
        "SELECT hash($1::HUGEINT, $2::BIGINT)", [hash_sum, n_rows]
    ).fetchall()[0][0]
    return f"{int(value):016x}", int(n_rows)


def fit_spend_model(rfm: pd.DataFrame, *, penalizer: float = 0.0) -> GammaGammaModel:
    """Fit Gamma-Gamma on the repeat buyers with a positive mean spend.

    Repeat buyers whose net mean spend is zero or negative (possible when
    refunds are netted) are left out of the fit and counted in the log; they
    are scored with the population mean spend.
    """
    repeat = rfm[rfm["frequency"] > 0]
    usable = repeat[repeat["monetary_value"] > 0]
    if len(usable) < len(repeat):
        logger.warning(
            "left %d repeat buyers with a non-positive mean spend out of the "
            "spend model",
            len(repeat) - len(usable),
        )
    if usable.empty:
        raise DataError(
            "No customer has a repeat purchase with a positive amount, so the "
            "spend model cannot be fitted. A longer log is needed."
        )
    return GammaGammaModel(penalizer=penalizer).fit(usable)


def _fit_regressor(tx: Transactions, options: dict, end: str, horizon_months: int):
    """Fit the spend regressor on the last window before ``end``.

    When the log is too short for a whole horizon with history before it,
    the regressor learns on a window of half the history, and its
    predictions are scaled up to the horizon at scoring time.
    """
    from .ml import SpendRegressor

    horizon_days = horizon_months * days_per_unit("M")
    history_days = (pd.Timestamp(end) - tx.date_range()[0]).days
    window_days = horizon_days
    if history_days < horizon_days + MIN_FEATURE_DAYS:
        window_days = max(1, history_days // 2)
        warnings.warn(
            f"The log has {history_days} days of history, too few for the "
            f"{horizon_days:.0f}-day horizon with features before it; the spend "
            f"regressor learns on the last {window_days} days, and its predictions "
            "are scaled to the horizon assuming spend accrues evenly.",
            LtvkitWarning,
            stacklevel=3,
        )
    try:
        with warnings.catch_warnings():
            # The same rows were summarised, with their warnings, just before.
            warnings.simplefilter("ignore", DataQualityWarning)
            return SpendRegressor(horizon_days=window_days).fit(
                tx,
                observation_end=end,
                time_unit=options["time_unit"],
                refunds=options["refunds"],
                zero_amounts=options["zero_amounts"],
                duplicates=options["duplicates"],
            )
    except DataError as exc:
        warnings.warn(
            f"The spend regressor was not trained: {exc}", LtvkitWarning, stacklevel=3
        )
        return None


def _backtest(tx, options, end, calibration_end, criterion, *, choose: bool) -> dict:
    """Backtest the purchase models; a summary for the manifest.

    A backtest that cannot run (a log too short to split) is reported, with
    a warning, instead of stopping the training.
    """
    from .evaluate import choose_best, run_backtest

    first_day = tx.date_range()[0]
    end_day = pd.Timestamp(end)
    if calibration_end is None:
        calibration_end = (first_day + (end_day - first_day) / 2).normalize()
    candidates = [f"{name}_gg" for name in PURCHASE_MODELS]
    rules = {k: options[k] for k in ("refunds", "zero_amounts", "duplicates")}
    if rules != {"refunds": "error", "zero_amounts": "keep", "duplicates": "keep"}:
        reason = (
            "the backtest reads the log under the default row rules only, and "
            f"this training used {rules}"
        )
        warnings.warn(
            f"The backtest was skipped: {reason}.", LtvkitWarning, stacklevel=3
        )
        return {"skipped": reason}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            result = run_backtest(
                tx,
                calibration_end=calibration_end,
                observation_end=end_day,
                time_unit=options["time_unit"],
                candidates=candidates,
            )
            chosen = choose_best(result, criterion=criterion) if choose else None
    except (DataError, ConfigError) as exc:
        warnings.warn(f"The backtest was skipped: {exc}", LtvkitWarning, stacklevel=3)
        return {"skipped": str(exc)}
    columns = ["mae", "rmse", "bias", "spearman", "gini", "decile_mape"]
    table = result.metrics[columns].astype(float)
    return {
        "calibration_end": str(pd.Timestamp(calibration_end).date()),
        "observation_end": str(end_day.date()),
        "criterion": criterion,
        "chosen": chosen,
        "models": {
            name: {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
            for name, row in table.iterrows()
        },
    }


def train(
    tx: Transactions,
    *,
    time_unit: str | None = None,
    period: str = "D",
    observation_end=None,
    model: str = "bgnbd",
    refunds: str = "error",
    zero_amounts: str = "keep",
    duplicates: str = "keep",
    penalizer: float = 0.0,
    regressor: bool = True,
    horizon_months: int = 12,
    backtest: bool = True,
    calibration_end=None,
    criterion: str = "rmse_within_bias",
) -> TrainedModel:
    """Summarise ``tx`` and fit the purchase, spend and regressor models.

    Parameters
    ----------
    tx : Transactions or pyspark.sql.DataFrame
        The log, from :func:`ltvkit.read_transactions`, or from
        :func:`ltvkit.spark.read_transactions_spark` to summarise it in Spark
        (then without the backtest and the regressor).
    time_unit, period, observation_end, refunds, zero_amounts, duplicates
        Summary rules, as in :func:`ltvkit.summarise`.
    model : {"bgnbd", "mbgnbd", "paretonbd", "auto"}, default="bgnbd"
        The purchase model; ``"auto"`` takes the one that does best in the
        backtest on ``criterion``.
    penalizer : float, default=0.0
        L2 penalty on the log-parameters of both probabilistic models.
    regressor : bool, default=True
        Whether to train the scikit-learn spend regressor too.
    horizon_months : int, default=12
        Window the regressor learns to predict (months of 365.25 / 12 days).
    backtest : bool, default=True
        Before the final fit, backtest the purchase models (each with
        Gamma-Gamma) by :func:`ltvkit.evaluate.run_backtest` and keep the
        metrics in ``metrics["backtest"]``. Needed for ``model="auto"``.
    calibration_end : date-like, optional
        End of the backtest's calibration period; default the middle day of
        the log up to the observation end.
    criterion : str, default="rmse_within_bias"
        How ``model="auto"`` chooses; see :func:`ltvkit.evaluate.choose_best`.

    Returns
    -------
    TrainedModel
    """
    if model not in (*PURCHASE_MODELS, "auto"):
        raise ConfigError(
            f"model must be one of {', '.join(PURCHASE_MODELS)} or 'auto'; got "
            f"{model!r}."
        )
    if model == "auto" and not backtest:
        raise ConfigError("model='auto' chooses by a backtest; do not turn it off.")
    on_spark = _is_spark(tx)
    if on_spark and model == "auto":
        raise ConfigError("model='auto' needs the local engine's backtest; name one.")
    summary = _summary_of(
        tx,
        time_unit=time_unit,
        observation_end=observation_end,
        period=period,
        refunds=refunds,
        zero_amounts=zero_amounts,
        duplicates=duplicates,
    )
    try:
        return _train_on(
            summary,
            tx,
            model=model,
            period=period,
            refunds=refunds,
            zero_amounts=zero_amounts,
            duplicates=duplicates,
            penalizer=penalizer,
            regressor=regressor,
            horizon_months=horizon_months,
            backtest=backtest,
            calibration_end=calibration_end,
            criterion=criterion,
        )
    except BaseException:
        summary.close()
        raise


def _summary_of(tx, **options):
    """The summary of a log: a DuckDB table, or a frame collected from Spark."""
    if _is_spark(tx):
        return FrameSummary(_summarise_spark(tx, **options))
    return summary_table(tx, **options)


def _train_on(
    summary,
    tx,
    *,
    model,
    period,
    refunds,
    zero_amounts,
    duplicates,
    penalizer,
    regressor,
    horizon_months,
    backtest,
    calibration_end,
    criterion,
) -> TrainedModel:
    on_spark = _is_spark(tx)
    if on_spark and (backtest or regressor):
        warnings.warn(
            "On the Spark engine the backtest and the spend regressor are not run "
            "(they read the log with the local engine); the purchase and spend "
            "models are fitted as usual.",
            LtvkitWarning,
            stacklevel=2,
        )
        backtest = regressor = False
    options = {
        "time_unit": summary.attrs["time_unit"],
        "period": period,
        "refunds": refunds,
        "zero_amounts": zero_amounts,
        "duplicates": duplicates,
        "columns": None if on_spark else tx.columns,
    }
    end = summary.attrs["observation_end"]
    n_customers, n_repeat = summary.n_customers, summary.n_repeat
    if n_repeat == 0:
        raise DataError(
            f"None of the {n_customers} customers bought more than once up to {end}, "
            "so repeat-purchase models cannot be fitted. A longer log is needed."
        )
    if n_customers < MIN_CUSTOMERS or n_repeat < MIN_REPEAT_BUYERS:
        raise DataError(
            f"The log has {n_customers} customers, {n_repeat} of them repeat buyers, "
            f"up to {end}; the models need at least {MIN_CUSTOMERS} customers and "
            f"{MIN_REPEAT_BUYERS} repeat buyers to estimate their parameters."
        )

    backtest_report = None
    if backtest:
        backtest_report = _backtest(
            tx, options, end, calibration_end, criterion, choose=model == "auto"
        )
        if model == "auto":
            if backtest_report.get("chosen") is None:
                raise DataError(
                    "model='auto' needs a backtest, and it could not run: "
                    f"{backtest_report['skipped']}. Name the model instead."
                )
            model = backtest_report["chosen"].removesuffix("_gg")
            logger.info("backtest chose %s on %s", model, criterion)
    # Customers with equal histories enter the fit as one weighted row.
    purchase_model = PURCHASE_MODELS[model](penalizer=penalizer).fit(
        summary.purchase_counts(), weights="n"
    )
    spend_model = fit_spend_model(summary.repeat_spend(), penalizer=penalizer)
    fitted_regressor = None
    if regressor:
        fitted_regressor = _fit_regressor(tx, options, end, horizon_months)

    metrics = {
        "n_customers": n_customers,
        "n_repeat_buyers": n_repeat,
        "purchase_log_likelihood": float(purchase_model.log_likelihood_),
        "spend_log_likelihood": float(spend_model.log_likelihood_),
    }
    if backtest_report is not None:
        metrics["backtest"] = backtest_report
        chosen = backtest_report.get("models", {}).get(f"{model}_gg")
        if chosen is not None:
            metrics["backtest_of_model"] = chosen
    logger.info("trained %s + Gamma-Gamma on %d customers", model, n_customers)
    fingerprint, n_rows = (
        _spark_fingerprint(tx, end) if on_spark else data_fingerprint(tx, end)
    )
    return TrainedModel(
        purchase_model=purchase_model,
        spend_model=spend_model,
        regressor=fitted_regressor,
        options=options,
        observation_end=end,
        metrics=metrics,
        data_fingerprint=fingerprint,
        n_rows=n_rows,
        summary_source=summary,
        source=None if on_spark else tx,
    )


def _is_training_log(trained: TrainedModel, tx, observation_end) -> bool:
    """Whether ``tx`` is the very log object ``trained`` was fitted on."""
    if trained.summary_source is None or trained.source is not tx:
        return False
    if observation_end is None:
        return trained.observation_end == str(tx.date_range()[1].date())
    return str(pd.Timestamp(observation_end).date()) == trained.observation_end


def _scoring_summary(trained: TrainedModel, tx, observation_end, segment_by):
    """The summary of ``tx`` to score, by the rules ``trained`` was fitted with."""
    opts = {k: trained.options[k] for k in SUMMARY_OPTIONS}
    if _is_training_log(trained, tx, observation_end):
        summary = trained.summary_source  # the rows train summarised
    else:
        summary = _summary_of(tx, observation_end=observation_end, **opts)
    end = pd.Timestamp(summary.attrs["observation_end"])
    trained_end = pd.Timestamp(trained.observation_end)
    if end < trained_end:
        logger.info("scoring as of %s, before the training end", end.date())
    if (end - trained_end).days > STALE_AFTER_DAYS:
        warnings.warn(
            f"Scoring as of {end.date()}, {(end - trained_end).days} days past the "
            f"model's training data (to {trained_end.date()}); the model may be "
            "stale. Retrain it on recent data.",
            StaleModelWarning,
            stacklevel=3,
        )
    if segment_by not in (None, "acquisition-month"):
        raise ConfigError(
            f"segment_by must be 'acquisition-month' or None; got {segment_by!r}."
        )
    return summary


def _predicted_spend_ml(trained: TrainedModel, tx, rfm, horizon_months: int):
    """The regressor's spend over the horizon for every customer of ``rfm``."""
    # Spend is assumed to accrue evenly when the regressor's window differs
    # from the horizon asked for.
    scale = horizon_months * days_per_unit("M") / trained.regressor.horizon_days
    if abs(scale - 1) > 1e-9:
        logger.info("predicted_spend_ml scaled by %.3f to the horizon", scale)
    end = pd.Timestamp(rfm.attrs["observation_end"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        predicted = trained.regressor.predict(tx, as_of=end, rfm=rfm) * scale
    return predicted.reindex(rfm.index).fillna(0.0)


def _scored_parts(trained, tx, summary, value_options, segment_by, chunk_rows):
    """The scored list of ``summary``, ``chunk_rows`` customers at a time."""
    predicted = None
    if trained.regressor is not None:
        predicted = _predicted_spend_ml(
            trained, tx, summary.frame(), value_options["horizon_months"]
        )
    curves = None
    if summary.n_customers > chunk_rows and hasattr(
        trained.purchase_model, "expected_purchases_if_alive"
    ):
        pairs = summary.frequency_T()
        curves = PurchaseCurves(
            trained.purchase_model,
            pairs["frequency"].to_numpy(float),
            pairs["T"].to_numpy(float),
            month_weights(
                value_options["horizon_months"],
                margin=value_options["margin"],
                annual_discount_rate=value_options["annual_discount_rate"],
            ),
            time_unit=value_options["time_unit"],
            horizon_months=value_options["horizon_months"],
        )
    for part in summary.chunks(chunk_rows):
        if segment_by == "acquisition-month":
            part["segment"] = part["first_purchase"].dt.strftime("%Y-%m")
        scored = score_customers(
            part,
            trained.purchase_model,
            trained.spend_model,
            curves=curves,
            **value_options,
        )
        if predicted is not None:
            scored["predicted_spend_ml"] = predicted.reindex(scored.index)
        scored.attrs.update(summary.attrs)
        yield scored


def score(
    trained: TrainedModel,
    tx: Transactions,
    *,
    observation_end=None,
    horizon_months: int = 12,
    margin: float = 1.0,
    annual_discount_rate: float = 0.10,
    segment_by: str | None = None,
) -> pd.DataFrame:
    """Score every customer of ``tx`` with a trained model.

    Parameters
    ----------
    trained : TrainedModel
        From :func:`train` or :func:`ltvkit.persist.load_model`.
    tx : Transactions
        The log to score: the training log or a newer one.
    observation_end : date-like, optional
        Score as of this day; default the latest date in ``tx``.
    horizon_months, margin, annual_discount_rate
        As in :func:`ltvkit.value.score_customers`.
    segment_by : {"acquisition-month"}, optional
        Segment customers by the month of their first purchase instead of a
        segment column of the log.

    Returns
    -------
    pandas.DataFrame or pyspark.sql.DataFrame
        The columns of :func:`ltvkit.value.score_customers`, plus
        ``predicted_spend_ml`` when the model has a regressor. For a Spark
        log (from :func:`ltvkit.spark.read_transactions_spark`), a lazy Spark
        DataFrame scored in the executors, without ``predicted_spend_ml``.

    Warns
    -----
    StaleModelWarning
        When the log runs more than a year past the training data.

    See Also
    --------
    score_to_file : the same list written to a file chunk by chunk, for
        logs with more customers than a DataFrame should hold.
    """
    summary = _scoring_summary(trained, tx, observation_end, segment_by)
    value_options = dict(
        time_unit=trained.time_unit,
        horizon_months=horizon_months,
        margin=margin,
        annual_discount_rate=annual_discount_rate,
    )
    try:
        return _score_whole(trained, tx, summary, value_options, segment_by)
    finally:
        if summary is not trained.summary_source:
            summary.close()


def _score_whole(trained, tx, summary, value_options, segment_by):
    if _is_spark(tx):
        rfm = summary.frame()
        if segment_by == "acquisition-month":
            rfm["segment"] = rfm["first_purchase"].dt.strftime("%Y-%m")
        from .spark import score_spark

        if trained.regressor is not None:
            warnings.warn(
                "On the Spark engine the spend regressor is not applied: the "
                "scored list has no predicted_spend_ml column.",
                LtvkitWarning,
                stacklevel=4,
            )
        return score_spark(
            rfm,
            trained.purchase_model,
            trained.spend_model,
            spark=tx.sparkSession,
            **value_options,
        )
    rows = max(summary.n_customers, 1)
    (scored,) = _scored_parts(trained, tx, summary, value_options, segment_by, rows)
    return scored


#: Customers scored and written at a time by :func:`score_to_file`.
SCORE_CHUNK_ROWS = 100_000


def score_to_file(
    trained: TrainedModel,
    tx: Transactions,
    path,
    *,
    observation_end=None,
    horizon_months: int = 12,
    margin: float = 1.0,
    annual_discount_rate: float = 0.10,
    segment_by: str | None = None,
) -> int:
    """Score every customer of ``tx`` and write the list to ``path``.

    The list of :func:`score`, written to a CSV or Parquet file (by suffix)
    :data:`SCORE_CHUNK_ROWS` customers at a time: each chunk is written
    while the next is scored, and the file appears only once complete.

    Returns
    -------
    int
        The number of customers written.
    """
    if _is_spark(tx):
        raise ConfigError(
            "score_to_file runs on the local engine; for a Spark log use score() "
            "and ltvkit.spark.write_scores_spark."
        )
    summary = _scoring_summary(trained, tx, observation_end, segment_by)
    value_options = dict(
        time_unit=trained.time_unit,
        horizon_months=horizon_months,
        margin=margin,
        annual_discount_rate=annual_discount_rate,
    )
    rows = SCORE_CHUNK_ROWS
    try:
        parts = _scored_parts(trained, tx, summary, value_options, segment_by, rows)
        with TableWriter(path) as out:
            for part in progress(parts, "scoring", -(-summary.n_customers // rows)):
                out.write(part)
    finally:
        if summary is not trained.summary_source:
            summary.close()
    return out.n_rows


def save_trained(trained: TrainedModel, folder, *, force: bool = False):
    """Write ``trained`` to a model folder (see :func:`ltvkit.persist.save_model`)."""
    from .persist import save_model

    return save_model(
        folder,
        purchase_model=trained.purchase_model,
        spend_model=trained.spend_model,
        regressor=trained.regressor,
        manifest_extra={
            "time_unit": trained.options["time_unit"],
            "period": trained.options["period"],
            "observation_end": trained.observation_end,
            "training_data_hash": trained.data_fingerprint,
            "n_rows": trained.n_rows,
            "n_customers": trained.metrics.get("n_customers", 0),
            "fit_metrics": trained.metrics,
            "options": trained.options,
        },
        force=force,
    )


def load_trained(folder) -> TrainedModel:
    """Read a model folder written by :func:`save_trained`."""
    from .persist import load_model

    loaded = load_model(folder)
    manifest = loaded.manifest
    options = dict(manifest.get("options") or {})
    options.setdefault("time_unit", manifest["time_unit"])
    options.setdefault("period", manifest["period"])
    for key, default in (
        ("refunds", "error"),
        ("zero_amounts", "keep"),
        ("duplicates", "keep"),
    ):
        options.setdefault(key, default)
    return TrainedModel(
        purchase_model=loaded.purchase_model,
        spend_model=loaded.spend_model,
        regressor=loaded.regressor,
        options=options,
        observation_end=manifest["observation_end"],
        metrics=dict(manifest.get("fit_metrics") or {}),
        data_fingerprint=manifest.get("training_data_hash", ""),
        n_rows=int(manifest.get("n_rows", 0)),
    )
