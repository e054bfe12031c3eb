"""The row-based bulk writes of large imports: plain values in (no model instance per row), COPY on PostgreSQL,
history kept, each client rewritten only when something of it changes. Run on SQLite and on PostgreSQL."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm import services
from crm.models import Client, ClientChange, Interaction, Lifecycle, Segment, Stage
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db


def test_client_bulk_insert_returns_the_ids_in_order_with_defaults_and_history(admin_member):
    ids = services.client_bulk_insert(
        rows=[
            {"first_name": "Ann", "last_name": "Lee", "email": " Ann@X.COM "},
            {"email": "bob@x.com", "linkedin_url": "linkedin.com/in/Bob-B/"},
            {"company": "Nameless"},
        ],
        user=admin_member,
    )
    clients = [Client.objects.get(pk=pk) for pk in ids]
    assert [client.email for client in clients] == ["ann@x.com", "bob@x.com", ""]
    assert clients[1].linkedin_url == "https://www.linkedin.com/in/bob-b"
    assert (clients[0].lifecycle, clients[0].stage, clients[0].marketing_consent) == (
        Lifecycle.PROSPECT,
        Stage.NEW,
        False,
    )
    assert clients[0].created_at is not None and clients[0].updated_at is not None
    history = {change.client_id: change for change in ClientChange.objects.filter(client_id__in=ids)}
    assert [history[pk].new_value for pk in ids] == ["Ann Lee", "bob@x.com", f"#{ids[2]}"]
    assert {(change.field, change.user_id) for change in history.values()} == {(services.CREATED, admin_member.pk)}


def test_bulk_rows_keep_tabs_newlines_backslashes_and_json_exactly():
    text = "a\\b\tc\nd\re \\N é"
    [pk] = services.client_bulk_insert(rows=[{"email": "zed@x.com", "notes": text, "city": "\\N"}], user=None)
    client = Client.objects.get(pk=pk)
    assert (client.notes, client.city, client.birth_year) == (text, "\\N", None)
    filters = {"q": "x\ty\\z", "tags": [1, "é"], "none": None}
    [segment_id] = services.rows_bulk_insert(model=Segment, rows=[{"name": "Odd\tname", "filters": filters}])
    segment = Segment.objects.get(pk=segment_id)
    assert (segment.name, segment.filters, segment.description) == ("Odd\tname", filters, "")


def test_client_bulk_change_writes_only_the_clients_that_change_with_one_history_row_per_field(admin_member):
    long_ago = timezone.now() - timedelta(days=30)
    changed = ClientFactory(email="ann@x.com", city="", company="Acme", phone="")
    untouched = ClientFactory(email="bob@x.com", last_interaction_at=timezone.now())
    Client.objects.filter(pk__in=[changed.pk, untouched.pk]).update(updated_at=long_ago)
    written = services.client_bulk_change(
        changes={changed.pk: {"city": ("", "Lyon"), "email": ("ann@x.com", "ANN@y.com")}, untouched.pk: {}},
        last_interaction_at={untouched.pk: long_ago},
        user=admin_member,
    )
    changed.refresh_from_db()
    untouched.refresh_from_db()
    assert written == 1
    assert (changed.city, changed.email, changed.company, changed.phone) == ("Lyon", "ann@y.com", "Acme", "")
    assert changed.updated_at > long_ago and untouched.updated_at == long_ago
    history = ClientChange.objects.filter(client=changed).values_list("field", "old_value", "new_value", "user")
    assert sorted(history) == [
        ("city", "", "Lyon", admin_member.pk),
        ("email", "ann@x.com", "ann@y.com", admin_member.pk),
    ]
    assert not ClientChange.objects.filter(client=untouched).exists()


def test_client_bulk_change_moves_last_interaction_dates_forward_never_back():
    now = timezone.now()
    recent = ClientFactory(email="recent@x.com", last_interaction_at=now)
    old = ClientFactory(email="old@x.com", last_interaction_at=now - timedelta(days=400))
    never = ClientFactory(email="never@x.com", last_interaction_at=None)
    Client.objects.filter(pk__in=[recent.pk, old.pk, never.pk]).update(updated_at=now - timedelta(days=1))
    earlier = now - timedelta(days=10)
    written = services.client_bulk_change(
        changes={}, last_interaction_at={recent.pk: earlier, old.pk: earlier, never.pk: earlier}, user=None
    )
    for client in (recent, old, never):
        client.refresh_from_db()
    assert written == 2
    assert (recent.last_interaction_at, old.last_interaction_at, never.last_interaction_at) == (now, earlier, earlier)
    # Moving a date is not an edit: no history, and the edit time stays.
    assert not ClientChange.objects.filter(client__in=[recent, old, never]).exists()
    assert old.updated_at == now - timedelta(days=1)


def test_interaction_bulk_insert_returns_the_ids_and_moves_dates_forward_only():
    now = timezone.now()
    recent = ClientFactory(email="recent@x.com", last_interaction_at=now)
    stale = ClientFactory(email="stale@x.com", last_interaction_at=now - timedelta(days=400))
    ids = services.interaction_bulk_insert(
        rows=[
            {"client_id": recent.pk, "kind": "linkedin", "occurred_at": now - timedelta(days=5), "external_key": "k1"},
            {"client_id": stale.pk, "kind": "email", "occurred_at": now - timedelta(days=9), "subject": "Hi\tthere"},
            {"client_id": stale.pk, "kind": "email", "occurred_at": now - timedelta(days=7)},
        ]
    )
    assert len(ids) == 3 and list(
        Interaction.objects.filter(pk__in=ids).order_by("pk").values_list("pk", flat=True)
    ) == sorted(ids)
    first = Interaction.objects.get(pk=ids[0])
    assert (first.client_id, first.external_key, first.direction) == (recent.pk, "k1", "outbound")
    assert Interaction.objects.get(pk=ids[1]).subject == "Hi\tthere"
    recent.refresh_from_db()
    stale.refresh_from_db()
    assert recent.last_interaction_at == now and stale.last_interaction_at == now - timedelta(days=7)
