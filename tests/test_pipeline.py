"""The train / score pipeline: scoring straight to a file, chunk by chunk."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

import ltvkit.pipeline as pipeline
from ltvkit import read_transactions


@pytest.fixture(scope="module")
def trained_sample(cdnow_sample):
    tx = read_transactions(cdnow_sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trained = pipeline.train(tx, time_unit="W", backtest=False)
    return trained, tx


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_score_to_file_in_chunks_writes_the_scored_list(
    trained_sample, tmp_path, monkeypatch, suffix
):
    trained, tx = trained_sample
    options = dict(horizon_months=6, margin=0.3, annual_discount_rate=0.1)
    expected = pipeline.score(trained, tx, **options)
    assert "predicted_spend_ml" in expected
    monkeypatch.setattr(pipeline, "SCORE_CHUNK_ROWS", 500)
    path = tmp_path / f"scored{suffix}"
    n = pipeline.score_to_file(trained, tx, path, **options)
    assert n == len(expected) == 2357
    if suffix == ".csv":
        back = pd.read_csv(
            path, dtype={"customer_id": str}, parse_dates=["first_purchase"]
        )
        back = back.set_index("customer_id")
        expected = expected.astype({"first_purchase": "datetime64[ns]"})
        back = back.astype({"first_purchase": "datetime64[ns]"})
    else:
        back = pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, expected, check_dtype=False, rtol=1e-12)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_score_to_file_failure_leaves_no_file(trained_sample, tmp_path, monkeypatch):
    trained, tx = trained_sample
    monkeypatch.setattr(pipeline, "SCORE_CHUNK_ROWS", 500)
    real = pipeline.score_customers
    calls = []

    def fail_on_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "score_customers", fail_on_third)
    with pytest.raises(RuntimeError, match="disk full"):
        pipeline.score_to_file(trained, tx, tmp_path / "scored.parquet")
    assert list(tmp_path.iterdir()) == []


def test_summary_table_chunks_have_the_size_asked_for():
    # DuckDB hands rows over in batches of its own size (122,880 rows here);
    # chunks gather or split them, so one chunk can hold every customer.
    import numpy as np

    from ltvkit.summary import summary_table

    n = 130_000
    log = pd.DataFrame(
        {
            "customer_id": np.arange(n),
            "date": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(np.arange(n) % 300, unit="D"),
            "amount": 10.0,
        }
    )
    table = summary_table(read_transactions(log))
    sizes = [len(part) for part in table.chunks(n)]
    assert sizes == [n]
    parts = list(table.chunks(50_000))
    assert [len(p) for p in parts] == [50_000, 50_000, 30_000]
    whole = pd.concat(parts)
    pd.testing.assert_frame_equal(whole, table.frame())
    assert whole.index.is_monotonic_increasing


def test_summary_table_in_ranges_reads_in_order_and_deletes_its_files(monkeypatch):
    # Summaries of large logs are written a range of customer ids at a time
    # to temporary files; every read gives the customers in id order, and
    # closing the summary deletes the files.
    import os

    import numpy as np

    import ltvkit.summary as summary

    rng = np.random.default_rng(5)
    n = 5000
    log = pd.DataFrame(
        {
            "customer_id": [f"id-{k}" for k in rng.integers(0, 2000, n)],
            "date": pd.Timestamp("2024-01-01")
            + pd.to_timedelta(rng.integers(0, 300, n), unit="D"),
            "amount": 10.0,
        }
    )
    monkeypatch.setattr(summary, "ROWS_PER_PASS", 500)
    table = summary.summary_table(read_transactions(log))
    assert len(table._parts) >= 8
    whole = table.frame()
    assert whole.index.is_monotonic_increasing and whole.index.is_unique
    pd.testing.assert_frame_equal(pd.concat(table.chunks(333)), whole)
    repeat = table.repeat_spend()
    expected = whole.loc[whole["frequency"] > 0, ["frequency", "monetary_value"]]
    np.testing.assert_array_equal(repeat.to_numpy(), expected.to_numpy())
    folder = table.folder
    assert os.listdir(folder)
    table.close()
    assert not os.path.exists(folder)
