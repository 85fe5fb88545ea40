"""Shared machinery of the models: validation, compression, fitting, summaries.

A model subclass supplies the per-row log-likelihood and its gradient with
respect to the natural parameters; this module turns that into a maximum
likelihood fit on log-parameters with L-BFGS-B and the analytic gradient,
a convergence check that looks at the gradient rather than only at the
optimiser's flag, and standard errors from the observed information.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult, minimize
from scipy.special import ndtri
from threadpoolctl import threadpool_limits

from ltvkit.errors import ConvergenceError, DataError, ModelError, format_examples

logger = logging.getLogger(__name__)

_Z95 = float(ndtri(0.975))
# Fits on more than twice this many distinct rows start from a fit on a
# random share of the customers of about this size: Newton steps from there
# reach the maximum on all rows in a few likelihood evaluations, where the
# quasi-Newton search from scratch takes twenty or more.
_WARM_START_ROWS = 100_000
# The warm start is kept only if it reaches this gradient norm.
_WARM_GRAD_NORM = 1e-10
# Gradient norm (mean log-likelihood per customer, log-parameters) below which
# a point is accepted as the maximum even if the optimiser says otherwise:
# line searches in BFGS give up on precision loss long after this is reached.
_ACCEPT_GRAD_NORM = 1e-4


#: Rows of per-row likelihood terms computed at a time: the temporaries of a
#: block stay in the CPU's caches, and memory does not grow with the data.
_BLOCK_ROWS = 1 << 16


def _blocks(n: int, rows: int = _BLOCK_ROWS):
    """Slices of ``range(n)`` of at most ``rows`` rows."""
    return [slice(i, i + rows) for i in range(0, max(n, 1), rows)]


def wsum(weights: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``weights @ values`` over the first axis, without BLAS.

    For the long, thin products of the likelihood sums a multithreaded BLAS
    gains nothing and, on a busy machine, loses a lot waiting for its
    threads (25 ms instead of 0.3 ms for 265,000 rows); einsum's own loop is
    single-threaded and vectorised.
    """
    return np.einsum("i,i...->...", weights, values)


def _factorize(values) -> tuple[np.ndarray, np.ndarray]:
    """The index (int64) of each value into the sorted distinct values, and those.

    NaN counts as one value, sorted last, and -0.0 as 0.0. The values are
    hashed a block at a time, which keeps the hash tables small, unless the
    first block shows many distinct values: then they are sorted, which
    takes less memory than a hash table of them all.
    """
    col = np.asarray(values, dtype=float).ravel()
    blocks = _blocks(col.size)
    # + 0.0 turns -0.0 into 0.0, which hashing would otherwise keep apart.
    code, part = pd.factorize(col[blocks[0]] + 0.0, use_na_sentinel=False)
    if part.size > code.size // 8:
        index, uniq, _ = _group(col)
        return index, uniq + 0.0
    codes = np.empty(col.size, dtype=np.int64)
    codes[blocks[0]] = code
    parts = [part]
    for s in blocks[1:]:
        code, part = pd.factorize(col[s] + 0.0, use_na_sentinel=False)
        codes[s] = code
        parts.append(part)
    uniq, index = np.unique(np.concatenate(parts), return_inverse=True)
    start = 0
    for s, part in zip(blocks, parts, strict=True):
        codes[s] = index[start : start + part.size][codes[s]]
        start += part.size
    return codes, uniq


