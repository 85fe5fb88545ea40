"""The models a backtest compares, each fitted on the calibration period only.

A candidate receives a :class:`CalibrationData`, which wraps the transaction
log cut at the calibration end: rows dated later are not in the view it
reads, so no candidate can use the holdout period, not even through other
customers' totals. Each candidate returns a :class:`CandidatePrediction`:
predicted spend (and, for purchase models, purchases) in the ``horizon``
time units after the calibration end, for every customer who bought by then.
"""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import mean_poisson_deviance
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..errors import ConfigError, DataError, DataQualityWarning
from ..load import Transactions
from ..ml import SpendRegressor, build_features, build_target
from ..models import PURCHASE_MODELS, GammaGammaModel
from ..summary import days_per_unit, summarise

__all__ = [
    "CANDIDATES",
    "BASELINES",
    "CandidatePrediction",
    "CalibrationData",
    "predict_candidate",
]

logger = logging.getLogger(__name__)

#: Candidate names, in report order, with the label shown in tables and plots.
CANDIDATES: dict[str, str] = {
    "bgnbd_gg": "BG/NBD + Gamma-Gamma",
    "mbgnbd_gg": "MBG/NBD + Gamma-Gamma",
    "paretonbd_gg": "Pareto/NBD + Gamma-Gamma",
    "regressor": "Spend regressor (gradient boosting)",
    "hybrid": "Hybrid: Poisson GLM on RFM + BG/NBD/Pareto outputs",
    "blend": "Blend of BG/NBD + Gamma-Gamma and the hybrid",
    "calibration_spend": "Baseline: calibration spend per unit x horizon",
    "population_mean": "Baseline: population mean",
}

#: Yardsticks, not models one would deploy; :func:`choose_best` skips them.
BASELINES: tuple[str, ...] = ("calibration_spend", "population_mean")

#: Fewest customers with a purchase by the inner cut-off the hybrid accepts.
MIN_HYBRID_CUSTOMERS = 50

#: Penalties of the hybrid's Poisson GLM tried by cross-validation.
GLM_ALPHAS: tuple[float, ...] = (1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)

_PROBABILISTIC = {
    "bgnbd_gg": "bgnbd",
    "mbgnbd_gg": "mbgnbd",
    "paretonbd_gg": "paretonbd",
}


@dataclass
class CandidatePrediction:
    """What a candidate predicts for the holdout period.

    Attributes
    ----------
    spend : pandas.Series
        Predicted spend in the horizon, indexed by ``customer_id``.
    purchases : pandas.Series or None
        Expected repeat purchases in the horizon (purchase models only).
    purchase_model : fitted purchase model or None
        The model behind ``purchases``, for the purchase plots.
    details : dict
        JSON-ready facts of the fit (parameters, chosen penalty, weights).
    """

    spend: pd.Series
    purchases: pd.Series | None = None
    purchase_model: Any = None
    details: dict[str, Any] = field(default_factory=dict)


