"""The client's external id (its number in the shop or invoicing tool): unique when given, shown on the card, edited
in the form, found by the list search."""

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from crm.models import Client, ClientChange
from tests.crm.test_client_forms import _edit_data
from tests.factories import ClientFactory


def test_two_clients_cannot_share_a_non_empty_external_id(db):
    ClientFactory(external_id="C-001")
    with pytest.raises(IntegrityError), transaction.atomic():
        ClientFactory(external_id="C-001")
    assert Client.objects.filter(external_id="C-001").count() == 1


def test_many_clients_may_have_no_external_id(db):
    ClientFactory.create_batch(3, external_id="")
    assert Client.objects.filter(external_id="").count() == 3


def test_the_card_shows_the_external_id_escaped(client_as, rep, rep_client):
    Client.objects.filter(pk=rep_client.pk).update(external_id="<b>C-42</b>")
    content = client_as(rep).get(reverse("crm:client-detail", args=[rep_client.pk])).content.decode()
    assert "External id" in content
    assert '<dd class="col-8 text-break" id="client-external-id">&lt;b&gt;C-42&lt;/b&gt;</dd>' in content


def test_the_edit_form_sets_the_external_id_with_a_history_line(client_as, rep, rep_client):
    url = reverse("crm:client-edit", args=[rep_client.pk])
    assert 'name="external_id"' in client_as(rep).get(url).content.decode()
    response = client_as(rep).post(url, _edit_data(rep_client, external_id="  C-77 "))
    assert response.status_code == 302
    rep_client.refresh_from_db()
    assert rep_client.external_id == "C-77"
    assert ClientChange.objects.filter(client=rep_client, field="external_id", new_value="C-77").exists()


def test_the_edit_form_refuses_an_external_id_another_client_holds(client_as, rep, rep_client, other_client):
    Client.objects.filter(pk=other_client.pk).update(external_id="C-77")
    url = reverse("crm:client-edit", args=[rep_client.pk])
    response = client_as(rep).post(url, _edit_data(rep_client, external_id="C-77"))
    assert response.status_code == 200
    assert "Another client already has this external id." in response.content.decode()
    rep_client.refresh_from_db()
    assert rep_client.external_id == ""


def test_the_list_search_finds_a_client_by_its_exact_external_id(client_as, manager, rep_client, other_client):
    Client.objects.filter(pk=rep_client.pk).update(external_id="C-0042")
    Client.objects.filter(pk=other_client.pk).update(external_id="C-00420")
    content = client_as(manager).get(reverse("crm:client-list"), {"q": "C-0042"}).content.decode()
    assert rep_client.get_absolute_url() in content
    assert other_client.get_absolute_url() not in content
