"""Atomic, chunked table output."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvkit import _io
from ltvkit.errors import ConfigError


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_write_table_in_chunks_equals_one_write(tmp_path, monkeypatch, suffix):
    monkeypatch.setattr(_io, "WRITE_CHUNK_ROWS", 7)
    frame = pd.DataFrame(
        {"clv": np.linspace(0, 1, 30), "segment": list("ab") * 15},
        index=pd.Index([f"c{i}" for i in range(30)], name="customer_id"),
    )
    path = tmp_path / f"out{suffix}"
    _io.write_table(frame, path)
    back = pd.read_csv(path, index_col=0) if suffix == ".csv" else pd.read_parquet(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_write_table_failure_leaves_nothing(tmp_path, monkeypatch):
    frame = pd.DataFrame({"x": range(10)})

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        _io.write_table(frame, tmp_path / "out.csv")
    assert list(tmp_path.iterdir()) == []


def test_write_table_refuses_unknown_suffix(tmp_path):
    with pytest.raises(ConfigError, match=r"\.csv or \.parquet"):
        _io.write_table(pd.DataFrame({"x": [1]}), tmp_path / "out.xlsx")
