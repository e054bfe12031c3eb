"""Cross-cutting security: CSRF on every form, escaped output, login required everywhere."""

import pytest
from django.test import Client as BrowserClient
from django.urls import reverse

from crm import services
from crm.models import Interaction
from tests.factories import ClientFactory

SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def csrf_client():
    return BrowserClient(enforce_csrf_checks=True)


def test_post_without_csrf_token_is_refused_and_changes_nothing(csrf_client, rep, rep_client):
    csrf_client.force_login(rep)
    url = reverse("crm:interaction-create", args=[rep_client.pk])
    response = csrf_client.post(url, {"kind": "call", "direction": "outbound", "subject": "Forged"})
    assert response.status_code == 403
    assert not Interaction.objects.filter(client=rep_client).exists()


def test_post_with_the_pages_csrf_token_goes_through(csrf_client, rep, rep_client):
    csrf_client.force_login(rep)
    card = csrf_client.get(reverse("crm:client-detail", args=[rep_client.pk]))
    token = card.cookies["csrftoken"].value
    response = csrf_client.post(
        reverse("crm:interaction-create", args=[rep_client.pk]),
        {"kind": "call", "direction": "outbound", "subject": "Real call", "occurred_at": "2026-11-20T10:00"},
        HTTP_X_CSRFTOKEN=token,
    )
    assert response.status_code in (200, 302)
    assert Interaction.objects.filter(client=rep_client, subject="Real call").exists()


@pytest.mark.parametrize("page", ["crm:client-list", "crm:client-detail", "crm:home"])
def test_html_in_names_is_shown_escaped(client, rep, page):
    hostile = ClientFactory(owner=rep, first_name=SCRIPT, last_name="Martin", company=SCRIPT)

    services.interaction_log(client=hostile, user=rep, kind="call", subject=SCRIPT)
    client.force_login(rep)
    url = reverse(page, args=[hostile.pk]) if page == "crm:client-detail" else reverse(page)
    html = client.get(url).content.decode()
    assert "&lt;script&gt;alert(" in html
    assert SCRIPT not in html


def test_login_page_is_the_only_page_for_anonymous_visitors(client):
    assert client.get(reverse("login")).status_code == 200
    response = client.get(reverse("crm:client-list"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
