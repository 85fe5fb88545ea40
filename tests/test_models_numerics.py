"""Numerical properties over the whole parameter space, and mpmath references."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ltvkit.models import PURCHASE_MODELS, BGNBDModel, MBGNBDModel
from ltvkit.models._special import beta_mixture_purchases

positive = st.floats(min_value=0.01, max_value=50.0)
small_ab = st.floats(min_value=0.01, max_value=0.99)


def _params(kind, draw_a, draw_b, r, alpha):
    if kind == "paretonbd":
        return {"r": r, "alpha": alpha, "s": draw_a, "beta": draw_b * 10}
    return {"r": r, "alpha": alpha, "a": draw_a, "b": draw_b}


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(sorted(PURCHASE_MODELS)),
    a=st.one_of(small_ab, positive),
    b=st.one_of(small_ab, positive),
    r=positive,
    alpha=st.floats(min_value=0.05, max_value=500.0),
    x=st.integers(min_value=0, max_value=10_000),
    T=st.floats(min_value=0.5, max_value=3650.0),
    frac=st.floats(min_value=0.0, max_value=1.0),
)
def test_models_predictions_finite_and_in_range(kind, a, b, r, alpha, x, T, frac):
    model = PURCHASE_MODELS[kind].from_params(_params(kind, a, b, r, alpha))
    t_x = 0.0 if x == 0 else frac * T
    horizons = np.array([[0.0], [1.0], [30.0], [365.0], [3650.0]])
    p = model.conditional_probability_alive(x, t_x, T)
    e = model.conditional_expected_purchases(horizons, x, t_x, T)
    assert np.all(np.isfinite(p)) and np.all((p >= 0) & (p <= 1))
    assert np.all(np.isfinite(e)) and np.all(e >= 0)
    # Non-decreasing in t up to the methods' stated accuracy (3e-12 relative
    # against mpmath): where a curve has levelled off, neighbouring horizons
    # may be computed by different methods.
    rel = 1e-11
    assert np.all(np.diff(e[:, 0]) >= -rel * np.abs(e[1:, 0]))
    new = model.expected_purchases_new_customer(horizons[:, 0])
    assert np.all(np.isfinite(new)) and np.all(np.diff(new) >= -rel * new[1:])


def _mp_bgnbd(params, t, x, t_x, T, *, modified=False):
    """FHL 2005 eq. 10 (Batislam 2007 for MBG) at 50 digits."""
    with mp.workdps(50):
        r, alpha, a, b = (mp.mpf(params[k]) for k in ("r", "alpha", "a", "b"))
        t, x, t_x, T = (mp.mpf(v) for v in (t, x, t_x, T))
        shift = 1 if modified else 0
        z = t / (alpha + T + t)
        c = a + b + x - 1 + shift
        hyp = mp.hyp2f1(r + x, b + x + shift, c, z)
        num = c / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        if modified:
            den = 1 + a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        else:
            den = 1 + (
                a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)
                if x > 0
                else 0
            )
        return float(num / den)


def _hard_draws(rng, n):
    for _ in range(n):
        a = float(rng.uniform(0.02, 0.98))
        b = (
            float(rng.uniform(0.02, 1.0 - a))
            if rng.random() < 0.5
            else float(10 ** rng.uniform(-1.5, 1.5))
        )
        r = float(10 ** rng.uniform(-1.5, 1.2))
        alpha = float(10 ** rng.uniform(-1, 2.5))
        x = int(rng.choice([0, 1, 2, 50, 1000, 5000]))
        T = float(10 ** rng.uniform(0, np.log10(3650)))
        t_x = 0.0 if x == 0 else float(rng.uniform(0, T))
        t = float(10 ** rng.uniform(0, np.log10(3650)))
        if abs(a - 1) < 1e-3:
            continue
        yield {"r": r, "alpha": alpha, "a": a, "b": b}, t, x, t_x, T


@pytest.mark.parametrize("model_cls", [BGNBDModel, MBGNBDModel])
def test_models_hard_region_matches_mpmath(model_cls):
    rng = np.random.default_rng(2024)
    for params, t, x, t_x, T in _hard_draws(rng, 25):
        got = float(
            model_cls.from_params(params).conditional_expected_purchases(t, x, t_x, T)
        )
        ref = _mp_bgnbd(params, t, x, t_x, T, modified=model_cls is MBGNBDModel)
        assert got == pytest.approx(ref, rel=1e-6), (params, t, x, t_x, T)


@pytest.mark.slow
@pytest.mark.parametrize("model_cls", [BGNBDModel, MBGNBDModel])
def test_models_hard_region_matches_mpmath_many(model_cls):
    rng = np.random.default_rng(7)
    for params, t, x, t_x, T in _hard_draws(rng, 300):
        got = float(
            model_cls.from_params(params).conditional_expected_purchases(t, x, t_x, T)
        )
        ref = _mp_bgnbd(params, t, x, t_x, T, modified=model_cls is MBGNBDModel)
        assert got == pytest.approx(ref, rel=1e-6), (params, t, x, t_x, T)


def test_models_pareto_death_integral_matches_mpmath():
    from ltvkit.models._special import pareto_death_integral

    rng = np.random.default_rng(5)
    for _ in range(12):
        r, s = 10 ** rng.uniform(-1.5, 1.2, 2)
        alpha, beta = 10 ** rng.uniform(-1, 3, 2)
        x = float(rng.choice([0, 1, 20, 3000]))
        T = float(10 ** rng.uniform(0, 3.5))
        t_x = 0.0 if x == 0 else float(rng.uniform(0, T))
        with mp.workdps(30):

            def f(y, r=r, alpha=alpha, s=s, beta=beta, x=x):
                return (alpha + y) ** (-(r + x)) * (beta + y) ** (-(s + 1))

            pts = [t_x] + [t_x + (T - t_x) * mp.mpf(2) ** -j for j in range(60, -1, -1)]
            ref = float(mp.log(mp.quad(f, pts)))
        got = pareto_death_integral(
            r, alpha, s, beta, np.array([x]), np.array([t_x]), np.array([T])
        )[0]
        assert got == pytest.approx(ref, rel=1e-10, abs=1e-10)


def _mp_beta_mixture(A, a, B, tau):
    """E[(1 - (1 + p tau)^-A) / p] for p ~ Beta(a, B), at 50 digits."""
    with mp.workdps(50):
        A, a, B, tau = (mp.mpf(v) for v in (A, a, B, tau))
        log_beta = mp.loggamma(a) + mp.loggamma(B) - mp.loggamma(a + B)

        def integrand(p):
            if p <= 0 or p >= 1:
                return mp.mpf(0)
            log_pdf = (a - 1) * mp.log(p) + (B - 1) * mp.log1p(-p) - log_beta
            return (1 - (1 + p * tau) ** (-A)) / p * mp.exp(log_pdf)

        mu = a / (a + B)
        sd = mp.sqrt(a * B / ((a + B) ** 2 * (a + B + 1)))
        points = sorted({mp.mpf(0), max(mp.mpf(0), mu - 12 * sd), mu, mp.mpf(1)})
        points.insert(-1, min(mp.mpf(1), mu + 12 * sd))
        return float(mp.quad(integrand, sorted(set(points)), maxdegree=10))


@pytest.mark.parametrize(
    "A, a, B",
    [
        (2.2, 1e8, 1e13),  # a degenerate fit: dropout all but impossible
        (50.0, 1e5, 1e4),
        (2.2, 1e8, 5.0),
        (0.3, 150.0, 1e8),
        (50.0, 3.0, 1e13),
        (2.2, 1e3, 1e13),
    ],
)
def test_beta_mixture_is_accurate_for_concentrated_and_extreme_betas(A, a, B):
    # Fits on small or degenerate data can end far out on a ridge of the
    # likelihood (a and b in the millions); predictions there must be finite
    # and as accurate as anywhere.
    taus = np.array([1e-3, 0.05, 0.5, 3.0, 100.0])
    got = beta_mixture_purchases(A, a, B, taus)
    want = np.array([_mp_beta_mixture(A, a, B, t) for t in taus])
    np.testing.assert_allclose(got, want, rtol=1e-10)
