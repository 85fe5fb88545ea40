"""BG/NBD purchase model (Fader, Hardie and Lee 2005)."""

from __future__ import annotations

import numpy as np
from scipy.special import betainc, betaln, digamma, expit, gammaln, polygamma, xlogy

from ltvkit.models._base import _BLOCK_ROWS, _blocks, broadcast_float, wsum
from ltvkit.models._purchase import _PurchaseModel, dedup_over_customers
from ltvkit.models._special import beta_mixture_purchases

__all__ = ["BGNBDModel"]


class BGNBDModel(_PurchaseModel):
    r"""Beta-geometric / negative binomial model of repeat purchases.

    While active, a customer buys as a Poisson process of rate
    :math:`\lambda \sim \mathrm{Gamma}(r, \alpha)`; after each repeat
    purchase they drop out with probability :math:`p \sim \mathrm{Beta}(a, b)`.

    Parameters
    ----------
    penalizer : float, default=0.0
        L2 penalty, as in lifetimes: ``penalizer * sum(params**2)`` is added to
        the mean negative log-likelihood per customer, with alpha measured in
        units of the longest customer age ``max(T)`` (so the penalty does not
        depend on the time unit).
    tol : float, default=1e-10
        Kept for the scikit-learn contract; the fit runs until the gradient of
        the mean log-likelihood vanishes to machine precision or ``max_iter``.
    max_iter : int, default=2000
        Iterations of L-BFGS-B per starting point.

    Attributes
    ----------
    params_ : dict
        ``r``, ``alpha`` (in the time unit of the data), ``a``, ``b``.
    log_likelihood_ : float
        Total log-likelihood of the data in their own time unit, without the
        penalty (comparable with published values).
    standard_errors_ : dict
        From the observed information (inverse Hessian of the total negative
        log-likelihood, penalty included) by the delta method.
    n_customers_, aic_, bic_, converged_, optimizer_status_ :
        Fit diagnostics.

    Notes
    -----
    The fit maximises the likelihood of FHL (2005) eq. 6 over log-parameters
    with L-BFGS-B and its analytic gradient, on distinct (frequency, recency,
    T) rows weighted by their counts, then polishes with Newton steps. A stop
    on "precision loss" is accepted when the gradient norm is below 1e-4.

    The conditional expectation (FHL 2005 eq. 10) is evaluated without
    ``hyp2f1`` of the raw arguments, which is NaN for some valid parameters
    (``a + b + x - 1 <= 0``): see :mod:`ltvkit.models._special`.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
    customers" the easy way: an alternative to the Pareto/NBD model.
    Marketing Science 24 (2), 275-284.
    """

    kind = "bgnbd"
    display_name = "BG/NBD"
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
        # FHL 2005 eq. 6, split as A1 + A2 + log(exp(A3) + [x > 0] exp(A4)).
        const_x = (
            gammaln(r + ux)
            - gammaln(r)
            + r * np.log(alpha)
            + gammaln(a + b)
            + gammaln(b + ux)
            - gammaln(b)
            - gammaln(a + b + ux)
        )[ix]
        repeat = x > 0
        A3 = -(r + x) * log_aT
        A4 = np.log(a) - np.log(b + np.maximum(x, 1.0) - 1.0) - (r + x) * log_atx
        ll = const_x + np.where(repeat, np.logaddexp(A3, A4), A3)
        if not grad:
            return ll

        w4 = np.where(repeat, expit(A4 - A3), 0.0)
        w3 = 1.0 - w4
        psi_ab = digamma(a + b)
        d_r_x = (digamma(r + ux) - digamma(r))[ix]
        d_a_x = (psi_ab - digamma(a + b + ux))[ix]
        d_b_x = (psi_ab + digamma(b + ux) - digamma(b) - digamma(a + b + ux))[ix]
        inv_aT = (1.0 / (alpha + uT))[iT]
        inv_atx = (1.0 / (alpha + utx))[itx]
        g = np.empty((x.size, 4))
        g[:, 0] = d_r_x + np.log(alpha) - w3 * log_aT - w4 * log_atx
        g[:, 1] = r / alpha - (r + x) * (w3 * inv_aT + w4 * inv_atx)
        g[:, 2] = d_a_x + w4 / a
        g[:, 3] = d_b_x - w4 / (b + np.maximum(x, 1.0) - 1.0)
        return ll, g

    @staticmethod
    def _sum_terms(data):
        """Weights aggregated per distinct x and T, and the repeat buyers' rows.

        The rows sorted by x first, as :class:`~ltvkit.models._base._Data`
        gives them, have the repeat buyers last: their rows are then views.
        """
        terms = data.cache.get("bgnbd")
        if terms is None:
            w = data.weights
            x = data["x"]
            ux, ix = data.factor("x")
            uT, iT = data.factor("T")
            utx, itx = data.factor("t_x")
            rep = x > 0
            first = x.size - np.count_nonzero(rep)
            if rep[first:].all():
                rep = slice(first, None)
            terms = {
                "W_x": np.bincount(ix, w, ux.size),
                "W_T": np.bincount(iT, w, uT.size),
                "Wx_T": np.bincount(iT, w * x, uT.size),
                "w": w[rep],
                "x": x[rep],
                "ix": ix[rep],
                "iT": iT[rep],
                "itx": itx[rep],
            }
            data.cache["bgnbd"] = terms
        return terms

    def _unpacked(self, data):
        """The distinct x, T and t_x, the customer count, the per-value weight
        sums, and the repeat buyers' rows: what the sums below work on."""
        k = self._sum_terms(data)
        return (
            data.factor("x")[0],
            data.factor("T")[0],
            data.factor("t_x")[0],
            data.n,
            k["W_x"],
            k["W_T"],
            k["Wx_T"],
            k["w"],
            k["x"],
            k["ix"],
            k["iT"],
            k["itx"],
        )

    def _loglik_sum(self, theta, data):
        # The weighted sum of _loglik and its gradient, with every term that
        # depends on one column only aggregated over that column's distinct
        # values; only the mixture weight of the two branches is per row.
        r, alpha, a, b = theta
        ux, uT, utx, n, W_x, W_T, Wx_T, w, x, ix, iT, itx = self._unpacked(data)
        LT = np.log(alpha + uT)
        Ltx = np.log(alpha + utx)
        b_x = b + np.maximum(ux, 1.0) - 1.0
        const_x = (
            gammaln(r + ux)
            + gammaln(b + ux)
            - gammaln(a + b + ux)
            + (gammaln(a + b) - gammaln(r) - gammaln(b) + r * np.log(alpha))
        )
        r_T = r * W_T + Wx_T  # sum of w (r + x) per distinct T
        inv_T = 1.0 / (alpha + uT)
        inv_tx = 1.0 / (alpha + utx)
        c_x = np.log(a) - np.log(b_x)
        # d = A4 - A3 on the repeat rows; ll = const_x + A3 + softplus(d).
        # The repeat rows are taken a block at a time, to bound the memory of
        # the temporaries.
        soft = w4D = w4E = w4_sum = 0.0
        W4_x = np.zeros(ux.size)
        for s in _blocks(x.size):
            ws, xs, ixs, iTs, itxs = w[s], x[s], ix[s], iT[s], itx[s]
            D = LT[iTs] - Ltx[itxs]
            rx = r + xs
            d = rx * D + c_x[ixs]
            softplus = np.maximum(d, 0.0) + np.log1p(np.exp(-np.abs(d)))
            ww4 = ws * expit(d)
            soft += wsum(ws, softplus)
            w4D += wsum(ww4, D)
            w4E += wsum(ww4, rx * (inv_T[iTs] - inv_tx[itxs]))
            w4_sum += ww4.sum()
            W4_x += np.bincount(ixs, ww4, ux.size)
        total = W_x @ const_x - r_T @ LT + soft

        psi_ab = digamma(a + b)
        psi_abx = digamma(a + b + ux)
        g = np.empty(4)
        g[0] = W_x @ (digamma(r + ux) - digamma(r)) + n * np.log(alpha) - W_T @ LT + w4D
        g[1] = n * r / alpha - r_T @ inv_T + w4E
        g[2] = W_x @ (psi_ab - psi_abx) + w4_sum / a
        g[3] = W_x @ (psi_ab + digamma(b + ux) - digamma(b) - psi_abx) - W4_x @ (
            1.0 / b_x
        )
        return total, g

    def _loglik_hessian(self, theta, data):
        """Hessian of :meth:`_loglik_sum` in the natural parameters, (4, 4)."""
        r, alpha, a, b = theta
        ux, uT, utx, n, W_x, W_T, Wx_T, w, x, ix, iT, itx = self._unpacked(data)
        b_x = b + np.maximum(ux, 1.0) - 1.0
        inv_T = 1.0 / (alpha + uT)
        inv_tx = 1.0 / (alpha + utx)
        LT, Ltx = np.log(alpha + uT), np.log(alpha + utx)
        c_x = np.log(a) - np.log(b_x)

        def tri(v):
            return polygamma(1, v)

        H = np.zeros((4, 4))
        # gammaln terms and r log(alpha)
        H[0, 0] = W_x @ (tri(r + ux) - tri(r))
        H[0, 1] = n / alpha
        H[1, 1] = -n * r / alpha**2
        t_ab = W_x @ (tri(a + b) - tri(a + b + ux))
        H[2, 2] = t_ab
        H[2, 3] = t_ab
        H[3, 3] = W_x @ (tri(a + b) + tri(b + ux) - tri(b) - tri(a + b + ux))
        # -(r + x) log(alpha + T)
        H[0, 1] -= W_T @ inv_T
        H[1, 1] += (r * W_T + Wx_T) @ inv_T**2
        # softplus(d) on the repeat rows, a block at a time: s4 * (second
        # derivatives of d) + s4 (1 - s4) (gradient of d)(gradient of d)'.
        w4_sum = 0.0
        W4_x = np.zeros(ux.size)
        G = np.empty((4, min(x.size, _BLOCK_ROWS)))
        for s in _blocks(x.size):
            ws, xs, ixs, iTs, itxs = w[s], x[s], ix[s], iT[s], itx[s]
            rx = r + xs
            D = LT[iTs] - Ltx[itxs]
            s4 = expit(rx * D + c_x[ixs])
            ww4 = ws * s4
            E = inv_T[iTs] - inv_tx[itxs]
            H[0, 1] += wsum(ww4, E)
            H[1, 1] += wsum(ww4, rx * (inv_tx[itxs] ** 2 - inv_T[iTs] ** 2))
            w4_sum += ww4.sum()
            W4_x += np.bincount(ixs, ww4, ux.size)
            g = G[:, : xs.size]
            g[0] = D
            g[1] = rx * E
            g[2] = 1.0 / a
            g[3] = -(1.0 / b_x)[ixs]
            H += (g * (ww4 * (1.0 - s4))) @ g.T
        H[2, 2] -= w4_sum / a**2
        H[3, 3] += W4_x @ (1.0 / b_x**2)
        upper = np.triu(H, 1)
        return np.diag(np.diag(H)) + upper + upper.T

    def conditional_probability_alive(self, frequency, recency, T) -> np.ndarray:
        """P(alive at T | x, t_x, T) (Fader, Hardie and Lee 2008, note 021).

        1 for customers without repeat purchases (BG/NBD lets a customer drop
        out only after a repeat purchase).
        """
        r, alpha, a, b = self._theta()
        x, t_x, T = broadcast_float(frequency, recency, T)
        # 1 / (1 + odds of having dropped out); an overflow of the odds to inf
        # gives 0, where the logistic of the log-odds would underflow anyway.
        with np.errstate(over="ignore"):
            odds_dead = np.exp((r + x) * np.log((alpha + T) / (alpha + t_x))) * (
                a / (b - 1.0 + np.maximum(x, 1.0))
            )
        out = 1.0 / (1.0 + odds_dead)
        return np.where(x > 0, out, 1.0)

    def conditional_expected_purchases(self, t, frequency, recency, T) -> np.ndarray:
        """E[purchases in (T, T + t] | x, t_x, T] (FHL 2005 eq. 10).

        Parameters
        ----------
        t : array-like
            Horizon(s) in the time unit of the data, >= 0; e.g. shape (H, 1)
            against customers of shape (N,) gives (H, N).
        frequency, recency, T : array-like
            Customer histories, broadcast against each other.

        Returns
        -------
        ndarray
            Finite, >= 0 and non-decreasing in ``t``.
        """
        x, t_x, T = broadcast_float(frequency, recency, T)
        alive = self.expected_purchases_if_alive(t, x, T)
        return alive * self.conditional_probability_alive(x, t_x, T)

    def expected_purchases_if_alive(self, t, frequency, T) -> np.ndarray:
        """E[purchases in (T, T + t] | alive at T, x, T], broadcast.

        :meth:`conditional_expected_purchases` is this times
        :meth:`conditional_probability_alive`.
        """
        r, alpha, a, b = self._theta()

        def alive_purchases(t_, x_, T_):
            return beta_mixture_purchases(r + x_, a, b + x_, t_ / (alpha + T_))

        x, T = broadcast_float(frequency, T)
        return dedup_over_customers(alive_purchases, t, x, T)

    def expected_purchases_new_customer(self, t) -> np.ndarray:
        """E[X(t)] for a customer just acquired (FHL 2005 eq. 9)."""
        r, alpha, a, b = self._theta()
        t = np.asarray(t, dtype=float)
        return beta_mixture_purchases(r, a, b, t / alpha)

    def probability_of_purchases(self, n, t) -> np.ndarray:
        """P(X(t) = n) for a new customer (FHL 2005 eq. 8), in log space."""
        r, alpha, a, b = self._theta()
        n, t = broadcast_float(n, t)
        log_nb = (
            gammaln(r + n)
            - gammaln(r)
            - gammaln(n + 1.0)
            + r * np.log(alpha / (alpha + t))
            + xlogy(n, t / (alpha + t))
        )
        first = np.exp(betaln(a, b + n) - betaln(a, b) + log_nb)
        n_pos = np.maximum(n, 1.0)
        second = np.exp(betaln(a + 1.0, b + n_pos - 1.0) - betaln(a, b)) * betainc(
            n_pos, r, t / (alpha + t)
        )
        return first + np.where(n > 0, second, 0.0)
