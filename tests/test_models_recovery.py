"""Parameter recovery: 100,000 simulated customers, each parameter within 3 SE."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ltvkit.models import PURCHASE_MODELS, BGNBDModel, GammaGammaModel
from ltvkit.simulate import simulate_rfm, simulate_transactions

TRUTH = {
    "bgnbd": {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5},
    "mbgnbd": {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6},
    "paretonbd": {"r": 0.55, "alpha": 10.5, "s": 0.6, "beta": 11.7},
}


def _assert_recovered(model, truth):
    for name, value in truth.items():
        z = (model.params_[name] - value) / model.standard_errors_[name]
        assert abs(z) < 3, (name, model.params_[name], value, z)


@pytest.mark.parametrize("kind", ["bgnbd", "mbgnbd"])
def test_recovery_bg_family_own_generator(kind):
    rng = np.random.default_rng(1)
    # Ages in whole days, expressed in weeks, as a daily summary would give.
    T = np.round(rng.uniform(20, 78, 100_000) * 7) / 7
    rfm = simulate_rfm(kind, TRUTH[kind], 100_000, T=T, seed=2)
    _assert_recovered(PURCHASE_MODELS[kind]().fit(rfm), TRUTH[kind])


@pytest.mark.slow
def test_recovery_paretonbd_own_generator():
    rng = np.random.default_rng(1)
    T = np.round(rng.uniform(20, 78, 100_000) * 7) / 7
    rfm = simulate_rfm("paretonbd", TRUTH["paretonbd"], 100_000, T=T, seed=2)
    _assert_recovered(PURCHASE_MODELS["paretonbd"]().fit(rfm), TRUTH["paretonbd"])


def test_recovery_paretonbd_small():
    # The fast variant: 20,000 customers on a weekly grid of ages.
    rng = np.random.default_rng(3)
    T = np.round(rng.uniform(20, 78, 20_000))
    rfm = simulate_rfm("paretonbd", TRUTH["paretonbd"], 20_000, T=T, seed=4)
    _assert_recovered(PURCHASE_MODELS["paretonbd"]().fit(rfm), TRUTH["paretonbd"])


@pytest.mark.slow
def test_recovery_bgnbd_lifetimes_generator():
    from lifetimes.generate_data import beta_geometric_nbd_model

    truth = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    np.random.seed(12)  # noqa: NPY002 - lifetimes draws from the global state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # lifetimes counts distinct whole periods: use a fine time unit (hours
        # of a 52-week horizon) so that two purchases rarely share one.
        scale = 7 * 24
        params = (truth["r"], truth["alpha"] * scale, truth["a"], truth["b"])
        df = beta_geometric_nbd_model(52.0 * scale, *params, size=100_000)
    rfm = df[["frequency", "recency", "T"]].astype(float)
    rfm[["recency", "T"]] /= scale
    _assert_recovered(BGNBDModel().fit(rfm), truth)


def test_recovery_gammagamma_from_transactions():
    spend = {"p": 6.0, "q": 4.0, "v": 15.0}
    log = simulate_transactions(
        "bgnbd",
        {"r": 2.0, "alpha": 20.0, "a": 0.5, "b": 5.0},
        100_000,
        spend_params=spend,
        acquisition_days=730,
        seed=8,
    )
    counts = log.groupby("customer_id").size() - 1
    # Mean spend of the repeat purchases (the first one excluded).
    later = log[log.duplicated("customer_id")]
    mean = later.groupby("customer_id")["amount"].mean()
    frame = pd.DataFrame({"frequency": counts}).join(mean.rename("monetary_value"))
    frame["monetary_value"] = frame["monetary_value"].fillna(0.0)
    _assert_recovered(GammaGammaModel().fit(frame), spend)
