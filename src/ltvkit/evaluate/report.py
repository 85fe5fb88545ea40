"""Write a backtest's metrics (JSON, CSV) and plots (PNG) to a folder."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path

import pandas as pd

from ..errors import ConfigError
from .backtest import CRITERIA, BacktestResult, choose_best

__all__ = ["OUT_OF_FOLD_FILE", "REPORT_FILES", "write_report"]

logger = logging.getLogger(__name__)

#: Files that :func:`write_report` writes, with what each holds.
REPORT_FILES: dict[str, str] = {
    "metrics.json": "settings, the chosen model and one entry per model",
    "metrics.csv": "the same metrics, one row per model",
    "purchases_by_frequency.csv": "mean holdout purchases by calibration frequency",
    "cumulative_purchases.csv": "cumulative repeat purchases, actual and expected",
    "deciles.csv": "predicted and actual totals by prediction decile, per model",
    "purchases_by_frequency.png": "bars of the purchases by frequency",
    "cumulative_purchases.png": "lines of cumulative repeat purchases",
    "deciles.png": "decile chart, one panel per model",
    "gain_curve.png": "gain curves of every model",
}

#: Written only when the backtest ran with ``out_of_fold_view=True``.
OUT_OF_FOLD_FILE = "metrics_out_of_fold.csv"


def _json_ready(value):
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_report(
    result: BacktestResult,
    out_dir: str | os.PathLike,
    *,
    criterion: str = "rmse_within_bias",
) -> dict[str, Path]:
    """Write the metrics and plots of a backtest to ``out_dir``.

    Parameters
    ----------
    result : BacktestResult
        From :func:`ltvkit.evaluate.run_backtest`.
    out_dir : path
        Folder to write to; created if missing. Files of the same names are
        replaced.
    criterion : str, default="rmse_within_bias"
        Criterion of :func:`ltvkit.evaluate.choose_best` for the model named
        as chosen in ``metrics.json``.

    Returns
    -------
    dict of str to pathlib.Path
        The files written (:data:`REPORT_FILES`), by name.

    Notes
    -----
    ``metrics.json`` holds ``settings``, ``criterion`` (its name and
    description), ``chosen`` and ``models``: one entry per model with
    ``name``, ``label``, ``mae``, ``rmse``, ``bias`` (percent), ``spearman``,
    ``gini``, ``decile_mape``, ``top_decile_share``, ``predicted_total``,
    ``actual_total``, ``n_customers`` and ``details``. Missing values (a
    constant prediction has no Spearman correlation) are ``null``. With the
    out-of-fold view, ``out_of_fold_view`` holds a ``note`` and its
    ``models``, and :data:`OUT_OF_FOLD_FILE` its table; they are never used
    to choose.
    """
    # Plots sit above evaluate in the package's layout; import them here only.
    # Figures are made without pyplot, so no backend or global state is touched.
    from matplotlib.figure import Figure

    from .. import plots

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: out / name for name in REPORT_FILES}
    labels = result.metrics["label"].to_dict()
    try:
        chosen = choose_best(result, criterion=criterion)
    except ConfigError:
        chosen = None  # only baselines were run

    models = []
    for name, row in result.metrics.iterrows():
        entry = {"name": name, **row.to_dict()}
        entry["details"] = result.details.get(name, {})
        models.append(entry)
    doc = {
        "settings": result.settings,
        "criterion": {"name": criterion, "description": CRITERIA[criterion]},
        "chosen": chosen,
        "models": models,
    }
    oof = result.out_of_fold_metrics
    if oof is not None:
        from .literature import __doc__ as note

        doc["out_of_fold_view"] = {
            "note": " ".join(note.split()),
            "models": [{"name": n, **r.to_dict()} for n, r in oof.iterrows()],
        }
        paths[OUT_OF_FOLD_FILE] = out / OUT_OF_FOLD_FILE
        oof.to_csv(paths[OUT_OF_FOLD_FILE], float_format="%.6g")
    paths["metrics.json"].write_text(
        json.dumps(_json_ready(doc), indent=2, allow_nan=False) + "\n"
    )
    result.metrics.to_csv(paths["metrics.csv"], float_format="%.6g")
    result.purchases_by_frequency.to_csv(
        paths["purchases_by_frequency.csv"], float_format="%.6g"
    )
    result.cumulative_purchases.to_csv(
        paths["cumulative_purchases.csv"], float_format="%.6g"
    )
    names = list(result.metrics.index)
    deciles = pd.concat({n: result.decile_table(n) for n in names}, names=["model"])
    deciles.to_csv(paths["deciles.csv"], float_format="%.6g")

    fig = Figure(figsize=(9, 5))
    plots.plot_backtest_purchases_by_frequency(
        result.purchases_by_frequency, labels=labels, ax=fig.subplots()
    )
    fig.tight_layout()
    fig.savefig(paths["purchases_by_frequency.png"], dpi=100)

    fig = Figure(figsize=(9, 5))
    plots.plot_cumulative_repeat_purchases(
        result.cumulative_purchases, labels=labels, ax=fig.subplots()
    )
    fig.tight_layout()
    fig.savefig(paths["cumulative_purchases.png"], dpi=100)

    n_cols = min(4, len(names))
    n_rows = math.ceil(len(names) / n_cols)
    fig = Figure(figsize=(4.2 * n_cols, 3.4 * n_rows))
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for ax, name in zip(axes.ravel(), names, strict=False):
        plots.plot_decile_chart(result.decile_table(name), title=labels[name], ax=ax)
        ax.title.set_fontsize("small")
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    fig.tight_layout()
    fig.savefig(paths["deciles.png"], dpi=100)

    fig = Figure(figsize=(7, 6))
    plots.plot_gain_curves(
        {labels[n]: result.gain_curve(n) for n in names}, ax=fig.subplots()
    )
    fig.tight_layout()
    fig.savefig(paths["gain_curve.png"], dpi=100)

    logger.debug("wrote the backtest report (%d files) to %s", len(paths), out)
    return paths
