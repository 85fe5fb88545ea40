"""MBG/NBD purchase model (Batislam, Denizel and Filiztekin 2007)."""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaln, digamma, expit, gammaln, xlogy

from ltvkit.models._base import broadcast_float, wsum
from ltvkit.models._purchase import _PurchaseModel, dedup_over_customers
from ltvkit.models._special import beta_mixture_purchases

__all__ = ["MBGNBDModel"]


class MBGNBDModel(_PurchaseModel):
    r"""Modified BG/NBD: a customer may also drop out right after the first purchase.

    As :class:`~ltvkit.models.BGNBDModel`, with the dropout chance of
    :math:`p \sim \mathrm{Beta}(a, b)` applied at every purchase including the
    first, so a customer without repeat purchases is not certainly alive.
    Parameters, attributes and fitting are those of ``BGNBDModel``.

    Notes
    -----
    Likelihood as in lifetimes' ``ModifiedBetaGeoFitter`` (Batislam et al.
    2007, eq. 4), in log space with ``logaddexp``, so frequent buyers cannot
    overflow it. The conditional expectation is
    ``P(alive) E[(1 - (1 + p tau)^-(r+x)) / p]`` with
    ``p ~ Beta(a, b + x + 1)``, computed without ``hyp2f1``.

    References
    ----------
    Batislam, E. P., Denizel, M. and Filiztekin, A. (2007). Empirical
    validation and comparison of models for customer base analysis.
    International Journal of Research in Marketing 24 (3), 201-209.
    """

    kind = "mbgnbd"
    display_name = "MBG/NBD"
    param_names = ("r", "alpha", "a", "b")
    time_params = (1,)

    def _loglik(self, theta, data, *, grad):
        r, alpha, a, b = theta
        x = data["x"]
        ux, ix = data.factor("x")
        uT, iT = data.factor("T")
        utx, itx = data.factor("t_x")
        log_aT = np.log(alpha + uT)[iT]
        log_atx = np.log(alpha + utx)[itx]
        const_x = (
            gammaln(r + ux)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + ux + 1.0)
            - gammaln(b)
            - gammaln(a + b + ux + 1.0)
        )[ix]
        A3 = -(r + x) * log_aT
        A4 = np.log(a) - np.log(b + x) + (r + x) * (log_aT - log_atx)
        ll = const_x + A3 + np.logaddexp(A4, 0.0)
        if not grad:
            return ll

        w = expit(A4)
        psi_ab = digamma(a + b)
        inv_aT = (1.0 / (alpha + uT))[iT]
        inv_atx = (1.0 / (alpha + utx))[itx]
        g = np.empty((x.size, 4))
        g[:, 0] = (
            (digamma(r + ux) - digamma(r))[ix]
            + np.log(alpha)
            - log_aT
            + w * (log_aT - log_atx)
        )
        g[:, 1] = r / alpha - (r + x) * inv_aT + w * (r + x) * (inv_aT - inv_atx)
        g[:, 2] = (psi_ab - digamma(a + b + ux + 1.0))[ix] + w / a
        g[:, 3] = (
            psi_ab + digamma(b + ux + 1.0) - digamma(b) - digamma(a + b + ux + 1.0)
        )[ix] - w / (b + x)
        return ll, g

    def _loglik_sum(self, theta, data):
        # The weighted sum of _loglik and its gradient, aggregated over the
        # distinct x and T as in BGNBDModel._loglik_sum; here every row has
        # the two branches (a customer may drop out at the first purchase).
        r, alpha, a, b = theta
        w = data.weights
        ux, ix = data.factor("x")
        uT, iT = data.factor("T")
        utx, itx = data.factor("t_x")
        k = data.cache.get("mbgnbd")
        if k is None:
            x = data["x"]
            k = data.cache["mbgnbd"] = {
                "x": x,
                "W_x": np.bincount(ix, w, ux.size),
                "W_T": np.bincount(iT, w, uT.size),
                "Wx_T": np.bincount(iT, w * x, uT.size),
            }
        n = data.n
        x, W_x, W_T, Wx_T = k["x"], k["W_x"], k["W_T"], k["Wx_T"]
        LT = np.log(alpha + uT)
        Ltx = np.log(alpha + utx)
        b_x = b + ux
        const_x = (
            gammaln(r + ux)
            + gammaln(b_x + 1.0)
            - gammaln(a + b_x + 1.0)
            + (gammaln(a + b) - gammaln(r) - gammaln(b) + r * np.log(alpha))
        )
        D = LT[iT] - Ltx[itx]
        rx = r + x
        d = rx * D + (np.log(a) - np.log(b_x))[ix]  # A4; ll = const + A3 + sp(A4)
        e = np.exp(-np.abs(d))
        softplus = np.maximum(d, 0.0) + np.log1p(e)
        ww = w * expit(d)
        r_T = r * W_T + Wx_T
        total = W_x @ const_x - r_T @ LT + wsum(w, softplus)

        psi_ab = digamma(a + b)
        psi_abx = digamma(a + b_x + 1.0)
        inv_T = 1.0 / (alpha + uT)
        inv_tx = 1.0 / (alpha + utx)
        g = np.empty(4)
        g[0] = (
            W_x @ (digamma(r + ux) - digamma(r))
            + n * np.log(alpha)
            - W_T @ LT
            + wsum(ww, D)
        )
        g[1] = n * r / alpha - r_T @ inv_T + wsum(ww, rx * (inv_T[iT] - inv_tx[itx]))
        g[2] = W_x @ (psi_ab - psi_abx) + ww.sum() / a
        g[3] = W_x @ (psi_ab + digamma(b_x + 1.0) - digamma(b) - psi_abx) - (
            np.bincount(ix, ww, ux.size) @ (1.0 / b_x)
        )
        return total, g

    def conditional_probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(alive at T | x, t_x, T) (Batislam et al. 2007, appendix, eq. 5)."""
        r, alpha, a, b = self._theta()
        x, t_x, T = broadcast_float(frequency, recency, T)
        # 1 / (1 + odds of having dropped out), as in BGNBDModel.
        with np.errstate(over="ignore"):
            odds_dead = np.exp((r + x) * np.log((alpha + T) / (alpha + t_x))) * (
                a / (b + x)
            )
        return 1.0 / (1.0 + odds_dead)

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T]; ``t`` in the data's time unit.

        Broadcasts like :meth:`BGNBDModel.conditional_expected_purchases`.
        """
        x, t_x, T = broadcast_float(frequency, recency, T)
        alive = self.expected_purchases_if_alive(t, x, T)
        return alive * self.conditional_probability_alive(x, t_x, T)

    def expected_purchases_if_alive(self, t, frequency, T) -> np.ndarray:
        """E[purchases in (T, T + t] | alive at T, x, T], broadcast."""
        r, alpha, a, b = self._theta()

        def alive_purchases(t_, x_, T_):
            return beta_mixture_purchases(r + x_, a, b + x_ + 1.0, t_ / (alpha + T_))

        x, T = broadcast_float(frequency, T)
        return dedup_over_customers(alive_purchases, t, x, T)

    def expected_purchases_new_customer(self, t) -> np.ndarray:
        """E[X(t)] for a customer just acquired."""
        r, alpha, a, b = self._theta()
        t = np.asarray(t, dtype=float)
        return b / (a + b) * beta_mixture_purchases(r, a, b + 1.0, t / alpha)

    def probability_of_purchases(self, n, t) -> np.ndarray:
        """P(X(t) = n) for a new customer, in log space."""
        r, alpha, a, b = self._theta()
        n, t = broadcast_float(n, t)
        log_nb = (
            gammaln(r + n)
            - gammaln(r)
            - gammaln(n + 1.0)
            + r * np.log(alpha / (alpha + t))
            + xlogy(n, t / (alpha + t))
        )
        first = np.exp(betaln(a, b + n + 1.0) - betaln(a, b) + log_nb)
        at_least_n = np.where(
            n > 0, betainc(np.maximum(n, 1.0), r, t / (alpha + t)), 1.0
        )
        second = np.exp(betaln(a + 1.0, b + n) - betaln(a, b)) * at_least_n
        return first + second
