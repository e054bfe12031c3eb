"""Personas: everyone reads them, managers and admins write them and assign clients to them (with history)."""

import pytest
from django.urls import reverse

from crm import services
from crm.models import Client, ClientChange, Persona
from tests.factories import ClientFactory, PersonaFactory

PERSONA_DATA = {"name": "Camille", "bio": "Runs a design studio.", "goals": "Grow <b>fast</b>"}


def test_every_role_sees_the_personas_with_their_member_counts(client_as, rep):
    camille = PersonaFactory(name="Camille")
    PersonaFactory(name="Hugo")
    ClientFactory.create_batch(3, persona=camille)

    html = client_as(rep).get(reverse("crm:persona-list")).content.decode()

    assert "Camille" in html and "3 clients" in html
    assert "Hugo" in html and "0 clients" in html


def test_manager_creates_and_edits_a_persona(client_as, manager):
    browser = client_as(manager)

    created = browser.post(reverse("crm:persona-create"), PERSONA_DATA)
    persona = Persona.objects.get(name="Camille")
    assert created.status_code == 302 and created.url == persona.get_absolute_url()

    browser.post(reverse("crm:persona-edit", args=[persona.pk]), {**PERSONA_DATA, "obstacles": "No time"})
    persona.refresh_from_db()
    assert persona.obstacles == "No time"


def test_persona_needs_a_name(client_as, manager):
    response = client_as(manager).post(reverse("crm:persona-create"), {**PERSONA_DATA, "name": ""})
    assert response.status_code == 200 and not Persona.objects.exists()


@pytest.mark.parametrize("name", ["crm:persona-create", "crm:persona-edit", "crm:persona-assign"])
def test_rep_cannot_write_personas(client_as, rep, rep_client, name):
    persona = PersonaFactory(name="Hugo")
    args = [] if name == "crm:persona-create" else [persona.pk]
    data = {**PERSONA_DATA, "client_ids": str(rep_client.pk)}

    assert client_as(rep).post(reverse(name, args=args), data).status_code == 403

    assert list(Persona.objects.values_list("name", flat=True)) == ["Hugo"]
    rep_client.refresh_from_db()
    assert rep_client.persona is None


def test_persona_page_shows_the_portrait_and_links_members_to_their_cards(client_as, rep):
    persona = PersonaFactory(name="Camille", goals="Grow <b>fast</b>")
    member = ClientFactory(persona=persona, first_name="Ann", last_name="Martin")

    html = client_as(rep).get(persona.get_absolute_url()).content.decode()

    assert "Grow &lt;b&gt;fast&lt;/b&gt;" in html
    assert f'href="{member.get_absolute_url()}">Ann Martin<' in html
    assert "1 client fits this persona" in html
    assert 'name="client_ids"' not in html


def test_persona_page_lists_the_first_fifty_members_and_counts_them_all(client_as, manager):
    persona = PersonaFactory()
    ClientFactory.create_batch(52, persona=persona)

    html = client_as(manager).get(persona.get_absolute_url()).content.decode()

    assert html.count('<li class="list-group-item"><a href="/clients/') == 50
    assert "52 clients fit this persona" in html
    assert 'name="client_ids"' in html


def test_manager_assigns_clients_by_card_number_with_history(client_as, manager, rep_client, other_client):
    persona = PersonaFactory(name="Camille")
    browser = client_as(manager)

    response = browser.post(
        reverse("crm:persona-assign", args=[persona.pk]), {"client_ids": f"{rep_client.pk}, {other_client.pk}"}
    )

    assert response.status_code == 302
    assert set(persona.clients.all()) == {rep_client, other_client}
    change = ClientChange.objects.get(client=rep_client, field="persona")
    assert (change.old_value, change.new_value, change.user) == ("", "Camille", manager)
    assert "2 clients assigned to Camille." in browser.get(response.url).content.decode()


def test_manager_assigns_every_client_matching_a_search(client_as, manager):
    persona = PersonaFactory()
    ClientFactory(company="Studio Nord")
    ClientFactory(company="Studio Sud")
    ClientFactory(company="Garage Est")

    client_as(manager).post(reverse("crm:persona-assign", args=[persona.pk]), {"q": "studio"})

    assert set(persona.clients.values_list("company", flat=True)) == {"Studio Nord", "Studio Sud"}


def test_assigning_without_numbers_or_search_shows_an_error(client_as, manager, rep_client):
    persona = PersonaFactory()

    response = client_as(manager).post(reverse("crm:persona-assign", args=[persona.pk]), {"client_ids": "", "q": " "})

    assert response.status_code == 200
    assert "Give card numbers or a search." in response.content.decode()
    assert not persona.clients.exists()


def test_assign_service_moves_clients_in_batches_and_skips_those_already_assigned(monkeypatch, manager):
    monkeypatch.setattr(services, "PERSONA_ASSIGN_BATCH_SIZE", 2)
    hugo, camille = PersonaFactory(name="Hugo"), PersonaFactory(name="Camille")
    already = ClientFactory(persona=camille)
    moved = ClientFactory.create_batch(4, persona=hugo)

    assigned = services.persona_assign_clients(persona=camille, clients=Client.objects.all(), user=manager)

    assert assigned == 4
    assert Client.objects.filter(persona=camille).count() == 5
    assert not ClientChange.objects.filter(client=already).exists()
    assert set(ClientChange.objects.values_list("client_id", "old_value", "new_value")) == {
        (client.pk, "Hugo", "Camille") for client in moved
    }
