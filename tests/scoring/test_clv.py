"""Historical and predictive CLV: hand-computed values, parameter recovery on simulated clients, degenerate fits."""

from dataclasses import replace
from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

from scoring.bgnbd import (
    BgNbdParams,
    _expected_if_alive_by_quadrature,
    bgnbd_expected_purchases,
    bgnbd_expected_purchases_if_alive,
    bgnbd_expected_purchases_unconditional,
    bgnbd_log_likelihood,
    fit_bgnbd,
)
from scoring.clv import historical_clv, monthly_discount_factors, predictive_clv
from scoring.gamma_gamma import GammaGammaParams, fit_gamma_gamma, gamma_gamma_expected_order_value
from scoring.summary import summary_from_orders

TRUE_BGNBD = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
TRUE_GAMMA_GAMMA = {"p": 6.0, "q": 4.0, "gamma": 15.0}


def simulate_bgnbd(rng, T, *, r, alpha, a, b, holdout=0.0):
    """Per client: x, t_x over (0, T], and the repeat purchases in the following ``holdout`` time units.

    lambda ~ Gamma(r, alpha) and p ~ Beta(a, b); the client drops out right after their J-th repeat purchase,
    J ~ Geometric(p) on 1, 2, ... Of the N ~ Poisson(lambda T) purchases the rate allows in (0, T], the client makes
    x = min(J, N); given N, the x-th arrival time is T times a Beta(x, N - x + 1) variable (uniform order statistic).
    """
    n = len(T)
    rate = rng.gamma(r, 1 / alpha, n)
    purchases_before_dropout = rng.geometric(rng.beta(a, b, n))
    arrivals = rng.poisson(rate * T)
    x = np.minimum(purchases_before_dropout, arrivals)
    t_x = np.where(x > 0, T * rng.beta(np.maximum(x, 1), arrivals - x + 1), 0.0)
    still_alive = purchases_before_dropout > arrivals
    later = np.minimum(purchases_before_dropout - arrivals, rng.poisson(rate * holdout))
    return x, t_x, np.where(still_alive, later, 0)


def simulate_gamma_gamma(rng, x, *, p, q, gamma):
    """Mean of x purchase values, each Gamma(p, nu) with nu ~ Gamma(q, gamma); 0 where x = 0."""
    nu = rng.gamma(q, 1 / gamma, len(x))
    x_safe = np.maximum(x, 1)
    return np.where(x > 0, rng.gamma(p * x_safe, 1 / (nu * x_safe)), 0.0)


def standard_errors(loglik, theta, relative_step=1e-4):
    """Asymptotic standard errors: the inverse of the observed information, by central finite differences."""
    theta = np.asarray(theta, dtype=float)
    steps = relative_step * theta
    k = len(theta)
    hessian = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            corners = []
            for si, sj in [(1, 1), (1, -1), (-1, 1), (-1, -1)]:
                point = theta.copy()
                point[i] += si * steps[i]
                point[j] += sj * steps[j]
                corners.append(loglik(point))
            hessian[i, j] = (corners[0] - corners[1] - corners[2] + corners[3]) / (4 * steps[i] * steps[j])
    return np.sqrt(np.diag(np.linalg.inv(-hessian)))


@pytest.fixture(scope="module")
def simulated():
    rng = np.random.default_rng(2025)
    T = rng.uniform(26, 78, 20_000)  # weeks: clients acquired over one year, observed for six months more
    x, t_x, holdout = simulate_bgnbd(rng, T, **TRUE_BGNBD, holdout=39)
    monetary = simulate_gamma_gamma(rng, x, **TRUE_GAMMA_GAMMA)
    return pd.DataFrame(
        {
            "client_id": np.arange(len(T)),
            "frequency": x,
            "recency": t_x,
            "T": T,
            "monetary": monetary,
            "holdout": holdout,
        }
    )


@pytest.fixture(scope="module")
def simulated_fit(simulated):
    return fit_bgnbd(simulated["frequency"], simulated["recency"], simulated["T"])


