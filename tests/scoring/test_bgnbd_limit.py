"""BG/NBD in its fixed-dropout limit (a + b -> infinity, a / (a + b) = p): closed forms and the fit that leads there."""

import numpy as np
import pytest

from scoring import bgnbd as bgnbd_module
from scoring.bgnbd import (
    FIXED_DROPOUT_CONCENTRATION,
    BgNbdParams,
    _expected_if_alive_by_quadrature,
    bgnbd_expected_purchases,
    bgnbd_expected_purchases_if_alive,
    bgnbd_expected_purchases_unconditional,
    bgnbd_log_likelihood,
    bgnbd_probability_alive,
    fit_bgnbd,
)
from tests.scoring.test_clv import simulate_bgnbd

R, ALPHA, P = 0.43, 9.2, 0.04
CONCENTRATION = 1e6  # a + b: the finite formulas are within about x / (a + b) of their limit
X = np.array([0.0, 1.0, 3.0, 10.0, 40.0])
T_X = np.array([0.0, 5.0, 20.0, 30.0, 50.0])
T = np.array([10.0, 30.0, 52.0, 60.0, 100.0])


@pytest.fixture
def params():
    return BgNbdParams(R, ALPHA, P * CONCENTRATION, (1 - P) * CONCENTRATION, loglik=0.0, converged=True)


def _predictions(params):
    return {
        "loglik": bgnbd_log_likelihood(X, T_X, T, params=params),
        "p_alive": bgnbd_probability_alive(X, T_X, T, params=params),
        "if_alive": bgnbd_expected_purchases_if_alive(np.array([[1.0], [52.0], [520.0]]), X, T, params=params),
        "conditional": bgnbd_expected_purchases(52.0, X, T_X, T, params=params),
        "unconditional": bgnbd_expected_purchases_unconditional(np.array([1.0, 52.0, 520.0]), params=params),
    }


def test_limit_formulas_match_the_finite_ones_at_a_large_concentration(params, monkeypatch):
    assert params.fixed_dropout and params.dropout_probability == pytest.approx(P)
    limit = _predictions(params)
    monkeypatch.setattr(bgnbd_module, "FIXED_DROPOUT_CONCENTRATION", float("inf"))
    assert not params.fixed_dropout
    finite = _predictions(params)
    for name, values in limit.items():
        assert np.isfinite(values).all(), name
        np.testing.assert_allclose(values, finite[name], rtol=1e-4, err_msg=name)


def test_limit_expectation_matches_the_finite_one_integrated_numerically(params):
    limit = bgnbd_expected_purchases_if_alive(52.0, X, T, params=params)
    by_quadrature = [
        _expected_if_alive_by_quadrature(52.0, x, t, r=R, alpha=ALPHA, a=params.a, b=params.b)
        for x, t in zip(X, T, strict=True)
    ]
    np.testing.assert_allclose(limit, by_quadrature, rtol=1e-4)


def test_limit_formulas_on_hand_computed_values(params):
    # x = 3, t_x = 20, T = 52: odds of having dropped out p / (1 - p) ((alpha + T) / (alpha + t_x))^(r + x).
    odds = P / (1 - P) * ((ALPHA + 52) / (ALPHA + 20)) ** (R + 3)
    assert bgnbd_probability_alive(3, 20.0, 52.0, params=params) == pytest.approx(1 / (1 + odds), rel=1e-12)
    expected = (1 - ((ALPHA + 52) / (ALPHA + 52 + P * 26)) ** (R + 3)) / P
    assert bgnbd_expected_purchases_if_alive(26.0, 3, 52.0, params=params) == pytest.approx(expected, rel=1e-12)
    assert bgnbd_expected_purchases_unconditional(26.0, params=params) == pytest.approx(
        (1 - (ALPHA / (ALPHA + P * 26)) ** R) / P, rel=1e-12
    )


def test_a_portfolio_sharing_one_dropout_probability_gives_a_usable_fixed_dropout_model():
    # Every client drops out with probability 0.05 after each repeat purchase. On a finite sample the likelihood
    # peaks at a large finite a + b about half the time; on this one it peaks in the limit.
    rng = np.random.default_rng(0)
    T = rng.uniform(20, 104, 20_000).round()
    x, t_x, holdout = simulate_bgnbd(rng, T, r=0.4, alpha=6.0, a=0.05 * 1e12, b=0.95 * 1e12, holdout=26)

    fit = fit_bgnbd(x, t_x, T)

    assert fit.converged, fit.reason
    assert fit.fixed_dropout and fit.note.startswith("fixed dropout")
    assert fit.a + fit.b > FIXED_DROPOUT_CONCENTRATION
    assert fit.dropout_probability == pytest.approx(0.05, abs=0.015)
    assert fit.r == pytest.approx(0.4, rel=0.15) and fit.alpha == pytest.approx(6.0, rel=0.25)
    assert bgnbd_log_likelihood(x, t_x, T, params=fit).sum() == pytest.approx(fit.loglik, rel=1e-9)
    predicted = bgnbd_expected_purchases(26.0, x, t_x, T, params=fit)
    assert np.isfinite(predicted).all() and np.isfinite(bgnbd_probability_alive(x, t_x, T, params=fit)).all()
    assert predicted.sum() == pytest.approx(holdout.sum(), rel=0.1)
