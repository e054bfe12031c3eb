"""BG/NBD model of repeat purchases (Fader, Hardie & Lee 2005, "Counting your customers the easy way").

While alive, a client buys at a Poisson rate lambda ~ Gamma(r, alpha); after each repeat purchase they drop out
with probability p ~ Beta(a, b). Inputs per client, in one time unit (days or weeks, the caller's choice, the same
for fitting and predicting): ``frequency`` x (repeat purchases), ``recency`` t_x (time of the last purchase since
the first) and ``T`` (time from the first purchase to the cut-off); see ``scoring.summary.summary_from_orders``.

The fit maximises the likelihood over the logarithms of the parameters, on the distinct (x, t_x, T) rows weighted
by how many clients share them, with an analytic gradient: a million clients fit in seconds. A failed or degenerate
fit is reported in the result (``converged=False`` and a ``reason``), never raised.

When the likelihood is highest at a + b -> infinity with p = a / (a + b) held, the Beta distribution of dropout
probabilities has collapsed onto p: every client drops out with the same probability p after each repeat purchase.
The model still has a well-defined limit, fitted on (r, alpha, p) and predicted with closed forms
(``BgNbdParams.fixed_dropout``): with a = p c, b = (1 - p) c and c -> infinity,

- likelihood: Gamma(r+x)/Gamma(r) alpha^r [(1-p)^x / (alpha+T)^(r+x) + [x > 0] p (1-p)^(x-1) / (alpha+t_x)^(r+x)];
- P(alive | x, t_x, T) = 1 / (1 + p / (1-p) ((alpha+T) / (alpha+t_x))^(r+x)) for x > 0, 1 for x = 0;
- E[purchases in (T, T+t] | x, T, alive] = (1 - ((alpha+T) / (alpha+T+p t))^(r+x)) / p, since the prefactor
  (a+b+x-1)/(a-1) tends to 1/p and 2F1(r+x, b+x; a+b+x-1; z) to (1 - (1-p) z)^-(r+x); at x = T = 0 this is E[X(t)].
"""

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.integrate import quad
from scipy.optimize import minimize
from scipy.special import betaln, digamma, expit, gammaln, hyp2f1, polygamma

PARAMETER_NAMES = ("r", "alpha", "a", "b")
LOG_BOUND = 20.0  # parameters are kept within exp(+/-20); reaching the edge means the data cannot identify them
GRADIENT_TOLERANCE = 1e-5  # on the mean log-likelihood per client, per log-parameter
# Beyond this a + b the dropout probability is the same for every client: the limit formulas are used, within a
# relative error of the order of 1 / (a + b) of the finite ones, which scipy's 2F1 no longer evaluates there.
FIXED_DROPOUT_CONCENTRATION = 1e4


@dataclass(frozen=True)
class BgNbdParams:
    """Fitted parameters and total log-likelihood; ``converged`` is False, with a ``reason``, when unusable.

    ``note`` says when a usable fit is the limiting case of a fixed dropout probability (``fixed_dropout``).
    """

    r: float
    alpha: float
    a: float
    b: float
    loglik: float
    converged: bool
    reason: str = ""
    n_customers: int = 0
    note: str = ""

    @property
    def fixed_dropout(self) -> bool:
        """Whether every client has the same dropout probability ``a / (a + b)`` (the limit a + b -> infinity)."""
        return bool(self.a + self.b > FIXED_DROPOUT_CONCENTRATION)

    @property
    def dropout_probability(self) -> float:
        """The mean dropout probability after a repeat purchase, a / (a + b)."""
        return self.a / (self.a + self.b)

    def as_dict(self) -> dict:
        return asdict(self)


def _as_arrays(*columns: ArrayLike) -> list[np.ndarray]:
    return [np.asarray(column, dtype=float) for column in columns]


