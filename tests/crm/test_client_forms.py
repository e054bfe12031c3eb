"""Creating and editing clients: ownership, the likely-duplicate warning, and the history written on each change."""

import pytest
from django.urls import reverse

from crm import services
from crm.models import Client, ClientChange
from tests.factories import ClientFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def _form_data(**overrides) -> dict:
    data = {
        "first_name": "Jean",
        "last_name": "Dupont",
        "email": "jean.dupont@example.com",
        "company": "Dupont SARL",
        "lifecycle": "prospect",
        "stage": "new",
        "tier": "C",
        "source": "networking",
    }
    data.update(overrides)
    return {name: value for name, value in data.items() if value is not None}


def _edit_data(client: Client, **overrides) -> dict:
    current = {
        "first_name": client.first_name,
        "last_name": client.last_name,
        "email": client.email,
        "company": client.company,
        "city": client.city,
        "country": client.country,
        "lifecycle": client.lifecycle,
        "stage": client.stage,
        "tier": client.tier,
        "source": client.source,
    }
    if client.owner_id:
        current["owner"] = client.owner_id
    return _form_data(**{**current, **overrides})


# Creating


def test_rep_creates_a_client_he_owns_with_a_creation_line_in_its_history(client_as, rep):
    response = client_as(rep).post(reverse("crm:client-create"), _form_data(email="Jean.Dupont@Example.com"))

    created = Client.objects.get(last_name="Dupont")
    assert response.status_code == 302 and response.url == created.get_absolute_url()
    assert created.owner == rep
    assert created.email == "jean.dupont@example.com"
    assert ClientChange.objects.filter(client=created, field=services.CREATED, user=rep).exists()


def test_rep_cannot_give_the_client_he_creates_to_someone_else(client_as, rep, other_rep):
    client_as(rep).post(reverse("crm:client-create"), _form_data(owner=other_rep.pk))
    assert Client.objects.get(last_name="Dupont").owner == rep


def test_owner_field_is_shown_to_managers_only(client_as, rep, manager):
    assert 'name="owner"' not in client_as(rep).get(reverse("crm:client-create")).content.decode()
    assert 'name="owner"' in client_as(manager).get(reverse("crm:client-create")).content.decode()


def test_manager_creates_a_client_for_a_rep(client_as, manager, rep):
    client_as(manager).post(reverse("crm:client-create"), _form_data(owner=rep.pk))
    assert Client.objects.get(last_name="Dupont").owner == rep


def test_a_client_needs_at_least_a_name_an_email_or_a_company(client_as, rep):
    response = client_as(rep).post(
        reverse("crm:client-create"), _form_data(first_name="", last_name="", email="", company="")
    )
    assert response.status_code == 200
    assert "Give at least a name, an email or a company." in response.content.decode()
    assert not Client.objects.exists()


def test_a_linkedin_field_must_hold_a_linkedin_address(client_as, rep):
    response = client_as(rep).post(reverse("crm:client-create"), _form_data(linkedin_url="javascript:alert(1)"))
    assert response.status_code == 200
    assert "Enter a LinkedIn address" in response.content.decode()
    assert not Client.objects.exists()


# Likely duplicates


def test_duplicate_email_in_another_case_is_refused_until_confirmed(client_as, rep, rep_client):
    browser = client_as(rep)

    refused = browser.post(reverse("crm:client-create"), _form_data(email="  ANN@Example.COM "))
    assert refused.status_code == 200
    html = refused.content.decode()
    assert "Likely duplicate" in html
    assert f'href="{rep_client.get_absolute_url()}"' in html
    assert Client.objects.count() == 1

    accepted = browser.post(reverse("crm:client-create"), _form_data(email="ann@example.com", create_anyway="on"))
    assert accepted.status_code == 302
    assert Client.objects.filter(email="ann@example.com").count() == 2


@pytest.mark.parametrize(
    "typed",
    [
        "https://www.linkedin.com/in/jean-dupont",
        "linkedin.com/in/Jean-Dupont/",
        "http://fr.linkedin.com/in/jean-dupont?trk=profile",
    ],
)
def test_duplicate_linkedin_profile_is_found_whatever_the_spelling(client_as, rep, typed):
    existing = services.client_create(
        data={"first_name": "Jean", "linkedin_url": "https://LinkedIn.com/in/jean-dupont/"}, user=rep
    )

    response = client_as(rep).post(reverse("crm:client-create"), _form_data(email="", linkedin_url=typed))

    assert "Likely duplicate" in response.content.decode()
    assert Client.objects.filter(pk=existing.pk).count() == Client.objects.count() == 1


