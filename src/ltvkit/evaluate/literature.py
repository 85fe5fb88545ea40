"""A second view, not honest: regressors fitted out of fold on the holdout itself.

Much of the literature scores machine-learning models of customer value by
cross-validation over customers on the prediction period: the model learns
from other customers' holdout spend, and so from the period's overall level
(seasonality, a change of trend). No model in production can do that. This
view is reported beside the honest backtest, clearly labelled, only to
compare with published figures; :func:`~ltvkit.evaluate.choose_best` never
looks at it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.metrics import mean_poisson_deviance
from threadpoolctl import threadpool_limits

from ..ml import MODEL_FEATURES
from .candidates import (
    CalibrationData,
    _cross_validate,
    _estimators,
    hybrid_features,
)
from .metrics import score_predictions

__all__ = ["OUT_OF_FOLD_LABEL", "out_of_fold_view"]

#: Label carried by every row of the view.
OUT_OF_FOLD_LABEL = "out of fold on the holdout (learns the holdout level)"


def out_of_fold_view(
    data: CalibrationData,
    actual: pd.Series,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score regressors trained out of fold, by customer, on holdout spend.

    Parameters
    ----------
    data : CalibrationData
        The calibration view; the features are computed as of its end.
    actual : pandas.Series
        Holdout spend per customer (the target, and the score).

    Returns
    -------
    (metrics, predictions) : tuple of pandas.DataFrame
        ``metrics`` indexed by ``model`` (``oof_hybrid_features``: the
        hybrid's features and estimator menu; ``oof_regressor_features``:
        gradient boosting on :data:`ltvkit.ml.MODEL_FEATURES`; 5 folds)
        with ``label`` and the metrics of
        :func:`~ltvkit.evaluate.metrics.score_predictions`; ``predictions``
        indexed by ``customer_id``, one column per model.
    """
    end = data.calibration_end
    y = actual.clip(lower=0.0).to_numpy()
    rows, predictions = [], pd.DataFrame(index=actual.index)

    # The hybrid's features with the hybrid's menu of estimators, the one of
    # lowest out-of-fold deviance kept (chosen on the same folds, as usual in
    # published comparisons).
    X = hybrid_features(data, end).reindex(actual.index).to_numpy(float)
    with threadpool_limits(1):
        oof = _cross_validate(X, y, _estimators(data.random_state), data.random_state)
    deviance = {
        name: float(mean_poisson_deviance(y, np.clip(p, 1e-9, None)))
        for name, p in oof.items()
    }
    chosen = min(deviance, key=deviance.get)
    predictions["oof_hybrid_features"] = oof[chosen]
    rows.append(
        {
            "model": "oof_hybrid_features",
            "label": f"{chosen} on the hybrid's features, {OUT_OF_FOLD_LABEL}",
        }
    )

    X = data.features(end)[list(MODEL_FEATURES)].reindex(actual.index)
    hgb = {
        "hgb": HistGradientBoostingRegressor(
            loss="poisson", max_iter=200, random_state=data.random_state
        )
    }
    with threadpool_limits(1):
        oof = _cross_validate(X.to_numpy(float), y, hgb, data.random_state)
    predictions["oof_regressor_features"] = oof["hgb"]
    rows.append(
        {
            "model": "oof_regressor_features",
            "label": f"gradient boosting on the regressor's features, "
            f"{OUT_OF_FOLD_LABEL}",
        }
    )

    for row in rows:
        row.update(score_predictions(predictions[row["model"]], actual))
    return pd.DataFrame(rows).set_index("model"), predictions
