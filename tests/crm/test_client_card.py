"""The client card: what it shows, the forms that work in place on it, closing follow-ups, deleting a client."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm import services
from crm.models import Client, FollowUp, FollowUpStatus, Interaction
from tests.factories import (
    ClientFactory,
    FollowUpFactory,
    InteractionFactory,
    PersonaFactory,
    ProductFactory,
    PurchaseFactory,
)

HTMX = {"HTTP_HX_REQUEST": "true"}


def _card(client_id: int) -> str:
    return reverse("crm:client-detail", args=[client_id])


def _interaction(**overrides) -> dict:
    return {
        "kind": "call",
        "direction": "outbound",
        "occurred_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M"),
        "subject": "Discussed the renewal",
        "body": "",
        **overrides,
    }


def _follow_up(assignee, **overrides) -> dict:
    due = timezone.localtime() + timedelta(days=2)
    return {
        "title": "Send the proposal",
        "due_at": due.strftime("%Y-%m-%dT%H:%M"),
        "assignee": assignee.pk,
        **overrides,
    }


def test_card_shows_figures_computed_from_purchases(client_as, rep, rep_client):
    services.purchase_record(client=rep_client, purchased_on=date(2026, 1, 10), amount=Decimal("1000.00"))
    services.purchase_record(client=rep_client, purchased_on=date(2026, 3, 5), amount=Decimal("50.50"))

    html = client_as(rep).get(_card(rep_client.pk)).content.decode()

    assert 'id="figure-revenue">1,050.50<' in html
    assert 'id="figure-orders">2<' in html
    assert 'id="figure-basket">525.25<' in html


def test_card_shows_contact_links_and_preferences(client_as, rep):
    persona = PersonaFactory(name="Camille")
    client = services.client_create(
        data={
            "first_name": "Ann",
            "email": "ann@example.com",
            "phone": "+33 6 12 34 56 78",
            "linkedin_url": "linkedin.com/in/ann-martin",
            "persona": persona,
            "owner": rep,
        },
        user=rep,
    )

    html = client_as(rep).get(_card(client.pk)).content.decode()

    assert 'href="mailto:ann@example.com"' in html
    assert 'href="tel:+33 6 12 34 56 78"' in html
    assert 'href="https://www.linkedin.com/in/ann-martin" target="_blank" rel="noopener noreferrer"' in html
    assert f'href="{persona.get_absolute_url()}">Camille<' in html


def test_card_lists_purchases_with_their_lines(client_as, rep, rep_client):
    product = ProductFactory(name="Espresso machine")
    services.purchase_record(
        client=rep_client,
        purchased_on=date(2026, 2, 1),
        reference="ORD-42",
        lines=[{"product": product, "quantity": 2, "unit_price": Decimal("150.00")}],
    )

    html = client_as(rep).get(_card(rep_client.pk)).content.decode()

    assert "ORD-42" in html
    assert "2 × Espresso machine" in html


def test_html_in_a_client_name_is_shown_escaped_on_the_card(client_as, rep):
    hostile = ClientFactory(owner=rep, first_name="<b>Bold</b>", last_name="<img src=x onerror=alert(1)>")

    html = client_as(rep).get(_card(hostile.pk)).content.decode()

    assert "&lt;b&gt;Bold&lt;/b&gt;" in html
    assert "<img src=x" not in html


def test_card_of_a_client_outside_the_users_view_is_not_found(client_as, settings, rep, other_client):
    settings.CRM_REPS_SEE_ONLY_OWN_CLIENTS = True
    assert client_as(rep).get(_card(other_client.pk)).status_code == 404


def test_rep_sees_another_reps_card_without_the_forms(client_as, rep, other_client):
    html = client_as(rep).get(_card(other_client.pk)).content.decode()

    assert "Yves Durand" in html
    assert 'id="interaction-form"' not in html
    assert reverse("crm:client-edit", args=[other_client.pk]) not in html


def test_logging_an_interaction_with_htmx_returns_a_fresh_form_and_the_timeline(client_as, rep, rep_client):
    response = client_as(rep).post(
        reverse("crm:interaction-create", args=[rep_client.pk]),
        _interaction(subject="Called about the renewal"),
        **HTMX,
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="interaction-form"' in html
    assert 'id="timeline" aria-labelledby="timeline-title" hx-swap-oob="true"' in html
    assert "Called about the renewal" in html
    rep_client.refresh_from_db()
    assert rep_client.last_interaction_at is not None
    assert Interaction.objects.get(client=rep_client).user == rep


def test_logging_an_interaction_without_htmx_redirects_to_the_card_showing_it(client_as, rep, rep_client):
    browser = client_as(rep)
    response = browser.post(
        reverse("crm:interaction-create", args=[rep_client.pk]), _interaction(subject="Met at the fair")
    )

    assert response.status_code == 302 and response.url == _card(rep_client.pk)
    assert "Met at the fair" in browser.get(_card(rep_client.pk)).content.decode()
    rep_client.refresh_from_db()
    assert rep_client.last_interaction_at is not None


def test_invalid_interaction_shows_the_errors_and_logs_nothing(client_as, rep, rep_client):
    browser = client_as(rep)
    url = reverse("crm:interaction-create", args=[rep_client.pk])

    htmx_response = browser.post(url, _interaction(kind=""), **HTMX)
    plain_response = browser.post(url, _interaction(kind=""))

    for response in (htmx_response, plain_response):
        assert response.status_code == 200
        assert "This field is required." in response.content.decode()
    assert "<html" not in htmx_response.content.decode()
    assert "<html" in plain_response.content.decode()
    assert not Interaction.objects.exists()


def test_planned_follow_up_shows_on_the_timeline_and_on_the_assignees_home(client_as, rep, other_rep, rep_client):
    response = client_as(rep).post(
        reverse("crm:follow-up-create", args=[rep_client.pk]),
        _follow_up(other_rep, title="Send the catalogue", due_at=timezone.localtime().strftime("%Y-%m-%dT%H:%M")),
        **HTMX,
    )

    assert response.status_code == 200
    assert "Send the catalogue" in response.content.decode()
    follow_up = FollowUp.objects.get(client=rep_client)
    assert (follow_up.assignee, follow_up.created_by) == (other_rep, rep)
    assert "Send the catalogue" in client_as(other_rep).get(reverse("crm:home")).content.decode()


def test_follow_up_form_defaults_to_the_owner_as_assignee(client_as, manager, rep, rep_client):
    html = client_as(manager).get(_card(rep_client.pk)).content.decode()
    assert f'<option value="{rep.pk}" selected>' in html


@pytest.mark.parametrize("action", ["crm:interaction-create", "crm:follow-up-create"])
def test_rep_cannot_log_or_plan_on_another_reps_client(client_as, rep, other_rep, other_client, action):
    data = {**_interaction(), **_follow_up(rep)}
    response = client_as(rep).post(reverse(action, args=[other_client.pk]), data, **HTMX)

    assert response.status_code == 403
    assert not Interaction.objects.exists() and not FollowUp.objects.exists()
    other_client.refresh_from_db()
    assert other_client.last_interaction_at is None


def test_manager_can_log_on_any_client(client_as, manager, other_client):
    response = client_as(manager).post(reverse("crm:interaction-create", args=[other_client.pk]), _interaction())
    assert response.status_code == 302
    assert Interaction.objects.filter(client=other_client, user=manager).exists()


def test_timeline_merges_interactions_follow_ups_and_changes_newest_first(client_as, rep, rep_client):
    now = timezone.now()
    InteractionFactory(client=rep_client, subject="Oldest call", occurred_at=now - timedelta(days=3))
    FollowUpFactory(client=rep_client, assignee=rep, title="Middle follow-up", created_at=now - timedelta(days=2))
    services.client_update(client=rep_client, data={"company": "Newest Company"}, user=rep)

    html = client_as(rep).get(_card(rep_client.pk)).content.decode()
    timeline = html[html.index('id="timeline"') :]

    assert timeline.index("Newest Company") < timeline.index("Middle follow-up") < timeline.index("Oldest call")


def test_card_runs_a_bounded_number_of_queries(client_as, rep, rep_client, django_assert_max_num_queries):
    def add_history(count: int) -> None:
        for number in range(count):
            purchase = PurchaseFactory(client=rep_client)
            purchase.lines.create(product=ProductFactory(), quantity=1, unit_price=Decimal("10"))
            InteractionFactory(client=rep_client, user=rep)
            FollowUpFactory(client=rep_client, assignee=rep)
            services.client_update(client=rep_client, data={"job_title": f"Title {number}"}, user=rep)
            ClientFactory(referred_by=rep_client)
        rep_client.tags.create(name=f"tag-{count}")

    browser = client_as(rep)
    add_history(2)
    with CaptureQueriesContext(connection) as few:
        assert browser.get(_card(rep_client.pk)).status_code == 200
    add_history(8)
    with django_assert_max_num_queries(20), CaptureQueriesContext(connection) as many:
        assert browser.get(_card(rep_client.pk)).status_code == 200

    assert len(many) == len(few)


def test_history_row_is_shown_on_the_card_after_an_edit(client_as, manager, rep_client):
    browser = client_as(manager)
    services.client_update(client=rep_client, data={"lifecycle": "lost"}, user=manager)

    html = browser.get(_card(rep_client.pk)).content.decode()

    assert "Lifecycle changed" in html
    assert "Prospect" in html and "Lost" in html
    assert "martine" in html


# Closing follow-ups


@pytest.mark.parametrize("closer", ["assignee", "owner", "manager"])
def test_follow_up_can_be_closed_by_its_assignee_the_owner_and_managers(
    client_as, rep, other_rep, manager, rep_client, closer
):
    follow_up = FollowUpFactory(client=rep_client, assignee=other_rep)
    user = {"assignee": other_rep, "owner": rep, "manager": manager}[closer]

    response = client_as(user).post(reverse("crm:follow-up-close", args=[follow_up.pk]), {"status": "done"})

    assert response.status_code == 302
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUpStatus.DONE and follow_up.completed_at is not None


def test_rep_cannot_close_a_follow_up_of_another_reps_client(client_as, rep, other_rep, other_client):
    follow_up = FollowUpFactory(client=other_client, assignee=other_rep)

    response = client_as(rep).post(reverse("crm:follow-up-close", args=[follow_up.pk]), {"status": "done"}, **HTMX)

    assert response.status_code == 403
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUpStatus.OPEN


def test_follow_up_can_be_cancelled_from_the_timeline_in_place(client_as, rep, rep_client):
    follow_up = FollowUpFactory(client=rep_client, assignee=rep, title="Maybe call")

    response = client_as(rep).post(
        reverse("crm:follow-up-close", args=[follow_up.pk]), {"status": "cancelled"}, HTTP_HX_TARGET="timeline", **HTMX
    )

    assert response.status_code == 200
    assert 'id="timeline"' in response.content.decode()
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUpStatus.CANCELLED


def test_closing_a_follow_up_without_htmx_goes_back_to_the_page_it_came_from(client_as, rep, rep_client):
    follow_up = FollowUpFactory(client=rep_client, assignee=rep)
    url = reverse("crm:follow-up-close", args=[follow_up.pk])

    back = client_as(rep).post(url, {"next": _card(rep_client.pk)})
    elsewhere = client_as(rep).post(url, {"next": "https://evil.example.com/"})

    assert back.url == _card(rep_client.pk)
    assert elsewhere.url == reverse("crm:home")


# Deleting


def test_manager_deletes_a_client_after_a_confirmation_page(client_as, manager, rep_client):
    browser = client_as(manager)
    url = reverse("crm:client-delete", args=[rep_client.pk])

    confirmation = browser.get(url)
    assert confirmation.status_code == 200
    assert Client.objects.filter(pk=rep_client.pk).exists()

    response = browser.post(url)
    assert response.status_code == 302 and response.url == reverse("crm:client-list")
    assert not Client.objects.filter(pk=rep_client.pk).exists()


def test_rep_cannot_delete_even_his_own_client(client_as, rep, rep_client):
    browser = client_as(rep)
    url = reverse("crm:client-delete", args=[rep_client.pk])

    assert browser.get(url).status_code == 403
    assert browser.post(url).status_code == 403
    assert Client.objects.filter(pk=rep_client.pk).exists()
