"""The scores panel of the client card: each score with its inputs, the segment's action, both CLVs, the trend."""

import re
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scoring.models import RunStatus
from tests.factories import ClientFactory
from tests.scoring.factories import ClientScoreFactory, ScoringRunFactory


def _card(client) -> str:
    return reverse("crm:client-detail", args=[client.pk])


def _figure(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)<', html, re.DOTALL)
    assert match, f"nothing with id {element_id}"
    return match.group(1).strip()


def test_card_shows_each_score_beside_the_figures_it_comes_from(client_as, rep, rep_client):
    ClientScoreFactory(client=rep_client, recency_days=12, frequency=5, monetary=Decimal("1250.00"))

    html = client_as(rep).get(_card(rep_client)).content.decode()

    assert _figure(html, "score-r") == "5" and _figure(html, "score-recency") == "12"
    assert _figure(html, "score-f") == "4" and _figure(html, "score-frequency") == "5"
    assert _figure(html, "score-m") == "5" and _figure(html, "score-monetary") == "1,250.00"
    assert _figure(html, "score-sum") == "14"
    assert _figure(html, "score-code") == "545"


def test_card_shows_the_segment_with_its_recommended_action_and_list_link(client_as, rep, rep_client):
    ClientScoreFactory(client=rep_client, r_score=1, f_score=4)

    html = client_as(rep).get(_card(rep_client)).content.decode()

    assert _figure(html, "score-segment") == "At Risk"
    assert f'href="{reverse("crm:client-list")}?segment=at_risk"' in html
    assert _figure(html, "score-action") == "Personal reactivation call with an offer tailored to their history."


def test_card_shows_both_clvs_with_their_inputs(client_as, rep, rep_client):
    run = ScoringRunFactory(parameters={"lifespan_years": 3, "gross_margin": 0.4})
    # Basket 250 x 1.5 purchases a year x 3 years x 40 % = 450.
    ClientScoreFactory(
        run=run,
        client=rep_client,
        frequency=4,
        monetary=Decimal("1000.00"),
        historical_clv=Decimal("450.00"),
        p_alive=0.873,
        expected_purchases_12m=2.345,
        expected_order_value=Decimal("240.50"),
        clv_12m=Decimal("480.25"),
        clv_36m=Decimal("1200.75"),
    )

    html = client_as(rep).get(_card(rep_client)).content.decode()

    assert _figure(html, "clv-historical") == "450.00"
    assert re.search(r"Average basket</dt><dd[^>]*>250.00<", html)
    assert re.search(r"Purchases per year</dt><dd[^>]*>1.50<", html)
    assert re.search(r"Expected lifespan \(years\)</dt><dd[^>]*>3<", html)
    assert re.search(r"Gross margin</dt><dd[^>]*>40 %<", html)
    assert _figure(html, "clv-12m") == "480.25"
    assert _figure(html, "clv-36m") == "1,200.75"
    assert _figure(html, "score-p-alive") == "87 %"
    assert _figure(html, "score-expected-purchases") == "2.35"
    assert _figure(html, "score-order-value") == "240.50"


def test_card_shows_the_suggested_lifecycle_beside_a_manual_one_that_differs(client_as, rep):
    client = ClientFactory(owner=rep, lifecycle="client", lifecycle_manual=True)
    ClientScoreFactory(client=client, suggested_lifecycle="to_reactivate")

    html = client_as(rep).get(_card(client)).content.decode()

    suggestion = html[html.index('id="score-lifecycle"') :]
    assert "Client (set by hand)" in suggestion
    assert "<strong>To reactivate</strong>" in suggestion


def test_card_shows_no_suggestion_when_it_matches_the_lifecycle(client_as, rep):
    client = ClientFactory(owner=rep, lifecycle="client")
    ClientScoreFactory(client=client, suggested_lifecycle="client")

    assert 'id="score-lifecycle"' not in client_as(rep).get(_card(client)).content.decode()


def test_card_shows_the_trend_over_the_completed_runs_newest_first(client_as, rep, rep_client):
    for as_of, r_score, clv in (("2026-09-01", 5, "100.00"), ("2026-10-01", 3, "80.00"), ("2026-11-01", 1, "20.00")):
        ClientScoreFactory(run=ScoringRunFactory(as_of=as_of), client=rep_client, r_score=r_score, clv_12m=Decimal(clv))
    failed = ScoringRunFactory(as_of="2026-11-02", status=RunStatus.FAILED)
    ClientScoreFactory(run=failed, client=rep_client, r_score=5, f_score=5, clv_12m=Decimal("9999.00"))

    html = client_as(rep).get(_card(rep_client)).content.decode()

    trend = html[html.index('id="score-trend"') : html.index("</table>", html.index('id="score-trend"'))]
    rows = re.findall(r"<tr>\s*<td>(.*?)</td>\s*<td>(.*?)</td>\s*<td[^>]*>(\d+) ", trend)
    assert rows == [
        ("11/01/2026", "At Risk", "10"),
        ("10/01/2026", "Loyal", "12"),
        ("09/01/2026", "Champions", "14"),
    ]
    assert "20.00" in trend and "100.00" in trend
    assert "9,999.00" not in html
    # The current scores are those of the latest completed run, not of the failed one after it.
    assert _figure(html, "score-segment") == "At Risk"


def test_card_of_a_client_not_scored_in_the_current_run_says_why(client_as, rep, rep_client):
    ClientScoreFactory(run=ScoringRunFactory(as_of="2026-09-01"), client=rep_client)
    ScoringRunFactory(as_of="2026-10-01")

    html = client_as(rep).get(_card(rep_client)).content.decode()

    assert 'id="score-none"' in html
    assert "Not scored in the latest run" in html
    assert 'id="score-trend"' in html


def test_card_has_no_scores_panel_before_the_first_completed_run(client_as, rep, rep_client):
    ScoringRunFactory(status=RunStatus.RUNNING, finished_at=None)

    assert 'id="scores-panel"' not in client_as(rep).get(_card(rep_client)).content.decode()


def test_card_without_panels_configured_shows_none(client_as, settings, rep, rep_client):
    settings.CRM_CARD_PANELS = []
    ClientScoreFactory(client=rep_client)

    assert 'id="scores-panel"' not in client_as(rep).get(_card(rep_client)).content.decode()


def test_scores_panel_costs_the_same_queries_whatever_the_number_of_runs(client_as, rep, rep_client):
    browser = client_as(rep)
    ClientScoreFactory(client=rep_client)
    with CaptureQueriesContext(connection) as one_run:
        assert browser.get(_card(rep_client)).status_code == 200
    for _ in range(15):
        ClientScoreFactory(client=rep_client)
    with CaptureQueriesContext(connection) as many_runs:
        html = browser.get(_card(rep_client)).content.decode()

    assert len(many_runs) == len(one_run)
    assert html.count("<td>Loyal</td>") + html.count("<td>Champions</td>") == 12


def test_scores_panel_adds_two_queries_to_the_card(client_as, settings, rep, rep_client):
    settings.CRM_CARD_PANELS = ["scoring.panels.client_scores_panel"]
    ClientScoreFactory(client=rep_client)
    browser = client_as(rep)
    with CaptureQueriesContext(connection) as with_panel:
        browser.get(_card(rep_client))
    settings.CRM_CARD_PANELS = []
    with CaptureQueriesContext(connection) as without_panel:
        browser.get(_card(rep_client))

    assert len(with_panel) - len(without_panel) == 2
