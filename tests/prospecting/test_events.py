"""Events and webinars as sources: registrations entered or imported become prospects with the event as source,
known clients are matched by email rather than duplicated, and each registration is an "event" interaction."""

from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from crm.models import Client, Direction, Interaction, InteractionKind, Lifecycle, Source
from prospecting import events as services
from prospecting.models import Event, EventRegistration
from tests.factories import ClientFactory


@pytest.fixture
def webinar(manager):
    return Event.objects.create(name="CRM webinar", kind="webinar", held_on=timezone.localdate(), created_by=manager)


@pytest.fixture
def fair(manager):
    return Event.objects.create(name="Lyon trade fair", kind="event", held_on=date(2026, 10, 2), created_by=manager)


def upload(text: str, name="registrations.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")


def test_a_new_registrant_becomes_a_prospect_with_the_event_as_source(webinar, manager):
    registration, outcome = services.event_register(
        event=webinar,
        registrant=services.Registrant(name="Jean-Pierre de la Tour", email=" JP@Example.com ", company="Tour SA"),
        user=manager,
    )

    client = registration.client
    assert outcome == "created" and registration.created_prospect
    assert (client.first_name, client.last_name, client.email, client.company) == (
        "Jean-Pierre",
        "de la Tour",
        "jp@example.com",
        "Tour SA",
    )
    assert (client.lifecycle, client.source, client.source_detail, client.owner) == (
        Lifecycle.PROSPECT,
        Source.WEBINAR,
        "CRM webinar",
        manager,
    )
    interaction = Interaction.objects.get(client=client)
    assert (interaction.kind, interaction.direction) == (InteractionKind.EVENT, Direction.INBOUND)
    assert "CRM webinar" in interaction.subject


def test_a_known_client_is_matched_by_email_not_duplicated(fair, manager, other_rep):
    known = ClientFactory(email="ann@example.com", source=Source.REFERRAL, owner=other_rep, lifecycle=Lifecycle.CLIENT)

    registration, outcome = services.event_register(
        event=fair, registrant=services.Registrant(name="Ann M.", email="ANN@example.com"), user=manager
    )

    assert outcome == "matched" and registration.client == known
    assert Client.objects.count() == 1
    known.refresh_from_db()
    assert (known.source, known.owner, known.lifecycle) == (Source.REFERRAL, other_rep, Lifecycle.CLIENT)
    interaction = Interaction.objects.get(client=known)
    assert interaction.kind == InteractionKind.EVENT and "Lyon trade fair" in interaction.subject
    # People met at an event already held are entered afterwards: the interaction is dated on the event's day.
    assert timezone.localtime(interaction.occurred_at).date() == date(2026, 10, 2)


def test_registering_twice_logs_once(webinar, manager):
    registrant = services.Registrant(name="Ann Martin", email="ann@example.com")
    services.event_register(event=webinar, registrant=registrant, user=manager)

    _registration, outcome = services.event_register(event=webinar, registrant=registrant, user=manager)

    assert outcome == "already"
    assert EventRegistration.objects.count() == 1 and Interaction.objects.count() == 1


def test_a_networking_event_gives_the_networking_source_and_its_owner(fair, manager, rep):
    fair.owner = rep
    fair.save()

    registration, _ = services.event_register(
        event=fair, registrant=services.Registrant(name="Bob", email="bob@example.com"), user=manager
    )

    assert (registration.client.source, registration.client.owner) == (Source.NETWORKING, rep)


def test_a_csv_import_matches_known_clients_and_reports_bad_lines(client_as, manager, webinar):
    known = ClientFactory(email="known@example.com")
    csv_text = (
        "Nom;E-mail;Société\n"
        "Ann Martin;ann@example.com;ACME\n"
        "Known Person;KNOWN@example.com;Old Co\n"
        ";not-an-email;Nowhere\n"
        "\n"
        "Ann again;ann@example.com;ACME\n"
    )

    response = client_as(manager).post(
        reverse("prospecting:event-import", args=[webinar.pk]), {"file": upload(csv_text)}, follow=True
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "2 registrations imported: 1 new prospects, 1 known clients, 1 already registered." in html
    assert 'id="import-errors"' in html and "line 4" in html
    assert Client.objects.count() == 2
    assert set(webinar.registrations.values_list("client__email", flat=True)) == {"ann@example.com", known.email}
    assert Client.objects.get(email="ann@example.com").source == Source.WEBINAR


def test_an_import_without_an_email_column_is_refused(client_as, manager, webinar):
    response = client_as(manager).post(
        reverse("prospecting:event-import", args=[webinar.pk]), {"file": upload("name,company\nAnn,ACME\n")}
    )

    assert "among them an email column" in response.content.decode()
    assert not EventRegistration.objects.exists()


def test_the_reader_takes_commas_and_a_utf8_bom():
    rows, errors = services.read_registrants("\ufeffname,email,company\nÉlise Durand,elise@example.com,Café\n".encode())

    assert errors == []
    assert rows == [(2, services.Registrant(name="Élise Durand", email="elise@example.com", company="Café"))]


def test_a_manager_enters_a_registration_in_the_form(client_as, manager, webinar):
    response = client_as(manager).post(
        reverse("prospecting:event-register", args=[webinar.pk]),
        {"name": "Chloé Petit", "email": "chloe@example.com", "company": ""},
        follow=True,
    )

    assert "Chloé Petit was added as a new prospect." in response.content.decode()
    assert webinar.registrations.get().client.email == "chloe@example.com"


def test_a_manager_creates_an_event(client_as, manager):
    response = client_as(manager).post(
        reverse("prospecting:event-create"),
        {"name": "Salon", "kind": "event", "held_on": (timezone.localdate() + timedelta(days=9)).isoformat()},
    )

    event = Event.objects.get()
    assert response.url == event.get_absolute_url() and event.created_by == manager


def test_a_rep_sees_events_but_cannot_register_or_import(client_as, rep, webinar):
    browser = client_as(rep)

    assert browser.get(reverse("prospecting:event-list")).status_code == 200
    html = browser.get(webinar.get_absolute_url()).content.decode()
    assert reverse("prospecting:event-import", args=[webinar.pk]) not in html
    assert (
        browser.post(
            reverse("prospecting:event-register", args=[webinar.pk]), {"name": "X", "email": "x@example.com"}
        ).status_code
        == 403
    )
    assert (
        browser.post(
            reverse("prospecting:event-import", args=[webinar.pk]), {"file": upload("email\nx@example.com\n")}
        ).status_code
        == 403
    )
    assert browser.post(reverse("prospecting:event-create"), {"name": "Mine"}).status_code == 403
    assert not Client.objects.exists()
