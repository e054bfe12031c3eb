"""Gamma-Gamma model of spend per purchase (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves").

Each purchase value of a client is Gamma(p, nu) distributed, and nu ~ Gamma(q, gamma) across clients, so the mean
of a client's x repeat purchases, ``monetary``, has a closed-form likelihood. It is fitted on the clients with at
least one repeat purchase and a positive mean spend; it assumes spend is independent of purchase frequency.

The fit maximises the likelihood over the logarithms of the parameters with an analytic gradient. A failed or
degenerate fit (including q <= 1, for which the mean spend is infinite) is reported in the result, never raised.
"""

from dataclasses import asdict, dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize
from scipy.special import digamma, gammaln

PARAMETER_NAMES = ("p", "q", "gamma")
LOG_BOUND = 20.0  # parameters are kept within exp(+/-20); reaching the edge means the data cannot identify them
GRADIENT_TOLERANCE = 1e-5  # on the mean log-likelihood per client, per log-parameter


@dataclass(frozen=True)
class GammaGammaParams:
    """Fitted parameters and total log-likelihood; ``converged`` is False, with a ``reason``, when unusable."""

    p: float
    q: float
    gamma: float
    loglik: float
    converged: bool
    reason: str = ""
    n_customers: int = 0

    @property
    def mean_spend(self) -> float:
        """Population mean spend per purchase, p * gamma / (q - 1) (infinite when q <= 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else float("inf")

    def as_dict(self) -> dict:
        return asdict(self)


class _Rows:
    """The clients the model is fitted on (x > 0, monetary > 0), with the sums the likelihood needs precomputed."""

    def __init__(self, frequency: ArrayLike, monetary: ArrayLike):
        x = np.asarray(frequency, dtype=float)
        m = np.asarray(monetary, dtype=float)
        if len(x) != len(m):
            raise ValueError("frequency and monetary must have the same length")
        usable = (x > 0) & (m > 0) & np.isfinite(m)
        self.x, self.m = x[usable], m[usable]
        self.n = len(self.x)
        self.xm = self.x * self.m
        self.distinct_x, self.x_counts = np.unique(self.x, return_counts=True)
        self.sum_log_m = np.log(self.m).sum()
        self.sum_x_log_m = self.x @ np.log(self.m)
        self.sum_x_log_x = self.x @ np.log(self.x)


def _negative_loglik(log_params: np.ndarray, rows: _Rows) -> tuple[float, np.ndarray]:
    """Minus the mean log-likelihood per client, and its gradient with respect to the log-parameters.

    Per client: lnG(px+q) - lnG(px) - lnG(q) + q ln(gamma) + (px-1) ln(m) + px ln(x) - (px+q) ln(gamma + m x);
    the terms in x alone are summed over the distinct values of x.
    """
    p, q, gamma = np.exp(log_params)
    n, ux, counts = rows.n, rows.distinct_x, rows.x_counts
    log_total = np.log(gamma + rows.xm)
    loglik = (
        counts @ (gammaln(p * ux + q) - gammaln(p * ux))
        - n * gammaln(q)
        + n * q * np.log(gamma)
        + p * rows.sum_x_log_m
        - rows.sum_log_m
        + p * rows.sum_x_log_x
        - p * (rows.x @ log_total)
        - q * log_total.sum()
    )
    psi_pxq = digamma(p * ux + q)
    d_p = (counts * ux) @ (psi_pxq - digamma(p * ux)) + rows.sum_x_log_m + rows.sum_x_log_x - rows.x @ log_total
    d_q = counts @ psi_pxq - n * digamma(q) + n * np.log(gamma) - log_total.sum()
    d_gamma = n * q / gamma - ((p * rows.x + q) / (gamma + rows.xm)).sum()
    scale = -1.0 / n
    return scale * loglik, scale * np.array([p * d_p, q * d_q, gamma * d_gamma])


def _maximise(rows: _Rows, start: np.ndarray):
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(start)
    options = {"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-9}
    result = minimize(
        _negative_loglik, start, args=(rows,), jac=True, method="L-BFGS-B", bounds=bounds, options=options
    )
    if not (np.isfinite(result.fun) and np.abs(result.jac).max() < GRADIENT_TOLERANCE):
        # A rougher derivative-free search from the start, then refined.
        rough = minimize(
            lambda v: _negative_loglik(v, rows)[0],
            start,
            method="Nelder-Mead",
            bounds=bounds,
            options={"maxiter": 4000},
        )
        result = minimize(
            _negative_loglik, rough.x, args=(rows,), jac=True, method="L-BFGS-B", bounds=bounds, options=options
        )
    return result


def _diagnose(log_params: np.ndarray, value: float, gradient: np.ndarray) -> str:
    if not (np.isfinite(value) and np.isfinite(log_params).all() and np.isfinite(gradient).all()):
        return "the likelihood is not finite at the optimum"
    at_bound = [name for name, v in zip(PARAMETER_NAMES, log_params, strict=True) if abs(v) > LOG_BOUND - 1e-3]
    if at_bound:
        return f"parameters at the edge of the admissible range (not identified by the data): {', '.join(at_bound)}"
    if np.abs(gradient).max() > GRADIENT_TOLERANCE:
        return "the optimiser did not converge"
    if np.exp(log_params[1]) <= 1:
        return "q <= 1: the mean spend per purchase is infinite"
    return ""


def fit_gamma_gamma(frequency: ArrayLike, monetary: ArrayLike) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma parameters, from the clients with x > 0 and monetary > 0."""
    rows = _Rows(frequency, monetary)
    nan = float("nan")
    if rows.n < 2:
        return GammaGammaParams(nan, nan, nan, nan, False, "fewer than two clients with a repeat purchase", rows.n)
    # Start from p = 1, q = 2, where the population mean spend p * gamma / (q - 1) is gamma: the observed mean.
    start = np.log([1.0, 2.0, np.average(rows.m, weights=rows.x)])
    result = _maximise(rows, start)
    reason = _diagnose(result.x, result.fun, result.jac)
    p, q, gamma = np.exp(result.x)
    loglik = -result.fun * rows.n
    return GammaGammaParams(float(p), float(q), float(gamma), float(loglik), not reason, reason, rows.n)


def gamma_gamma_expected_order_value(
    frequency: ArrayLike, monetary: ArrayLike, *, params: GammaGammaParams
) -> np.ndarray:
    """E[spend per purchase | x, monetary]: a weighted mean of the population mean and the client's own mean.

    ``(gamma + monetary * x) * p / (p * x + q - 1)``. A client without a repeat purchase (x = 0), or whose repeat
    purchases do not add up to a positive mean (refunds), gets the population mean ``p * gamma / (q - 1)``.
    """
    m = np.asarray(monetary, dtype=float)
    informative = (np.asarray(frequency, dtype=float) > 0) & (m > 0)
    x = np.where(informative, frequency, 0.0)
    m = np.where(informative, m, 0.0)
    p, q, gamma = params.p, params.q, params.gamma
    return (gamma + m * x) * p / (p * x + q - 1)
