"""Gamma-Gamma model of spend per purchase (Fader, Hardie and Lee 2005, note 025)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln

from ltvkit.errors import AssumptionWarning, DataError, ModelError, format_examples
from ltvkit.models._base import (
    _FittedModel,
    check_columns,
    float_values,
    numeric_column,
    wsum,
)

__all__ = ["GammaGammaModel"]


class GammaGammaModel(_FittedModel):
    r"""Spend per purchase: Gamma(p, nu) amounts with nu ~ Gamma(q, v) per customer.

    Fitted on the repeat buyers (``frequency > 0``), whose ``monetary_value``
    is the mean of their repeat purchases.

    Parameters
    ----------
    penalizer : float, default=0.0
        L2 penalty ``penalizer * sum(params**2)`` added to the mean negative
        log-likelihood, as in lifetimes.
    tol, max_iter :
        As in :class:`~ltvkit.models.BGNBDModel`.
    correlation_threshold : float, default=0.3
        The model assumes spend per purchase independent of purchase
        frequency. If ``|Pearson r(frequency, monetary_value)|`` over the
        repeat buyers exceeds this, ``fit`` warns with
        :class:`~ltvkit.errors.AssumptionWarning`. 0.3 follows the guidance of
        pymc-marketing's Gamma-Gamma documentation.
    strict_assumptions : bool, default=False
        Raise :class:`~ltvkit.errors.DataError` instead of warning.

    Attributes
    ----------
    params_ : dict
        ``p``, ``q``, ``v`` (v in currency).
    mean_spend_ : float
        Population mean spend per purchase ``p v / (q - 1)``; infinite when
        ``q <= 1`` (then ``fit`` warns).
    frequency_spend_correlation_ : float
        The Pearson r checked at fit time.
    log_likelihood_, standard_errors_, n_customers_, aic_, bic_ :
        As for the purchase models; ``n_customers_`` counts repeat buyers.

    Notes
    -----
    The likelihood is that of lifetimes' ``GammaGammaFitter`` (the density of
    the mean spend of x purchases), maximised over log-parameters with
    L-BFGS-B and its analytic gradient.

    References
    ----------
    Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV: using
    iso-value curves for customer base analysis. Journal of Marketing
    Research 42 (4), 415-430. Note 025: the Gamma-Gamma model of monetary
    value.
    """

    kind = "gammagamma"
    display_name = "Gamma-Gamma"
    # Newton steps from a share's fit fall short of full precision on
    # Gamma-Gamma's flat likelihood, and the full search is as fast.
    _warm_starts = False
    param_names = ("p", "q", "v")
    time_params = ()
    correlation_threshold: float = 0.3

    def __init__(
        self,
        *,
        penalizer: float = 0.0,
        tol: float = 1e-10,
        max_iter: int = 2000,
        correlation_threshold: float = 0.3,
        strict_assumptions: bool = False,
    ):
        super().__init__(penalizer=penalizer, tol=tol, max_iter=max_iter)
        self.correlation_threshold = correlation_threshold
        self.strict_assumptions = strict_assumptions

    def _prepare(self, frame):
        check_columns(frame, ("frequency", "monetary_value"), what="the spend data")
        problems: list[str] = []
        x = numeric_column(frame, "frequency", problems)
        m = float_values(frame["monetary_value"])
        ids = frame.index.to_numpy()
        ok = np.isfinite(x)
        repeat = ok & (x > 0)
        for mask, text in (
            (ok & (x < 0), "column 'frequency' has negative values"),
            (ok & (x != np.round(x)), "column 'frequency' has non-integer values"),
            (
                repeat & ~np.isfinite(m),
                "column 'monetary_value' is NaN, infinite or not numeric for "
                "repeat buyers",
            ),
            (
                repeat & np.isfinite(m) & (m <= 0),
                "column 'monetary_value' has non-positive values (<= 0) for "
                "repeat buyers",
            ),
        ):
            if mask.any():
                problems.append(
                    f"{text}: {int(mask.sum())} customers "
                    f"({format_examples(ids[mask])})"
                )
        if problems:
            raise DataError(
                "The spend data cannot be used: "
                + "; ".join(problems)
                + ". Gamma-Gamma needs the mean spend (> 0) of each repeat buyer; "
                "drop refunds-only customers or pass frequency 0 for them."
            )
        if not repeat.any():
            raise DataError(
                f"None of the {len(x)} customers has a repeat purchase (frequency > "
                "0); Gamma-Gamma is fitted on repeat buyers only."
            )
        if repeat.all():
            return {"x": x, "m": m}, 1.0
        return {"x": x[repeat], "m": m[repeat]}, 1.0

    def fit(self, data_frame) -> GammaGammaModel:
        """Fit on the rows with ``frequency > 0``; returns ``self``.

        Parameters
        ----------
        data_frame : DataFrame
            Indexed by customer_id with columns frequency and monetary_value
            (mean spend of the repeat purchases, > 0 where frequency > 0).

        Raises
        ------
        DataError
            Bad values; no repeat buyers; or, with ``strict_assumptions``,
            a frequency-spend correlation above the threshold.

        Warns
        -----
        AssumptionWarning
            ``|r(frequency, monetary_value)| > correlation_threshold``, or a
            fitted ``q <= 1`` (infinite mean spend).
        """
        columns, _ = self._prepare(data_frame)
        corr = _pearson(columns["x"], columns["m"])
        self.frequency_spend_correlation_ = corr
        threshold = float(self.correlation_threshold)
        if math.isfinite(corr) and abs(corr) > threshold:
            message = (
                f"Gamma-Gamma assumes spend per purchase is independent of "
                f"frequency, but the Pearson correlation of frequency and "
                f"monetary_value over the {columns['x'].size} repeat buyers is "
                f"r = {corr:.2f} (|r| > {threshold:g}). Expected spend, and CLV, "
                "will be biased; consider a spend model that conditions on "
                "frequency."
            )
            if self.strict_assumptions:
                raise DataError(message + " (strict_assumptions=True)")
            warnings.warn(message, AssumptionWarning, stacklevel=2)

        self._fit_prepared(data_frame, columns, 1.0)
        if self.params_["q"] <= 1:
            warnings.warn(
                f"Fitted q = {self.params_['q']:.3g} <= 1: the population mean "
                "spend per purchase p v / (q - 1) is infinite, and so is the "
                "expected spend of customers without repeat purchases. Check "
                "for extreme spend values or use a penalizer.",
                AssumptionWarning,
                stacklevel=2,
            )
        return self

    def _scale_columns(self, columns, scale):
        return columns

    def _start_points(self, data):
        mean_m = float(data.weights @ data["m"]) / data.n
        return [np.zeros(3), np.log([1.0, 2.0, mean_m]), np.full(3, 0.1)]

    def _loglik(self, theta, data, *, grad):
        p, q, v = theta
        x, m = data["x"], data["m"]
        px = p * x
        log_xm_v = np.log(x * m + v)
        ll = (
            gammaln(px + q)
            - gammaln(px)
            - gammaln(q)
            + q * np.log(v)
            + (px - 1.0) * np.log(m)
            + px * np.log(x)
            - (px + q) * log_xm_v
        )
        if not grad:
            return ll
        psi = digamma(px + q)
        g = np.empty((x.size, 3))
        g[:, 0] = x * (psi - digamma(px) + np.log(m) + np.log(x) - log_xm_v)
        g[:, 1] = psi - digamma(q) + np.log(v) - log_xm_v
        g[:, 2] = q / v - (px + q) / (x * m + v)
        return ll, g

    def _loglik_sum(self, theta, data):
        # The weighted sum of _loglik and its gradient: gammaln and digamma
        # once per distinct frequency, terms free of the parameters summed
        # once per data set, so a row costs one log and one division.
        p, q, v = theta
        k = data.cache.get("gg")
        if k is None:
            w = data.weights
            x, m = data["x"], data["m"]
            ux, ix = data.factor("x")
            log_m = np.log(m)
            wx = w * x
            k = data.cache["gg"] = {
                "W_x": np.bincount(ix, w, ux.size),
                "xm": x * m,
                "w": w,
                "wx": wx,
                "S1": float(wsum(wx, log_m + np.log(x))),  # sum of w x log(m x)
                "S2": float(wsum(w, log_m)),  # sum of w log(m)
            }
        ux = data.factor("x")[0]
        n = data.n
        W_x, w, wx = k["W_x"], k["w"], k["wx"]
        pux = p * ux
        u = k["xm"] + v
        L = np.log(u)
        inv = 1.0 / u
        sum_wL, sum_wxL = wsum(w, L), wsum(wx, L)
        total = (
            W_x @ (gammaln(pux + q) - gammaln(pux))
            - n * gammaln(q)
            + n * q * np.log(v)
            + p * k["S1"]
            - k["S2"]
            - p * sum_wxL
            - q * sum_wL
        )
        psi = digamma(pux + q)
        g = np.empty(3)
        g[0] = W_x @ (ux * (psi - digamma(pux))) + k["S1"] - sum_wxL
        g[1] = W_x @ psi - n * digamma(q) + n * np.log(v) - sum_wL
        g[2] = n * q / v - p * wsum(wx, inv) - q * wsum(w, inv)
        return total, g

    @property
    def mean_spend_(self) -> float:
        """Population mean spend per purchase, ``p v / (q - 1)`` (inf if q <= 1)."""
        p, q, v = self._theta()
        return p * v / (q - 1.0) if q > 1 else math.inf

    def conditional_expected_spend(self, frequency, monetary_value) -> np.ndarray:
        """E[spend per purchase | x, mean spend] (note 025, eq. 5).

        ``(p v + p x m) / (p x + q - 1)``, a weighted mean of the customer's
        mean spend and the population mean; for frequency 0 it is the
        population mean ``p v / (q - 1)`` whatever ``monetary_value`` is.
        """
        p, q, v = self._theta()
        x, m = np.broadcast_arrays(
            np.asarray(frequency, dtype=float), np.asarray(monetary_value, dtype=float)
        )
        m = np.where(x > 0, m, 0.0)
        denom = p * x + q - 1.0
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (p * v + p * x * m) / denom
        return np.where(denom > 0, out, np.inf)

    def predict_spend(self, data_frame: pd.DataFrame) -> pd.Series:
        """Expected spend per purchase of each customer.

        Parameters
        ----------
        data_frame : DataFrame
            Indexed by customer_id with columns frequency and monetary_value.

        Returns
        -------
        Series named ``expected_spend_per_purchase``, indexed like the input.
        """
        self._require_fitted()
        check_columns(
            data_frame, ("frequency", "monetary_value"), what="the spend data"
        )
        problems: list[str] = []
        x = numeric_column(data_frame, "frequency", problems)
        m = numeric_column(data_frame, "monetary_value", problems)
        used_nan = (x > 0) & ~np.isfinite(m)
        if np.isnan(x).any() or used_nan.any() or np.any(x < 0):
            found = "; ".join(problems) or "negative frequency"
            raise ModelError(
                "Cannot predict spend: frequency must be >= 0 and monetary_value "
                f"finite for repeat buyers ({found})."
            )
        return pd.Series(
            self.conditional_expected_spend(x, m),
            index=data_frame.index,
            name="expected_spend_per_purchase",
        )


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])
