"""The fast paths of the models agree with the plain per-row computations."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pandas as pd
import pytest

from ltvkit.models import BGNBDModel, GammaGammaModel, MBGNBDModel
from ltvkit.models._base import _Data, _factorize, _FittedModel, wsum
from ltvkit.models._purchase import dedup_over_customers
from ltvkit.models._special import beta_mixture_purchases
from ltvkit.simulate import simulate_rfm


def _np_unique_rows(columns):
    keys = np.column_stack([np.asarray(c, float) + 0.0 for c in columns.values()])
    return np.unique(keys, axis=0, return_inverse=True, return_counts=True)


@pytest.mark.parametrize(
    "n_cols, values, wide",
    [(3, 6, False), (2, 6, False), (3, 300, False), (4, 0, True)],
)
def test_data_compression_equals_np_unique(n_cols, values, wide):
    # 6 values a column: codes counted directly; 300: hashed; wide: so many
    # distinct values that the packed codes would overflow (lexsort).
    rng = np.random.default_rng(n_cols + values)
    n = 70_000 if wide else 5_000
    if wide:
        columns = {str(i): rng.random(n) for i in range(n_cols)}
        for i in range(n_cols):
            columns[str(i)][: n // 2] = columns[str(i)][n // 2 :]
    else:
        columns = {str(i): rng.integers(0, values, n) / 7.0 for i in range(n_cols)}
        columns["0"][:10] = -0.0  # same row as 0.0
    data = _Data(columns)
    uniq, inverse, counts = _np_unique_rows(columns)
    np.testing.assert_array_equal(np.column_stack(list(data.columns.values())), uniq)
    np.testing.assert_array_equal(data.weights, counts)
    np.testing.assert_array_equal(data.inverse, inverse.ravel())
    for name in columns:
        values, index = data.factor(name)
        np.testing.assert_array_equal(values[index], data[name])
        assert np.all(np.diff(values) > 0)


@pytest.mark.parametrize("n, distinct", [(5, 3), (200_000, 40), (200_000, 150_000)])
def test_factorize_equals_pandas(n, distinct):
    # Few distinct values: hashed a block at a time; many: sorted.
    rng = np.random.default_rng(n + distinct)
    values = rng.integers(-distinct // 2, distinct // 2 + 1, n) / 7.0
    values[values == 0.0] = -0.0
    values[rng.random(n) < 0.01] = np.nan
    codes, uniq = _factorize(values)
    ref_codes, ref_uniq = pd.factorize(values + 0.0, sort=True, use_na_sentinel=False)
    np.testing.assert_array_equal(codes, ref_codes)
    np.testing.assert_array_equal(uniq, ref_uniq)
    assert not np.signbit(uniq[uniq == 0.0]).any()


def test_data_without_inverse_has_the_same_rows():
    rng = np.random.default_rng(2)
    columns = {"a": rng.integers(0, 50, 3000) / 3.0, "b": rng.random(3000).round(2)}
    full, lean = _Data(columns), _Data(columns, keep_inverse=False)
    assert lean.inverse is None
    np.testing.assert_array_equal(lean.weights, full.weights)
    for name in columns:
        np.testing.assert_array_equal(lean[name], full[name])


@pytest.fixture(scope="module")
def rfm_data():
    rng = np.random.default_rng(3)
    T = rng.integers(1, 300, 20_000) / 7.0
    rfm = simulate_rfm(
        "bgnbd", {"r": 0.5, "alpha": 3.0, "a": 0.7, "b": 2.0}, T.size, T=T, seed=4
    )
    rfm["recency"] = np.round(rfm["recency"] * 7) / 7
    cols = {
        "x": rfm["frequency"].to_numpy(float),
        "t_x": rfm["recency"].to_numpy(float),
        "T": rfm["T"].to_numpy(float),
    }
    return _Data(cols).transformed(
        lambda c: {"x": c["x"], "t_x": c["t_x"] / 50.0, "T": c["T"] / 50.0}
    )


THETAS = [[0.5, 0.06, 0.7, 2.0], [1.3, 0.2, 0.05, 7.0], [0.05, 0.01, 3.0, 0.3]]


@pytest.mark.parametrize("theta", THETAS)
@pytest.mark.parametrize("model_cls", [BGNBDModel, MBGNBDModel])
def test_aggregated_loglik_sum_equals_per_row(rfm_data, theta, model_cls):
    model = model_cls()
    theta = np.array(theta)
    total, grad = model._loglik_sum(theta, rfm_data)
    ref_total, ref_grad = _FittedModel._loglik_sum(model, theta, rfm_data)
    assert total == pytest.approx(ref_total, rel=1e-12)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-9 * abs(total))


@pytest.mark.parametrize("model_cls", [BGNBDModel, MBGNBDModel])
def test_total_loglik_by_blocks_equals_one_pass(rfm_data, model_cls, monkeypatch):
    theta = np.array(THETAS[0])
    model = model_cls.from_params(dict(zip(model_cls.param_names, theta, strict=True)))
    ll = model._loglik(theta, rfm_data, grad=False)
    monkeypatch.setattr(model_cls, "_loglik_rows", 1000)
    assert model._total_loglik(rfm_data) == float(wsum(rfm_data.weights, ll))


@pytest.mark.parametrize("theta", THETAS)
def test_bgnbd_analytic_hessian_equals_differences_of_gradient(rfm_data, theta):
    model = BGNBDModel()
    theta = np.array(theta)
    H = model._loglik_hessian(theta, rfm_data)
    fd = np.empty((4, 4))
    for j in range(4):
        e = np.zeros(4)
        e[j] = 1e-6 * theta[j]
        fd[:, j] = (
            model._loglik_sum(theta + e, rfm_data)[1]
            - model._loglik_sum(theta - e, rfm_data)[1]
        ) / (2 * e[j])
    np.testing.assert_allclose(H, fd, rtol=1e-5, atol=1e-7 * np.abs(H).max())
    np.testing.assert_array_equal(H, H.T)


def test_gammagamma_aggregated_loglik_sum_equals_per_row():
    rng = np.random.default_rng(8)
    x = rng.integers(1, 30, 5000).astype(float)
    m = rng.gamma(5.0, 4.0, x.size)
    data = _Data({"x": x, "m": m})
    model = GammaGammaModel()
    for theta in ([6.3, 3.7, 15.0], [0.5, 0.3, 100.0], [30.0, 1.1, 0.2]):
        theta = np.array(theta)
        total, grad = model._loglik_sum(theta, data)
        ref_total, ref_grad = _FittedModel._loglik_sum(model, theta, data)
        assert total == pytest.approx(ref_total, rel=1e-12)
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-9, atol=1e-9)


def _mp_alive_purchases(A, a, B, tau):
    with mp.workdps(50):
        tau = mp.mpf(tau)
        z = tau / (1 + tau)
        C = mp.mpf(a) + B - 1
        return float(C / (a - 1) * (1 - (1 - z) ** A * mp.hyp2f1(A, B, C, z)))


def test_closed_form_region_matches_mpmath():
    # Draws in the region served by scipy's hyp2f1 (0.25 < z <= 0.999,
    # a + B - 1 >= 1, |a - 1| >= 0.01, A, B <= 200) and around its edges.
    rng = np.random.default_rng(12)
    rows = []
    for _ in range(150):
        a = float(10 ** rng.uniform(-1.5, 1.5))
        b = float(10 ** rng.uniform(-1.5, 1.5))
        r = float(10 ** rng.uniform(-2, 1.5))
        x = int(rng.choice([0, 1, 3, 10, 50, 199]))
        tau = float(10 ** rng.uniform(-1, 3.2))
        rows.append((r + x, a, b + x, tau))
    A, a, B, tau = (np.array(c) for c in zip(*rows, strict=True))
    got = beta_mixture_purchases(A, a, B, tau)
    ref = np.array([_mp_alive_purchases(*row) for row in rows])
    np.testing.assert_allclose(got, ref, rtol=1e-9)


@pytest.mark.parametrize(
    "A, a, B, alpha, T",
    [
        (1036.857, 44.78, 1000.387, 87.53, 348.53),  # series, then quadrature
        (8.0, 6.0, 0.5, 1.0, 0.0),  # closed form, then quadrature, levelled off
    ],
)
def test_alive_purchases_do_not_dip_where_the_method_changes(A, a, B, alpha, T):
    t = np.array([1.0, 30.0, 365.0, 3650.0, 36500.0])
    values = beta_mixture_purchases(A, a, B, t / (alpha + T))
    assert np.all(np.diff(values) >= 0)


def test_dedup_sorted_and_unsorted_blocks_agree():
    rng = np.random.default_rng(5)
    x = rng.integers(0, 5, 3000).astype(float)
    T = rng.integers(1, 40, 3000) / 7.0

    def func(t, x_, T_):
        return t * x_ + T_**2

    t = np.array([[1.0], [2.0]])
    order = np.lexsort((T, x))
    expected = func(t, x, T)
    np.testing.assert_array_equal(dedup_over_customers(func, t, x, T), expected)
    np.testing.assert_array_equal(
        dedup_over_customers(func, t, x[order], T[order]), expected[:, order]
    )


@pytest.mark.parametrize("model_class", [BGNBDModel, MBGNBDModel])
def test_warm_start_from_a_share_of_customers_reaches_the_same_maximum(
    cdnow_master, monkeypatch, model_class
):
    # Large fits start with Newton steps from a fit on a random share of the
    # customers; they must land on the maximum the full search finds.
    import ltvkit.models._base as base
    from ltvkit import read_transactions, summarise

    rfm = summarise(read_transactions(cdnow_master), time_unit="W")
    counts = rfm.groupby(["frequency", "recency", "T"]).size().rename("n")
    counts = counts.reset_index()
    cold = model_class().fit(counts, weights="n")
    assert "share" not in cold.optimizer_status_
    monkeypatch.setattr(base, "_WARM_START_ROWS", len(counts) // 5)
    warm = model_class().fit(counts, weights="n")
    assert "share" in warm.optimizer_status_
    for name, value in cold.params_.items():
        assert warm.params_[name] == pytest.approx(value, rel=1e-9)
    assert warm.log_likelihood_ == pytest.approx(cold.log_likelihood_, rel=1e-12)
    for name, se in cold.standard_errors_.items():
        assert warm.standard_errors_[name] == pytest.approx(se, rel=1e-7)