class CalibrationData:
    """The calibration period as every candidate sees it, with shared fits cached.

    Parameters
    ----------
    tx : Transactions
        The full log. Only a view of its rows dated on or before
        ``calibration_end`` is kept; the object holds no other reference to
        ``tx``.
    calibration_end : pandas.Timestamp
        Last day of the calibration period.
    horizon : float
        Length of the period to predict, in ``time_unit``.
    time_unit : str
        Unit of recency, T and ``horizon``.
    inner_cutoff : pandas.Timestamp
        End of the features of the inner training window; the target is the
        spend after it up to ``calibration_end``.
    random_state : int
        Seed of every random step.
    """

    _counter = itertools.count()

    def __init__(
        self,
        tx: Transactions,
        *,
        calibration_end: pd.Timestamp,
        horizon: float,
        time_unit: str,
        inner_cutoff: pd.Timestamp,
        random_state: int = 0,
    ) -> None:
        view = f"ltvkit_calibration_{next(self._counter)}"
        tx.connection.execute(
            f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {tx.view} "
            f"WHERE day <= DATE '{calibration_end.date()}'"
        )
        n_rows = tx.connection.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
        self.tx = Transactions(
            connection=tx.connection,
            view=view,
            has_segment=tx.has_segment,
            n_rows=int(n_rows),
            source=f"{tx.source} up to {calibration_end.date()}",
            date_format=tx.date_format,
        )
        self.calibration_end = calibration_end
        self.horizon = float(horizon)
        self.time_unit = time_unit
        self.inner_cutoff = inner_cutoff
        self.random_state = random_state
        self._cache: dict[tuple, Any] = {}

    @property
    def inner_window(self) -> float:
        """Length of the inner target window, in ``time_unit``."""
        days = (self.calibration_end - self.inner_cutoff).days
        return days / days_per_unit(self.time_unit)

    def _cached(self, key: tuple, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def rfm(self, as_of: pd.Timestamp) -> pd.DataFrame:
        """:func:`ltvkit.summarise` of the log up to ``as_of``."""
        return self._cached(
            ("rfm", as_of),
            lambda: summarise(self.tx, time_unit=self.time_unit, observation_end=as_of),
        )

    def features(self, as_of: pd.Timestamp) -> pd.DataFrame:
        """:func:`ltvkit.ml.build_features` as of ``as_of``."""
        return self._cached(
            ("features", as_of),
            lambda: build_features(self.tx, as_of=as_of, time_unit=self.time_unit),
        )

    def target(self, start_exclusive: pd.Timestamp) -> pd.Series:
        """Spend after ``start_exclusive`` up to the calibration end, per customer."""

        def make():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DataQualityWarning)
                return build_target(
                    self.tx,
                    start_exclusive=start_exclusive,
                    end_inclusive=self.calibration_end,
                )

        return self._cached(("target", start_exclusive), make)

    def purchase_model(self, kind: str, as_of: pd.Timestamp):
        """A purchase model of ``kind`` fitted on the summary up to ``as_of``."""
        return self._cached(
            ("purchase", kind, as_of),
            lambda: PURCHASE_MODELS[kind]().fit(self.rfm(as_of)),
        )

    def spend_model(self, as_of: pd.Timestamp) -> GammaGammaModel:
        """Gamma-Gamma fitted on the repeat buyers up to ``as_of``."""

        def make():
            rfm = self.rfm(as_of)
            return GammaGammaModel().fit(
                rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
            )

        return self._cached(("spend", as_of), make)

    def probabilistic(self, kind: str, as_of: pd.Timestamp, horizon: float):
        """Expected purchases, P(alive) and spend per purchase as of ``as_of``."""

        def make():
            rfm = self.rfm(as_of)
            model = self.purchase_model(kind, as_of)
            gg = self.spend_model(as_of)
            f, r, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
            out = pd.DataFrame(index=rfm.index)
            out["expected_purchases"] = model.conditional_expected_purchases(
                horizon, f, r, T
            )
            out["p_alive"] = model.conditional_probability_alive(f, r, T)
            out["spend_per_purchase"] = gg.conditional_expected_spend(
                f, rfm["monetary_value"].to_numpy(float)
            )
            out["expected_spend"] = (
                out["expected_purchases"] * out["spend_per_purchase"]
            )
            return out

        return self._cached(("prob", kind, as_of, float(horizon)), make)


# -- probabilistic models --------------------------------------------------------


def _predict_probabilistic(data: CalibrationData, name: str) -> CandidatePrediction:
    kind = _PROBABILISTIC[name]
    end = data.calibration_end
    out = data.probabilistic(kind, end, data.horizon)
    model = data.purchase_model(kind, end)
    gg = data.spend_model(end)
    return CandidatePrediction(
        spend=out["expected_spend"].rename("predicted_spend"),
        purchases=out["expected_purchases"].rename("expected_purchases"),
        purchase_model=model,
        details={"params": dict(model.params_), "spend_params": dict(gg.params_)},
    )


# -- the scikit-learn regressor --------------------------------------------------


