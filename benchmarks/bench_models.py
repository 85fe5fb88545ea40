"""Benchmark: ltvkit's models against lifetimes on 1,000,000 simulated customers.

Fits BG/NBD and Gamma-Gamma (with standard errors) and scores P(alive),
expected purchases over 39 weeks, expected spend and a 12-month CLV with
both libraries, then prints times and speed-ups. Not part of the test suite:
run ``python benchmarks/bench_models.py [n_customers]``.
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np
import pandas as pd

from ltvkit.models import BGNBDModel, GammaGammaModel
from ltvkit.simulate import simulate_rfm

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # CDNOW, weeks
GG = {"p": 6.25, "q": 3.74, "v": 15.44}


def simulate(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    # Ages in whole days (as a daily summary gives them), expressed in weeks.
    T = rng.integers(1, 78 * 7, n) / 7.0
    rfm = simulate_rfm("bgnbd", BG, n, T=T, seed=43)
    rfm["recency"] = np.round(rfm["recency"] * 7) / 7  # days, as in real data
    nu = rng.gamma(GG["q"], 1.0 / GG["v"], n)
    x = rfm["frequency"].to_numpy()
    mean = rng.gamma(GG["p"] * np.maximum(x, 1), 1.0 / (nu * np.maximum(x, 1)))
    rfm["monetary_value"] = np.where(x > 0, mean, 0.0)
    return rfm


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def ltvkit_clv(bg, gg, rfm):
    try:
        from ltvkit.value import clv
    except ImportError:
        clv = None
    x, tx, T, m = (
        rfm[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")
    )
    if clv is not None:
        return clv(
            bg,
            gg,
            x,
            tx,
            T,
            m,
            time_unit="W",
            horizon_months=12,
            annual_discount_rate=0.01 * 12,
        )
    months = (np.arange(1, 13) * 365.25 / 12 / 7)[:, None]
    cum = bg.conditional_expected_purchases(months, x, tx, T)
    inc = np.diff(cum, axis=0, prepend=0.0)
    disc = (1.01 ** -np.arange(1, 13))[:, None]
    return gg.conditional_expected_spend(x, m) * (inc * disc).sum(axis=0)


def main(n: int = 1_000_000) -> None:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    rfm = simulate(n)
    rep = rfm[rfm.frequency > 0]
    print(
        f"{n:,} customers, {len(rep):,} repeat buyers, "
        f"{len(rfm.drop_duplicates(['frequency', 'recency', 'T'])):,} distinct rows"
    )
    rows = []

    ours_bg, t1 = timed(lambda: BGNBDModel().fit(rfm))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_bg, t2 = timed(
            lambda: BetaGeoFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"])
        )
    rows.append(("BG/NBD fit (+ std errors)", t1, t2))
    ours_gg, t1 = timed(lambda: GammaGammaModel().fit(rfm))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_gg, t2 = timed(
            lambda: GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
        )
    rows.append(("Gamma-Gamma fit (+ std errors)", t1, t2))

    print("\nparameters and standard errors (ltvkit | lifetimes):")
    for ours, ref in ((ours_bg, ref_bg), (ours_gg, ref_gg)):
        for k in ours.params_:
            print(
                f"  {k:>6} {ours.params_[k]:12.6f} {ours.standard_errors_[k]:10.6f} | "
                f"{ref.params_[k]:12.6f} {ref.standard_errors_[k]:10.6f}"
            )

    # Score with the same parameters on both sides.
    ref_bg.params_ = pd.Series(ours_bg.params_)
    ref_gg.params_ = pd.Series(ours_gg.params_)
    x, tx, T, m = (
        rfm[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")
    )

    def ours_score():
        return (
            ours_bg.conditional_probability_alive(x, tx, T),
            ours_bg.conditional_expected_purchases(39.0, x, tx, T),
            ours_gg.conditional_expected_spend(x, m),
            ltvkit_clv(ours_bg, ours_gg, rfm),
        )

    def ref_score():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return (
                ref_bg.conditional_probability_alive(x, tx, T),
                ref_bg.conditional_expected_number_of_purchases_up_to_time(
                    39.0, x, tx, T
                ),
                ref_gg.conditional_expected_average_profit(
                    rfm["frequency"], rfm["monetary_value"]
                ).to_numpy(),
                ref_gg.customer_lifetime_value(
                    ref_bg,
                    rfm["frequency"],
                    rfm["recency"],
                    rfm["T"],
                    rfm["monetary_value"],
                    time=12,
                    discount_rate=0.01,
                    freq="W",
                ).to_numpy(),
            )

    ours, t1 = timed(ours_score)
    theirs, t2 = timed(ref_score)
    rows.append(("scoring: P(alive), E[purchases], spend, CLV", t1, t2))
    names = ("P(alive)", "E[purchases 39 wk]", "expected spend", "12-month CLV")
    print("\nlargest relative difference of the scores (same parameters):")
    for name, a, b in zip(names, ours, theirs, strict=True):
        ok = np.isfinite(b)
        rel = np.max(np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-300))
        print(f"  {name:>20}: {rel:.2e}  (lifetimes non-finite: {int((~ok).sum())})")
    print("  (CLV months differ: ltvkit 365.25/12 days, lifetimes 4.345 weeks)")

    print(f"\n{'step':<46}{'ltvkit s':>10}{'lifetimes s':>13}{'speed-up':>10}")
    for name, a, b in rows:
        print(f"{name:<46}{a:>10.3f}{b:>13.3f}{b / a:>9.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
