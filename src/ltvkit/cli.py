"""The ``ltvkit`` command line: train, score, and export the CDNOW data.

Results go to stdout or the named output files; logs, warnings and
``Error: ...`` lines go to stderr. Exit status: 0 on success, 1 for a data or
model error, 2 for a usage error. A traceback is shown only with ``--debug``.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import warnings
from pathlib import Path

import click
import pandas as pd

from . import __version__, _io
from .errors import DataError, LtvkitError

logger = logging.getLogger("ltvkit.cli")

TABLE_SUFFIXES = _io.TABLE_SUFFIXES


# ---------------------------------------------------------------- plumbing


def _setup_logging(quiet: bool, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger("ltvkit")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.ERROR if quiet else logging.INFO)
    root.propagate = False

    def show(message, category, filename, lineno, file=None, line=None):
        if not quiet:
            click.echo(f"Warning: {message}", err=True)

    warnings.showwarning = show


def write_table(frame: pd.DataFrame, path: Path, *, index: bool = True) -> None:
    """Write ``frame`` as CSV or Parquet (by suffix), atomically."""
    _check_suffix(str(path), "Output")
    _io.write_table(frame, path, index=index)


def _check_suffix(path: str | None, option: str) -> None:
    if path is not None and Path(path).suffix.lower() not in TABLE_SUFFIXES:
        raise click.UsageError(f"{option} {path} must end in .csv or .parquet.")
    _check_writable(path, option)


def _check_writable(path: str | None, option: str, *, folder: bool = False) -> None:
    """Refuse, before any work, an output path that cannot be written: a
    file path that is a folder (or a folder path that is a file), or one
    under a file or an unwritable folder. Missing folders are created."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir() and not folder:
        raise click.UsageError(f"{option} {path} is a folder; give a file name.")
    if target.exists() and not target.is_dir() and folder:
        raise click.UsageError(f"{option} {path} is a file; give a folder name.")
    parent = target.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise click.UsageError(f"{option} {path}: {parent} is a file, not a folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise click.UsageError(f"{option} {path}: cannot write in {parent}.")


class LtvkitGroup(click.Group):
    """Turn ltvkit errors into one ``Error:`` line and an exit status."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LtvkitError as exc:
            if ctx.meta.get("ltvkit.debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("Error: interrupted; no output was written.", err=True)
            ctx.exit(130)
        except OSError as exc:  # the file system refused: disk full, permissions
            if ctx.meta.get("ltvkit.debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            if ctx.meta.get("ltvkit.debug"):
                raise
            if "Query interrupted" in str(exc):  # a signal during a DuckDB query
                click.echo("Error: interrupted; no output was written.", err=True)
                ctx.exit(130)
            click.echo(
                f"Error: unexpected {type(exc).__name__}: {exc} "
                "(run again with --debug for the traceback, and please report it)",
                err=True,
            )
            ctx.exit(1)


def _common(func):
    """Options every command has."""
    func = click.option("--quiet", "-q", is_flag=True, help="Only errors on stderr.")(
        func
    )
    func = click.option(
        "--debug", is_flag=True, help="Show debug logs and tracebacks."
    )(func)
    return func


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _start(ctx: click.Context, quiet: bool, debug: bool) -> None:
    ctx.meta["ltvkit.debug"] = debug
    _setup_logging(quiet, debug)
    # A terminated run unwinds like Ctrl-C, so temporary outputs are removed.
    signal.signal(signal.SIGTERM, _interrupt)


def _log_options(func):
    """Options that say how to read a transaction log."""
    options = [
        click.option(
            "--transactions",
            "-t",
            "transactions",
            required=True,
            help="Transaction log: CSV or Parquet file, folder, or glob.",
        ),
        click.option("--customer-id-col", default=None, help="[default: customer_id]"),
        click.option("--date-col", default=None, help="[default: date]"),
        click.option("--amount-col", default=None, help="[default: amount]"),
        click.option("--segment-col", default=None, help="Optional segment column."),
        click.option(
            "--date-format",
            default=None,
            help="strptime format of the dates, e.g. '%m/%d/%Y' (default: "
            "ISO or another unambiguous format).",
        ),
        click.option(
            "--timezone",
            default=None,
            help="Zone whose calendar days count, for timestamps with offsets. "
            "[default: UTC]",
        ),
        click.option(
            "--drop-invalid-rows",
            is_flag=True,
            help="Drop rows with a missing id, date or amount (with a warning) "
            "instead of stopping.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _iso_date(ctx, param, value):
    """Check a date option before any work is done."""
    if value is None:
        return None
    try:
        return str(pd.Timestamp(value).date())
    except (ValueError, TypeError):
        raise click.BadParameter(
            f"{value!r} is not an ISO date such as 1997-09-30."
        ) from None


def _engine_option(func):
    return click.option(
        "--engine",
        type=click.Choice(["local", "spark"]),
        default="local",
        show_default=True,
        help="local: DuckDB on this machine. spark: a local-mode Spark session "
        "on 127.0.0.1, or the cluster that SPARK_REMOTE / spark-defaults name.",
    )(func)


def _read_spark(kw: dict):
    from .spark import local_spark_session, read_transactions_spark

    if kw.pop("timezone") != "UTC":
        raise click.UsageError("--timezone is not supported with --engine spark.")
    return read_transactions_spark(
        local_spark_session(),
        kw.pop("transactions"),
        customer_id_col=kw.pop("customer_id_col"),
        date_col=kw.pop("date_col"),
        amount_col=kw.pop("amount_col"),
        segment_col=kw.pop("segment_col"),
        date_format=kw.pop("date_format"),
        invalid_rows="drop" if kw.pop("drop_invalid_rows") else "error",
    )


READ_DEFAULTS = {
    "customer_id_col": "customer_id",
    "date_col": "date",
    "amount_col": "amount",
    "segment_col": None,
    "date_format": None,
    "timezone": "UTC",
}


def _read(kw: dict, defaults: dict | None = None):
    """Read the log named in ``kw``; options not given come from ``defaults``
    (how a model's training log was read), then from :data:`READ_DEFAULTS`."""
    from .load import read_transactions

    for key, value in {**READ_DEFAULTS, **(defaults or {})}.items():
        if kw.get(key) is None:
            kw[key] = value

    if kw.pop("engine", "local") == "spark":
        return _read_spark(kw)
    return read_transactions(
        kw.pop("transactions"),
        customer_id_col=kw.pop("customer_id_col"),
        date_col=kw.pop("date_col"),
        amount_col=kw.pop("amount_col"),
        segment_col=kw.pop("segment_col"),
        date_format=kw.pop("date_format"),
        timezone=kw.pop("timezone"),
        invalid_rows="drop" if kw.pop("drop_invalid_rows") else "error",
    )


# ---------------------------------------------------------------- commands


@click.group(cls=LtvkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="ltvkit")
def main() -> None:
    """Customer lifetime value from transaction logs, set against CAC.

    \b
    Start with:
      ltvkit cdnow --out cdnow.csv
      ltvkit train -t cdnow.csv --time-unit W --out models/cdnow
      ltvkit score --model models/cdnow -t cdnow.csv --out scored.csv
    """


@main.command()
@_log_options
@_engine_option
@click.option(
    "--out", "-o", required=True, type=click.Path(), help="Model folder to write."
)
@click.option(
    "--time-unit",
    type=click.Choice(["H", "D", "W", "M", "Q"]),
    default=None,
    help="Unit of recency and T: hours, days, weeks of 7 days, months or quarters "
    "(365.25/12 and 365.25/4 days). [default: D]",
)
@click.option(
    "--period",
    type=click.Choice(["D", "W", "M", "Q"]),
    default="D",
    show_default=True,
    help="Calendar period that makes one purchase occasion.",
)
@click.option(
    "--model",
    "model_kind",
    type=click.Choice(["bgnbd", "mbgnbd", "paretonbd", "auto"]),
    default="bgnbd",
    show_default=True,
    help="Purchase model; 'auto' takes the best in the backtest.",
)
@click.option(
    "--no-backtest",
    is_flag=True,
    help="Skip the backtest whose metrics go into the manifest.",
)
@click.option(
    "--calibration-end",
    default=None,
    callback=_iso_date,
    help="End of the backtest's calibration. [default: middle of the log]",
)
@click.option(
    "--observation-end",
    default=None,
    callback=_iso_date,
    help="ISO date; later rows are left out and counted. [default: latest date]",
)
@click.option(
    "--refunds",
    type=click.Choice(["error", "net"]),
    default="error",
    show_default=True,
    help="Negative amounts: stop, or net them against the customer's spend.",
)
@click.option("--drop-zero-amounts", is_flag=True, help="Drop zero-amount rows.")
@click.option("--drop-duplicates", is_flag=True, help="Drop exact duplicate rows.")
@click.option("--penalizer", type=float, default=0.0, show_default=True)
@click.option(
    "--horizon-months",
    type=click.IntRange(min=1),
    default=12,
    show_default=True,
    help="Window the spend regressor learns to predict.",
)
@click.option("--no-regressor", is_flag=True, help="Skip the scikit-learn regressor.")
@click.option("--force", is_flag=True, help="Replace an existing model folder.")
@_common
@click.pass_context
def train(ctx, out, quiet, debug, **kw) -> None:
    """Fit the purchase and spend models on a log and save a model folder.

    \b
    Example (reproduces the published CDNOW fit):
      ltvkit cdnow --kind sample --out cdnow_sample.csv
      ltvkit train --transactions cdnow_sample.csv --time-unit W \\
          --observation-end 1997-09-30 --out models/cdnow_sample
    """
    _start(ctx, quiet, debug)
    from .pipeline import save_trained
    from .pipeline import train as train_models

    out_path = Path(out)
    if out_path.exists() and not kw["force"]:
        raise click.UsageError(
            f"{out_path} exists; pass --force to replace it, or choose another --out."
        )
    _check_writable(out, "--out", folder=True)
    tx = _read(kw)
    trained = train_models(
        tx,
        time_unit=kw["time_unit"],
        period=kw["period"],
        observation_end=kw["observation_end"],
        model=kw["model_kind"],
        refunds=kw["refunds"],
        zero_amounts="drop" if kw["drop_zero_amounts"] else "keep",
        duplicates="drop" if kw["drop_duplicates"] else "keep",
        penalizer=kw["penalizer"],
        regressor=not kw["no_regressor"],
        horizon_months=kw["horizon_months"],
        backtest=not kw["no_backtest"],
        calibration_end=kw["calibration_end"],
    )
    folder = save_trained(trained, out_path, force=kw["force"])
    click.echo(f"model folder: {folder}")
    report = trained.metrics.get("backtest", {})
    if report.get("models"):
        table = pd.DataFrame(report["models"]).T.round(3)
        click.echo(
            f"backtest, calibration to {report['calibration_end']}, holdout to "
            f"{report['observation_end']}:\n{table.to_string()}"
        )
    click.echo(trained.purchase_model.summary().to_string())
    click.echo(trained.spend_model.summary().to_string())


@main.command()
@click.option(
    "--model",
    "-m",
    "model_dir",
    required=True,
    type=click.Path(),
    help="Model folder from 'ltvkit train'.",
)
@_log_options
@_engine_option
@click.option(
    "--out",
    "-o",
    required=True,
    help="Scored list to write (.csv or .parquet; with --engine spark, a folder "
    "of such files).",
)
@click.option(
    "--observation-end",
    default=None,
    callback=_iso_date,
    help="Score as of this ISO date.",
)
@click.option(
    "--horizon-months", type=click.IntRange(min=1), default=12, show_default=True
)
@click.option(
    "--margin",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=1.0,
    show_default=True,
    help="Gross margin as a fraction of spend (1.0: outputs are revenue).",
)
@click.option(
    "--annual-discount-rate",
    type=click.FloatRange(min=0),
    default=0.10,
    show_default=True,
    help="Discount per year, applied monthly.",
)
@click.option(
    "--spend",
    default=None,
    help="Acquisition spend table (CSV: segment, spend[, period]).",
)
@click.option(
    "--customers",
    default=None,
    help="Optional customers table (CSV: customer_id, segment, acquired_at).",
)
@click.option(
    "--segment-by",
    type=click.Choice(["acquisition-month"]),
    default=None,
    help="Segment customers by the month of their first purchase.",
)
@click.option(
    "--target-ratio",
    type=click.FloatRange(min=0, min_open=True),
    default=3.0,
    show_default=True,
    help="LTV:CAC below which a segment is 'below_target'.",
)
@click.option("--segments-out", default=None, help="Segment table to write.")
@_common
@click.pass_context
def score(ctx, model_dir, out, quiet, debug, **kw) -> None:
    """Score every customer of a log with a trained model.

    \b
    Example:
      ltvkit score --model models/cdnow -t cdnow.csv --out scored.parquet \\
          --segment-by acquisition-month --spend examples/cdnow_spend.csv \\
          --segments-out segments.csv
    """
    _start(ctx, quiet, debug)
    from .cac import read_customers, read_spend, segment_table
    from .pipeline import load_trained, score_to_file
    from .pipeline import score as score_log

    spark = kw["engine"] == "spark"
    _check_suffix(out, "--out")
    _check_suffix(kw["segments_out"], "--segments-out")
    if kw["segments_out"] and not kw["spend"]:
        raise click.UsageError("--segments-out needs --spend.")
    trained = load_trained(model_dir)
    spend = read_spend(kw["spend"]) if kw["spend"] else None
    customers = read_customers(kw["customers"]) if kw["customers"] else None
    tx = _read(kw, trained.options.get("columns"))
    segmented = getattr(tx, "has_segment", True) or kw["segment_by"] or customers
    if spend is not None and not segmented:
        raise click.UsageError(
            "--spend needs customer segments: give --segment-col (a column of the "
            "log), --segment-by acquisition-month, or --customers."
        )
    options = dict(
        observation_end=kw["observation_end"],
        horizon_months=kw["horizon_months"],
        margin=kw["margin"],
        annual_discount_rate=kw["annual_discount_rate"],
        segment_by=kw["segment_by"],
    )
    # Without a segment table to build, the list goes straight to the file,
    # chunk by chunk.
    streamed = not spark and spend is None
    try:
        if streamed:
            n_scored = score_to_file(trained, tx, Path(out), **options)
        else:
            scored = score_log(trained, tx, **options)
    except DataError as exc:
        if "refunds='net'" not in str(exc):
            raise
        raise DataError(
            f"{exc} Scoring follows the rules the model was trained with "
            f"(refunds={trained.options.get('refunds')!r}): train it again with "
            "--refunds net to score this log."
        ) from None
    if spark:
        from .spark import write_scores_spark

        if Path(out).exists():
            raise click.UsageError(f"{out} exists; Spark does not replace outputs.")
        write_scores_spark(scored, out, file_format=Path(out).suffix.lower()[1:])
        n_scored = scored.count()
        if spend is not None:
            # One row per customer: bounded by customers, not transactions.
            scored = scored.toPandas().set_index("customer_id")
    segments = None
    if spend is not None:
        segments = segment_table(
            scored,
            spend,
            customers=customers,
            purchase_model=trained.purchase_model,
            spend_model=trained.spend_model,
            horizon_months=kw["horizon_months"],
            target_ratio=kw["target_ratio"],
            time_unit=trained.time_unit,
            margin=kw["margin"],
            annual_discount_rate=kw["annual_discount_rate"],
        )
    if not spark and not streamed:
        write_table(scored, Path(out))
        n_scored = len(scored)
    if segments is not None and kw["segments_out"]:
        write_table(segments, Path(kw["segments_out"]))
    unit = "revenue" if kw["margin"] == 1.0 else f"margin at {kw['margin']:.0%}"
    click.echo(f"scored {n_scored} customers -> {out}")
    click.echo(
        f"values are {unit}, {kw['horizon_months']} months ahead, discounted at "
        f"{kw['annual_discount_rate']:.0%} a year"
        + (" (--margin 1.0: no costs deducted)" if kw["margin"] == 1.0 else "")
    )
    if segments is not None:
        if kw["segments_out"]:
            click.echo(f"segment table -> {kw['segments_out']}")
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            click.echo(segments.to_string())


@main.command()
@_log_options
@click.option(
    "--calibration-end",
    required=True,
    callback=_iso_date,
    help="Last ISO day of calibration.",
)
@click.option(
    "--observation-end",
    default=None,
    callback=_iso_date,
    help="Last ISO day of the holdout. [default: latest date]",
)
@click.option(
    "--time-unit",
    type=click.Choice(["H", "D", "W", "M", "Q"]),
    default="W",
    show_default=True,
    help="Unit of the models' time.",
)
@click.option(
    "--candidates",
    default=None,
    help="Comma-separated candidates to run. [default: all]",
)
@click.option(
    "--criterion",
    default="rmse_within_bias",
    show_default=True,
    help="How the best candidate is chosen (rmse_within_bias, rank_sum, ...).",
)
@click.option("--out", "-o", required=True, help="Report folder to write.")
@click.option("--force", is_flag=True, help="Replace an existing report folder.")
@_common
@click.pass_context
def evaluate(ctx, out, quiet, debug, **kw) -> None:
    """Backtest every model on a holdout period and write a report folder.

    Each candidate is fitted on the calibration period only and scored on the
    customers' holdout spend: MAE, RMSE, bias, Spearman, normalized Gini,
    decile MAPE and top-decile share. The folder holds metrics.json,
    metrics.csv and PNG plots.

    \b
    Example:
      ltvkit evaluate --transactions cdnow_sample.csv --time-unit W \\
          --calibration-end 1997-09-30 --observation-end 1998-06-30 --out report
    """
    _start(ctx, quiet, debug)
    from .evaluate import choose_best, run_backtest, write_report

    out_path = Path(out)
    if out_path.exists() and not kw["force"]:
        raise click.UsageError(
            f"{out_path} exists; pass --force to replace it, or choose another --out."
        )
    _check_writable(out, "--out", folder=True)
    names = kw["candidates"].split(",") if kw["candidates"] else None
    tx = _read(kw)
    result = run_backtest(
        tx,
        calibration_end=kw["calibration_end"],
        observation_end=kw["observation_end"],
        time_unit=kw["time_unit"],
        candidates=names,
        progress=not quiet and sys.stderr.isatty(),
    )
    best = choose_best(result, criterion=kw["criterion"])
    with _io.atomic_folder(out_path, replace=kw["force"]) as tmp:
        write_report(result, tmp, criterion=kw["criterion"])
    columns = ["mae", "rmse", "bias", "spearman", "gini", "decile_mape"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        click.echo(result.metrics[columns].round(3).to_string())
    click.echo(f"best on {kw['criterion']}: {best}")
    click.echo(f"report -> {out_path}")


@main.command()
@click.option(
    "--kind",
    type=click.Choice(["master", "sample"]),
    default="master",
    show_default=True,
)
@click.option("--out", "-o", required=True, help="File to write (.csv or .parquet).")
@_common
@click.pass_context
def cdnow(ctx, kind, out, quiet, debug) -> None:
    """Export the CDNOW log bundled with lifetimes as customer_id,date,amount.

    \b
    Example:
      ltvkit cdnow --kind sample --out cdnow_sample.csv
    """
    _start(ctx, quiet, debug)
    from .load import load_cdnow

    _check_suffix(out, "--out")
    frame = load_cdnow(kind)[["customer_id", "date", "amount"]]
    frame = frame.assign(date=frame["date"].dt.strftime("%Y-%m-%d"))
    write_table(frame, Path(out), index=False)
    click.echo(f"{len(frame)} CDNOW {kind} rows -> {out}")


@main.command()
@click.option(
    "--customers",
    "n_customers",
    type=click.IntRange(min=1),
    required=True,
    help="Number of customers.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "-o", required=True, help="Log to write (.csv or .parquet).")
@click.option(
    "--spend-out",
    default=None,
    help="Spend table to write. [default: <out stem>_spend.csv beside the log]",
)
@click.option("--r", "r", type=float, default=None, help="BG/NBD r. [0.243]")
@click.option("--alpha", type=float, default=None, help="BG/NBD alpha, weeks. [4.414]")
@click.option("--a", "a", type=float, default=None, help="BG/NBD a. [0.793]")
@click.option("--b", "b", type=float, default=None, help="BG/NBD b. [2.426]")
@click.option("--p", "p", type=float, default=None, help="Gamma-Gamma p. [6.25]")
@click.option("--q", "q", type=float, default=None, help="Gamma-Gamma q. [3.74]")
@click.option("--v", "v", type=float, default=None, help="Gamma-Gamma v. [15.44]")
@click.option(
    "--start",
    default="2022-01-01",
    show_default=True,
    help="First day of the acquisition year.",
)
@_common
@click.pass_context
def simulate(ctx, n_customers, seed, out, spend_out, start, quiet, debug, **kw):
    """Write a synthetic log drawn from known BG/NBD and Gamma-Gamma parameters.

    By default the parameters are those published for the CDNOW sample (time
    in weeks): r=0.243, alpha=4.414, a=0.793, b=2.426; p=6.25, q=3.74,
    v=15.44. Customers are acquired over one year from --start and observed
    for two more years, through four segments (search, social, email,
    affiliate) that differ in purchase rate, spend and acquisition cost. The
    matching spend table (segment, period, spend) is written beside the log.

    \b
    Example:
      ltvkit simulate --customers 100000 --seed 1 --out sim.parquet
      ltvkit train -t sim.parquet --segment-col segment --time-unit W \\
          --out models/sim
    """
    _start(ctx, quiet, debug)
    from .synthetic import write_simulated_log

    _check_suffix(out, "--out")
    _check_suffix(spend_out, "--spend-out")
    purchase = {k: kw[k] for k in ("r", "alpha", "a", "b") if kw[k] is not None}
    spend = {k: kw[k] for k in ("p", "q", "v") if kw[k] is not None}
    info = write_simulated_log(
        out,
        n_customers=n_customers,
        seed=seed,
        params=purchase,
        spend_params=spend,
        start=start,
        spend_path=spend_out,
        progress=not quiet and sys.stderr.isatty(),
    )
    click.echo(
        f"{info['n_customers']} customers, {info['n_transactions']} transactions "
        f"to {info['observation_end']} -> {info['path']}"
    )
    click.echo(f"spend table -> {info['spend_path']}")


if __name__ == "__main__":  # pragma: no cover
    main()
