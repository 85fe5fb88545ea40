"""The command line: help, errors, and a train -> score round trip."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from ltvkit.cli import main

ROOT = Path(__file__).resolve().parents[1]
SCORED_COLUMNS = [
    "segment",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
    "horizon_months",
    "predicted_spend_ml",
]


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "cdnow_sample.csv"
    result = run("cdnow", "--kind", "sample", "--out", str(path))
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture(scope="module")
def sample_model(sample_csv, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "cdnow_sample"
    result = run(
        "train",
        "--transactions",
        str(sample_csv),
        "--time-unit",
        "W",
        "--observation-end",
        "1997-09-30",
        "--out",
        str(folder),
    )
    assert result.exit_code == 0, result.output
    return folder


@pytest.mark.parametrize("command", ["train", "score", "evaluate", "cdnow", "simulate"])
def test_cli_help_shows_an_example(command):
    result = run(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    assert "ltvkit " + command in result.output


def test_cli_version():
    result = run("--version")
    assert result.exit_code == 0
    assert "ltvkit" in result.output


def test_cli_train_reproduces_the_published_fit(sample_model):
    params = json.loads((sample_model / "purchase_model.json").read_text())["params"]
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    for name, value in published.items():
        assert params[name] == pytest.approx(value, abs=1e-3)
    spend = json.loads((sample_model / "spend_model.json").read_text())["params"]
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert spend[name] == pytest.approx(value, abs=1e-2)
    manifest = json.loads((sample_model / "manifest.json").read_text())
    assert manifest["time_unit"] == "W"
    assert manifest["observation_end"] == "1997-09-30"


def test_cli_score_writes_every_customer(sample_model, sample_csv, tmp_path):
    out = tmp_path / "scored.parquet"
    segments = tmp_path / "segments.csv"
    result = run(
        "score",
        "--model",
        str(sample_model),
        "--transactions",
        str(sample_csv),
        "--out",
        str(out),
        "--segment-by",
        "acquisition-month",
        "--spend",
        str(ROOT / "examples" / "cdnow_spend.csv"),
        "--segments-out",
        str(segments),
    )
    assert result.exit_code == 0, result.output
    scored = pd.read_parquet(out)
    assert len(scored) == 2357
    assert scored.index.name == "customer_id"
    assert set(SCORED_COLUMNS) <= set(scored.columns)
    assert (scored["horizon_months"] == 12).all()
    table = pd.read_csv(segments)
    assert {"cac", "ltv_per_customer", "ltv_cac_ratio", "flag"} <= set(table.columns)
    assert "values are revenue" in result.output
    assert "1997-01" in result.output


def test_cli_wrong_column_is_one_error_line(sample_csv, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "train",
            "-t",
            str(sample_csv),
            "--customer-id-col",
            "cust",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1].startswith("Error: The transaction log has no customer id column")
    assert "Traceback" not in result.output
    assert not (tmp_path / "m").exists()


def test_cli_unparseable_date_is_one_error_line(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("customer_id,date,amount\na,2021-01-01,1\na,yesterday,2\n")
    result = CliRunner().invoke(
        main, ["train", "-t", str(log), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: ")
    assert "row 2" in result.output


def test_cli_existing_model_folder_needs_force(sample_model, sample_csv):
    result = CliRunner().invoke(
        main, ["train", "-t", str(sample_csv), "--out", str(sample_model)]
    )
    assert result.exit_code == 2
    assert "--force" in result.output


def test_cli_output_suffix_must_name_a_format(sample_model, sample_csv, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "score",
            "-m",
            str(sample_model),
            "-t",
            str(sample_csv),
            "--out",
            str(tmp_path / "scored.xlsx"),
        ],
    )
    assert result.exit_code == 2
    assert ".csv or .parquet" in result.output


@pytest.mark.parametrize("where", ["a folder", "under a file"])
def test_cli_unwritable_outputs_are_refused_before_any_work(
    sample_model, sample_csv, tmp_path, where
):
    # An output that names a folder, or sits under a file, is a usage error
    # found before the log is read; nothing is written, not even the other
    # output.
    (tmp_path / "taken.csv").mkdir()
    (tmp_path / "plain.txt").write_text("x")
    bad = (
        tmp_path / "taken.csv" if where == "a folder" else tmp_path / "plain.txt/s.csv"
    )
    commands = [
        ["score", "-m", str(sample_model), "-t", str(sample_csv), "--out", str(bad)],
        [
            "score",
            "-m",
            str(sample_model),
            "-t",
            str(sample_csv),
            "--out",
            str(tmp_path / "ok.csv"),
            "--segments-out",
            str(bad),
            "--spend",
            str(sample_csv),
            "--segment-by",
            "acquisition-month",
        ],
        ["simulate", "--customers", "100", "--out", str(bad)],
        ["train", "-t", str(sample_csv), "--out", str(tmp_path / "plain.txt/m")],
    ]
    for args in commands:
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output and "unexpected" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.txt", "taken.csv"]


def test_cli_missing_model_folder_is_an_error(sample_csv, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "score",
            "-m",
            str(tmp_path / "none"),
            "-t",
            str(sample_csv),
            "--out",
            str(tmp_path / "s.csv"),
        ],
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("Error: ")
    assert not (tmp_path / "s.csv").exists()


def test_cli_interrupted_score_leaves_no_partial_output(sample_model, tmp_path):
    log = tmp_path / "master.csv"
    assert run("cdnow", "--kind", "master", "--out", str(log)).exit_code == 0
    exe = [sys.executable, "-m", "ltvkit.cli"]
    for delay in (0.5, 1.5, 3.0):
        out = tmp_path / f"scored_{delay}.csv"
        proc = subprocess.Popen(
            [
                *exe,
                "score",
                "-m",
                str(sample_model),
                "-t",
                str(log),
                "--out",
                str(out),
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")]
        assert leftovers == []
        if out.exists():  # finished before the signal: then it is complete
            assert len(pd.read_csv(out)) == 23570
        else:
            assert proc.returncode != 0
    assert os.listdir(tmp_path)


def test_cli_simulate_then_train_and_score_with_segments(tmp_path):
    log = tmp_path / "sim.parquet"
    result = run("simulate", "--customers", "3000", "--seed", "2", "--out", str(log))
    assert result.exit_code == 0, result.output
    spend = tmp_path / "sim_spend.csv"
    assert spend.exists()
    model = tmp_path / "m"
    result = run(
        "train",
        "-t",
        str(log),
        "--segment-col",
        "segment",
        "--time-unit",
        "W",
        "--no-regressor",
        "--out",
        str(model),
    )
    assert result.exit_code == 0, result.output
    segments = tmp_path / "segments.csv"
    result = run(
        "score",
        "-m",
        str(model),
        "-t",
        str(log),
        "--segment-col",
        "segment",
        "--spend",
        str(spend),
        "--out",
        str(tmp_path / "s.csv"),
        "--segments-out",
        str(segments),
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(segments)
    assert table["customers_acquired"].sum() == 3000
    assert table["flag"].isin(["profitable", "below_target", "unprofitable"]).all()


def test_cli_evaluate_writes_a_report_folder(sample_csv, tmp_path):
    out = tmp_path / "report"
    args = [
        "evaluate",
        "-t",
        str(sample_csv),
        "--calibration-end",
        "1997-09-30",
        "--observation-end",
        "1998-06-30",
        "--candidates",
        "bgnbd_gg,population_mean",
        "--out",
        str(out),
    ]
    result = run(*args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    names = [m["name"] for m in metrics["models"]]
    assert names == ["bgnbd_gg", "population_mean"]
    bgnbd = metrics["models"][0]
    assert bgnbd["rmse"] == pytest.approx(72.3, abs=0.05)
    assert bgnbd["gini"] == pytest.approx(0.638, abs=0.0005)
    assert "best on rmse_within_bias: bgnbd_gg" in result.output
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2
    assert "--force" in again.output


def test_cli_train_records_the_backtest_in_the_manifest(sample_model):
    manifest = json.loads((sample_model / "manifest.json").read_text())
    report = manifest["fit_metrics"]["backtest"]
    assert report["calibration_end"] == "1997-05-17"  # middle of the log
    assert set(report["models"]) == {"bgnbd_gg", "mbgnbd_gg", "paretonbd_gg"}
    assert manifest["fit_metrics"]["backtest_of_model"] == report["models"]["bgnbd_gg"]


def test_cli_train_auto_takes_the_backtest_choice(sample_csv, tmp_path):
    folder = tmp_path / "auto"
    result = run(
        "train",
        "-t",
        str(sample_csv),
        "--time-unit",
        "W",
        "--observation-end",
        "1997-09-30",
        "--model",
        "auto",
        "--no-regressor",
        "--out",
        str(folder),
    )
    assert result.exit_code == 0, result.output
    manifest = json.loads((folder / "manifest.json").read_text())
    chosen = manifest["fit_metrics"]["backtest"]["chosen"]
    assert manifest["purchase_model"] == chosen.removesuffix("_gg")


def test_cli_score_reads_the_log_as_training_did(tmp_path):
    log = tmp_path / "log.csv"
    rows = ["cust;when;value;channel"] + [
        f"c{i};{d:02d}/0{m}/2021;{5 + i};{'web' if i % 2 else 'shop'}"
        for i in range(60)
        for m, d in ((1, 3 + i % 20), (3, 13 + i % 10), (5, 1 + i % 25))
        if not (i % 3 == 0 and m == 5)
    ]
    log.write_text("\n".join(rows).replace(";", ","))
    mapping = [
        "--customer-id-col",
        "cust",
        "--date-col",
        "when",
        "--amount-col",
        "value",
        "--segment-col",
        "channel",
        "--date-format",
        "%d/%m/%Y",
    ]
    model = tmp_path / "m"
    result = run(
        "train",
        "-t",
        str(log),
        *mapping,
        "--no-backtest",
        "--no-regressor",
        "--out",
        str(model),
    )
    assert result.exit_code == 0, result.output
    out = tmp_path / "scored.csv"
    result = run("score", "-m", str(model), "-t", str(log), "--out", str(out))
    assert result.exit_code == 0, result.output
    scored = pd.read_csv(out)
    assert set(scored["segment"]) == {"web", "shop"}
    assert len(scored) == 60


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("a,2021-01-01,5\na,2021-02-01,7\n", "models need at least 10 customers"),
        ("a,2021-01-01,5\nb,2021-02-01,7\n", "None of the 2 customers bought more"),
        ("", "has no rows"),
    ],
    ids=["one-customer", "no-repeat-buyers", "empty"],
)
def test_cli_train_too_little_data_is_one_error_line(tmp_path, rows, message):
    log = tmp_path / "log.csv"
    log.write_text("customer_id,date,amount\n" + rows)
    result = CliRunner().invoke(
        main, ["train", "-t", str(log), "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 1
    assert message in result.output.strip().splitlines()[-1]
    assert not (tmp_path / "m").exists()


def test_cli_bad_option_values_are_usage_errors_before_reading(tmp_path):
    missing = str(tmp_path / "none.csv")
    result = CliRunner().invoke(
        main, ["train", "-t", missing, "--time-unit", "X", "--out", str(tmp_path / "m")]
    )
    assert result.exit_code == 2
    result = CliRunner().invoke(
        main,
        [
            "train",
            "-t",
            missing,
            "--observation-end",
            "1997-31-12",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert result.exit_code == 2
    assert "not an ISO date" in result.output


def test_cli_spend_without_segments_is_a_usage_error(
    sample_model, sample_csv, tmp_path
):
    result = CliRunner().invoke(
        main,
        [
            "score",
            "-m",
            str(sample_model),
            "-t",
            str(sample_csv),
            "--out",
            str(tmp_path / "s.csv"),
            "--spend",
            str(ROOT / "examples" / "cdnow_spend.csv"),
        ],
    )
    assert result.exit_code == 2
    assert "--segment-by acquisition-month" in result.output
    assert not (tmp_path / "s.csv").exists()


def test_cli_score_refunds_point_to_retraining(sample_model, tmp_path):
    log = tmp_path / "refunds.csv"
    log.write_text("customer_id,date,amount\na,1997-01-01,5\na,1997-02-01,-5\n")
    result = CliRunner().invoke(
        main,
        [
            "score",
            "-m",
            str(sample_model),
            "-t",
            str(log),
            "--out",
            str(tmp_path / "s.csv"),
        ],
    )
    assert result.exit_code == 1
    assert "train it again with --refunds net" in result.output
