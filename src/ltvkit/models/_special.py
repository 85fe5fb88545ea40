"""Numerically stable special functions shared by the purchase models.

Two integrals carry all the hard numerics:

* ``beta_mixture_purchases`` -- the expected number of purchases of a customer
  who is alive, under BG/NBD and MBG/NBD: ``E[(1 - (1 + p tau)^-A) / p]`` with
  ``p ~ Beta(a, B)``. In closed form it is ``(a + B - 1) / (a - 1) * (1 -
  2F1(A, a - 1; a + B - 1; -tau))`` (Fader, Hardie and Lee 2005, eq. 10, after
  a Pfaff transformation), which has removable singularities at ``a = 1`` and
  poles when ``a + B - 1`` is 0 or a negative integer. Those are the values
  where ``scipy.special.hyp2f1`` returns NaN or garbage (case 08: a + b < 1).
  We never form that product: a series without poles serves small arguments
  and a double-exponential quadrature over ``p`` serves the rest.
* ``pareto_death_integral`` -- ``log of int_{t_x}^{T} (alpha + y)^-(r + x)
  (beta + y)^-(s + 1) dy`` with its gradient, the part of the Pareto/NBD
  likelihood that lifetimes writes with ``2F1`` and a branch on alpha < beta.
  A change of variable makes the integrand ``exp(-v) G(v)`` with ``G`` in
  (0, 1], integrated by Gauss-Legendre on geometric panels, so it cannot
  overflow and its gradient comes from the same nodes.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, hyp2f1

__all__ = [
    "beta_mixture_purchases",
    "expm1_ratio",
    "geometric_panels",
    "pareto_death_integral",
]

_GL_X, _GL_W = np.polynomial.legendre.leggauss(10)

# The series in z converges like z**n; beyond this the quadrature is cheaper.
_SERIES_MAX_Z = 0.6
# FHL 2005 eq. 10 with scipy's hyp2f1 serves z in (_CLOSED_MIN_Z, _CLOSED_MAX_Z]
# when a + B - 1 >= 1, |a - 1| >= 0.01 and A, B <= _CLOSED_MAX_PARAM; below
# _CLOSED_MIN_Z its 1 - (...) cancels and the series needs few terms anyway.
_CLOSED_MIN_Z = 0.25
_CLOSED_MAX_Z = 0.999
_CLOSED_MAX_PARAM = 200.0
_SERIES_MAX_TERMS = 400
_SERIES_MAX_AZ = 20.0
_SERIES_MAX_CANCEL = 1e4

# Double-exponential rule: s in [-S, S] with 2 * _DE_HALF + 1 equal steps.
_DE_HALF = 120
_DE_TAIL = 45.0  # the tails of the integrand are cut where they fall below e**-45


def expm1_ratio(c, L):
    """``(1 - exp(-c L)) / c``, with its limit ``L`` at ``c = 0``.

    >>> float(expm1_ratio(0.0, 2.0))
    2.0
    >>> round(float(expm1_ratio(1.0, np.log(2.0))), 12)
    0.5
    """
    c = np.asarray(c, dtype=float)
    L = np.asarray(L, dtype=float)
    cl = c * L
    small = np.abs(cl) < 1e-8
    safe_c = np.where(small, 1.0, c)
    return np.where(small, L * (1.0 - 0.5 * cl), -np.expm1(-cl) / safe_c)


def geometric_panels(V, n_panels: int = 26):
    """Gauss-Legendre nodes and weights on [0, V] refined geometrically near 0.

    The panels are ``[0, V 2**-(n-1)]`` and ``[V 2**-j, V 2**-(j-1)]``, so an
    integrand that varies on any scale down to ``V 2**-n`` is resolved.

    Returns
    -------
    nodes, weights : ndarray of shape ``V.shape + (10 * n_panels,)``
    """
    V = np.asarray(V, dtype=float)[..., None]
    edges = V * 2.0 ** -np.arange(n_panels - 1, -1, -1, dtype=float)
    lo = np.concatenate([np.zeros_like(V), edges[..., :-1]], axis=-1)
    mid = 0.5 * (edges + lo)
    half = 0.5 * (edges - lo)
    nodes = mid[..., None] + half[..., None] * _GL_X
    weights = half[..., None] * _GL_W
    shape = V.shape[:-1] + (n_panels * _GL_X.size,)
    return nodes.reshape(shape), weights.reshape(shape)


# -- BG/NBD and MBG/NBD: E[purchases | alive] --------------------------------------


def beta_mixture_purchases(A, a, B, tau):
    r"""Expected purchases of a live customer in a horizon ``tau (alpha + T)``.

    Computes :math:`E_p[(1 - (1 + p\tau)^{-A}) / p]` for
    :math:`p \sim \mathrm{Beta}(a, B)`, which is finite and positive for all
    positive arguments (and 0 at ``tau = 0``).

    Parameters
    ----------
    A : array-like
        Shape of the gamma posterior of the purchase rate, ``r + x``.
    a, B : array-like
        Beta posterior of the dropout probability: ``a`` and ``b + x``
        (BG/NBD) or ``b + x + 1`` (MBG/NBD).
    tau : array-like
        Horizon over ``alpha + T``, >= 0.

    Notes
    -----
    With ``z = tau / (1 + tau)`` and ``C = a + B - 1`` (Euler's transformation
    of FHL 2005 eq. 10) the result is
    ``C (1 - (1 - z)**(a-1)) / (a - 1) - (1 - z)**(a-1) H`` where
    ``H = sum_{n>=1} (C - A)_n (a)_{n-1} / ((C + 1)_{n-1} n!) z**n``; every
    denominator is positive because ``C > -1``, so the series has no poles.
    It is used for ``z <= 0.6`` while ``a z <= 20`` (its terms grow like
    ``(a z)**n / n!`` first) and ``C <= 10**4 max(A, 1)`` (its two parts
    cancel to about ``A tau``). Other arguments use a double-exponential
    quadrature of the expectation in the logit of ``p``, centred on the mode
    and reaching far enough for both the exponential tails of small ``a`` or
    ``B`` and the near-normal shape of large ones.

    Both are exact but slow; in the common region ``0.25 < z <= 0.999``,
    ``C >= 1``, ``|a - 1| >= 0.01``, ``A, B <= 200`` the direct closed form
    ``C / (a - 1) (1 - (1 - z)**A 2F1(A, B; C; z))`` with scipy's ``hyp2f1``
    (relative error below 3e-12 there against mpmath) is used instead, and
    any non-finite or non-positive value it gives falls back to them.
    """
    A, a, B, tau = np.broadcast_arrays(
        *(np.asarray(v, dtype=float) for v in (A, a, B, tau))
    )
    shape = A.shape
    A, a, B, tau = (v.ravel() for v in (A, a, B, tau))
    out = np.empty(A.shape)
    z = tau / (1.0 + tau)
    C = a + B - 1.0
    # The series' terms grow like (a z)**n / n! before they fall, so for
    # large a z they overflow; and its two parts, each about C z, cancel to
    # about A tau, losing C / A to rounding. The quadrature serves both.
    series_ok = (a * z <= _SERIES_MAX_AZ) & (C <= _SERIES_MAX_CANCEL * np.fmax(A, 1.0))
    use_series = (z <= _CLOSED_MIN_Z) & series_ok
    # Where scipy's hyp2f1 is accurate (checked against mpmath: relative
    # error below 3e-12 over this region) the closed form is a hundred times
    # cheaper than the series or the quadrature.
    closed_params = (
        (C >= 1.0)
        & (np.abs(a - 1.0) >= 0.01)
        & (A <= _CLOSED_MAX_PARAM)
        & (B <= _CLOSED_MAX_PARAM)
    )
    closed = ~use_series & (z <= _CLOSED_MAX_Z) & closed_params
    if closed.any():
        value = _purchases_closed(*(v[closed] for v in (A, a, B, C, z)))
        ok = np.isfinite(value) & (value > 0)
        out[closed] = value
        closed[closed] = ok
    use_series |= ~closed & (z <= _SERIES_MAX_Z) & series_ok
    if use_series.any():
        out[use_series] = _purchases_series(
            A[use_series], a[use_series], B[use_series], z[use_series]
        )
    rest = ~use_series & ~closed
    if rest.any():
        out[rest] = _purchases_quadrature(A[rest], a[rest], B[rest], tau[rest])
        # The result is increasing in tau, so here at least its value at the
        # end of the range of the method used for smaller tau (the closed
        # form, else the series): keeps a curve that has levelled off from
        # dipping by a rounding error where the method changes.
        beyond = rest & closed_params & (z > _CLOSED_MAX_Z)
        if beyond.any():
            at_edge = _purchases_closed(
                *(v[beyond] for v in (A, a, B, C)), _CLOSED_MAX_Z
            )
            out[beyond] = np.fmax(out[beyond], at_edge)
        cancels = C > _SERIES_MAX_CANCEL * np.fmax(A, 1.0)
        after_series = rest & ~beyond & ~cancels
        if after_series.any():
            A_s, a_s, B_s = (v[after_series] for v in (A, a, B))
            edge = np.minimum(_SERIES_MAX_Z, _SERIES_MAX_AZ / a_s)
            at_edge = _purchases_series(A_s, a_s, B_s, edge)
            out[after_series] = np.fmax(out[after_series], at_edge)
    return out.reshape(shape)


def _purchases_closed(A, a, B, C, z):
    """FHL 2005 eq. 10: ``C / (a - 1) (1 - (1 - z)**A 2F1(A, B; C; z))``."""
    with np.errstate(all="ignore"):
        return C / (a - 1.0) * (1.0 - np.exp(A * np.log1p(-z)) * hyp2f1(A, B, C, z))


def _purchases_series(A, a, B, z):
    C = a + B - 1.0
    L = np.log1p(-z)
    first = C * expm1_ratio(a - 1.0, -L)  # C (1 - (1-z)^(a-1)) / (a - 1)
    term = (C - A) * z
    H = term.copy()
    active = np.ones(A.shape, dtype=bool)
    for n in range(1, _SERIES_MAX_TERMS):
        term = term * (C - A + n) * (a + n - 1.0) / ((C + n) * (n + 1.0)) * z
        H += np.where(active, term, 0.0)
        active &= np.abs(term) > 1e-17 * np.maximum(np.abs(H), 1e-300)
        if not active.any():
            break
    return first - np.exp((a - 1.0) * L) * H


def _purchases_quadrature(A, a, B, tau):
    # Integrate over l = logit(p); the Beta(a, B) density in l is log-concave
    # with mode log(a / B) and exponential tails of rates a and B.
    mode = np.log(a) - np.log(B)
    width = np.sqrt(1.0 / a + 1.0 / B)
    # For a < 1 the integrand grows like p**(a-1) to the left of the mode
    # until p ~ 1 / (A tau), where g flattens: cover that stretch as well.
    l_g = -np.log(A * tau)
    spread = np.where(a < 1.0, np.maximum(mode - l_g, 0.0), 0.0)
    centre = mode - 0.5 * spread
    width = np.maximum(width, 0.5 * spread)
    # The tails fall off exponentially (rates a and B) far out, and like a
    # normal of standard deviation ``width`` near the mode when a and B are
    # large: reach far enough for both.
    tail = np.maximum(_DE_TAIL / np.minimum(a, B) / width, np.sqrt(2.0 * _DE_TAIL))
    reach = tail + 0.5 * spread / width + 1.0
    S = np.arcsinh(reach)[:, None]
    grid = np.linspace(-1.0, 1.0, 2 * _DE_HALF + 1)
    s = S * grid
    h = S * (grid[1] - grid[0])
    delta = (centre - mode)[:, None] + width[:, None] * np.sinh(s)  # l - mode
    ell = mode[:, None] + delta
    jac = h * width[:, None] * np.cosh(s)
    A_, a_, B_, t_ = (v[:, None] for v in (A, a, B, tau))
    log_p = -np.logaddexp(0.0, -ell)
    # The log density relative to the mode, where softplus(l) - softplus(mode)
    # = log1p(mu expm1(l - mode)) with mu = a / (a + B): no cancellation of
    # large terms when a and B are large. Normalised by the same rule.
    mu = (a / (a + B))[:, None]
    log_dens = a_ * delta - (a_ + B_) * np.log1p(mu * np.expm1(delta))
    log_y = log_p + np.log(t_)  # y = p tau
    y = np.exp(np.minimum(log_y, 700.0))
    tiny = log_y < -30.0
    with np.errstate(divide="ignore"):
        log_num = np.where(
            tiny,
            np.log(A_) + log_y - 0.5 * (A_ + 1.0) * y,
            np.log(-np.expm1(-A_ * np.log1p(np.where(tiny, 0.0, y)))),
        )
    log_g = log_num - log_p
    dens = np.exp(log_dens) * jac
    return (dens * np.exp(log_g)).sum(axis=1) / dens.sum(axis=1)


# -- Pareto/NBD: the integral over the time of death ------------------------------


def pareto_death_integral(r, alpha, s, beta, x, t_x, T, *, grad: bool = False):
    r"""Log of :math:`\int_{t_x}^{T} (\alpha+y)^{-(r+x)} (\beta+y)^{-(s+1)} dy`.

    This is the "died between the last purchase and T" part of the Pareto/NBD
    likelihood (Fader and Hardie 2005, note 009, eq. 18 writes it with 2F1).

    Parameters
    ----------
    r, alpha, s, beta : float
        Pareto/NBD parameters.
    x, t_x, T : ndarray
        Frequency, recency and age, all of the same shape.
    grad : bool, default=False
        Also return the derivatives of the log integral with respect to
        ``(r, alpha, s, beta)``, shape ``x.shape + (4,)``.

    Returns
    -------
    log_integral : ndarray
        ``-inf`` where ``t_x == T``.
    d_log_integral : ndarray, only if ``grad``

    Notes
    -----
    Let ``M`` be the larger of alpha and beta, ``e_M`` its exponent and
    ``e_m`` the other one, ``k = r + s + x``. The substitution
    ``(M + t_x) / (M + y) = exp(-v / k)`` gives ``(M + t_x)**(1 - e_M)
    (m + t_x)**-e_m / k * int_0^{k U} exp(-v) G(v) dv`` with
    ``U = log((M + T) / (M + t_x))`` and ``G`` decreasing from 1. The tail
    beyond ``v = 50`` is below ``e**-50`` of the whole and is dropped. The
    number of geometric panels adapts to the steepest row of the call.
    """
    x = np.asarray(x, dtype=float)
    t_x = np.asarray(t_x, dtype=float)
    T = np.asarray(T, dtype=float)
    a_big = alpha >= beta
    M, m = (alpha, beta) if a_big else (beta, alpha)
    e_alpha = r + x
    e_beta = s + 1.0
    e_M, e_m = (e_alpha, e_beta) if a_big else (e_beta, e_alpha)
    k = r + s + x
    e_m = np.broadcast_to(e_m, x.shape)
    e_M = np.broadcast_to(e_M, x.shape)

    U = np.log(M + T) - np.log(M + t_x)
    V = np.minimum(k * U, 50.0)
    # G falls at rate <= 1 + e_m (M - m) / (k (m + t_x)) near v = 0: the
    # smallest panel must be narrower than the scale of that fall.
    rate = 1.0 + e_m * (M - m) / (k * (m + t_x))
    need = np.log2(np.maximum(4.0 * V * rate, 1.0))
    n_panels = int(np.clip(np.ceil(np.max(need, initial=0.0)) + 3, 6, 40))
    v, w = geometric_panels(V, n_panels)
    k_ = k[..., None]
    # M + y = (M + t_x) e^{v/k};  m + y = (m + t_x) + (M + t_x) expm1(v/k)
    em1 = np.expm1(v / k_)
    Mt = (M + t_x)[..., None]
    mt = (m + t_x)[..., None]
    log_G = -e_m[..., None] * np.log1p((M - m) * (-np.expm1(-v / k_)) / mt)
    q = w * np.exp(-v + log_G)
    S_sum = q.sum(axis=-1)
    with np.errstate(divide="ignore"):
        log_I = (
            (1.0 - e_M) * np.log(M + t_x)
            - e_m * np.log(m + t_x)
            - np.log(k)
            + np.log(S_sum)
        )
    if not grad:
        return log_I

    # d log I / d theta = E_q[d log f(y) / d theta] under the normalised nodes.
    with np.errstate(invalid="ignore", divide="ignore"):
        qn = q / S_sum[..., None]
    qn = np.where(np.isfinite(qn), qn, 0.0)
    log_My = np.log(Mt) + v / k_
    log_my = np.log(mt + Mt * em1)
    if a_big:
        log_ay, log_by = log_My, log_my
    else:
        log_ay, log_by = log_my, log_My
    inv_ay = np.exp(-log_ay)
    inv_by = np.exp(-log_by)
    d = np.empty(x.shape + (4,))
    d[..., 0] = -(qn * log_ay).sum(axis=-1)
    d[..., 1] = -e_alpha * (qn * inv_ay).sum(axis=-1)
    d[..., 2] = -(qn * log_by).sum(axis=-1)
    d[..., 3] = -e_beta * (qn * inv_by).sum(axis=-1)
    return log_I, d


def logit_weights(u, v):
    """Weights ``exp(u) / (exp(u) + exp(v))`` of a log-sum-exp of two terms."""
    return expit(u - v)
