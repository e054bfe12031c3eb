"""The BG/NBD and Gamma-Gamma fits reproduce the published CDNOW results.

References: Fader, Hardie & Lee (2005), "Counting your customers the easy way: an alternative to the Pareto/NBD
model", and Fader & Hardie's notes "Implementing the BG/NBD model for customer base analysis in Excel" and "The
Gamma-Gamma model of monetary value" (calibration period 1997-01-01 to 1997-09-30, time in weeks).
"""

from datetime import date

import numpy as np
import pytest

from scoring.bgnbd import (
    bgnbd_expected_purchases,
    bgnbd_expected_purchases_unconditional,
    bgnbd_log_likelihood,
    fit_bgnbd,
)
from scoring.gamma_gamma import fit_gamma_gamma
from scoring.summary import summary_from_orders
from tests.scoring import cdnow


def _round_half_up(values: np.ndarray, decimals: int = 2) -> np.ndarray:
    # The published file rounds halves up (22.345 -> 22.35); the epsilon absorbs binary representation error.
    scale = 10.0**decimals
    return np.floor(values * scale + 0.5 + 1e-6) / scale


@pytest.fixture(scope="module")
def summary():
    return summary_from_orders(cdnow.orders(), cutoff=date.fromisoformat(cdnow.CUTOFF), unit_days=7)


@pytest.fixture(scope="module")
def bgnbd(summary):
    return fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])


def test_summary_from_raw_orders_reproduces_the_published_summary(summary):
    published = cdnow.published_summary()
    assert len(cdnow.orders()) == 6919
    assert summary["client_id"].tolist() == published["ID"].tolist()
    assert summary["frequency"].tolist() == published["x"].tolist()
    for ours, theirs in [("recency", "t_x"), ("T", "T"), ("monetary", "zbar")]:
        np.testing.assert_allclose(_round_half_up(summary[ours].to_numpy()), published[theirs], rtol=0, atol=1e-9)


def test_bgnbd_fit_matches_the_published_parameters_and_likelihood(summary, bgnbd):
    assert bgnbd.converged, bgnbd.reason
    assert bgnbd.n_customers == 2357
    for fitted, published in [(bgnbd.r, 0.243), (bgnbd.alpha, 4.414), (bgnbd.a, 0.793), (bgnbd.b, 2.426)]:
        assert fitted == pytest.approx(published, abs=0.005)
    assert bgnbd.loglik == pytest.approx(-9582.4, abs=0.1)
    per_client = bgnbd_log_likelihood(summary["frequency"], summary["recency"], summary["T"], params=bgnbd)
    assert per_client.sum() == pytest.approx(bgnbd.loglik, rel=1e-12)


def test_bgnbd_conditional_expectation_matches_the_published_example(bgnbd):
    expected = bgnbd_expected_purchases(39, 2, 30.43, 38.86, params=bgnbd)
    assert round(float(expected), 3) == 1.226


def test_bgnbd_unconditional_expectations_match_the_published_curve(bgnbd):
    expected = bgnbd_expected_purchases_unconditional(np.array([1, 3, 32, 78]), params=bgnbd)
    np.testing.assert_allclose(expected, [0.0532, 0.1506, 1.0437, 1.858], rtol=0, atol=6e-5)


def test_gamma_gamma_fit_matches_the_published_parameters(summary):
    params = fit_gamma_gamma(summary["frequency"], summary["monetary"])
    assert params.converged, params.reason
    assert params.n_customers == 946
    for fitted, published in [(params.p, 6.25), (params.q, 3.74), (params.gamma, 15.44)]:
        assert fitted == pytest.approx(published, abs=0.01)
    assert params.mean_spend == pytest.approx(35.17, abs=0.05)
