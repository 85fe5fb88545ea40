"""End-to-end job, ltvkit against lifetimes + pandas, side by side.

For each size, a synthetic log is written to Parquet once; then each side
runs in its own fresh process (so that peak memory is its own):

* ltvkit: read the Parquet log in DuckDB, summarise, fit BG/NBD and
  Gamma-Gamma with standard errors, score (P(alive), expected purchases,
  expected spend, 12-month CLV) and write the scored list to Parquet chunk
  by chunk (``score_to_file``, as ``ltvkit score`` does);
* lifetimes: pandas.read_parquet, summary_data_from_transaction_data,
  BetaGeoFitter and GammaGammaFitter (standard errors included), the same
  predictions and customer_lifetime_value, DataFrame.to_parquet.

It prints wall time and peak resident memory for both, their ratios, and
how each grows with size. Run:

    .venv/bin/python benchmarks/bench_pipeline.py --sizes 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def run_ltvkit(log: str, out: str) -> dict:
    import warnings

    import ltvkit
    from ltvkit.pipeline import score_to_file, train

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    tx = ltvkit.read_transactions(log)
    trained = train(tx, time_unit="W", regressor=False, backtest=False)
    trained.purchase_model.summary()  # standard errors are computed in fit
    n = score_to_file(trained, tx, out, horizon_months=12, annual_discount_rate=0.0)
    seconds = time.perf_counter() - t0
    clv_sum = tx.sql(f"SELECT sum(clv) FROM '{out}'").fetchall()[0][0]
    return {
        "seconds": seconds,
        "customers": n,
        "params": trained.purchase_model.params_,
        "clv_sum": float(clv_sum),
    }


def run_lifetimes(log: str, out: str) -> dict:
    import warnings

    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    warnings.simplefilter("ignore")
    t0 = time.perf_counter()
    frame = pd.read_parquet(log)
    # Daily occasions with time in weeks, as on the ltvkit side.
    rfm = summary_data_from_transaction_data(
        frame, "customer_id", "date", "amount", freq="D"
    )
    rfm[["recency", "T"]] /= 7.0
    bg = BetaGeoFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"])
    _ = bg.summary  # standard errors from the Hessian
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    gg = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    _ = gg.summary
    f, r, t = rfm["frequency"], rfm["recency"], rfm["T"]
    rfm["p_alive"] = bg.conditional_probability_alive(f, r, t)
    purchases = bg.conditional_expected_number_of_purchases_up_to_time(52.18, f, r, t)
    rfm["expected_purchases"] = purchases
    spend = gg.conditional_expected_average_profit(f, rfm["monetary_value"])
    rfm["expected_spend"] = purchases * spend
    rfm["clv"] = gg.customer_lifetime_value(
        bg, f, r, t, rfm["monetary_value"], time=12, discount_rate=0.0, freq="W"
    )
    rfm.to_parquet(out)
    return {
        "seconds": time.perf_counter() - t0,
        "customers": len(rfm),
        "params": bg.params_.to_dict(),
        "clv_sum": float(rfm["clv"].sum()),
    }


def peak_mib() -> float:
    """Peak resident memory of this process since it started.

    On Linux this is VmHWM: ``ru_maxrss`` would survive the exec and report
    the parent's resident memory at the fork when that is larger.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(side: str, log: str, out: str) -> None:
    result = (run_ltvkit if side == "ltvkit" else run_lifetimes)(log, out)
    result["peak_mib"] = peak_mib()
    print(json.dumps(result))


def measure(side: str, log: Path, out: Path) -> dict:
    proc = subprocess.run(
        [sys.executable, str(HERE), "--child", side, str(log), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{side} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def simulate(n: int, path: Path, seed: int) -> int:
    from ltvkit.synthetic import write_simulated_log

    info = write_simulated_log(path, n_customers=n, seed=seed)
    return info["n_transactions"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-lifetimes-above", type=int, default=10_000_000)
    parser.add_argument("--child", nargs=3, metavar=("SIDE", "LOG", "OUT"))
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    rows = []
    with tempfile.TemporaryDirectory(prefix="ltvkit-bench-") as tmp:
        for n in args.sizes:
            log = Path(tmp) / f"log_{n}.parquet"
            t0 = time.perf_counter()
            n_tx = simulate(n, log, args.seed)
            print(
                f"{n:,} customers, {n_tx:,} transactions simulated "
                f"in {time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            ours = measure("ltvkit", log, Path(tmp) / "ours.parquet")
            theirs = None
            if n <= args.skip_lifetimes_above:
                theirs = measure("lifetimes", log, Path(tmp) / "theirs.parquet")
            rows.append((n, n_tx, ours, theirs))
            os.unlink(log)
            print_row(n, n_tx, ours, theirs)
    print_growth(rows)


def print_row(n, n_tx, ours, theirs) -> None:
    print(f"  ltvkit    : {ours['seconds']:8.2f} s  {ours['peak_mib']:8.0f} MiB")
    if theirs is None:
        return
    print(f"  lifetimes : {theirs['seconds']:8.2f} s  {theirs['peak_mib']:8.0f} MiB")
    print(
        f"  ratio     : {theirs['seconds'] / ours['seconds']:8.1f}x faster, "
        f"{ours['peak_mib'] / theirs['peak_mib']:.2f} of the peak memory"
    )
    worst = max(
        abs(ours["params"][k] - theirs["params"][k]) / abs(theirs["params"][k])
        for k in ("r", "alpha", "a", "b")
    )
    print(f"  BG/NBD parameters agree to {worst:.1e} relative", flush=True)


def print_growth(rows) -> None:
    if len(rows) < 2:
        return
    print("\ngrowth from the smallest size:")
    n0, _, ours0, theirs0 = rows[0]
    for n, _, ours, theirs in rows[1:]:
        t_ratio = ours["seconds"] / ours0["seconds"]
        m_ratio = ours["peak_mib"] / ours0["peak_mib"]
        line = (
            f"  x{n / n0:>6.0f} customers: ltvkit time x{t_ratio:.1f},"
            f" memory x{m_ratio:.1f}"
        )
        if theirs and theirs0:
            line += (
                f"; lifetimes time x{theirs['seconds'] / theirs0['seconds']:.1f},"
                f" memory x{theirs['peak_mib'] / theirs0['peak_mib']:.1f}"
            )
        print(line)


if __name__ == "__main__":
    main()
