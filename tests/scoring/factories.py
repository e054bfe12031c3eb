"""factory_boy factories for scoring runs and client scores, and a run's dashboard aggregates as a run stores them."""

from datetime import date, timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from scoring.models import ClientScore, RunStatus, ScoringRun
from scoring.rfm import SEGMENT_GRID
from tests.factories import ClientFactory


def dashboard_data(**overrides) -> dict:
    """A completed run's ``dashboard`` JSON: every grid cell with 10 * r + f clients, and a few segments."""
    grid = [
        {"r": r, "f": f, "clients": 10 * r + f, "revenue": 1000.0 * (10 * r + f)}
        for r in range(1, 6)
        for f in range(1, 6)
    ]
    data = {
        "grid": grid,
        "segments": [
            {
                "key": "champions",
                "clients": 1234,
                "revenue": 456789.5,
                "revenue_share": 0.4213,
                "avg_clv_12m": 321.456,
                "avg_historical_clv": 1500.25,
                "avg_recency_days": 12.4,
            },
            {
                "key": "hibernating",
                "clients": 876,
                "revenue": 12000.0,
                "revenue_share": 0.011,
                "avg_clv_12m": None,
                "avg_historical_clv": 80.0,
                "avg_recency_days": 400.0,
            },
        ],
        "movements": [
            {"from": "loyal", "to": "champions", "clients": 42},
            {"from": None, "to": "new_customers", "clients": 17},
            {"from": "champions", "to": "champions", "clients": 900},
        ],
        "composition": {"prospect": 300, "client": 2110, "to_reactivate": 55, "lost": 35},
        "kpis": {
            "conversion_rate": 0.125,
            "conversion_by_source": [
                {"source": "referral", "people": 80, "converted": 20, "rate": 0.25},
                {"source": "webinar", "people": 0, "converted": 0, "rate": None},
            ],
            "conversion_by_month": [
                {"month": "2026-09", "people": 40, "converted": 4, "rate": 0.1},
                {"month": "2026-10", "people": 50, "converted": 10, "rate": 0.2},
            ],
            "average_value_per_client": 187.5,
            "average_days_since_last_interaction": 23.75,
            "total_clv_12m": 987654.3,
            "total_clv_36m": 2345678.9,
            "clients_scored": 2110,
        },
        "per_rep": [
            {
                "owner_id": None,
                "owner": "",
                "clients": 10,
                "revenue": 500.0,
                "avg_clv_12m": None,
                "composition": {"prospect": 5, "client": 10, "to_reactivate": 0, "lost": 0},
                "segments": {"hibernating": 10},
                "average_days_since_last_interaction": None,
                "conversion_rate": None,
            }
        ],
    }
    data.update(overrides)
    return data


def rep_figures(user, **overrides) -> dict:
    return {
        "owner_id": user.pk,
        "owner": user.get_full_name() or user.get_username(),
        "clients": 321,
        "revenue": 65432.1,
        "avg_clv_12m": 210.5,
        "composition": {"prospect": 40, "client": 300, "to_reactivate": 15, "lost": 6},
        "segments": {"champions": 120, "at_risk": 33},
        "average_days_since_last_interaction": 9.5,
        "conversion_rate": 0.3,
        **overrides,
    }


class ScoringRunFactory(factory.django.DjangoModelFactory):
    """A completed run by default, finished a little later than the previous one."""

    class Meta:
        model = ScoringRun

    as_of = factory.Sequence(lambda n: date(2026, 1, 1) + timedelta(days=n))
    status = RunStatus.COMPLETED
    progress = 100
    parameters = factory.LazyFunction(lambda: {"lifespan_years": 3, "gross_margin": 0.4})
    bgnbd = factory.LazyFunction(
        lambda: {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "loglik": -9582.4, "time_unit": "weeks"}
    )
    gamma_gamma = factory.LazyFunction(lambda: {"p": 6.25, "q": 3.74, "gamma": 15.44})
    counts = factory.LazyFunction(lambda: {"clients_scored": 2110})
    timings = factory.LazyFunction(lambda: {"aggregate": 1.5, "total": 4.25})
    dashboard = factory.LazyFunction(dashboard_data)
    started_at = factory.LazyFunction(timezone.now)
    finished_at = factory.Sequence(lambda n: timezone.now() + timedelta(seconds=n))


class ClientScoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ClientScore

    run = factory.SubFactory(ScoringRunFactory)
    client = factory.SubFactory(ClientFactory)
    recency_days = 12
    frequency = 5
    monetary = Decimal("1250.00")
    r_score = 5
    f_score = 4
    m_score = 5
    rfm_sum = factory.LazyAttribute(lambda score: score.r_score + score.f_score + score.m_score)
    rfm_code = factory.LazyAttribute(lambda score: f"{score.r_score}{score.f_score}{score.m_score}")
    segment = factory.LazyAttribute(lambda score: SEGMENT_GRID[score.r_score - 1][score.f_score - 1])
    historical_clv = Decimal("900.00")
    p_alive = 0.87
    expected_purchases_12m = 2.5
    expected_order_value = Decimal("240.00")
    clv_12m = Decimal("480.00")
    clv_36m = Decimal("1200.00")
