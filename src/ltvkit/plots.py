"""Plots of model fit and segment economics (matplotlib).

Every function draws on the ``ax`` it is given (or a new one) and returns it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = [
    "purchases_by_frequency",
    "plot_calibration_purchases_vs_holdout",
    "plot_segment_ltv_cac",
]


def purchases_by_frequency(
    split: pd.DataFrame, purchase_model, *, max_frequency: int = 7
) -> pd.DataFrame:
    """Mean actual and expected holdout purchases by calibration frequency.

    Parameters
    ----------
    split : pandas.DataFrame
        From :func:`ltvkit.summarise_calibration_holdout`.
    purchase_model : fitted purchase model
        Fitted on the calibration columns.
    max_frequency : int, default=7
        Frequencies of this many or more are pooled in one group (``"7+"``).

    Returns
    -------
    pandas.DataFrame
        Indexed by frequency group, with columns ``n_customers``, ``actual``
        and ``expected`` (mean holdout purchases per customer).
    """
    expected = purchase_model.conditional_expected_purchases(
        split["duration_holdout"].to_numpy(),
        split["frequency_cal"].to_numpy(),
        split["recency_cal"].to_numpy(),
        split["T_cal"].to_numpy(),
    )
    group = np.minimum(split["frequency_cal"].to_numpy(), max_frequency)
    labels = [str(g) if g < max_frequency else f"{max_frequency}+" for g in group]
    frame = pd.DataFrame(
        {
            "group": labels,
            "order": group,
            "actual": split["frequency_holdout"].to_numpy(),
            "expected": expected,
        }
    )
    out = frame.groupby(["order", "group"]).agg(
        n_customers=("actual", "size"),
        actual=("actual", "mean"),
        expected=("expected", "mean"),
    )
    return out.reset_index("order", drop=True).rename_axis("frequency_cal")


def plot_calibration_purchases_vs_holdout(
    split: pd.DataFrame, purchase_model, *, max_frequency: int = 7, ax=None
):
    """Bar chart of actual vs expected holdout purchases by calibration frequency."""
    table = purchases_by_frequency(split, purchase_model, max_frequency=max_frequency)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["actual"], width=0.4, label="actual")
    ax.bar(x + 0.2, table["expected"], width=0.4, label="model")
    ax.set_xticks(x, table.index)
    ax.set_xlabel("purchases in the calibration period (repeat)")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title("Holdout purchases by calibration frequency")
    ax.legend()
    return ax


def plot_segment_ltv_cac(segments: pd.DataFrame, *, target_ratio=None, ax=None):
    """Bars of LTV per customer beside CAC for each segment, coloured by flag.

    Parameters
    ----------
    segments : pandas.DataFrame
        From :func:`ltvkit.cac.segment_table`.
    target_ratio : float, optional
        Draws the target LTV level (target x CAC) as a marker per segment.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4))
    table = segments.reset_index()
    label = table.iloc[:, 0].astype(str)
    if "period" in table.columns and table["period"].notna().any():
        label = label + " " + table["period"].astype(str)
    x = np.arange(len(table))
    colours = {
        "profitable": "tab:green",
        "below_target": "tab:orange",
        "unprofitable": "tab:red",
    }
    ax.bar(
        x - 0.2,
        table["ltv_per_customer"],
        width=0.4,
        color=[colours.get(f, "tab:gray") for f in table["flag"]],
        label="LTV per customer",
    )
    ax.bar(x + 0.2, table["cac"], width=0.4, color="tab:blue", label="CAC")
    if target_ratio is not None:
        ax.scatter(
            x + 0.2,
            table["cac"] * target_ratio,
            marker="_",
            s=400,
            color="k",
            label=f"{target_ratio:g} x CAC",
        )
    ax.set_xticks(x, label, rotation=30, ha="right")
    ax.set_ylabel("value per acquired customer")
    ax.set_title("LTV against CAC by segment (bar colour: flag)")
    ax.legend()
    return ax


# -- backtest plots (used by ltvkit.evaluate.write_report) -----------------------

