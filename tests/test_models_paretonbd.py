"""Pareto/NBD: published CDNOW values and lifetimes' ParetoNBDFitter as reference."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from ltvkit.models import ParetoNBDModel
from ltvkit.simulate import simulate_rfm

PUBLISHED = {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}


@pytest.fixture(scope="module")
def cdnow():
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    return load_cdnow_summary_data_with_monetary_value()[["frequency", "recency", "T"]]


@pytest.fixture(scope="module")
def fitted(cdnow):
    return ParetoNBDModel().fit(cdnow)


def _ref(params):
    from lifetimes import ParetoNBDFitter

    m = ParetoNBDFitter()
    m.params_ = pd.Series(params)
    return m


def _lifetimes_total_loglik(params, rfm):
    from lifetimes import ParetoNBDFitter

    x, tx, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    theta = [params[k] for k in ("r", "alpha", "s", "beta")]
    ll = ParetoNBDFitter._conditional_log_likelihood(theta, x, tx, T)
    return float(np.sum(ll))


def test_paretonbd_cdnow_published_values(fitted):
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, abs=2e-3)
    assert fitted.log_likelihood_ == pytest.approx(-9595.0, abs=0.1)


def test_paretonbd_has_standard_errors(fitted):
    table = fitted.summary()
    assert np.all(np.isfinite(table.std_error)) and np.all(table.std_error > 0)


def test_paretonbd_loglik_matches_lifetimes(fitted, cdnow):
    assert fitted.log_likelihood_ == pytest.approx(
        _lifetimes_total_loglik(fitted.params_, cdnow), rel=1e-9
    )
    params = {"r": 1.2, "alpha": 30.0, "s": 0.3, "beta": 4.0}
    rfm = simulate_rfm("paretonbd", params, 2000, T=np.linspace(10, 300, 2000), seed=4)
    model = ParetoNBDModel.from_params({"r": 0.6, "alpha": 8.0, "s": 1.4, "beta": 50.0})
    cols = {
        "x": rfm.frequency.to_numpy(float),
        "t_x": rfm.recency.values,
        "T": rfm["T"].values,
    }
    assert model._total_loglik(cols) == pytest.approx(
        _lifetimes_total_loglik(model.params_, rfm), rel=1e-9
    )


def test_paretonbd_optimum_at_least_lifetimes(fitted, cdnow):
    from lifetimes import ParetoNBDFitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ParetoNBDFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    theirs = _lifetimes_total_loglik(ref.params_.to_dict(), cdnow)
    assert fitted.log_likelihood_ >= theirs - 1e-6


def test_paretonbd_predictions_match_lifetimes(fitted, cdnow):
    ref = _ref(fitted.params_)
    x, tx, T = (cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    np.testing.assert_allclose(
        fitted.conditional_probability_alive(x, tx, T),
        ref.conditional_probability_alive(x, tx, T),
        rtol=1e-8,
    )
    for t in (1.0, 39.0, 104.0):
        theirs = ref.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
        ok = np.isfinite(theirs)
        np.testing.assert_allclose(
            fitted.conditional_expected_purchases(t, x, tx, T)[ok],
            theirs[ok],
            rtol=1e-8,
        )
    t = np.array([1.0, 10.0, 52.0, 200.0])
    np.testing.assert_allclose(
        fitted.expected_purchases_new_customer(t),
        ref.expected_number_of_purchases_up_to_time(t),
        rtol=1e-8,
    )


def test_paretonbd_probability_of_purchases_is_a_distribution(fitted):
    n = np.arange(0, 3000)  # the tail at t = 500 weeks is long
    for t in (5.0, 52.0, 500.0):
        p = fitted.probability_of_purchases(n, t)
        assert np.all(p >= 0)
        assert p.sum() == pytest.approx(1.0, abs=1e-10)
        mean = (n * p).sum()
        assert mean == pytest.approx(
            float(fitted.expected_purchases_new_customer(t)), rel=1e-5
        )


def test_paretonbd_s_equal_one_limit_is_finite():
    model = ParetoNBDModel.from_params(
        {"r": 0.5, "alpha": 10.0, "s": 1.0, "beta": 10.0}
    )
    e = model.conditional_expected_purchases(52.0, 3, 20.0, 40.0)
    near = ParetoNBDModel.from_params(
        {"r": 0.5, "alpha": 10.0, "s": 1.0 + 1e-7, "beta": 10.0}
    ).conditional_expected_purchases(52.0, 3, 20.0, 40.0)
    assert np.isfinite(e) and e == pytest.approx(near, rel=1e-6)
