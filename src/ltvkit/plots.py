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