__all__ += [
    "plot_backtest_purchases_by_frequency",
    "plot_cumulative_repeat_purchases",
    "plot_decile_chart",
    "plot_gain_curves",
]


def plot_backtest_purchases_by_frequency(
    table: pd.DataFrame, *, labels: dict[str, str] | None = None, ax=None
):
    """Bars of actual and expected holdout purchases by calibration frequency.

    Parameters
    ----------
    table : pandas.DataFrame
        ``BacktestResult.purchases_by_frequency``: indexed by frequency group,
        with ``actual`` and one ``expected_<model>`` column per model.
    labels : dict, optional
        Display label of each model name.
    """
    labels = labels or {}
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    columns = ["actual"] + [c for c in table.columns if c.startswith("expected_")]
    width = 0.8 / len(columns)
    x = np.arange(len(table))
    for i, col in enumerate(columns):
        name = col.removeprefix("expected_")
        ax.bar(
            x + (i - (len(columns) - 1) / 2) * width,
            table[col],
            width=width,
            label="actual" if col == "actual" else labels.get(name, name),
        )
    ax.set_xticks(x, table.index)
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout period")
    ax.set_title("Holdout purchases by calibration frequency: actual vs expected")
    ax.legend(fontsize="small")
    return ax


def plot_cumulative_repeat_purchases(
    cumulative: pd.DataFrame, *, labels: dict[str, str] | None = None, ax=None
):
    """Lines of cumulative repeat purchases over time, actual and per model.

    Parameters
    ----------
    cumulative : pandas.DataFrame
        ``BacktestResult.cumulative_purchases``: indexed by period, with
        ``actual`` and one column per model; ``attrs["calibration_period"]``
        marks the end of calibration.
    labels : dict, optional
        Display label of each model name.
    """
    labels = labels or {}
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    ax.plot(cumulative.index, cumulative["actual"], color="k", lw=2, label="actual")
    for col in cumulative.columns:
        if col != "actual":
            ax.plot(
                cumulative.index, cumulative[col], ls="--", label=labels.get(col, col)
            )
    end = cumulative.attrs.get("calibration_period")
    if end is not None:
        ax.axvline(end, color="gray", ls=":", label="end of calibration")
    unit = cumulative.attrs.get("time_unit", "")
    ax.set_xlabel(f"time since the log's first day ({unit})")
    ax.set_ylabel("cumulative repeat purchases")
    ax.set_title("Cumulative repeat purchases: actual vs models")
    ax.legend(fontsize="small")
    return ax


def plot_decile_chart(table: pd.DataFrame, *, title: str | None = None, ax=None):
    """Bars of mean predicted and actual holdout value by prediction decile.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`ltvkit.evaluate.decile_table`: indexed by decile (1 = the
        highest predictions), with ``predicted_mean`` and ``actual_mean``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    x = np.arange(len(table))
    ax.bar(x - 0.2, table["actual_mean"], width=0.4, label="actual")
    ax.bar(x + 0.2, table["predicted_mean"], width=0.4, label="predicted")
    ax.set_xticks(x, table.index)
    ax.set_xlabel("decile of the prediction (1 = highest)")
    ax.set_ylabel("mean holdout value per customer")
    ax.set_title(title or "Predicted and actual value by decile")
    ax.legend(fontsize="small")
    return ax


def plot_gain_curves(curves: dict[str, pd.DataFrame], *, ax=None):
    """Gain curves: share of actual value captured by the top-predicted customers.

    Parameters
    ----------
    curves : dict of str to pandas.DataFrame
        Label to a frame from :func:`ltvkit.evaluate.gain_curve`
        (``customer_share``, ``value_share``).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    for label, curve in curves.items():
        ax.plot(curve["customer_share"], curve["value_share"], label=label)
    ax.plot([0, 1], [0, 1], color="gray", ls=":", label="random")
    ax.set_xlabel("share of customers, highest predictions first")
    ax.set_ylabel("share of actual holdout value")
    ax.set_title("Gain curves")
    ax.legend(fontsize="small")
    return ax
