"""Gamma-Gamma: published CDNOW values, lifetimes as reference, field case 06."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from ltvkit.errors import AssumptionWarning, DataError, ModelError
from ltvkit.models import GammaGammaModel


@pytest.fixture(scope="module")
def cdnow():
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    return load_cdnow_summary_data_with_monetary_value()


@pytest.fixture(scope="module")
def fitted(cdnow):
    return GammaGammaModel().fit(cdnow)


def _lifetimes_total_loglik(params, frame):
    from lifetimes import GammaGammaFitter

    rep = frame[frame.frequency > 0]
    x, m = rep.frequency.to_numpy(float), rep.monetary_value.to_numpy(float)
    log_params = np.log([params[k] for k in ("p", "q", "v")])
    nll = GammaGammaFitter._negative_log_likelihood(
        log_params, x, m, np.ones_like(x), 0
    )
    return -float(nll) * len(x)


def test_gammagamma_cdnow_published_parameters(fitted):
    for name, value in {"p": 6.25, "q": 3.74, "v": 15.44}.items():
        assert fitted.params_[name] == pytest.approx(value, abs=0.01)
    assert fitted.n_customers_ == 946  # the repeat buyers


def test_gammagamma_matches_lifetimes(fitted, cdnow):
    from lifetimes import GammaGammaFitter

    rep = cdnow[cdnow.frequency > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = GammaGammaFitter().fit(rep.frequency, rep.monetary_value)
    assert fitted.log_likelihood_ == pytest.approx(
        _lifetimes_total_loglik(fitted.params_, cdnow), rel=1e-9
    )
    assert fitted.log_likelihood_ >= _lifetimes_total_loglik(ref.params_, cdnow) - 1e-6
    for name, se in ref.standard_errors_.items():
        assert fitted.standard_errors_[name] == pytest.approx(se, rel=1e-3)
    ref.params_ = pd.Series(fitted.params_)
    np.testing.assert_allclose(
        fitted.conditional_expected_spend(cdnow.frequency, cdnow.monetary_value),
        ref.conditional_expected_average_profit(cdnow.frequency, cdnow.monetary_value),
        rtol=1e-8,
    )


def test_gammagamma_frequency_zero_gets_population_mean(fitted):
    p, q, v = (fitted.params_[k] for k in "pqv")
    assert fitted.mean_spend_ == pytest.approx(p * v / (q - 1))
    got = fitted.conditional_expected_spend([0, 0], [0.0, 123.0])
    np.testing.assert_allclose(got, fitted.mean_spend_)


def test_gammagamma_predict_spend_series(fitted, cdnow):
    s = fitted.predict_spend(cdnow)
    assert s.name == "expected_spend_per_purchase" and s.index.equals(cdnow.index)
    assert np.all(np.isfinite(s)) and np.all(s > 0)


def test_gammagamma_round_trip(fitted):
    d = json.loads(json.dumps(fitted.to_dict()))
    assert d["kind"] == "gammagamma"
    again = GammaGammaModel.from_dict(d)
    assert again.params_ == fitted.params_
    assert list(again.summary().index) == ["p", "q", "v"]


def test_gammagamma_non_positive_spend_raises():
    frame = pd.DataFrame(
        {"frequency": [1, 2, 3, 0], "monetary_value": [10.0, -5.0, 0.0, 0.0]},
        index=pd.Index([1, 2, 3, 4], name="customer_id"),
    )
    with pytest.raises(DataError, match=r"non-positive .*2 customers \(2, 3\)"):
        GammaGammaModel().fit(frame)


def test_gammagamma_no_repeat_buyers_raises():
    frame = pd.DataFrame({"frequency": [0, 0], "monetary_value": [0.0, 0.0]})
    with pytest.raises(DataError, match="repeat purchase"):
        GammaGammaModel().fit(frame)
    with pytest.raises(DataError, match="lacks the column"):
        GammaGammaModel().fit(frame.drop(columns="monetary_value"))


def _case06(cases, name):
    path = cases / "06-gg-frequency-monetary-correlation" / name
    return pd.read_csv(path, index_col="customer_id")


def test_gammagamma_case06_correlated_spend_warns(cases):
    frame = _case06(cases, "input.csv")
    with pytest.warns(AssumptionWarning, match=r"correlation.*r = 0\.73") as record:
        GammaGammaModel().fit(frame)
    assert record[0].filename == __file__  # stacklevel points at the caller


def test_gammagamma_case06_control_does_not_warn(cases):
    frame = _case06(cases, "control_uncorrelated.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AssumptionWarning)
        model = GammaGammaModel().fit(frame)
    assert abs(model.frequency_spend_correlation_) <= 0.3


def test_gammagamma_case06_strict_mode_raises(cases):
    frame = _case06(cases, "input.csv")
    with pytest.raises(DataError, match=r"correlation.*r = 0\.73"):
        GammaGammaModel(strict_assumptions=True).fit(frame)
    assert GammaGammaModel.correlation_threshold == 0.3


def test_gammagamma_q_below_one_warns():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 5, 400)
    # Very heavy-tailed spend: the fitted q falls below 1.
    m = np.exp(rng.normal(3, 3.0, 400))
    frame = pd.DataFrame({"frequency": x, "monetary_value": m})
    with pytest.warns(AssumptionWarning, match="q = .* <= 1"):
        model = GammaGammaModel(correlation_threshold=1.0).fit(frame)
    assert model.mean_spend_ == np.inf


def test_gammagamma_unfitted_raises():
    with pytest.raises(ModelError, match="not fitted"):
        GammaGammaModel().conditional_expected_spend(1, 10.0)