# Tolerance of the recovery tests: 4 asymptotic standard errors (inverse observed information at the estimate), a
# band a normal estimator leaves about once in 16,000 tries per parameter. The standard errors were checked on 40
# seeds: the z-scores (estimate - truth) / error of the 7 parameters had standard deviations of 0.94 to 1.12 and
# never exceeded 2.9 in absolute value.
SIGMAS = 4


def test_bgnbd_recovers_the_parameters_it_was_simulated_with(simulated, simulated_fit):
    x, t_x, T = simulated["frequency"], simulated["recency"], simulated["T"]
    fit = simulated_fit
    assert fit.converged, fit.reason
    estimate = np.array([fit.r, fit.alpha, fit.a, fit.b])

    def loglik(theta):
        params = replace(fit, **dict(zip(TRUE_BGNBD, theta, strict=True)))
        return bgnbd_log_likelihood(x, t_x, T, params=params).sum()

    errors = standard_errors(loglik, estimate)
    truth = np.array(list(TRUE_BGNBD.values()))
    assert (SIGMAS * errors < 0.35 * truth).all()  # the band is narrow enough for the test to mean something
    assert (np.abs(estimate - truth) < SIGMAS * errors).all(), (estimate, errors)


def test_bgnbd_predicts_the_simulated_holdout_purchases(simulated, simulated_fit):
    fit = simulated_fit
    predicted = bgnbd_expected_purchases(39, simulated["frequency"], simulated["recency"], simulated["T"], params=fit)
    assert predicted.sum() == pytest.approx(simulated["holdout"].sum(), rel=0.05)
    for x in [0, 1, 2]:
        same_x = (simulated["frequency"] == x).to_numpy()
        assert predicted[same_x].sum() == pytest.approx(simulated["holdout"][same_x].sum(), rel=0.1)


def test_unconditional_expectation_matches_the_simulated_mean():
    rng = np.random.default_rng(11)
    x, _, _ = simulate_bgnbd(rng, np.full(100_000, 32.0), **TRUE_BGNBD)
    params = BgNbdParams(**TRUE_BGNBD, loglik=float("nan"), converged=True)
    expected = bgnbd_expected_purchases_unconditional(32.0, params=params)
    assert x.mean() == pytest.approx(expected, abs=4 * x.std() / np.sqrt(len(x)))


def test_gamma_gamma_recovers_the_parameters_it_was_simulated_with(simulated):
    fit = fit_gamma_gamma(simulated["frequency"], simulated["monetary"])
    assert fit.converged, fit.reason
    repeat = simulated[simulated["frequency"] > 0]
    x, m = repeat["frequency"].to_numpy(float), repeat["monetary"].to_numpy()

    def loglik(theta):  # written out here independently of the module
        p, q, gamma = theta
        return (
            gammaln(p * x + q)
            - gammaln(p * x)
            - gammaln(q)
            + q * np.log(gamma)
            + (p * x - 1) * np.log(m)
            + p * x * np.log(x)
            - (p * x + q) * np.log(gamma + m * x)
        ).sum()

    estimate = np.array([fit.p, fit.q, fit.gamma])
    assert loglik(estimate) == pytest.approx(fit.loglik, rel=1e-10)
    errors = standard_errors(loglik, estimate)
    truth = np.array(list(TRUE_GAMMA_GAMMA.values()))
    assert (SIGMAS * errors < 0.35 * truth).all()
    assert (np.abs(estimate - truth) < SIGMAS * errors).all(), (estimate, errors)


