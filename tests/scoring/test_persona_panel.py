"""The persona page's figures (scoring.panels.persona_figures_panel) and crm's CRM_PERSONA_PANELS hook."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Lifecycle
from scoring.models import RunStatus
from scoring.panels import persona_figures
from tests.factories import ClientFactory, PersonaFactory, PurchaseFactory
from tests.scoring.factories import ClientScoreFactory, ScoringRunFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def persona_portfolio(rep, other_rep):
    """A persona with five members (two owned by ``rep``) and a non-member, scored in the current run."""
    persona = PersonaFactory(name="Gérard")
    converted = ClientFactory(persona=persona, owner=rep, lifecycle=Lifecycle.CLIENT, converted_at=date(2026, 3, 1))
    prospect = ClientFactory(persona=persona, owner=rep, lifecycle=Lifecycle.PROSPECT)
    ClientFactory(persona=persona, owner=other_rep, lifecycle=Lifecycle.PROSPECT)
    direct = ClientFactory(persona=persona, owner=other_rep, lifecycle=Lifecycle.CLIENT)  # never a prospect
    lost = ClientFactory(persona=persona, owner=other_rep, lifecycle=Lifecycle.LOST, converted_at=date(2025, 5, 1))
    stranger = ClientFactory(lifecycle=Lifecycle.CLIENT, converted_at=date(2026, 1, 1))
    for client, amount in ((converted, "100.00"), (converted, "50.50"), (direct, "200.00"), (stranger, "999.00")):
        PurchaseFactory(client=client, amount=Decimal(amount))
    run = ScoringRunFactory()
    old_run = ScoringRunFactory(status=RunStatus.FAILED, finished_at=None)
    ClientScoreFactory(run=run, client=converted, segment="champions", clv_12m=Decimal("100.00"))
    ClientScoreFactory(run=run, client=direct, segment="at_risk", clv_12m=Decimal("300.00"))
    ClientScoreFactory(run=run, client=lost, segment="at_risk", clv_12m=None)
    ClientScoreFactory(run=run, client=stranger, segment="champions", clv_12m=Decimal("5000.00"))
    ClientScoreFactory(run=old_run, client=prospect, segment="champions", clv_12m=Decimal("7000.00"))
    return persona


def test_figures_match_hand_computed_ones(persona_portfolio, manager, client_as):
    figures = persona_figures(persona_portfolio, persona_portfolio.clients.all())

    assert figures["members"] == 5
    assert figures["revenue"] == Decimal("350.50")
    # CLV over the members scored in the current run that have one: (100 + 300) / 2.
    assert figures["clv_average"] == Decimal("200.00") and figures["clv_total"] == Decimal("400.00")
    assert [(row["key"], row["clients"]) for row in figures["segments"]] == [("at_risk", 2), ("champions", 1)]
    assert figures["segments"][0]["percent"] == pytest.approx(200 / 3)
    # Came in as prospects: the two with a conversion date and the two still prospects; two of four converted.
    assert (figures["converted"], figures["prospects"]) == (2, 2)
    assert figures["conversion_percent"] == 50

    page = client_as(manager).get(persona_portfolio.get_absolute_url()).content.decode()
    assert 'id="persona-figures"' in page
    assert '<div class="fs-5 fw-semibold" id="persona-revenue">350.50</div>' in page
    assert '<div class="fs-5 fw-semibold" id="persona-conversion">50.0 %</div>' in page
    assert 'data-segment="at_risk"' in page


def test_rep_sees_the_figures_of_the_members_he_may_see(persona_portfolio, settings, rep, client_as):
    settings.CRM_REPS_SEE_ONLY_OWN_CLIENTS = True

    page = client_as(rep).get(persona_portfolio.get_absolute_url()).content.decode()

    assert '<div class="fs-5 fw-semibold" id="persona-members">2</div>' in page
    assert '<div class="fs-5 fw-semibold" id="persona-revenue">150.50</div>' in page
    assert '<div class="fs-5 fw-semibold" id="persona-conversion">50.0 %</div>' in page


def test_figures_without_a_run_or_prospects():
    persona = PersonaFactory()
    ClientFactory(persona=persona, lifecycle=Lifecycle.CLIENT)

    figures = persona_figures(persona, persona.clients.all())

    assert figures["run"] is None and figures["segments"] == []
    assert figures["conversion_percent"] is None and figures["revenue"] == 0


def test_persona_page_includes_the_configured_panels_only(persona_portfolio, settings, manager, client_as):
    settings.CRM_PERSONA_PANELS = ["tests.scoring.test_persona_panel.empty_panel"]

    page = client_as(manager).get(persona_portfolio.get_absolute_url()).content.decode()

    assert 'id="persona-figures"' not in page and "Gérard" in page


def empty_panel(request, persona):
    return None


def test_figures_panel_costs_the_same_queries_whatever_the_persona_size(persona_portfolio, manager, client_as):
    browser = client_as(manager)
    with CaptureQueriesContext(connection) as few:
        browser.get(persona_portfolio.get_absolute_url())
    for client in ClientFactory.create_batch(10, persona=persona_portfolio):
        PurchaseFactory(client=client)
    with CaptureQueriesContext(connection) as more:
        browser.get(persona_portfolio.get_absolute_url())

    assert len(more) == len(few)
