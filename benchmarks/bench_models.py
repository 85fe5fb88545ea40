"""Benchmark: ltvkit's models against lifetimes on 1,000,000 simulated customers.

Fits BG/NBD and Gamma-Gamma (with standard errors) and scores P(alive),
expected purchases over 39 weeks, expected spend and a 12-month CLV with
both libraries; prints a table of times and speed-ups and checks that the
two agree (parameters to 1e-5 relative, standard errors, predictions with the
same parameters). Not part of the test suite:

    python benchmarks/bench_models.py [n_customers] [--repeat N]

Each step is timed ``N`` times (default 1) on each side and the best time is
kept. The data: BG/NBD with the CDNOW parameters (weeks), customer ages drawn
uniformly in whole days up to 78 weeks and recency rounded to days, as in a
daily summary, so the distinct (frequency, recency, T) rows are a sizeable
share of the customers; spend from Gamma-Gamma.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np
import pandas as pd

from ltvkit.models import BGNBDModel, GammaGammaModel
from ltvkit.simulate import simulate_rfm

BG = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # CDNOW, weeks
GG = {"p": 6.25, "q": 3.74, "v": 15.44}
PARAM_RTOL = 1e-5
SE_RTOL = 1e-3
PRED_RTOL = 1e-8
# lifetimes' CLV: month k ends at k * 4.345 weeks, discounted by 1.01**-k.
LT_MONTH_WEEKS = 4.345
LT_MONTHLY_DISCOUNT = 0.01


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


def timed(fn, repeat: int):
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
        best = min(best, time.perf_counter() - start)
    return out, best


def max_rel(a, b) -> tuple[float, int]:
    """Largest relative difference where b is finite, and how many are not."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    ok = np.isfinite(b)
    rel = np.abs(a[ok] - b[ok]) / np.maximum(np.abs(b[ok]), 1e-300)
    return float(rel.max(initial=0.0)), int((~ok).sum())


def clv_lifetimes_convention(bg, gg, x, tx, T, m) -> np.ndarray:
    """ltvkit's models on lifetimes' CLV grid: checks the predictions behind it."""
    months = np.arange(1, 13)
    cum = bg.conditional_expected_purchases(
        (months * LT_MONTH_WEEKS)[:, None], x, tx, T
    )
    inc = np.diff(cum, axis=0, prepend=0.0)
    disc = (1.0 + LT_MONTHLY_DISCOUNT) ** -months.astype(float)
    return gg.conditional_expected_spend(x, m) * np.einsum("h,hn->n", disc, inc)


