"""Shared fixtures: paths of the case files and the CDNOW logs."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

DATA = Path(__file__).parent / "data"
CASES = DATA / "cases"


@pytest.fixture(scope="session")
def cases() -> Path:
    return CASES


@pytest.fixture(scope="session")
def cdnow_sample():
    from ltvkit import load_cdnow

    return load_cdnow("sample")


@pytest.fixture(scope="session")
def cdnow_master():
    from ltvkit import load_cdnow

    return load_cdnow("master")
