"""The client list's score filters and sorts: segment, RFM score, R and F, CLV, chance of being active.

They read the current completed run's scores only, through one join, and with no completed run they match nothing
and say why.
"""

import csv
import io
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm.filters import ClientFilter, client_filter_class
from crm.models import Segment
from scoring.filters import ScoredClientFilter
from scoring.models import ClientScore, RunStatus
from tests.factories import ClientFactory
from tests.scoring.factories import ClientScoreFactory, ScoringRunFactory

LIST = reverse("crm:client-list")


def shown(response) -> list[str]:
    return [str(client) for client in response.context["page_obj"]]


@pytest.fixture
def portfolio(db):
    """Four clients scored in the current run, one scored only in an older run, one never scored."""
    older = ScoringRunFactory(as_of="2026-09-01")
    current = ScoringRunFactory(as_of="2026-10-01")
    ScoringRunFactory(as_of="2026-10-02", status=RunStatus.FAILED)

    def scored(name: str, **score) -> None:
        client = ClientFactory(first_name=name, last_name="")
        ClientScoreFactory(run=current, client=client, **score)
        # An older run placed everyone among the champions: it must not count.
        ClientScoreFactory(run=older, client=client, r_score=5, f_score=5, clv_12m=Decimal("99999"))

    scored("Alba", r_score=5, f_score=5, m_score=5, clv_12m=Decimal("900.00"), p_alive=0.95)
    scored("Bruno", r_score=4, f_score=5, m_score=3, clv_12m=Decimal("300.00"), p_alive=0.80)
    scored("Chloé", r_score=1, f_score=4, m_score=4, clv_12m=Decimal("50.00"), p_alive=0.20)
    scored("Denis", r_score=1, f_score=1, m_score=1, clv_12m=None, p_alive=None)
    ClientScoreFactory(run=older, client=ClientFactory(first_name="Eva", last_name=""), r_score=5, f_score=5)
    ClientFactory(first_name="Félix", last_name="")
    return current


def test_the_product_plugs_the_score_filters_into_the_client_list(settings):
    assert client_filter_class() is ScoredClientFilter
    settings.CRM_CLIENT_FILTERSET = "crm.filters.ClientFilter"
    assert client_filter_class() is ClientFilter


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"segment": "champions"}, ["Alba"]),
        ({"segment": "at_risk"}, ["Chloé"]),
        ({"r": "4", "f": "5"}, ["Bruno"]),
        ({"r": "1"}, ["Chloé", "Denis"]),
        ({"rfm_min": "12"}, ["Alba", "Bruno"]),
        ({"rfm_min": "9", "rfm_max": "12"}, ["Bruno", "Chloé"]),
        ({"clv_12m_min": "300"}, ["Alba", "Bruno"]),
        ({"p_alive_max": "80"}, ["Bruno", "Chloé"]),
        ({"segment": "loyal", "clv_12m_min": "100"}, ["Bruno"]),
    ],
)
def test_score_filters_read_the_current_runs_scores(client_as, manager, portfolio, params, expected):
    assert shown(client_as(manager).get(LIST, params)) == expected


def test_a_dashboard_grid_cell_opens_its_clients(client_as, manager, portfolio):
    response = client_as(manager).get(f"{LIST}?r=5&f=5")
    assert shown(response) == ["Alba"]


def test_score_filters_combine_with_the_crm_filters(client_as, manager, rep, portfolio):
    alba = ClientScore.objects.get(run=portfolio, client__first_name="Alba").client
    alba.owner = rep
    alba.save()

    assert shown(client_as(manager).get(LIST, {"rfm_min": "10", "owner": rep.pk})) == ["Alba"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("-clv_12m", ["Alba", "Bruno", "Chloé"]),
        ("clv_12m", ["Chloé", "Bruno", "Alba"]),
        ("-rfm_sum", ["Alba", "Bruno", "Chloé", "Denis"]),
        ("p_alive", ["Chloé", "Bruno", "Alba"]),
    ],
)
def test_sorting_by_a_score_lists_the_clients_that_have_it(client_as, manager, portfolio, sort, expected):
    response = client_as(manager).get(LIST, {"sort": sort})

    assert shown(response) == expected
    assert response.context["sort"] == sort


def test_filters_and_sort_on_scores_join_the_scores_once(client_as, manager, portfolio):
    with CaptureQueriesContext(connection) as queries:
        response = client_as(manager).get(LIST, {"segment": "loyal", "rfm_min": "9", "sort": "-clv_12m"})

    assert shown(response) == ["Bruno"]
    client_queries = [
        query["sql"] for query in queries if 'FROM "crm_client"' in query["sql"] and "LIMIT" in query["sql"]
    ]
    # The page of rows, and the capped count (a COUNT over a LIMITed subquery).
    listing = [sql for sql in client_queries if not sql.startswith("SELECT COUNT(")]
    counting = [sql for sql in client_queries if sql.startswith("SELECT COUNT(")]
    assert len(listing) == 1 and len(counting) == 1
    assert listing[0].count('JOIN "scoring_clientscore"') == 1
    assert counting[0].count('JOIN "scoring_clientscore"') == 1


def test_without_a_completed_run_the_score_filters_match_nothing_and_say_why(client_as, manager):
    ClientFactory(first_name="Alba", last_name="")
    ScoringRunFactory(status=RunStatus.RUNNING, finished_at=None)

    response = client_as(manager).get(LIST, {"segment": "champions"})

    assert shown(response) == []
    html = response.content.decode()
    assert "No scoring run has completed yet, so no client has a score to filter on." in html
    assert "RFM segment" in html


def test_without_a_completed_run_a_score_sort_keeps_the_usual_order(client_as, manager):
    ClientFactory(first_name="Bruno", last_name="")
    ClientFactory(first_name="Alba", last_name="")

    response = client_as(manager).get(LIST, {"sort": "-clv_12m"})

    assert shown(response) == ["Alba", "Bruno"]
    assert response.context["sort"] == "name"


def test_an_inverted_rfm_range_is_refused(client_as, manager, portfolio):
    response = client_as(manager).get(LIST, {"rfm_min": "12", "rfm_max": "6"})

    assert shown(response) == []
    assert "The maximum RFM score is below the minimum." in response.content.decode()


def test_the_export_follows_the_score_filters_and_sort(client_as, manager, portfolio):
    response = client_as(manager).get(reverse("crm:client-export"), {"rfm_min": "9", "sort": "-clv_12m"})

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["Alba", "Bruno", "Chloé"]


def test_a_saved_segment_on_scores_follows_the_current_run(client_as, manager, portfolio):
    segment = Segment.objects.create(name="Best clients", filters={"segment": "champions"})

    response = client_as(manager).get(reverse("crm:segment-detail", args=[segment.pk]), {"sort": "-clv_12m"})

    assert shown(response) == ["Alba"]
