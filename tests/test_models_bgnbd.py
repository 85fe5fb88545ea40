"""BG/NBD: published CDNOW values, lifetimes as reference, field cases 08 and 09."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from ltvkit.errors import ConvergenceError, DataError, ModelError
from ltvkit.models import PURCHASE_MODELS, BGNBDModel
from ltvkit.simulate import simulate_rfm

PUBLISHED = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}


@pytest.fixture(scope="module")
def cdnow():
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    df = load_cdnow_summary_data_with_monetary_value()
    return df[["frequency", "recency", "T"]]


@pytest.fixture(scope="module")
def fitted(cdnow):
    return BGNBDModel().fit(cdnow)


@pytest.fixture(scope="module")
def lifetimes_fit(cdnow):
    from lifetimes import BetaGeoFitter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])


def _lifetimes_at(params):
    from lifetimes import BetaGeoFitter

    bg = BetaGeoFitter()
    bg.params_ = pd.Series(params)
    return bg


def _lifetimes_total_loglik(params, rfm):
    from lifetimes import BetaGeoFitter

    x, tx, T = (rfm[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    log_params = np.log([params[k] for k in ("r", "alpha", "a", "b")])
    mean_nll = BetaGeoFitter._negative_log_likelihood(
        log_params, x, tx, T, np.ones_like(x), 0.0
    )
    return -float(mean_nll) * len(x)


def test_bgnbd_cdnow_published_parameters(fitted):
    for name, value in PUBLISHED.items():
        assert fitted.params_[name] == pytest.approx(value, abs=1e-3)
    assert fitted.converged_
    assert fitted.n_customers_ == 2357


def test_bgnbd_cdnow_published_expected_purchases(fitted):
    value = fitted.conditional_expected_purchases(39, 2, 30.43, 38.86)
    assert float(value) == pytest.approx(1.226, abs=1e-3)


def test_bgnbd_loglik_equals_lifetimes_on_cdnow(fitted, cdnow):
    ours = fitted.log_likelihood_
    theirs = _lifetimes_total_loglik(fitted.params_, cdnow)
    assert ours == pytest.approx(theirs, rel=1e-9)


def test_bgnbd_loglik_equals_lifetimes_on_synthetic():
    params = {"r": 1.3, "alpha": 20.0, "a": 0.4, "b": 3.0}
    rng = np.random.default_rng(11)
    rfm = simulate_rfm("bgnbd", params, 3000, T=rng.uniform(10, 300, 3000), seed=5)
    other = {"r": 0.7, "alpha": 9.0, "a": 1.5, "b": 0.6}
    model = BGNBDModel.from_params(other)
    ours = model._total_loglik(
        {
            "x": rfm.frequency.to_numpy(float),
            "t_x": rfm.recency.values,
            "T": rfm["T"].values,
        }
    )
    assert ours == pytest.approx(_lifetimes_total_loglik(other, rfm), rel=1e-9)


def test_bgnbd_optimum_at_least_lifetimes(fitted, lifetimes_fit, cdnow):
    theirs = _lifetimes_total_loglik(lifetimes_fit.params_.to_dict(), cdnow)
    assert fitted.log_likelihood_ >= theirs - 1e-6


def test_bgnbd_standard_errors_match_lifetimes(fitted, lifetimes_fit):
    for name, se in lifetimes_fit.standard_errors_.items():
        assert fitted.standard_errors_[name] == pytest.approx(se, rel=1e-3)


def test_bgnbd_predictions_match_lifetimes(fitted, cdnow):
    ref = _lifetimes_at(fitted.params_)
    x, tx, T = (cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    for t in (1.0, 39.0, 104.0):
        theirs = ref.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
        ours = fitted.conditional_expected_purchases(t, x, tx, T)
        ok = np.isfinite(theirs)
        np.testing.assert_allclose(ours[ok], theirs[ok], rtol=1e-8)
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
    for n in (0, 1, 3, 10):
        np.testing.assert_allclose(
            fitted.probability_of_purchases(n, 30.0),
            ref.probability_of_n_purchases_up_to_time(30.0, n),
            rtol=1e-8,
        )


def test_bgnbd_penalizer_matches_lifetimes(cdnow):
    from lifetimes import BetaGeoFitter

    ours = BGNBDModel(penalizer=0.1).fit(cdnow)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = BetaGeoFitter(penalizer_coef=0.1).fit(
            cdnow["frequency"], cdnow["recency"], cdnow["T"]
        )
    for name, value in theirs.params_.items():
        assert ours.params_[name] == pytest.approx(value, rel=1e-4)


def test_bgnbd_probability_of_purchases_sums_to_one(fitted):
    n = np.arange(0, 400)
    total = fitted.probability_of_purchases(n, 52.0).sum()
    assert total == pytest.approx(1.0, abs=1e-8)


def test_bgnbd_broadcasts_horizons_against_customers(fitted, cdnow):
    x, tx, T = (cdnow[c].to_numpy(float) for c in ("frequency", "recency", "T"))
    t = np.array([[4.0], [13.0], [52.0]])
    grid = fitted.conditional_expected_purchases(t, x, tx, T)
    assert grid.shape == (3, len(x))
    np.testing.assert_allclose(
        grid[1], fitted.conditional_expected_purchases(13.0, x, tx, T)
    )
    assert np.all(np.diff(grid, axis=0) >= 0)


def test_bgnbd_case08_small_a_plus_b(cases):
    folder = cases / "08-bgnbd-nan-small-a-plus-b"
    params = json.loads((folder / "params.json").read_text())
    table = pd.read_csv(folder / "input.csv")
    model = BGNBDModel.from_params(params)
    got = model.conditional_expected_purchases(
        table["t"].to_numpy(float), table.frequency, table.recency, table["T"]
    )
    np.testing.assert_allclose(got, table.expected_purchases, rtol=1e-6)
    assert np.all(np.diff(got) > 0)
    assert np.all(model.conditional_probability_alive(0, 0, 1) == 1.0)


def test_bgnbd_case09_fits_without_spurious_convergence_error(cases):
    rfm = pd.read_csv(
        cases / "09-spurious-convergence-error" / "input.csv", index_col="customer_id"
    )
    model = BGNBDModel().fit(rfm)
    assert model.params_["r"] == pytest.approx(16.5409, rel=5e-3)
    assert model.params_["alpha"] == pytest.approx(74.8312, rel=5e-3)
    assert model.log_likelihood_ >= -63949.3596
    assert model.converged_


def test_bgnbd_real_failure_names_status_and_gradient(cdnow, monkeypatch):
    from types import SimpleNamespace

    from ltvkit.models import _base

    def stuck(self, data, pen):
        x = np.zeros(4)
        f, g = self._objective(x, data, pen)
        res = SimpleNamespace(
            success=False, status=2, message="ABNORMAL", nit=7, x=x, fun=f
        )
        return res, x, f, g

    monkeypatch.setattr(_base._FittedModel, "_optimise", stuck)
    with pytest.raises(
        ConvergenceError, match=r"status 2: ABNORMAL .* gradient norm is [0-9.]+.*Try"
    ):
        BGNBDModel().fit(cdnow)


def test_bgnbd_pandas_predictions_keep_index(fitted, cdnow):
    p = fitted.predict_probability_alive(cdnow)
    e = fitted.predict_purchases(cdnow, horizon=39)
    assert p.name == "p_alive" and e.name == "expected_purchases"
    assert p.index.equals(cdnow.index) and e.index.equals(cdnow.index)
    with pytest.raises(ModelError, match="horizon"):
        fitted.predict_purchases(cdnow, horizon=-1)


def test_bgnbd_summary_and_round_trip(fitted):
    table = fitted.summary()
    assert list(table.columns) == ["estimate", "std_error", "ci_lower", "ci_upper"]
    assert list(table.index) == ["r", "alpha", "a", "b"]
    assert np.all(table.ci_lower < table.estimate) and np.all(
        table.estimate < table.ci_upper
    )
    assert fitted.aic_ == pytest.approx(8 - 2 * fitted.log_likelihood_)
    d = json.loads(json.dumps(fitted.to_dict()))
    assert d["kind"] == "bgnbd"
    again = BGNBDModel.from_dict(d)
    assert again.params_ == fitted.params_
    assert again.standard_errors_ == pytest.approx(fitted.standard_errors_)
    with pytest.raises(ModelError, match="kind"):
        PURCHASE_MODELS["paretonbd"].from_dict(d)


def test_bgnbd_unfitted_and_bad_params_raise():
    with pytest.raises(ModelError, match="not fitted"):
        BGNBDModel().conditional_probability_alive(1, 1, 2)
    with pytest.raises(ModelError, match="positive"):
        BGNBDModel.from_params({"r": 1, "alpha": -1, "a": 1, "b": 1})
    with pytest.raises(ModelError, match="missing: b"):
        BGNBDModel.from_params({"r": 1, "alpha": 1, "a": 1})


def _rfm(**cols):
    base = {"frequency": [1, 2, 0, 3], "recency": [5.0, 8.0, 0.0, 9.0], "T": [10.0] * 4}
    base.update(cols)
    return pd.DataFrame(base, index=pd.Index([11, 12, 13, 14], name="customer_id"))


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        ({"T": [10.0, np.nan, 10.0, 10.0]}, r"'T' has 1 NaN values \(customers 12\)"),
        ({"recency": [5.0, np.nan, 0.0, 9.0]}, r"'recency' has 1 NaN"),
        (
            {"T": [10.0, 10.0, -1.0, 10.0]},
            r"'T' has negative values: 1 customers \(13\)",
        ),
        ({"frequency": [1, -2, 0, 3]}, r"'frequency' has negative"),
        (
            {"recency": [5.0, 11.0, 0.0, 9.0]},
            r"recency is greater than T: 1 customers \(12\)",
        ),
        ({"frequency": [1.5, 2, 0, 3]}, r"not integers: 1 customers \(11\)"),
        ({"recency": [5.0, 8.0, 2.0, 9.0]}, r"frequency is 0 but recency is not 0"),
    ],
)
def test_bgnbd_validation_errors(change, pattern):
    with pytest.raises(DataError, match=pattern):
        BGNBDModel().fit(_rfm(**change))


def test_bgnbd_validation_reports_all_problems():
    bad = _rfm(T=[10.0, np.nan, 10.0, 10.0], frequency=[1.5, 2, 0, 3])
    with pytest.raises(DataError, match=r"NaN.*not integers|not integers.*NaN"):
        BGNBDModel().fit(bad)


def test_bgnbd_empty_and_no_repeat_buyers():
    with pytest.raises(DataError, match="empty"):
        BGNBDModel().fit(_rfm().iloc[:0])
    with pytest.raises(DataError, match="lacks the column"):
        BGNBDModel().fit(_rfm().drop(columns="T"))
    none = pd.DataFrame({"frequency": [0, 0], "recency": [0.0, 0.0], "T": [5.0, 6.0]})
    with pytest.raises(DataError, match="No customer .* has a repeat purchase"):
        BGNBDModel().fit(none)
