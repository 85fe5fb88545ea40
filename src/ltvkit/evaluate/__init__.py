"""Backtests: fit candidates on a calibration period, score them on the holdout.

:func:`run_backtest` splits a transaction log at a calibration end, fits
each candidate of :data:`CANDIDATES` on the calibration period only and
compares its predictions for the holdout period with what happened, customer
by customer. :func:`write_report` writes the metrics and plots to a folder;
:func:`choose_best` names the best candidate on a stated criterion.

Modules: :mod:`.metrics` (the scores), :mod:`.candidates` (the models and
the calibration-only view they read), :mod:`.backtest` (the run and the
choice), :mod:`.report` (files) and :mod:`.literature` (a second view, not
honest, of regressors fitted out of fold on the holdout).
"""

from .backtest import (
    CRITERIA,
    MAX_ABS_BIAS_PERCENT,
    BacktestResult,
    choose_best,
    purchases_by_frequency_table,
    run_backtest,
)
from .candidates import (
    BASELINES,
    CANDIDATES,
    HYBRID_FEATURES,
    CalibrationData,
    CandidatePrediction,
    hybrid_features,
)
from .literature import OUT_OF_FOLD_LABEL, out_of_fold_view
from .metrics import (
    METRIC_NAMES,
    aggregate_bias_percent,
    decile_groups,
    decile_mape,
    decile_table,
    gain_curve,
    mean_absolute_error,
    normalized_gini,
    root_mean_squared_error,
    score_predictions,
    spearman_correlation,
    top_decile_share,
)
from .report import OUT_OF_FOLD_FILE, REPORT_FILES, write_report

__all__ = [
    "BASELINES",
    "CANDIDATES",
    "CRITERIA",
    "HYBRID_FEATURES",
    "MAX_ABS_BIAS_PERCENT",
    "METRIC_NAMES",
    "OUT_OF_FOLD_FILE",
    "OUT_OF_FOLD_LABEL",
    "REPORT_FILES",
    "BacktestResult",
    "CalibrationData",
    "CandidatePrediction",
    "aggregate_bias_percent",
    "choose_best",
    "decile_groups",
    "decile_mape",
    "decile_table",
    "gain_curve",
    "hybrid_features",
    "mean_absolute_error",
    "normalized_gini",
    "out_of_fold_view",
    "purchases_by_frequency_table",
    "root_mean_squared_error",
    "run_backtest",
    "score_predictions",
    "spearman_correlation",
    "top_decile_share",
    "write_report",
]
