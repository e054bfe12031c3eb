"""The services keep derived client fields consistent and record history."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from crm import services
from crm.models import Client, ClientChange, Interaction, InteractionKind, Lifecycle, Stage
from crm.normalize import normalize_email, normalize_linkedin_url
from crm.tasks import refresh_client_activity_task
from tests.factories import ClientFactory, ProductFactory, PurchaseFactory, TagFactory


@pytest.mark.parametrize(
    "raw",
    [
        "https://www.linkedin.com/in/jean-dupont",
        "linkedin.com/in/Jean-Dupont/",
        "http://fr.linkedin.com/in/jean-dupont?trk=profile",
        "  https://LINKEDIN.com/in/jean-dupont/  ",
    ],
)
def test_linkedin_url_variants_normalise_to_one_profile(raw):
    assert normalize_linkedin_url(raw) == "https://www.linkedin.com/in/jean-dupont"


def test_other_urls_are_kept_as_written():
    assert normalize_linkedin_url(" https://example.com/Page ") == "https://example.com/Page"
    assert normalize_linkedin_url("") == ""


def test_email_is_lowercased_and_trimmed():
    assert normalize_email("  Ann@X.COM ") == "ann@x.com"


def test_client_create_normalises_keys_and_records_creation(rep):
    client = services.client_create(
        data={"first_name": "Ann", "email": "Ann@X.com", "linkedin_url": "linkedin.com/in/Ann/"}, user=rep
    )
    assert client.email == "ann@x.com"
    assert client.linkedin_url == "https://www.linkedin.com/in/ann"
    assert ClientChange.objects.filter(client=client, field=services.CREATED, user=rep).count() == 1


def test_client_update_records_only_changed_fields(rep_client, manager):
    tag = TagFactory(name="vip")
    changes = services.client_update(
        client=rep_client, data={"company": "Acme", "first_name": rep_client.first_name, "tags": [tag]}, user=manager
    )
    assert {change.field for change in changes} == {"company", "tags"}
    company = ClientChange.objects.get(client=rep_client, field="company")
    assert company.new_value == "Acme" and company.user == manager
    assert list(rep_client.tags.all()) == [tag]


def test_interaction_log_moves_last_interaction_forward_only(rep_client, rep):
    recent = timezone.now() - timedelta(days=1)
    services.interaction_log(client=rep_client, user=rep, kind=InteractionKind.CALL, occurred_at=recent)
    services.interaction_log(
        client=rep_client, user=rep, kind=InteractionKind.NOTE, occurred_at=recent - timedelta(days=9)
    )
    rep_client.refresh_from_db()
    assert rep_client.last_interaction_at == recent
    assert Interaction.objects.filter(client=rep_client).count() == 2


def test_first_purchase_converts_a_prospect(rep_client):
    product = ProductFactory()
    purchase = services.purchase_record(
        client=rep_client,
        purchased_on=date(2026, 3, 1),
        lines=[{"product": product, "quantity": 2, "unit_price": Decimal("19.90")}],
    )
    rep_client.refresh_from_db()
    assert purchase.amount == Decimal("39.80")
    assert rep_client.lifecycle == Lifecycle.CLIENT
    assert rep_client.stage == Stage.WON
    assert rep_client.converted_at == date(2026, 3, 1)
    assert rep_client.last_purchase_at == date(2026, 3, 1)


def test_conversion_date_is_kept_when_later_purchases_arrive(rep_client):
    services.purchase_record(client=rep_client, purchased_on=date(2026, 3, 1), amount=Decimal("10"))
    services.purchase_record(client=rep_client, purchased_on=date(2026, 6, 1), amount=Decimal("10"))
    rep_client.refresh_from_db()
    assert rep_client.converted_at == date(2026, 3, 1)
    assert rep_client.last_purchase_at == date(2026, 6, 1)


def test_a_lost_client_who_buys_keeps_a_manual_lifecycle(rep_client):
    Client.objects.filter(pk=rep_client.pk).update(lifecycle=Lifecycle.LOST)
    services.purchase_record(client=rep_client, purchased_on=date(2026, 3, 1), amount=Decimal("10"))
    rep_client.refresh_from_db()
    assert rep_client.lifecycle == Lifecycle.LOST


def test_refresh_task_runs_in_process_without_a_broker(db):
    client = ClientFactory()
    PurchaseFactory(client=client, purchased_on=date(2026, 1, 2))
    assert Client.objects.get(pk=client.pk).last_purchase_at is None
    refresh_client_activity_task.apply(kwargs={"client_ids": [client.pk]})
    client.refresh_from_db()
    assert client.last_purchase_at == date(2026, 1, 2)


def test_follow_up_close_twice_keeps_first_completion(rep_client, rep):
    follow_up = services.follow_up_plan(
        client=rep_client, assignee=rep, due_at=timezone.now(), title="Call back", created_by=rep
    )
    services.follow_up_close(follow_up=follow_up)
    first = follow_up.completed_at
    services.follow_up_close(follow_up=follow_up, status="cancelled")
    follow_up.refresh_from_db()
    assert follow_up.status == "done" and follow_up.completed_at == first