# (r, alpha, a, b, x, T, t) and E[purchases in (T, T + t] | alive], computed with 50-digit arithmetic from the
# published formula. scipy's 2F1 returns NaN on the first two (large b, t much longer than alpha + T).
REFERENCE_EXPECTATIONS = [
    ((0.0928, 0.6363, 0.28, 1986.93, 1, 0, 737.5), 1130.03984819329),
    ((0.681, 3.01, 7.875, 260.03, 5, 0, 1096), 39.5488799352005),
    ((0.695, 0.52, 5.122, 167.01, 0, 0, 1000), 38.2258551781331),
    ((0.055, 3.47, 5.847, 680.84, 0, 0, 1096), 8.48094587525583),
    ((0.243, 4.414, 0.793, 2.426, 2, 38.86, 39), 1.68739930580531),
]


@pytest.mark.parametrize(("arguments", "reference"), REFERENCE_EXPECTATIONS)
def test_expected_purchases_if_alive_match_high_precision_references(arguments, reference):
    r, alpha, a, b, x, T, t = arguments
    params = BgNbdParams(r, alpha, a, b, loglik=0.0, converged=True)
    assert float(bgnbd_expected_purchases_if_alive(t, x, T, params=params)) == pytest.approx(reference, rel=1e-9)
    by_quadrature = _expected_if_alive_by_quadrature(t, x, T, r=r, alpha=alpha, a=a, b=b)
    assert by_quadrature == pytest.approx(reference, rel=1e-7)


def test_a_base_without_repeat_purchases_is_reported_as_not_fitted():
    fit = fit_bgnbd(np.zeros(50), np.zeros(50), np.full(50, 20.0))
    assert not fit.converged
    assert "no repeat purchases" in fit.reason
    assert np.isnan(fit.r) and fit.n_customers == 50
    spend = fit_gamma_gamma(np.zeros(50), np.zeros(50))
    assert not spend.converged and spend.n_customers == 0


def test_an_empty_base_is_reported_as_not_fitted():
    assert fit_bgnbd([], [], []).reason == "no customers"


def test_data_the_model_cannot_identify_is_reported_rather_than_raised():
    # Everyone bought every week and was seen buying this week: nothing tells how clients drop out.
    weeks = np.arange(1, 200, dtype=float)
    fit = fit_bgnbd(weeks, weeks, weeks)
    assert not fit.converged
    assert "edge of the admissible range" in fit.reason
    # Every purchase worth the same: no variance within clients to fit the spend per purchase.
    spend = fit_gamma_gamma([1, 2, 3, 4, 5], [10.0] * 5)
    assert not spend.converged and spend.reason


def test_malformed_summaries_are_refused():
    with pytest.raises(ValueError, match="recency"):
        fit_bgnbd([1], [5.0], [4.0])
    with pytest.raises(ValueError, match="non-negative integer"):
        fit_bgnbd([1.5], [1.0], [4.0])


def test_summary_merges_same_day_orders_and_ignores_orders_after_the_cutoff():
    orders = pd.DataFrame(
        {
            "client_id": [1, 1, 1, 1, 1, 2, 3],
            "date": pd.to_datetime(
                ["2025-01-06", "2025-01-06", "2025-01-13", "2025-01-20", "2025-03-03", "2025-01-13", "2025-02-01"]
            ),
            "amount": [Decimal("10"), Decimal("5"), Decimal("20"), Decimal("40"), Decimal("99"), Decimal("8"), 1],
        }
    )
    summary = summary_from_orders(orders, cutoff=date(2025, 1, 27), unit_days=7)
    expected = pd.DataFrame(
        {"client_id": [1, 2], "frequency": [2, 0], "recency": [2.0, 0.0], "T": [3.0, 2.0], "monetary": [30.0, 0.0]}
    )
    pd.testing.assert_frame_equal(summary, expected)
    in_days = summary_from_orders(orders, cutoff=date(2025, 1, 27), unit_days=1)
    assert in_days["recency"].tolist() == [14.0, 0.0] and in_days["T"].tolist() == [21.0, 14.0]