def _group(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct values of an array, by sorting.

    Returns
    -------
    inverse : ndarray of intp
        The index of each element into ``unique``.
    unique : ndarray
        The distinct values in increasing order; NaN, sorted last, counts
        as one value.
    counts : ndarray of intp
        How often each distinct value occurs.
    """
    order = np.argsort(values)
    ordered = values[order]
    new = np.empty(values.size, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    if ordered.dtype.kind == "f" and ordered.size and np.isnan(ordered[-1]):
        new[np.searchsorted(ordered, np.nan) + 1 :] = False
    unique = ordered[new]
    del ordered
    counts = np.diff(np.flatnonzero(new), append=new.size)
    inverse = np.empty(values.size, dtype=np.intp)
    last = -1  # the group of the element before the block
    for s in _blocks(values.size):
        group = np.cumsum(new[s])
        group += last
        inverse[order[s]] = group
        last = group[-1] if group.size else last
    return inverse, unique, counts


class _Data:
    """Unique rows of the data with their counts (the weights of the fit).

    Each column is coded by hashing (``pandas.factorize``, a block of rows
    at a time) or, when it has many distinct values, by sorting; the codes
    are packed in one integer per row, whose distinct values are counted
    directly when there are few combinations and sorted otherwise (a
    lexsort serves the rare case where they do not fit in 62 bits). The
    unique rows come out in lexicographic order. What is kept is each
    column's distinct values and the index of every unique row into them
    (see :meth:`factor`); the columns of the unique rows are gathered from
    these when asked for.

    Parameters
    ----------
    columns : dict of array-like
        The columns, of equal length.
    weights : array-like, optional
        The number of customers each row stands for; 1 by default.
    keep_inverse : bool, default=True
        Whether to keep ``inverse``, the index of each row into the unique
        rows (a fit does not need it); otherwise it is None.
    """

    def __init__(
        self,
        columns: dict[str, np.ndarray],
        weights=None,
        *,
        keep_inverse: bool = True,
    ):
        names = list(columns)
        codes, uniques = [], []
        for name in names:
            code, uniq = _factorize(columns[name])
            codes.append(code)
            uniques.append(uniq)
        del code  # in codes, whose arrays are freed once packed in the key
        sizes = [u.size for u in uniques]
        if math.prod(sizes) < 2**62:
            key = codes[0]
            for i in range(1, len(codes)):
                key *= sizes[i]
                key += codes[i]
            codes.clear()
            n_keys = math.prod(sizes)
            if n_keys <= 4 * key.size:  # few combinations: count them directly
                counts = np.bincount(key, minlength=n_keys)
                present = counts > 0
                ukey = np.flatnonzero(present)
                inverse = (np.cumsum(present) - 1)[key]
                counts = counts[ukey]
            else:
                if n_keys <= 2**31:  # 32-bit integers sort faster
                    key = key.astype(np.int32)
                inverse, ukey, counts = _group(key)
                ukey = ukey.astype(np.int64, copy=False)
            del key
            row_codes = []
            for size in sizes[:0:-1]:
                ukey, rem = np.divmod(ukey, size)
                row_codes.append(rem)
            row_codes.append(ukey)
            row_codes.reverse()
        else:  # too many distinct values to pack the codes in one integer
            order = np.lexsort(codes[::-1])
            stacked = np.column_stack(codes)[order]
            new = np.ones(order.size, dtype=bool)
            new[1:] = np.any(stacked[1:] != stacked[:-1], axis=1)
            group = np.cumsum(new) - 1
            inverse = np.empty(order.size, dtype=np.intp)
            inverse[order] = group
            counts = np.bincount(group)
            row_codes = list(stacked[new].T)
        self._factors = {
            name: (uniques[i], np.asarray(row_codes[i], dtype=np.intp))
            for i, name in enumerate(names)
        }
        if weights is not None:  # rows that stand for several customers each
            counts = np.bincount(inverse, weights=weights, minlength=counts.size)
        self.weights = np.asarray(counts, dtype=float)
        self.inverse = np.asarray(inverse, dtype=np.intp) if keep_inverse else None
        self.n = float(counts.sum())
        self.cache: dict[str, Any] = {}

    def transformed(self, func) -> _Data:
        """The same rows and weights with ``func`` applied to the column dict.

        ``func`` must act elementwise (such as a change of time unit): it is
        applied to the distinct values of each column.
        """
        out = object.__new__(_Data)
        factor_values = func({k: v[0] for k, v in self._factors.items()})
        out._factors = {
            k: (np.asarray(factor_values[k], dtype=float), self._factors[k][1])
            for k in self._factors
        }
        out.weights = self.weights
        out.inverse = self.inverse
        out.n = self.n
        out.cache = {}
        return out

    def thinned(self, share: float, seed: int = 0) -> _Data:
        """A random ``share`` of the customers, each kept independently."""
        rng = np.random.default_rng(seed)
        kept = rng.binomial(self.weights.astype(np.int64), share)
        rows = np.flatnonzero(kept)
        kept = kept[rows].astype(float)
        return _Data(
            {k: v[i[rows]] for k, (v, i) in self._factors.items()},
            kept,
            keep_inverse=False,
        )

    def rows(self, s: slice) -> _Data:
        """The unique rows in the slice ``s``, as views of this data's arrays."""
        out = object.__new__(_Data)
        out._factors = {k: (v, i[s]) for k, (v, i) in self._factors.items()}
        out.weights = self.weights[s]
        out.inverse = None
        out.n = float(out.weights.sum())
        out.cache = {}
        return out

    def factor(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Distinct values of one column and the index of each row into them."""
        return self._factors[name]

    @property
    def columns(self) -> dict[str, np.ndarray]:
        """The unique rows as a dict of columns, gathered anew at each call."""
        return {name: self[name] for name in self._factors}

    def __getitem__(self, name: str) -> np.ndarray:
        """One column of the unique rows, gathered anew at each call."""
        values, index = self._factors[name]
        return values[index]


def check_columns(df, required: tuple[str, ...], *, what: str) -> None:
    """Raise DataError unless ``df`` is a non-empty frame with ``required``."""
    if not isinstance(df, pd.DataFrame):
        raise DataError(
            f"{what} must be a pandas DataFrame indexed by customer_id with "
            f"columns {', '.join(required)}; got {type(df).__name__}. "
            "Build one with ltvkit.summary."
        )
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(
            f"{what} lacks the column(s) {', '.join(missing)} (it has "
            f"{', '.join(map(str, df.columns)) or 'none'}). Rename the columns or "
            "build the frame with ltvkit.summary."
        )
    if len(df) == 0:
        raise DataError(f"{what} is empty: there are no customers to use.")


def float_values(col: pd.Series) -> np.ndarray:
    """A column as a float array, NaN where it is not numeric.

    Columns of numpy numbers are converted directly: a float64 column comes
    back as a view of its data, not a copy.
    """
    if isinstance(col.dtype, np.dtype) and col.dtype.kind in "iuf":
        return col.to_numpy(dtype=float)
    return pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)


def numeric_column(df: pd.DataFrame, name: str, problems: list[str]) -> np.ndarray:
    """Column as float, noting NaN, infinite and non-numeric values."""
    col = df[name]
    values = float_values(col)
    ids = df.index.to_numpy()
    bad_type = np.isnan(values) & col.notna().to_numpy()
    if bad_type.any():
        problems.append(
            f"column '{name}' has {int(bad_type.sum())} non-numeric values "
            f"(customers {format_examples(ids[bad_type])})"
        )
    nan = col.isna().to_numpy()
    if nan.any():
        problems.append(
            f"column '{name}' has {int(nan.sum())} NaN values (customers "
            f"{format_examples(ids[nan])}); drop or fill those rows"
        )
    inf = np.isinf(values)
    if inf.any():
        problems.append(
            f"column '{name}' has {int(inf.sum())} infinite values (customers "
            f"{format_examples(ids[inf])})"
        )
    return values


def validate_rfm(rfm, *, what: str = "rfm") -> tuple[np.ndarray, ...]:
    """Check an RFM frame and return frequency, recency, T as float arrays.

    Every problem found is reported in one DataError, with a count and a few
    example customer ids.
    """
    check_columns(rfm, ("frequency", "recency", "T"), what=what)
    problems: list[str] = []
    x = numeric_column(rfm, "frequency", problems)
    t_x = numeric_column(rfm, "recency", problems)
    T = numeric_column(rfm, "T", problems)
    ids = rfm.index.to_numpy()

    def note(mask, text):
        mask = np.asarray(mask) & np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T)
        if mask.any():
            problems.append(
                f"{text}: {int(mask.sum())} customers ({format_examples(ids[mask])})"
            )

    for name, values in (("frequency", x), ("recency", t_x), ("T", T)):
        note(values < 0, f"column '{name}' has negative values")
    note(x != np.round(x), "column 'frequency' has values that are not integers")
    note(t_x > T * (1 + 1e-12), "recency is greater than T")
    note((x == 0) & (t_x != 0), "frequency is 0 but recency is not 0")
    if problems:
        raise DataError(
            f"{what} cannot be used: "
            + "; ".join(problems)
            + ". recency and T are times since the first purchase, frequency is "
            "the number of repeat purchases; build the frame with ltvkit.summary."
        )
    return x, t_x, T


def _check_weights(weights, data_frame) -> np.ndarray | None:
    """Row weights as a float array: finite, >= 0, one per row, some > 0."""
    if weights is None:
        return None
    if isinstance(weights, str):
        if weights not in data_frame:
            raise DataError(f"weights names the column {weights!r}, which is absent.")
        weights = data_frame[weights]
    w = pd.to_numeric(pd.Series(np.asarray(weights).ravel()), errors="coerce")
    w = w.to_numpy(dtype=float)
    if w.size != len(data_frame):
        raise DataError(
            f"weights has {w.size} values for {len(data_frame)} rows; give one per row."
        )
    if not np.all(np.isfinite(w) & (w >= 0)) or not np.any(w > 0):
        raise DataError(
            "weights must be finite numbers >= 0 (customers per row), not all 0."
        )
    return w


def check_params(
    params: dict[str, Any], names: tuple[str, ...], *, kind: str
) -> dict[str, float]:
    """Validate a parameter dict: exactly ``names``, each positive and finite."""
    if not isinstance(params, dict):
        raise ModelError(f"{kind} parameters must be a dict with keys {names}.")
    missing = [n for n in names if n not in params]
    extra = [n for n in params if n not in names]
    if missing or extra:
        raise ModelError(
            f"{kind} parameters must be exactly {', '.join(names)}; missing: "
            f"{', '.join(missing) or 'none'}, unexpected: {', '.join(extra) or 'none'}."
        )
    out = {}
    for n in names:
        try:
            v = float(params[n])
        except (TypeError, ValueError) as exc:
            raise ModelError(
                f"{kind} parameter {n} is not a number: {params[n]!r}."
            ) from exc
        if not (math.isfinite(v) and v > 0):
            raise ModelError(
                f"{kind} parameter {n} must be positive and finite; got {v}."
            )
        out[n] = v
    return out


class _FittedModel(ABC):
    """Estimator contract shared by all models (scikit-learn style)."""

    kind: ClassVar[str]
    param_names: ClassVar[tuple[str, ...]]
    # Indices of the parameters that carry the time unit (scale parameters).
    time_params: ClassVar[tuple[int, ...]] = ()
    display_name: ClassVar[str]
    # Whether large fits start from a fit on a share of the customers.
    _warm_starts: ClassVar[bool] = True
    # Rows of per-row log-likelihood terms that _total_loglik computes at a time.
    _loglik_rows: ClassVar[int] = _BLOCK_ROWS

    def __init__(
        self, *, penalizer: float = 0.0, tol: float = 1e-10, max_iter: int = 2000
    ):
        self.penalizer = penalizer
        self.tol = tol
        self.max_iter = max_iter

    def __repr__(self) -> str:
        state = (
            ", ".join(f"{k}={v:.4g}" for k, v in self.params_.items())
            if getattr(self, "params_", None)
            else "not fitted"
        )
        return f"{type(self).__name__}({state})"

    # -- to be supplied by subclasses --------------------------------------------

    @abstractmethod
    def _prepare(self, data_frame) -> tuple[dict[str, np.ndarray], float]:
        """Validate and return the columns used by the likelihood and a time scale."""

    @abstractmethod
    def _loglik(self, theta: np.ndarray, data: _Data, *, grad: bool):
        """Per-row log-likelihood (and gradient w.r.t. natural params, (n, k))."""

    @abstractmethod
    def _start_points(self, data: _Data) -> list[np.ndarray]:
        """Starting log-parameters, in the scaled time unit."""

    def _after_fit(self, data_frame) -> None:
        """Hook for checks on the fitted parameters; none by default."""
        return None

    # -- fitting ------------------------------------------------------------------

    def _check_options(self) -> None:
        pen = self.penalizer
        if not (isinstance(pen, int | float) and math.isfinite(pen) and pen >= 0):
            raise ModelError(f"penalizer must be a number >= 0; got {pen!r}.")
        if not (isinstance(self.max_iter, int) and self.max_iter > 0):
            raise ModelError(f"max_iter must be a positive int; got {self.max_iter!r}.")
        if not (isinstance(self.tol, int | float) and self.tol > 0):
            raise ModelError(f"tol must be a positive number; got {self.tol!r}.")

    def _scale_vector(self, scale: float) -> np.ndarray:
        """Multipliers taking parameters from the data's unit to the scaled one."""
        c = np.ones(len(self.param_names))
        c[list(self.time_params)] = scale
        return c

    def _loglik_sum(self, theta: np.ndarray, data: _Data):
        """Weighted total log-likelihood and its gradient (natural params).

        Subclasses may override this with a version that aggregates over
        distinct values instead of forming per-row gradients.
        """
        ll, g = self._loglik(theta, data, grad=True)
        w = data.weights
        return wsum(w, ll), wsum(w, g)

    def _objective(self, log_theta, data: _Data, pen: float):
        theta = np.exp(log_theta)
        with np.errstate(all="ignore"):
            total, total_grad = self._loglik_sum(theta, data)
        value = -total / data.n + pen * np.sum(theta**2)
        grad = -total_grad * theta / data.n + 2.0 * pen * theta**2
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return np.inf, np.zeros_like(log_theta)
        return value, grad

    def _hessian(self, log_theta, data: _Data, pen: float) -> np.ndarray:
        """Hessian of the mean objective in the log-parameters.

        Analytic where the model supplies ``_loglik_hessian`` (the Hessian of
        ``_loglik_sum`` in the natural parameters); otherwise by central
        differences of the analytic gradient.
        """
        analytic = getattr(self, "_loglik_hessian", None)
        if analytic is not None:
            theta = np.exp(log_theta)
            with np.errstate(all="ignore"):
                _, g = self._loglik_sum(theta, data)
                H = analytic(theta, data)
            # f(u) = -l(exp(u)) / n + pen sum(exp(2 u))
            out = -(H * np.outer(theta, theta) + np.diag(g * theta)) / data.n
            out += np.diag(4.0 * pen * theta**2)
            if np.all(np.isfinite(out)):
                return 0.5 * (out + out.T)
        k = log_theta.size
        H = np.empty((k, k))
        eps = 1e-5
        for j in range(k):
            e = np.zeros(k)
            e[j] = eps
            gp = self._objective(log_theta + e, data, pen)[1]
            gm = self._objective(log_theta - e, data, pen)[1]
            H[:, j] = (gp - gm) / (2 * eps)
        return 0.5 * (H + H.T)

    def _optimise(self, data: _Data, pen: float):
        if self._warm_starts and data.weights.size > 2 * _WARM_START_ROWS:
            warm = self._warm_start(data, pen)
            if warm is not None:
                return warm
        best = None
        for x0 in self._start_points(data):
            res = minimize(
                self._objective,
                x0,
                args=(data, pen),
                jac=True,
                method="L-BFGS-B",
                bounds=[(-30.0, 30.0)] * x0.size,
                options={"maxiter": self.max_iter, "ftol": 1e-15, "gtol": 1e-10},
            )
            if np.isfinite(res.fun) and (best is None or res.fun < best.fun):
                best = res
            # Further starts are a fallback, not a search for other optima.
            grad_norm = float(np.max(np.abs(res.jac))) if np.isfinite(res.fun) else 1.0
            if best is res and (res.success or grad_norm < _ACCEPT_GRAD_NORM):
                break
        if best is None:
            raise ConvergenceError(
                f"{self.display_name}: the likelihood is not finite at any starting "
                "point. Check the data for extreme values, or try a penalizer."
            )
        x, f, g = self._polish(best.x.copy(), data, pen)
        return best, x, f, g

    def _warm_start(self, data: _Data, pen: float):
        """The maximum by Newton steps on all rows from the fit on a random
        share of the customers; None if they do not reach full precision."""
        share = _WARM_START_ROWS / data.weights.size
        try:
            x0 = self._optimise(data.thinned(share), pen)[1]
        except ConvergenceError:
            return None
        x, f, g = self._polish(x0, data, pen)
        if not (np.isfinite(f) and np.max(np.abs(g)) < _WARM_GRAD_NORM):
            return None
        res = OptimizeResult(
            x=x,
            fun=f,
            jac=g,
            success=True,
            status=0,
            nit=0,
            message="Newton steps from the fit on a random share of the customers",
        )
        return res, x, f, g

    def _polish(self, x, data: _Data, pen: float):
        """Newton steps from ``x``; the point, objective and gradient reached."""
        f, g = self._objective(x, data, pen)
        # Newton polish: a few steps with the Hessian of the analytic gradient
        # reach full precision where quasi-Newton stalls on flat directions.
        # It goes on past where the likelihood stops changing in floating
        # point, while the gradient still shrinks, so that inputs equal to the
        # last bit (sums taken in another order) give the same estimates.
        flat = 8 * np.finfo(float).eps * max(abs(f), 1.0)
        for _ in range(20):
            if np.max(np.abs(g)) < 1e-13:
                break
            try:
                H = self._hessian(x, data, pen)
                step = -np.linalg.solve(H + 1e-12 * np.eye(x.size), g)
            except np.linalg.LinAlgError:
                break
            if not np.all(np.isfinite(step)) or g @ step >= 0:
                break
            improved = False
            for lam in (1.0, 0.5, 0.25, 0.1, 0.01):
                xn = np.clip(x + lam * step, -30.0, 30.0)
                fn, gn = self._objective(xn, data, pen)
                smaller = np.max(np.abs(gn)) < np.max(np.abs(g))
                if fn < f or (fn <= f + flat and smaller):
                    x, f, g, improved = xn, fn, gn, True
                    break
            if not improved:
                break
        return x, f, g

    def fit(self, data_frame, weights=None) -> _FittedModel:
        """Fit by maximum likelihood; see the class docstring. Returns ``self``.

        Parameters
        ----------
        data_frame : DataFrame
            The summary to fit on.
        weights : str or array-like, optional
            The number of customers each row stands for, when rows of equal
            histories have been aggregated: a column of ``data_frame`` or an
            array of its length. By default every row is one customer.
        """
        self._check_options()
        raw, scale = self._compressed(data_frame, weights)
        return self._fit_data(data_frame, raw, scale)

    def _compressed(self, data_frame, weights=None) -> tuple[_Data, float]:
        """The unique rows of the columns ``_prepare`` returns, and its time scale."""
        columns, scale = self._prepare(data_frame)
        weights = _check_weights(weights, data_frame)
        return _Data(columns, weights, keep_inverse=False), scale

    def _fit_prepared(self, data_frame, columns, scale, weights=None):
        """The fit proper, on the columns ``_prepare`` returned."""
        raw = _Data(columns, weights, keep_inverse=False)
        return self._fit_data(data_frame, raw, scale)

    def _fit_data(self, data_frame, raw: _Data, scale: float):
        """The fit proper, on the unique rows of the columns ``_prepare`` returned.

        ``raw`` is compressed in the data's own unit (for the reported
        likelihood); the fit is on the same rows in the scaled unit.
        """
        self._check_options()
        c = self._scale_vector(scale)
        data = raw.transformed(lambda cols: self._scale_columns(cols, scale))
        logger.debug(
            "%s: %d customers, %d unique rows",
            self.display_name,
            int(data.n),
            data.weights.size,
        )

        # One BLAS thread: the fit's only BLAS work is L-BFGS-B's algebra on
        # 4-vectors, which a thread pool slows down 25-fold on a busy machine
        # (62 ms instead of 1 ms per small minimisation measured).
        with threadpool_limits(limits=1, user_api="blas"):
            res, log_theta, f, g = self._optimise(data, float(self.penalizer))
        grad_norm = float(np.max(np.abs(g)))
        theta_scaled = np.exp(log_theta)
        status = f"{res.status}: {res.message}"
        converged = bool(res.success) or grad_norm < _ACCEPT_GRAD_NORM
        if not converged:
            raise ConvergenceError(
                f"{self.display_name} fit did not converge: L-BFGS-B stopped with "
                f"status {status} after {res.nit} iterations, and the gradient "
                f"norm is {grad_norm:.3g} (accepted below {_ACCEPT_GRAD_NORM:g}). "
                f"Try max_iter larger than {self.max_iter}; check the data for "
                "customers with extreme frequency or recency; a small penalizer "
                "(e.g. 0.001) stabilises the fit but biases the parameters."
            )
        if not res.success:
            logger.info(
                "%s: optimiser reported '%s' but the gradient norm is %.2g: "
                "accepted as the maximum",
                self.display_name,
                res.message,
                grad_norm,
            )

        theta = theta_scaled / c
        self.params_ = dict(zip(self.param_names, map(float, theta), strict=True))
        self.converged_ = True
        self.optimizer_status_ = status
        self.gradient_norm_ = grad_norm
        self.n_customers_ = int(data.n)
        self.log_likelihood_ = self._total_loglik(raw)
        with threadpool_limits(limits=1, user_api="blas"):
            self._set_information(data, log_theta, float(self.penalizer), theta)
        self._after_fit(data_frame)
        logger.info(
            "%s fitted on %d customers: log-likelihood %.4f",
            self.display_name,
            self.n_customers_,
            self.log_likelihood_,
        )
        return self

    def _scale_columns(self, columns, scale):
        return columns

    def _total_loglik(self, columns: dict[str, np.ndarray] | _Data) -> float:
        data = columns if isinstance(columns, _Data) else _Data(columns)
        theta = np.array([self.params_[n] for n in self.param_names])
        ll = np.empty(data.weights.size)
        for s in _blocks(ll.size, self._loglik_rows):
            ll[s] = self._loglik(theta, data.rows(s), grad=False)
        return float(wsum(data.weights, ll))

    def _set_information(self, data, log_theta, pen, theta) -> None:
        H = self._hessian(log_theta, data, pen) * data.n
        k = len(self.param_names)
        try:
            cov_log = np.linalg.inv(H)
            var_log = np.diag(cov_log)
            if not np.all(np.isfinite(var_log)) or np.any(var_log < 0):
                raise np.linalg.LinAlgError
            se_log = np.sqrt(var_log)
        except np.linalg.LinAlgError:
            logger.warning(
                "%s: the observed information is singular; standard errors are NaN",
                self.display_name,
            )
            cov_log = np.full((k, k), np.nan)
            se_log = np.full(k, np.nan)
        self.covariance_log_ = cov_log
        # Delta method: Var(theta) = theta_i theta_j Cov(log theta)_ij.
        self.covariance_ = cov_log * np.outer(theta, theta)
        self.standard_errors_ = dict(
            zip(self.param_names, map(float, theta * se_log), strict=True)
        )
        self._se_log = dict(zip(self.param_names, map(float, se_log), strict=True))
        self.aic_ = 2 * k - 2 * self.log_likelihood_
        self.bic_ = k * math.log(self.n_customers_) - 2 * self.log_likelihood_

    # -- fitted state --------------------------------------------------------------

    def _require_fitted(self) -> dict[str, float]:
        params = getattr(self, "params_", None)
        if not params:
            raise ModelError(
                f"This {type(self).__name__} is not fitted: call fit(...) first, "
                "or build one with from_params(...) or from_dict(...)."
            )
        return params

    def _theta(self) -> tuple[float, ...]:
        params = self._require_fitted()
        return tuple(params[n] for n in self.param_names)

    @classmethod
    def from_params(
        cls, params: dict[str, float], *, standard_errors=None, **kwargs
    ) -> _FittedModel:
        """A fitted-like model with known parameters (no data attached)."""
        model = cls(**kwargs)
        model.params_ = check_params(params, cls.param_names, kind=cls.display_name)
        model.standard_errors_ = (
            None
            if standard_errors is None
            else {n: float(standard_errors[n]) for n in cls.param_names}
        )
        if model.standard_errors_ is not None:
            model._se_log = {
                n: model.standard_errors_[n] / model.params_[n] for n in cls.param_names
            }
        model.log_likelihood_ = None
        model.n_customers_ = None
        model.aic_ = model.bic_ = None
        model.converged_ = None
        model.optimizer_status_ = "from_params"
        return model

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description: kind, params, standard errors, fit metrics."""
        params = self._require_fitted()
        return {
            "kind": self.kind,
            "params": dict(params),
            "standard_errors": (
                None
                if getattr(self, "standard_errors_", None) is None
                else dict(self.standard_errors_)
            ),
            "log_likelihood": getattr(self, "log_likelihood_", None),
            "n_customers": getattr(self, "n_customers_", None),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> _FittedModel:
        """Inverse of :meth:`to_dict`; refuses a dict of another model kind."""
        if not isinstance(d, dict) or "params" not in d:
            raise ModelError(
                f"Not a saved {cls.display_name}: expected keys kind, params."
            )
        if d.get("kind") != cls.kind:
            raise ModelError(
                f"The saved model is of kind {d.get('kind')!r}, not {cls.kind!r}: "
                f"load it with the matching class."
            )
        model = cls.from_params(d["params"], standard_errors=d.get("standard_errors"))
        model.log_likelihood_ = d.get("log_likelihood")
        model.n_customers_ = d.get("n_customers")
        if model.log_likelihood_ is not None and model.n_customers_:
            k = len(cls.param_names)
            model.aic_ = 2 * k - 2 * model.log_likelihood_
            model.bic_ = k * math.log(model.n_customers_) - 2 * model.log_likelihood_
        return model

    def summary(self) -> pd.DataFrame:
        """Parameter table: estimate, std_error, ci_lower, ci_upper (95 %).

        The interval is a Wald interval on the log scale (the scale of the fit),
        ``estimate * exp(+-1.96 se / estimate)``, so it stays positive. The
        frame's ``attrs`` hold log_likelihood, aic, bic and n_customers.
        """
        params = self._require_fitted()
        est = pd.Series(params, name="estimate")
        se_log = getattr(self, "_se_log", None)
        if se_log is None:
            se = pd.Series(np.nan, index=est.index)
            lo = hi = se
        else:
            sl = pd.Series(se_log)
            se = est * sl
            lo = est * np.exp(-_Z95 * sl)
            hi = est * np.exp(_Z95 * sl)
        table = pd.DataFrame(
            {"estimate": est, "std_error": se, "ci_lower": lo, "ci_upper": hi}
        )
        table.index.name = "parameter"
        table.attrs.update(
            model=self.kind,
            log_likelihood=getattr(self, "log_likelihood_", None),
            aic=getattr(self, "aic_", None),
            bic=getattr(self, "bic_", None),
            n_customers=getattr(self, "n_customers_", None),
        )
        return table


def broadcast_float(*arrays) -> list[np.ndarray]:
    """Arrays as float, broadcast against each other."""
    return np.broadcast_arrays(*(np.asarray(a, dtype=float) for a in arrays))
