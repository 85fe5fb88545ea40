"""MBG/NBD against lifetimes' ModifiedBetaGeoFitter."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ltvkit.models import MBGNBDModel
from ltvkit.simulate import simulate_rfm


@pytest.fixture(scope="module")
def cdnow():
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    return load_cdnow_summary_data_with_monetary_value()[["frequency", "recency", "T"]]


@pytest.fixture(scope="module")
def fitted(cdnow):
    return MBGNBDModel().fit(cdnow)


def _ref(params=None):
    from lifetimes import ModifiedBetaGeoFitter

    m = ModifiedBetaGeoFitter()
    if params is not None:
        m.params_ = pd.Series(params)
    return m


def _lifetimes_total_loglik(params, rfm):
    x, tx, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    log_params = np.log([params[k] for k in ("r", "alpha", "a", "b")])
    nll = _ref()._negative_log_likelihood(log_params, x, tx, T, np.ones_like(x), 0.0)
    return -float(nll) * len(x)


def test_mbgnbd_loglik_and_optimum_match_lifetimes(fitted, cdnow):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = _ref().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    ours = fitted.log_likelihood_
    assert ours == pytest.approx(
        _lifetimes_total_loglik(fitted.params_, cdnow), rel=1e-9
    )
    assert ours >= _lifetimes_total_loglik(ref.params_, cdnow) - 1e-6
    for name, se in ref.standard_errors_.items():
        assert fitted.standard_errors_[name] == pytest.approx(se, rel=2e-3)


def test_mbgnbd_loglik_matches_lifetimes_on_synthetic():
    params = {"r": 0.8, "alpha": 12.0, "a": 0.6, "b": 2.0}
    rfm = simulate_rfm("mbgnbd", params, 2000, T=np.linspace(5, 200, 2000), seed=9)
    other = {"r": 1.7, "alpha": 3.0, "a": 2.5, "b": 0.4}
    model = MBGNBDModel.from_params(other)
    cols = {
        "x": rfm.frequency.to_numpy(float),
        "t_x": rfm.recency.values,
        "T": rfm["T"].values,
    }
    assert model._total_loglik(cols) == pytest.approx(
        _lifetimes_total_loglik(other, rfm), rel=1e-9
    )


def test_mbgnbd_predictions_match_lifetimes(fitted, cdnow):
    ref = _ref(fitted.params_)
    x, tx, T = (cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    for t in (1.0, 39.0, 104.0):
        theirs = ref.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
        ok = np.isfinite(theirs)
        np.testing.assert_allclose(
            fitted.conditional_expected_purchases(t, x, tx, T)[ok],
            theirs[ok],
            rtol=1e-8,
        )
    np.testing.assert_allclose(
        fitted.conditional_probability_alive(x, tx, T),
        ref.conditional_probability_alive(x, tx, T),
        rtol=1e-8,
    )
    t = np.array([1.0, 10.0, 52.0, 200.0])
    np.testing.assert_allclose(
        fitted.expected_purchases_new_customer(t),
        ref.expected_number_of_purchases_up_to_time(t),
        rtol=1e-8,
    )
    for n in (0, 1, 4):
        np.testing.assert_allclose(
            fitted.probability_of_purchases(n, 30.0),
            ref.probability_of_n_purchases_up_to_time(30.0, n),
            rtol=1e-8,
        )


def test_mbgnbd_probabilities_sum_to_one(fitted):
    assert fitted.probability_of_purchases(np.arange(400), 52.0).sum() == pytest.approx(
        1.0, abs=1e-8
    )


def test_mbgnbd_frequent_buyers_do_not_overflow():
    model = MBGNBDModel.from_params({"r": 2.0, "alpha": 0.5, "a": 0.3, "b": 5.0})
    x = np.array([1000.0, 5000.0, 10000.0])
    tx = np.array([3000.0, 3640.0, 3000.0])
    T = np.full(3, 3650.0)
    p = model.conditional_probability_alive(x, tx, T)
    e = model.conditional_expected_purchases(np.array([[30.0], [3650.0]]), x, tx, T)
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    assert np.all(np.isfinite(e)) and np.all(e >= 0) and np.all(e[1] >= e[0])
    ll = model._total_loglik({"x": x, "t_x": tx, "T": T})
    assert np.isfinite(ll)
