"""Pareto/NBD purchase model (Schmittlein, Morrison and Colombo 1987)."""

from __future__ import annotations

import numpy as np
from scipy.special import digamma, expit, gammaln, xlogy

from ltvkit.models._base import broadcast_float
from ltvkit.models._purchase import _PurchaseModel
from ltvkit.models._special import expm1_ratio, geometric_panels, pareto_death_integral

__all__ = ["ParetoNBDModel"]

_CHUNK = 20_000  # rows per block: the quadrature holds 260 nodes per row


def _log_death(theta, x, t_x, T, *, grad):
    """pareto_death_integral in blocks of rows, to bound memory."""
    r, alpha, s, beta = theta
    n = x.size
    out = np.empty(n)
    d = np.empty((n, 4)) if grad else None
    for start in range(0, n, _CHUNK):
        sl = slice(start, min(start + _CHUNK, n))
        res = pareto_death_integral(r, alpha, s, beta, x[sl], t_x[sl], T[sl], grad=grad)
        if grad:
            out[sl], d[sl] = res
        else:
            out[sl] = res
    return (out, d) if grad else out


class ParetoNBDModel(_PurchaseModel):
    r"""Pareto/NBD model: Poisson purchases while alive, exponential lifetimes.

    Purchase rates :math:`\lambda \sim \mathrm{Gamma}(r, \alpha)` and dropout
    rates :math:`\mu \sim \mathrm{Gamma}(s, \beta)`.

    Parameters
    ----------
    penalizer : float, default=0.0
        L2 penalty ``penalizer * sum(params**2)`` added to the mean negative
        log-likelihood, alpha and beta in units of ``max(T)``. (lifetimes'
        ``ParetoNBDFitter`` adds it to the total instead; ltvkit uses the
        BG/NBD convention of lifetimes for every model.)
    tol, max_iter :
        As in :class:`~ltvkit.models.BGNBDModel`.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha``, ``s``, ``beta``; alpha and beta in the time unit of
        the data.
    log_likelihood_, standard_errors_, n_customers_, aic_, bic_, converged_ :
        As in :class:`~ltvkit.models.BGNBDModel`; standard errors come from
        the observed information here too.

    Notes
    -----
    The likelihood (Fader and Hardie 2005, note 009, eq. 18) is evaluated in
    log space. Its death-time integral is computed by quadrature with an
    analytic gradient instead of lifetimes' ``hyp2f1`` with a branch on
    ``alpha < beta``, whose argument approaches 1 for frequent buyers; see
    :func:`ltvkit.models._special.pareto_death_integral`. The fit uses
    L-BFGS-B with that gradient, as for the other models.

    References
    ----------
    Schmittlein, D. C., Morrison, D. G. and Colombo, R. (1987). Counting your
    customers: who are they and what will they do next? Management Science
    33 (1), 1-24. Fader, P. S. and Hardie, B. G. S. (2005). A note on
    deriving the Pareto/NBD model and related expressions.
    """

    kind = "paretonbd"
    display_name = "Pareto/NBD"
    param_names = ("r", "alpha", "s", "beta")
    time_params = (1, 3)
    # Whole blocks of _log_death, whose quadrature depends on the rows of a block.
    _loglik_rows = 3 * _CHUNK

    def _parts(self, theta, x, t_x, T, *, grad):
        r, alpha, s, beta = theta
        log_alive = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
        res = _log_death(theta, x, t_x, T, grad=grad)
        log_I, d_I = res if grad else (res, None)
        log_dead = np.log(s) + log_I
        return log_alive, log_dead, d_I

    def _loglik(self, theta, data, *, grad):
        r, alpha, s, beta = theta
        x, t_x, T = data["x"], data["t_x"], data["T"]
        log_alive, log_dead, d_I = self._parts(theta, x, t_x, T, grad=grad)
        ux, ix = data.factor("x")
        const = (
            (gammaln(r + ux) - gammaln(r))[ix] + r * np.log(alpha) + s * np.log(beta)
        )
        ll = const + np.logaddexp(log_alive, log_dead)
        if not grad:
            return ll

        w_dead = expit(log_dead - log_alive)
        w_alive = 1.0 - w_dead
        g = np.empty((x.size, 4))
        g[:, 0] = (
            (digamma(r + ux) - digamma(r))[ix]
            + np.log(alpha)
            - w_alive * np.log(alpha + T)
            + w_dead * d_I[:, 0]
        )
        g[:, 1] = r / alpha - w_alive * (r + x) / (alpha + T) + w_dead * d_I[:, 1]
        g[:, 2] = (
            np.log(beta) - w_alive * np.log(beta + T) + w_dead * (1.0 / s + d_I[:, 2])
        )
        g[:, 3] = s / beta - w_alive * s / (beta + T) + w_dead * d_I[:, 3]
        return ll, g

    def conditional_probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(alive at T | x, t_x, T) (note 009, eq. 21), in log space."""
        theta = self._theta()
        x, t_x, T = broadcast_float(frequency, recency, T)
        shape = x.shape
        log_alive, log_dead, _ = self._parts(
            theta, x.ravel(), t_x.ravel(), T.ravel(), grad=False
        )
        return expit(log_alive - log_dead).reshape(shape)

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (note 009, eq. 27), closed form.

        ``t`` in the time unit of the data; broadcasts like
        :meth:`BGNBDModel.conditional_expected_purchases`.
        """
        x, t_x, T = broadcast_float(frequency, recency, T)
        alive = self.expected_purchases_if_alive(t, x, T)
        return alive * self.conditional_probability_alive(x, t_x, T)

    def expected_purchases_if_alive(self, t, frequency, T) -> np.ndarray:
        """E[purchases in (T, T + t] | alive at T, x, T], broadcast."""
        r, alpha, s, beta = self._theta()
        t = np.asarray(t, dtype=float)
        x, T = broadcast_float(frequency, T)
        rate = (r + x) / (alpha + T) * (beta + T)
        # (1 - ((beta+T)/(beta+T+t))^(s-1)) / (s-1), with its limit at s = 1
        return rate * expm1_ratio(s - 1.0, np.log1p(t / (beta + T)))

    def expected_purchases_new_customer(self, t) -> np.ndarray:
        """E[X(t)] for a customer just acquired (note 009, eq. 17)."""
        r, alpha, s, beta = self._theta()
        t = np.asarray(t, dtype=float)
        return r / alpha * beta * expm1_ratio(s - 1.0, np.log1p(t / beta))

    def probability_of_purchases(self, n, t) -> np.ndarray:
        """P(X(t) = n) for a new customer.

        Sum of "alive at t" (negative binomial times the survival) and "died
        at y < t" terms; the latter is integrated by quadrature in log space.
        """
        r, alpha, s, beta = self._theta()
        n, t = broadcast_float(n, t)
        shape = n.shape
        n, t = n.ravel(), t.ravel()
        log_nb_coef = gammaln(r + n) - gammaln(r) - gammaln(n + 1.0)
        u_t = t / (alpha + t)
        alive = np.exp(
            log_nb_coef
            + r * np.log(alpha / (alpha + t))
            + xlogy(n, u_t)
            + s * np.log(beta / (beta + t))
        )
        # int_0^t NB(n; r, alpha/(alpha+y)) s beta^s (beta+y)^-(s+1) dy with
        # u = y/(alpha+y) = u_t exp(-v/(n+1)).
        v, w = geometric_panels(np.full(n.shape, 60.0))
        u = u_t[:, None] * np.exp(-v / (n[:, None] + 1.0))
        log_phi = (r + s - 1.0) * np.log1p(-u) - (s + 1.0) * np.log(
            beta + (alpha - beta) * u
        )
        inner = (w * np.exp(-v + log_phi)).sum(axis=1)
        with np.errstate(divide="ignore"):
            dead = np.exp(
                np.log(s)
                + s * np.log(beta)
                + np.log(alpha)
                + log_nb_coef
                + (n + 1.0) * np.log(u_t)
                - np.log(n + 1.0)
                + np.log(inner)
            )
        return (alive + dead).reshape(shape)