def test_duplicates_partial_lists_matching_clients_while_typing(client_as, rep, rep_client):
    response = client_as(rep).get(reverse("crm:client-duplicates"), {"email": "Ann@example.com", "exclude": ""}, **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert "Ann Martin" in html and 'name="create_anyway"' in html
    assert "<html" not in html


def test_duplicates_partial_is_empty_without_a_match_or_for_the_client_itself(client_as, rep, rep_client):
    browser = client_as(rep)
    url = reverse("crm:client-duplicates")

    assert "Likely duplicate" not in browser.get(url, {"email": "nobody@example.com"}).content.decode()
    itself = browser.get(url, {"email": "ann@example.com", "exclude": rep_client.pk}).content.decode()
    assert "Likely duplicate" not in itself


def test_clients_the_user_cannot_open_are_counted_but_not_listed(client_as, settings, rep, other_client):
    settings.CRM_REPS_SEE_ONLY_OWN_CLIENTS = True

    html = client_as(rep).get(reverse("crm:client-duplicates"), {"email": "yves@example.com"}).content.decode()

    assert "Yves" not in html
    assert "and 1 other matching client" in html


# Editing


def test_edit_records_one_history_line_per_changed_field_and_shows_it_on_the_card(client_as, rep, rep_client):
    browser = client_as(rep)

    response = browser.post(
        reverse("crm:client-edit", args=[rep_client.pk]), _edit_data(rep_client, company="Martin & Fils", city="Paris")
    )

    assert response.status_code == 302
    changes = ClientChange.objects.filter(client=rep_client, user=rep)
    assert {(c.field, c.new_value) for c in changes} == {("company", "Martin & Fils"), ("city", "Paris")}
    card = browser.get(rep_client.get_absolute_url()).content.decode()
    assert "Company changed" in card and "Martin &amp; Fils" in card


def test_saving_an_unchanged_form_writes_no_history(client_as, rep, rep_client):
    client_as(rep).post(reverse("crm:client-edit", args=[rep_client.pk]), _edit_data(rep_client))
    assert not ClientChange.objects.filter(client=rep_client).exists()


def test_rep_cannot_edit_another_reps_client(client_as, rep, other_client):
    browser = client_as(rep)
    url = reverse("crm:client-edit", args=[other_client.pk])

    assert browser.get(url).status_code == 403
    assert browser.post(url, _edit_data(other_client, company="Hijacked", owner=rep.pk)).status_code == 403

    other_client.refresh_from_db()
    assert other_client.company != "Hijacked" and other_client.owner.username == "bob"
    assert not ClientChange.objects.exists()


def test_rep_cannot_change_the_owner_of_his_own_client(client_as, rep, other_rep, rep_client):
    response = client_as(rep).post(
        reverse("crm:client-edit", args=[rep_client.pk]), _edit_data(rep_client, owner=other_rep.pk, city="Paris")
    )

    assert response.status_code == 302
    rep_client.refresh_from_db()
    assert rep_client.owner == rep and rep_client.city == "Paris"
    assert not ClientChange.objects.filter(field="owner").exists()


def test_manager_reassigns_a_client_with_a_history_line(client_as, manager, rep, other_rep, rep_client):
    client_as(manager).post(
        reverse("crm:client-edit", args=[rep_client.pk]), _edit_data(rep_client, owner=other_rep.pk)
    )

    rep_client.refresh_from_db()
    assert rep_client.owner == other_rep
    change = ClientChange.objects.get(client=rep_client, field="owner")
    assert (change.old_value, change.new_value, change.user) == ("alice", "bob", manager)


def test_editing_the_email_to_another_clients_warns_of_a_duplicate(client_as, rep, rep_client):
    ClientFactory(email="taken@example.com")

    response = client_as(rep).post(
        reverse("crm:client-edit", args=[rep_client.pk]), _edit_data(rep_client, email="Taken@example.com")
    )

    assert response.status_code == 200 and "Likely duplicate" in response.content.decode()
    rep_client.refresh_from_db()
    assert rep_client.email == "ann@example.com"


def test_editing_other_fields_of_a_client_with_a_duplicate_email_needs_no_confirmation(client_as, rep, rep_client):
    ClientFactory(email=rep_client.email)

    response = client_as(rep).post(
        reverse("crm:client-edit", args=[rep_client.pk]), _edit_data(rep_client, city="Nice")
    )

    assert response.status_code == 302
