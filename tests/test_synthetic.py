"""Synthetic logs: reproducible, streamed in chunks, with a spend table."""

from __future__ import annotations

import pandas as pd
import pytest

from ltvkit import read_transactions, summarise
from ltvkit.errors import ConfigError
from ltvkit.synthetic import DEFAULT_SEGMENTS, write_simulated_log


def test_write_simulated_log_is_reproducible_and_chunked(tmp_path):
    a = write_simulated_log(
        tmp_path / "a.parquet", n_customers=3000, seed=7, chunk_customers=1000
    )
    b = write_simulated_log(
        tmp_path / "b.csv", n_customers=3000, seed=7, chunk_customers=1000
    )
    left = pd.read_parquet(a["path"])
    right = pd.read_csv(b["path"], parse_dates=["date"])
    assert a["n_transactions"] == b["n_transactions"] == len(left)
    pd.testing.assert_frame_equal(
        left.drop(columns="date"), right.drop(columns="date"), check_dtype=False
    )
    assert left["customer_id"].nunique() == 3000
    assert set(left["segment"]) == {s.name for s in DEFAULT_SEGMENTS}
    assert not list(tmp_path.glob("*.part"))


def test_write_simulated_log_spend_matches_acquisitions(tmp_path):
    info = write_simulated_log(tmp_path / "log.parquet", n_customers=2000, seed=1)
    spend = pd.read_csv(info["spend_path"])
    log = pd.read_parquet(info["path"])
    firsts = log.sort_values("date").drop_duplicates("customer_id")
    counts = firsts.groupby(["segment", firsts["date"].dt.strftime("%Y-%m")]).size()
    cost = {s.name: s.cost_per_customer for s in DEFAULT_SEGMENTS}
    for row in spend.itertuples():
        assert row.spend == pytest.approx(
            cost[row.segment] * counts[(row.segment, row.period)]
        )
    # Acquisitions fall in the first year; observation runs two more years.
    assert firsts["date"].max() < pd.Timestamp("2023-01-01")
    assert info["observation_end"] == "2024-12-31"


def test_write_simulated_log_summarises_with_segments(tmp_path):
    info = write_simulated_log(tmp_path / "log.parquet", n_customers=500, seed=3)
    rfm = summarise(
        read_transactions(info["path"], segment_col="segment"), time_unit="W"
    )
    assert len(rfm) == 500
    assert rfm["T"].min() >= 730 / 7 - 1


def test_write_simulated_log_checks_its_options(tmp_path):
    with pytest.raises(ConfigError, match=r"\.csv or \.parquet"):
        write_simulated_log(tmp_path / "log.json", n_customers=10)
    with pytest.raises(ConfigError, match="n_customers"):
        write_simulated_log(tmp_path / "log.csv", n_customers=0)