def _check_summary(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if not len(x) == len(t_x) == len(T):
        raise ValueError("frequency, recency and T must have the same length")
    if not (np.isfinite(x).all() and np.isfinite(t_x).all() and np.isfinite(T).all()):
        raise ValueError("frequency, recency and T must be finite")
    if (x < 0).any() or (x != np.round(x)).any():
        raise ValueError("frequency must be a non-negative integer")
    if (t_x < 0).any() or (t_x > T).any():
        raise ValueError("recency must lie between 0 and T")


class _Rows:
    """Distinct (x, t_x, T) rows with their weights; functions of x alone are evaluated once per distinct x."""

    def __init__(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
        counts = pd.DataFrame({"x": x, "t_x": t_x, "T": T}).value_counts(sort=False)
        self.weight = counts.to_numpy(float)
        self.total_weight = self.weight.sum()
        self.x = counts.index.get_level_values("x").to_numpy(float)
        self.t_x = counts.index.get_level_values("t_x").to_numpy(float)
        self.T = counts.index.get_level_values("T").to_numpy(float)
        self.distinct_x, self.x_index = np.unique(self.x, return_inverse=True)
        self.has_repeat = self.x > 0


def _negative_loglik(log_params: np.ndarray, rows: _Rows) -> tuple[float, np.ndarray]:
    """Minus the mean log-likelihood per client, and its gradient with respect to the log-parameters."""
    r, alpha, a, b = np.exp(log_params)
    ux = rows.distinct_x
    ux_safe = np.maximum(ux, 1.0)  # keeps the terms of x > 0 finite where x = 0 (they are then unused)
    beta_ab = betaln(a, b)
    by_x = rows.x_index
    gamma_ratio = (gammaln(r + ux) - gammaln(r))[by_x]
    log_alpha_T = np.log(alpha + rows.T)
    log_alpha_tx = np.log(alpha + rows.t_x)

    alive_term = (betaln(a, b + ux) - beta_ab)[by_x] - (r + rows.x) * log_alpha_T
    dropped_term = np.where(
        rows.has_repeat,
        (betaln(a + 1, b + ux_safe - 1) - beta_ab)[by_x] - (r + rows.x) * log_alpha_tx,
        -np.inf,
    )
    both = np.logaddexp(alive_term, dropped_term)
    loglik = gamma_ratio + r * np.log(alpha) + both
    w_alive = np.exp(alive_term - both)
    w_dropped = 1.0 - w_alive

    psi_ab = digamma(a + b)
    psi_abx = digamma(a + b + ux)[by_x]
    d_r = (digamma(r + ux) - digamma(r))[by_x] + np.log(alpha) - w_alive * log_alpha_T - w_dropped * log_alpha_tx
    d_alpha = r / alpha - (r + rows.x) * (w_alive / (alpha + rows.T) + w_dropped / (alpha + rows.t_x))
    d_a = psi_ab - psi_abx + w_dropped / a
    d_b = psi_ab - psi_abx - digamma(b) + w_alive * digamma(b + ux)[by_x] + w_dropped * digamma(b + ux_safe - 1)[by_x]
    scale = -1.0 / rows.total_weight
    gradient = scale * np.array([r, alpha, a, b]) * (np.vstack([d_r, d_alpha, d_a, d_b]) @ rows.weight)
    return scale * (rows.weight @ loglik), gradient


def _negative_loglik_fixed_dropout(theta: np.ndarray, rows: _Rows) -> tuple[float, np.ndarray]:
    """The same in the limit of a fixed dropout probability p, over (log r, log alpha, logit p)."""
    r, alpha = np.exp(theta[:2])
    p = expit(theta[2])
    log_p, log_q = -np.logaddexp(0.0, -theta[2]), -np.logaddexp(0.0, theta[2])  # log p, log(1 - p)
    ux = rows.distinct_x
    by_x = rows.x_index
    log_alpha_T = np.log(alpha + rows.T)
    log_alpha_tx = np.log(alpha + rows.t_x)

    alive_term = rows.x * log_q - (r + rows.x) * log_alpha_T
    dropped_term = np.where(rows.has_repeat, log_p + (rows.x - 1) * log_q - (r + rows.x) * log_alpha_tx, -np.inf)
    both = np.logaddexp(alive_term, dropped_term)
    loglik = (gammaln(r + ux) - gammaln(r))[by_x] + r * np.log(alpha) + both
    w_alive = np.exp(alive_term - both)
    w_dropped = 1.0 - w_alive

    d_r = (digamma(r + ux) - digamma(r))[by_x] + np.log(alpha) - w_alive * log_alpha_T - w_dropped * log_alpha_tx
    d_alpha = r / alpha - (r + rows.x) * (w_alive / (alpha + rows.T) + w_dropped / (alpha + rows.t_x))
    d_logit_p = w_dropped - rows.x * p
    scale = -1.0 / rows.total_weight
    gradient = scale * np.array([r, alpha, 1.0]) * (np.vstack([d_r, d_alpha, d_logit_p]) @ rows.weight)
    return scale * (rows.weight @ loglik), gradient


def _maximise(rows: _Rows, start: np.ndarray, objective=_negative_loglik):
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    options = {"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9}
    result = minimize(objective, start, args=(rows,), jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    if not (np.isfinite(result.fun) and np.abs(result.jac).max() < GRADIENT_TOLERANCE):
        # A rougher derivative-free search from the start, then refined.
        rough = minimize(
            lambda v: objective(v, rows)[0],
            start,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 4000},
        )
        result = minimize(objective, rough.x, args=(rows,), jac=True, method="L-BFGS-B", bounds=bounds, options=options)
    return result


def _diagnose(log_params: np.ndarray, value: float, gradient: np.ndarray, names=PARAMETER_NAMES) -> str:
    if not (np.isfinite(value) and np.isfinite(log_params).all() and np.isfinite(gradient).all()):
        return "the likelihood is not finite at the optimum"
    at_bound = [name for name, v in zip(names, log_params, strict=True) if abs(v) > LOG_BOUND - 1e-3]
    if at_bound:
        return f"parameters at the edge of the admissible range (not identified by the data): {', '.join(at_bound)}"
    if np.abs(gradient).max() > GRADIENT_TOLERANCE:
        return "the optimiser did not converge"
    return ""


def fit_bgnbd(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> BgNbdParams:
    """Maximum-likelihood BG/NBD parameters for per-client arrays of x, t_x and T (one time unit throughout)."""
    x, t_x, T = _as_arrays(frequency, recency, T)
    _check_summary(x, t_x, T)
    n_customers = len(x)
    nan = float("nan")
    if n_customers == 0:
        return BgNbdParams(nan, nan, nan, nan, nan, False, "no customers", 0)
    if not (x > 0).any():
        return BgNbdParams(
            nan, nan, nan, nan, nan, False, "no repeat purchases: the model cannot be fitted", n_customers
        )

    rows = _Rows(x, t_x, T)
    # Start from r = a = b = 1 and alpha matching the observed purchase rate (r / alpha = sum x / sum T).
    start = np.log([1.0, max(T.sum() / x.sum(), 1e-6), 1.0, 1.0])
    result = _maximise(rows, start)
    reason = _diagnose(result.x, result.fun, result.jac)
    r, alpha, a, b = np.exp(result.x)
    loglik = -result.fun * rows.total_weight
    fitted = BgNbdParams(float(r), float(alpha), float(a), float(b), float(loglik), not reason, reason, n_customers)
    if np.isfinite(a + b) and fitted.fixed_dropout:
        return _fit_fixed_dropout(rows, fitted)
    return fitted


def _fit_fixed_dropout(rows: _Rows, fitted: BgNbdParams) -> BgNbdParams:
    """The fit in the limit a + b -> infinity towards which ``fitted`` went, on (r, alpha, p).

    The likelihood is flat along a + b there: a and b keep the fitted a + b, split by the limit's p.
    """
    start = np.array([np.log(fitted.r), np.log(fitted.alpha), np.log(fitted.a) - np.log(fitted.b)])
    result = _maximise(rows, start, _negative_loglik_fixed_dropout)
    reason = _diagnose(result.x, result.fun, result.jac, names=("r", "alpha", "p"))
    r, alpha = np.exp(result.x[:2])
    p = float(expit(result.x[2]))
    concentration = max(fitted.a + fitted.b, 2 * FIXED_DROPOUT_CONCENTRATION)
    note = (
        f"fixed dropout: a + b = {fitted.a + fitted.b:.3g}, every client drops out with the same probability "
        f"p = {p:.4g} after each repeat purchase"
    )
    return BgNbdParams(
        float(r),
        float(alpha),
        p * concentration,
        (1.0 - p) * concentration,
        float(-result.fun * rows.total_weight),
        not reason,
        reason,
        fitted.n_customers,
        note,
    )


def bgnbd_log_likelihood(frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, params: BgNbdParams) -> np.ndarray:
    """Log-likelihood of each client's (x, t_x, T) under ``params``."""
    x, t_x, T = _as_arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x_safe = np.maximum(x, 1.0)
    if params.fixed_dropout:
        p = params.dropout_probability
        log_stays, log_drops = x * np.log1p(-p), np.log(p) + (x_safe - 1) * np.log1p(-p)
    else:
        log_stays, log_drops = betaln(a, b + x) - betaln(a, b), betaln(a + 1, b + x_safe - 1) - betaln(a, b)
    alive_term = log_stays - (r + x) * np.log(alpha + T)
    dropped_term = np.where(x > 0, log_drops - (r + x) * np.log(alpha + t_x), -np.inf)
    return gammaln(r + x) - gammaln(r) + r * np.log(alpha) + np.logaddexp(alive_term, dropped_term)


def bgnbd_probability_alive(
    frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, params: BgNbdParams
) -> np.ndarray:
    """P(alive at T | x, t_x, T): 1 for clients without a repeat purchase (they cannot have dropped out yet)."""
    x, t_x, T = _as_arrays(frequency, recency, T)
    r, alpha, a, b = params.r, params.alpha, params.a, params.b
    x_safe = np.maximum(x, 1.0)
    if params.fixed_dropout:
        p = params.dropout_probability
        log_odds_drop = np.full_like(x_safe, np.log(p) - np.log1p(-p))
    else:
        log_odds_drop = np.log(a) - np.log(b + x_safe - 1)
    log_odds_dropped = log_odds_drop + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, expit(-log_odds_dropped), 1.0)


def bgnbd_expected_purchases_if_alive(
    t: ArrayLike, frequency: ArrayLike, T: ArrayLike, *, params: BgNbdParams
) -> np.ndarray:
    """E[purchases in (T, T + t] | x, T, alive at T]; arrays broadcast.

    This is the published conditional expectation without its P(alive) factor,
    ``(a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) * 2F1(r+x, b+x; a+b+x-1; z)]``, z = t/(alpha+T+t),
    rewritten with Euler's transformation ``2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)`` as
    ``(a+b+x-1)/(a-1) * [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)]``, whose terms stay moderate for any x.
    """
    t, x, T = np.broadcast_arrays(*_as_arrays(t, frequency, T))
    r, alpha, b = params.r, params.alpha, params.b
    if params.fixed_dropout:
        p = params.dropout_probability
        return np.asarray(-np.expm1(-(r + x) * np.log1p(p * t / (alpha + T))) / p)
    # The formula is 0/0 at a = 1 (a removable singularity); step just beside it.
    a = params.a if abs(params.a - 1.0) > 1e-7 else 1.0 + 1e-7
    z = t / (alpha + T + t)
    with np.errstate(invalid="ignore"):
        hypergeometric = hyp2f1(a + b - 1 - r, a - 1, a + b + x - 1, z)
        expected = np.asarray((a + b + x - 1) / (a - 1) * (1.0 - (1.0 - z) ** (a - 1) * hypergeometric))
    failed = ~np.isfinite(expected)
    if failed.any():
        expected[failed] = [
            _expected_if_alive_by_quadrature(*values, r=r, alpha=alpha, a=a, b=b)
            for values in zip(t[failed], x[failed], T[failed], strict=True)
        ]
    return expected


def _expected_if_alive_by_quadrature(
    t: float, x: float, T: float, *, r: float, alpha: float, a: float, b: float
) -> float:
    """The same expectation where scipy's 2F1 gives up (large b with t much longer than alpha + T; rare).

    By Euler's integral, ``1 - (1-z)^(a-1) 2F1(...) = E[1 - (1 + u V)^(1-a)]`` with u = t / (alpha + T) and
    V ~ Beta(r + x, a + b - 1 - r); the expectation is integrated over y = log V, without cancellation.
    """
    p, q = r + x, a + b - 1 - r
    u = t / (alpha + T)
    if u == 0:
        return 0.0
    if q <= 0:
        return np.nan
    log_beta = betaln(p, q)

    def integrand(y: float) -> float:
        v = np.exp(y)
        return -np.exp(p * y + (q - 1) * np.log1p(-v) - log_beta) * np.expm1((1 - a) * np.log1p(u * v))

    # Break the range where log V has its mass (its mean and standard deviation) and where u V crosses 1.
    mean, sd = digamma(p) - digamma(p + q), np.sqrt(polygamma(1, p) - polygamma(1, p + q))
    lowest = min(mean - 40 * sd, -np.log(u) - 40, -1.0)
    landmarks = [y for y in [*(mean + k * sd for k in (-20, -8, -3, -1, 0, 1, 3, 8)), -np.log(u)] if lowest < y < 0]
    value, _error = quad(integrand, lowest, 0.0, points=sorted(landmarks), limit=500)
    return (a + b + x - 1) / (a - 1) * value


def bgnbd_expected_purchases(
    t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, *, params: BgNbdParams
) -> np.ndarray:
    """Conditional E[purchases in (T, T + t] | x, t_x, T] for each client (equation 10 of the paper)."""
    alive = bgnbd_probability_alive(frequency, recency, T, params=params)
    return alive * bgnbd_expected_purchases_if_alive(t, frequency, T, params=params)


def bgnbd_expected_purchases_unconditional(t: ArrayLike, *, params: BgNbdParams) -> np.ndarray:
    """E[X(t)]: expected repeat purchases in the first t units after a client's first purchase (equation 9)."""
    return bgnbd_expected_purchases_if_alive(t, 0.0, 0.0, params=params)
