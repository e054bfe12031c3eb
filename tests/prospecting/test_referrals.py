"""Referrals: the ambassadors ranking, the candidates worth asking, and the card's referrals panel."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm.models import Client
from prospecting import referrals
from prospecting.panels import referrals_panel
from scoring.models import ClientScore, RunStatus, ScoringRun
from tests.factories import ClientFactory, PurchaseFactory

AMBASSADORS = reverse("prospecting:ambassadors")


def score(run, client, rfm_sum, monetary="500"):
    return ClientScore.objects.create(
        run=run, client=client, recency_days=10, frequency=4, monetary=Decimal(monetary), r_score=5, f_score=5,
        m_score=5, rfm_sum=rfm_sum, rfm_code="555", segment="champions", historical_clv=Decimal("1000"),
    )  # fmt: skip


@pytest.fixture
def network(db):
    """Ann referred three clients who bought 100 in all; Bob referred one who bought 250; Cid referred nobody."""
    ann, bob, cid = (ClientFactory(first_name=name, last_name="Ambassador") for name in ("Ann", "Bob", "Cid"))
    for amount in (Decimal("60"), Decimal("40"), None):
        friend = ClientFactory(referred_by=ann)
        if amount:
            PurchaseFactory(client=friend, amount=amount)
    friend = ClientFactory(referred_by=bob)
    PurchaseFactory(client=friend, amount=Decimal("200"))
    PurchaseFactory(client=friend, amount=Decimal("50"))
    PurchaseFactory(client=ann, amount=Decimal("9999"))  # his own purchases are not what his referrals brought
    return ann, bob, cid


def test_ambassadors_are_ranked_by_clients_referred_then_revenue(network):
    ann, bob, cid = network

    ranking = list(referrals.ambassador_ranking(Client.objects.all()))

    assert [(client, client.referred_count, client.referred_revenue) for client in ranking] == [
        (ann, 3, Decimal("100")),
        (bob, 1, Decimal("250")),
    ]


def test_with_as_many_referrals_revenue_decides(network):
    ann, bob, _cid = network
    for _ in range(2):
        ClientFactory(referred_by=bob)

    ranking = list(referrals.ambassador_ranking(Client.objects.all()))

    assert [client.pk for client in ranking] == [bob.pk, ann.pk]


def test_candidates_are_well_scored_clients_who_referred_nobody_in_the_current_run(network):
    ann, bob, cid = network
    dan = ClientFactory(first_name="Dan")
    eve = ClientFactory(first_name="Eve", do_not_contact=True)
    low = ClientFactory(first_name="Low")
    old = ScoringRun.objects.create(
        as_of=timezone.localdate(), status=RunStatus.COMPLETED, finished_at=timezone.now() - timedelta(days=1)
    )
    current = ScoringRun.objects.create(
        as_of=timezone.localdate(), status=RunStatus.COMPLETED, finished_at=timezone.now()
    )
    score(old, low, 15)  # a past run does not count
    for client, rfm_sum, monetary in (
        (ann, 15, "900"),
        (cid, 13, "300"),
        (dan, 13, "800"),
        (eve, 15, "900"),
        (low, 8, "50"),
    ):
        score(current, client, rfm_sum, monetary)

    candidates = referrals.referral_candidates(Client.objects.all())

    assert [candidate.client for candidate in candidates] == [dan, cid]


def test_no_candidates_before_a_first_scoring_run(network):
    assert referrals.referral_candidates(Client.objects.all()) == []


def test_the_ambassadors_page_ranks_the_clients_a_rep_may_see(client_as, rep, settings, network):
    ann, bob, _cid = network
    settings.CRM_REPS_SEE_ONLY_OWN_CLIENTS = True
    Client.objects.filter(pk=bob.pk).update(owner=rep)

    html = client_as(rep).get(AMBASSADORS).content.decode()

    assert "Bob Ambassador" in html and "250.00" in html
    assert "Ann Ambassador" not in html


def test_the_ambassadors_page_for_a_manager(client_as, manager, network):
    response = client_as(manager).get(AMBASSADORS)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("Ann Ambassador") < html.index("Bob Ambassador")


def test_the_card_panel_shows_what_a_clients_referrals_brought(client_as, rep, network):
    ann, _bob, cid = network

    html = client_as(rep).get(reverse("crm:client-detail", args=[ann.pk])).content.decode()

    assert 'id="referral-panel"' in html
    assert "Referred 3 clients, who bought 100.00." in html
    assert 'id="referral-panel"' not in client_as(rep).get(reverse("crm:client-detail", args=[cid.pk])).content.decode()


def test_the_card_panel_suggests_asking_a_well_scored_client(rf, rep, network):
    _ann, _bob, cid = network
    run = ScoringRun.objects.create(as_of=timezone.localdate(), status=RunStatus.COMPLETED, finished_at=timezone.now())
    score(run, cid, 14)
    request = rf.get("/")
    request.user = rep

    with CaptureQueriesContext(connection) as queries:
        panel = referrals_panel(request, cid)

    assert panel["context"]["candidate_score"].rfm_sum == 14
    assert len(queries) <= 3