def _predict_regressor(data: CalibrationData) -> CandidatePrediction:
    window_days = (data.calibration_end - data.inner_cutoff).days
    model = SpendRegressor(horizon_days=window_days, random_state=data.random_state)
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore", DataQualityWarning)
        model.fit(
            data.tx, observation_end=data.calibration_end, time_unit=data.time_unit
        )
        features = data.features(data.calibration_end)
        rate = model.predict_features(features) / data.inner_window
    return CandidatePrediction(
        spend=(rate * data.horizon).rename("predicted_spend"),
        details={"training_windows": model.training_windows_, "scaling": "linear"},
    )


# -- the hybrid ------------------------------------------------------------------


#: Columns of :func:`hybrid_features` that the hybrid learns from.
HYBRID_FEATURES: tuple[str, ...] = (
    "log_spend_rate",
    "log_purchase_rate",
    "log_monetary_value",
    "recency_ratio",
    "repeat_buyer",
    "bgnbd_p_alive",
    "paretonbd_p_alive",
    "log_bgnbd_expected_purchases",
    "log_paretonbd_expected_purchases",
    "log_spend_per_purchase",
)


def hybrid_features(data: CalibrationData, as_of: pd.Timestamp) -> pd.DataFrame:
    """The hybrid's inputs as of a day: RFM rates and probabilistic outputs.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id``, with the columns of
        :data:`HYBRID_FEATURES`: log spend and purchase days per time unit
        since the first purchase, log mean repeat spend, recency / T, a
        repeat-buyer flag, P(alive) under BG/NBD and Pareto/NBD, log expected
        purchases per time unit over the next inner window under both, and
        log Gamma-Gamma spend per purchase.

    Notes
    -----
    Every column is a rate, a ratio, a probability or a log of one, so that
    it means the same at the inner cut-off as at the calibration end, when
    every customer is older. Counts that grow with age (frequency, total
    spend, T; see :data:`ltvkit.ml.TENURE_FEATURES`) are left out, and so is
    spend in the last 90 or 180 days: in a log whose customers were acquired
    together (CDNOW), at an early cut-off those windows hold each customer's
    whole history, and later only part of it, so the relation learned early
    does not carry over.
    """
    unit_days = days_per_unit(data.time_unit)
    window = data.inner_window
    feats = data.features(as_of)
    bg = data.probabilistic("bgnbd", as_of, window).reindex(feats.index)
    pareto = data.probabilistic("paretonbd", as_of, window).reindex(feats.index)

    X = pd.DataFrame(index=feats.index)
    X["log_spend_rate"] = np.log1p(feats["spend_per_day"].clip(lower=0) * unit_days)
    X["log_purchase_rate"] = np.log1p(feats["purchase_days_per_day"] * unit_days)
    X["log_monetary_value"] = np.log1p(feats["monetary_value"].clip(lower=0))
    ratio = feats["recency"] / feats["T"].where(feats["T"] > 0, np.nan)
    X["recency_ratio"] = ratio.fillna(1.0)
    X["repeat_buyer"] = (feats["frequency"] > 0).astype(float)
    X["bgnbd_p_alive"] = bg["p_alive"]
    X["paretonbd_p_alive"] = pareto["p_alive"]
    X["log_bgnbd_expected_purchases"] = np.log(bg["expected_purchases"] / window)
    X["log_paretonbd_expected_purchases"] = np.log(
        pareto["expected_purchases"] / window
    )
    X["log_spend_per_purchase"] = np.log(bg["spend_per_purchase"])
    X = X.replace([np.inf, -np.inf], np.nan).fillna(0.0)
    return X[list(HYBRID_FEATURES)]


def _estimators(random_state: int) -> dict[str, Any]:
    out = {
        f"glm_alpha={a:g}": make_pipeline(
            StandardScaler(),
            PoissonRegressor(alpha=a, solver="newton-cholesky", max_iter=200),
        )
        for a in GLM_ALPHAS
    }
    out["hgb_leaf=100"] = HistGradientBoostingRegressor(
        loss="poisson",
        learning_rate=0.05,
        max_iter=100,
        max_depth=3,
        min_samples_leaf=100,
        random_state=random_state,
    )
    return out


