"""Simulators: shapes, seeds, consistency of the transaction log."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ltvkit.errors import ConfigError, ModelError
from ltvkit.simulate import simulate_rfm, simulate_transactions

PARAMS = {
    "bgnbd": {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5},
    "mbgnbd": {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6},
    "paretonbd": {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7},
}


@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_simulate_rfm_is_valid_and_seeded(kind):
    a = simulate_rfm(kind, PARAMS[kind], 2000, T=np.linspace(1, 80, 2000), seed=3)
    b = simulate_rfm(kind, PARAMS[kind], 2000, T=np.linspace(1, 80, 2000), seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == ["frequency", "recency", "T"]
    assert a.index.name == "customer_id"
    assert np.all(a.recency <= a["T"]) and np.all(a.recency >= 0)
    assert np.all(a.recency[a.frequency == 0] == 0)
    assert np.all(a.recency[a.frequency > 0] > 0)


def test_simulate_rfm_mean_frequency_matches_model():
    from ltvkit.models import BGNBDModel

    rfm = simulate_rfm("bgnbd", PARAMS["bgnbd"], 200_000, T=52.0, seed=1)
    expected = float(
        BGNBDModel.from_params(PARAMS["bgnbd"]).expected_purchases_new_customer(52.0)
    )
    se = rfm.frequency.std() / np.sqrt(len(rfm))
    assert abs(rfm.frequency.mean() - expected) < 4 * se


@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_simulate_transactions_log(kind):
    log = simulate_transactions(
        kind, PARAMS[kind], 500, time_unit_days=7, observation_end="2024-06-30", seed=5
    )
    assert list(log.columns) == ["customer_id", "date", "amount"]
    assert log.customer_id.nunique() == 500
    assert log.date.max() <= pd.Timestamp("2024-06-30")
    assert log.date.min() >= pd.Timestamp("2024-06-30") - pd.Timedelta(days=365)
    assert np.all(log.amount > 0)
    assert log.equals(
        simulate_transactions(
            kind,
            PARAMS[kind],
            500,
            time_unit_days=7,
            observation_end="2024-06-30",
            seed=5,
        )
    )


def test_simulate_rejects_bad_arguments():
    with pytest.raises(ConfigError, match="model_kind"):
        simulate_rfm("bgnbx", PARAMS["bgnbd"], 10, T=5.0, seed=1)
    with pytest.raises(ModelError, match="positive"):
        simulate_rfm("bgnbd", {**PARAMS["bgnbd"], "a": -1}, 10, T=5.0, seed=1)
    with pytest.raises(ConfigError, match="T must be"):
        simulate_rfm("bgnbd", PARAMS["bgnbd"], 10, T=-5.0, seed=1)