def main(n: int, repeat: int) -> int:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    from ltvkit.value import clv

    rfm = simulate(n)
    rep = rfm[rfm.frequency > 0]
    distinct = len(rfm.drop_duplicates(["frequency", "recency", "T"]))
    print(
        f"{n:,} customers, {len(rep):,} repeat buyers, {distinct:,} distinct "
        f"(frequency, recency, T) rows ({distinct / n:.0%}); "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
        f"best of {repeat} run(s) per step"
    )
    rows = []
    failures = []

    def check(name, value, limit):
        status = "ok" if value <= limit else "FAIL"
        if status == "FAIL":
            failures.append(name)
        return f"{value:.2e} (<= {limit:g}: {status})"

    ours_bg, t1 = timed(lambda: BGNBDModel().fit(rfm), repeat)
    ref_bg, t2 = timed(
        lambda: BetaGeoFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"]),
        repeat,
    )
    rows.append(("BG/NBD fit (+ standard errors)", t1, t2))
    ours_gg, t1 = timed(lambda: GammaGammaModel().fit(rfm), repeat)
    ref_gg, t2 = timed(
        lambda: GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"]),
        repeat,
    )
    rows.append(("Gamma-Gamma fit (+ standard errors)", t1, t2))

    print("\nparameters and standard errors (ltvkit | lifetimes), relative diffs:")
    for ours, ref in ((ours_bg, ref_bg), (ours_gg, ref_gg)):
        for k in ours.params_:
            p_ours, p_ref = ours.params_[k], float(ref.params_[k])
            se_ours, se_ref = ours.standard_errors_[k], float(ref.standard_errors_[k])
            p_rel = abs(p_ours - p_ref) / abs(p_ref)
            se_rel = abs(se_ours - se_ref) / abs(se_ref)
            print(
                f"  {k:>6} {p_ours:12.7f} {se_ours:10.7f} | {p_ref:12.7f} "
                f"{se_ref:10.7f}   param {check(k, p_rel, PARAM_RTOL)}, "
                f"se {check(k + ' se', se_rel, SE_RTOL)}"
            )

    # Score with the same parameters on both sides.
    ref_bg.params_ = pd.Series(ours_bg.params_)
    ref_gg.params_ = pd.Series(ours_gg.params_)
    x, tx, T, m = (
        rfm[c].to_numpy(float) for c in ("frequency", "recency", "T", "monetary_value")
    )
    steps = [
        (
            "P(alive)",
            lambda: ours_bg.conditional_probability_alive(x, tx, T),
            lambda: ref_bg.conditional_probability_alive(x, tx, T),
        ),
        (
            "E[purchases in 39 weeks]",
            lambda: ours_bg.conditional_expected_purchases(39.0, x, tx, T),
            lambda: ref_bg.conditional_expected_number_of_purchases_up_to_time(
                39.0, x, tx, T
            ),
        ),
        (
            "expected spend per purchase",
            lambda: ours_gg.conditional_expected_spend(x, m),
            lambda: ref_gg.conditional_expected_average_profit(
                rfm["frequency"], rfm["monetary_value"]
            ).to_numpy(),
        ),
        (
            "12-month CLV (ltvkit.value.clv)",
            lambda: clv(
                ours_bg,
                ours_gg,
                x,
                tx,
                T,
                m,
                time_unit="W",
                horizon_months=12,
                annual_discount_rate=0.12,
            ),
            lambda: ref_gg.customer_lifetime_value(
                ref_bg,
                rfm["frequency"],
                rfm["recency"],
                rfm["T"],
                rfm["monetary_value"],
                time=12,
                discount_rate=LT_MONTHLY_DISCOUNT,
                freq="W",
            ).to_numpy(),
        ),
    ]
    print("\npredictions with the same parameters, largest relative difference:")
    total_ours = total_ref = 0.0
    ref_clv = None
    for name, ours_fn, ref_fn in steps:
        ours, t1 = timed(ours_fn, repeat)
        theirs, t2 = timed(ref_fn, repeat)
        total_ours += t1
        total_ref += t2
        rows.append(("  " + name, t1, t2))
        rel, bad = max_rel(ours, theirs)
        if name.startswith("12-month"):
            ref_clv = theirs
            print(
                f"  {name:>32}: {rel:.2e} (conventions differ: months of 365.25/12 "
                "days and an annual rate; lifetimes 4.345 weeks, 1% a month)"
            )
        else:
            print(f"  {name:>32}: {check(name, rel, PRED_RTOL)}")
        if bad:
            print(f"  {'':>32}  lifetimes non-finite for {bad} customers")
    same = clv_lifetimes_convention(ours_bg, ours_gg, x, tx, T, m)
    rel, _ = max_rel(same, ref_clv)
    print(
        f"  {'CLV on lifetimes grid':>32}: {check('CLV', rel, PRED_RTOL)} "
        "(ltvkit's models, lifetimes' months and discount)"
    )
    rows.append(("scoring, all four", total_ours, total_ref))

    print(f"\n{'step':<40}{'ltvkit s':>10}{'lifetimes s':>13}{'speed-up':>10}")
    for name, a, b in rows:
        print(f"{name:<40}{a:>10.3f}{b:>13.3f}{b / a:>9.1f}x")
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    if failures:
        print("DISAGREEMENTS: " + ", ".join(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_customers", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    raise SystemExit(main(args.n_customers, args.repeat))