def _cross_validate(X, y, estimators, random_state: int, n_splits: int = 5):
    """Out-of-fold predictions of each estimator, folds drawn by customer."""
    folds = KFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    oof = {name: np.zeros(len(y)) for name in estimators}
    for train, test in folds.split(X):
        for name, est in estimators.items():
            fitted = _clone(est).fit(X[train], y[train])
            oof[name][test] = fitted.predict(X[test])
    return oof


def _clone(est):
    return clone(est)


def _fit_hybrid(data: CalibrationData) -> dict[str, Any]:
    def make():
        inner, end = data.inner_cutoff, data.calibration_end
        n_customers = len(data.rfm(inner))
        if n_customers < MIN_HYBRID_CUSTOMERS:
            raise DataError(
                f"Only {n_customers} customers bought by the inner cut-off "
                f"{inner.date()}; the hybrid needs at least "
                f"{MIN_HYBRID_CUSTOMERS}. Use a later calibration end or a "
                "shorter inner window (inner_cutoff=)."
            )
        X_train = hybrid_features(data, inner)
        spend = data.target(inner).reindex(X_train.index, fill_value=0.0)
        y = spend.clip(lower=0.0).to_numpy() / data.inner_window
        if not (y > 0).any():
            raise DataError(
                f"No customer spent anything after the inner cut-off {inner.date()}"
                f" up to {end.date()}; the hybrid has nothing to learn from."
            )
        X = X_train.to_numpy()
        estimators = _estimators(data.random_state)
        # Small fits: one thread is faster than many on a busy machine, and the
        # result does not depend on the machine's core count.
        with threadpool_limits(1):
            oof = _cross_validate(X, y, estimators, data.random_state)
        deviance = {
            name: float(mean_poisson_deviance(y, np.clip(p, 1e-9, None)))
            for name, p in oof.items()
        }
        chosen = min(deviance, key=deviance.get)
        with threadpool_limits(1):
            model = _clone(estimators[chosen]).fit(X, y)
        logger.info(
            "hybrid: %s chosen by 5-fold deviance on %d customers (inner window "
            "%s to %s)",
            chosen,
            len(y),
            inner.date(),
            end.date(),
        )
        return {
            "model": model,
            "chosen": chosen,
            "cv_deviance": deviance,
            "oof_spend": pd.Series(oof[chosen] * data.inner_window, X_train.index),
            "inner_spend": spend.clip(lower=0.0),
            "columns": list(X_train.columns),
        }

    return data._cached(("hybrid",), make)


def _bgnbd_growth(data: CalibrationData, as_of, short: float, long: float):
    """BG/NBD's expected purchases in ``long`` units over those in ``short``."""
    e_long = data.probabilistic("bgnbd", as_of, long)["expected_purchases"]
    e_short = data.probabilistic("bgnbd", as_of, short)["expected_purchases"]
    return (e_long / e_short.where(e_short > 0, np.nan)).fillna(long / short)