def test_historical_clv_on_a_hand_computed_example():
    summary = pd.DataFrame(
        {
            "client_id": [1, 2],
            "first_purchase": [date(2021, 6, 30), date(2025, 5, 31)],
            "orders": [8, 2],
            "revenue": [Decimal("1200.00"), Decimal("150.00")],
        }
    )
    clv = historical_clv(summary, as_of=date(2025, 6, 30), lifespan_years=5, gross_margin=0.3)
    # Client 1: 1,461 days = 4 years; 150 per basket x 2 a year x 5 years x 30 %.
    # Client 2: 30 days, floored to one year: 2 orders a year at 75.
    expected = pd.DataFrame(
        {
            "client_id": [1, 2],
            "average_basket": [150.0, 75.0],
            "tenure_years": [4.0, 1.0],
            "purchases_per_year": [2.0, 2.0],
            "lifespan_years": [5.0, 5.0],
            "gross_margin": [0.3, 0.3],
            "historical_clv": [450.0, 225.0],
        }
    )
    pd.testing.assert_frame_equal(clv, expected)


def test_monthly_discounting_compounds_to_the_annual_rate():
    factors = monthly_discount_factors(36, 0.10)
    assert factors[11] == pytest.approx(1 / 1.1)
    assert factors[35] == pytest.approx(1 / 1.1**3)


@pytest.fixture(scope="module")
def clv_inputs(simulated, simulated_fit):
    spend = fit_gamma_gamma(simulated["frequency"], simulated["monetary"])
    return simulated.drop(columns="holdout").iloc[:2000], simulated_fit, spend


def test_predictive_clv_without_discounting_is_purchases_times_order_value(clv_inputs):
    summary, bgnbd, spend = clv_inputs
    clv = predictive_clv(summary, bgnbd=bgnbd, gamma_gamma=spend, unit_days=7, annual_discount_rate=0.0)
    order_value = gamma_gamma_expected_order_value(summary["frequency"], summary["monetary"], params=spend)
    three_years_in_weeks = 36 * 365.25 / 12 / 7
    purchases = bgnbd_expected_purchases(
        three_years_in_weeks, summary["frequency"], summary["recency"], summary["T"], params=bgnbd
    )
    np.testing.assert_allclose(clv["expected_purchases_36m"], purchases, rtol=1e-12)
    np.testing.assert_allclose(clv["expected_order_value"], order_value, rtol=1e-12)
    np.testing.assert_allclose(clv["clv_36m"], purchases * order_value, rtol=1e-10)


def test_predictive_clv_discounts_and_applies_the_margin(clv_inputs):
    summary, bgnbd, spend = clv_inputs
    plain = predictive_clv(summary, bgnbd=bgnbd, gamma_gamma=spend, unit_days=7, annual_discount_rate=0.0)
    clv = predictive_clv(summary, bgnbd=bgnbd, gamma_gamma=spend, unit_days=7, gross_margin=0.4)
    assert list(clv.columns) == [
        "client_id",
        "probability_alive",
        "expected_order_value",
        "expected_purchases_12m",
        "expected_purchases_36m",
        "clv_12m",
        "clv_36m",
    ]
    assert (clv["clv_12m"] <= clv["clv_36m"]).all()
    ratio = clv["clv_36m"] / (0.4 * plain["clv_36m"])
    assert ratio.between(1 / 1.1**3, 1 / 1.1**0.5).all()


def test_predictive_clv_of_a_client_without_repeat_purchase_uses_the_population_spend():
    bgnbd = BgNbdParams(**TRUE_BGNBD, loglik=0.0, converged=True)
    spend = GammaGammaParams(**TRUE_GAMMA_GAMMA, loglik=0.0, converged=True)
    summary = pd.DataFrame({"client_id": [7], "frequency": [0], "recency": [0.0], "T": [10.0], "monetary": [0.0]})
    clv = predictive_clv(summary, bgnbd=bgnbd, gamma_gamma=spend, unit_days=7)
    assert clv.loc[0, "probability_alive"] == 1.0
    assert clv.loc[0, "expected_order_value"] == pytest.approx(6.0 * 15.0 / 3.0)