def _choose_scaling(data: CalibrationData) -> dict[str, Any]:
    """Choose how to stretch a rate learned on the inner window to the horizon.

    ``"linear"`` keeps the rate constant; ``"bgnbd"`` follows the decay of
    activity that BG/NBD expects for each customer. The choice is made on the
    calibration period alone: whichever better predicts how the spend of the
    inner window's second half adds to that of its first half.
    """
    inner, window = data.inner_cutoff, data.inner_window
    half_day = inner + pd.Timedelta(
        days=max(1, (data.calibration_end - inner).days // 2)
    )
    half = (half_day - inner).days / days_per_unit(data.time_unit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataQualityWarning)
        first = build_target(data.tx, start_exclusive=inner, end_inclusive=half_day)
    whole = data.target(inner)
    first_total = float(first.clip(lower=0).sum())
    actual = float(whole.clip(lower=0).sum()) / first_total if first_total else np.nan
    spend_half = data.probabilistic("bgnbd", inner, half)["expected_spend"]
    spend_whole = data.probabilistic("bgnbd", inner, window)["expected_spend"]
    growth = {
        "linear": window / half,
        "bgnbd": float(spend_whole.sum() / spend_half.sum()),
    }
    chosen = (
        "linear"
        if not np.isfinite(actual)
        else min(growth, key=lambda k: abs(np.log(growth[k] / actual)))
    )
    return {"scaling": chosen, "growth_expected": growth, "growth_actual": actual}


def _predict_hybrid(data: CalibrationData) -> CandidatePrediction:
    fit = _fit_hybrid(data)
    scaling = data._cached(("scaling",), lambda: _choose_scaling(data))
    X = hybrid_features(data, data.calibration_end)
    with threadpool_limits(1):
        rate = pd.Series(fit["model"].predict(X[fit["columns"]].to_numpy()), X.index)
    spend = rate.clip(lower=0.0) * data.inner_window
    if scaling["scaling"] == "bgnbd":
        spend = spend * _bgnbd_growth(
            data, data.calibration_end, data.inner_window, data.horizon
        )
    else:
        spend = spend * (data.horizon / data.inner_window)
    return CandidatePrediction(
        spend=spend.rename("predicted_spend"),
        details={
            "estimator": fit["chosen"],
            "cv_poisson_deviance": fit["cv_deviance"],
            "inner_cutoff": str(data.inner_cutoff.date()),
            "inner_window": data.inner_window,
            **scaling,
        },
    )


def _predict_blend(data: CalibrationData) -> CandidatePrediction:
    fit = _fit_hybrid(data)
    inner = data.inner_cutoff
    # Both parts predict the inner window without having seen it: BG/NBD and
    # Gamma-Gamma fitted up to the inner cut-off, the hybrid out of fold.
    prob_inner = data.probabilistic("bgnbd", inner, data.inner_window)
    prob_inner = prob_inner["expected_spend"].reindex(fit["oof_spend"].index)
    actual = fit["inner_spend"]
    grid = np.round(np.linspace(0.0, 1.0, 21), 2)
    rmse = {
        float(w): float(
            np.sqrt(
                np.mean((w * prob_inner + (1 - w) * fit["oof_spend"] - actual) ** 2)
            )
        )
        for w in grid
    }
    weight = min(rmse, key=rmse.get)
    prob = _predict_probabilistic(data, "bgnbd_gg").spend
    hybrid = _predict_hybrid(data).spend.reindex(prob.index)
    return CandidatePrediction(
        spend=(weight * prob + (1 - weight) * hybrid).rename("predicted_spend"),
        details={"weight_bgnbd_gg": weight, "inner_rmse_by_weight": rmse},
    )


# -- baselines -------------------------------------------------------------------


def _calibration_rate(data: CalibrationData) -> pd.Series:
    rfm = data.rfm(data.calibration_end)
    # The first day counts as observed, so a customer who first bought on the
    # calibration end still has a finite rate.
    observed = rfm["T"] + 1.0 / days_per_unit(data.time_unit)
    return rfm["total_spend"].clip(lower=0.0) / observed


def _predict_baseline(data: CalibrationData, name: str) -> CandidatePrediction:
    spend = _calibration_rate(data) * data.horizon
    if name == "population_mean":
        spend = pd.Series(spend.mean(), index=spend.index)
    return CandidatePrediction(spend=spend.rename("predicted_spend"))


def predict_candidate(data: CalibrationData, name: str) -> CandidatePrediction:
    """Fit candidate ``name`` on ``data`` and predict the horizon.

    Raises
    ------
    ConfigError
        If ``name`` is not a key of :data:`CANDIDATES`.
    """
    if name in _PROBABILISTIC:
        return _predict_probabilistic(data, name)
    if name == "regressor":
        return _predict_regressor(data)
    if name == "hybrid":
        return _predict_hybrid(data)
    if name == "blend":
        return _predict_blend(data)
    if name in BASELINES:
        return _predict_baseline(data, name)
    raise ConfigError(
        f"Unknown backtest candidate {name!r}; choose from {', '.join(CANDIDATES)}."
    )
