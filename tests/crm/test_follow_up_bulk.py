"""Planning a follow-up for every client of a list selection or a segment."""

from datetime import timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from crm import reminders
from crm.models import FollowUp, FollowUpOrigin
from crm.views import followups
from tests.factories import ClientFactory, SegmentFactory

URL = reverse("crm:follow-up-bulk")
DUE = "2026-12-01T09:30"


@pytest.fixture
def lyon_clients(rep, other_rep):
    mine = [ClientFactory(owner=rep, city="Lyon") for _ in range(3)]
    ClientFactory(owner=rep, city="Paris")
    ClientFactory(owner=other_rep, city="Lyon")
    return mine


def _plan(browser, **data):
    return browser.post(URL, {"title": "Invite to the spring event", "due_at": DUE, "assign_to": "owner", **data})


def test_a_rep_plans_a_follow_up_for_his_clients_of_the_filtered_list(client_as, rep, lyon_clients):
    response = _plan(client_as(rep), filters="city=Lyon")

    assert response.status_code == 302
    assert response.url == f"{reverse('crm:client-list')}?city=Lyon"
    planned = FollowUp.objects.all()
    assert {follow_up.client_id for follow_up in planned} == {client.pk for client in lyon_clients}
    assert {follow_up.assignee_id for follow_up in planned} == {rep.pk}
    assert all(follow_up.title == "Invite to the spring event" for follow_up in planned)
    assert all(follow_up.origin == FollowUpOrigin.MANUAL and follow_up.created_by == rep for follow_up in planned)


def test_the_page_says_how_many_follow_ups_it_will_plan(client_as, rep, lyon_clients):
    page = client_as(rep).get(URL, {"city": "Lyon"}).content.decode()
    assert "Plan it for 3 clients" in page
    assert "City: Lyon" in page
    assert "<html" in page


def test_htmx_gets_the_form_alone_for_the_current_filters(client_as, rep, lyon_clients):
    response = client_as(rep).get(URL, {"city": "Paris", "sort": "name"}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert "<html" not in page
    assert "Plan it for 1 client" in page
    assert 'name="filters" value="city=Paris"' in page


def test_a_manager_plans_for_a_segment_and_each_owner_gets_his_own(client_as, manager, rep, other_rep):
    segment = SegmentFactory(filters={"lifecycle": "client"})
    alices = ClientFactory(owner=rep, lifecycle="client")
    bobs = ClientFactory(owner=other_rep, lifecycle="client")
    nobodys = ClientFactory(owner=None, lifecycle="client")
    ClientFactory(owner=rep, lifecycle="prospect")

    response = _plan(client_as(manager), segment=segment.pk)

    assert response.status_code == 302 and response.url == segment.get_absolute_url()
    assignees = dict(FollowUp.objects.values_list("client_id", "assignee_id"))
    assert assignees == {alices.pk: rep.pk, bobs.pk: other_rep.pk, nobodys.pk: manager.pk}


def test_follow_ups_can_all_go_to_the_one_planning_them(client_as, manager, rep, lyon_clients):
    _plan(client_as(manager), filters="city=Lyon", assign_to="me")
    assert set(FollowUp.objects.values_list("assignee_id", flat=True)) == {manager.pk}
    assert FollowUp.objects.count() == 4


def test_the_segment_page_and_the_client_list_offer_it(client_as, manager):
    segment = SegmentFactory()
    browser = client_as(manager)
    assert f"{URL}?segment={segment.pk}" in browser.get(segment.get_absolute_url()).content.decode()
    assert 'hx-include="#client-filters"' in browser.get(reverse("crm:client-list")).content.decode()


def test_nothing_is_planned_when_no_client_may_be_planned_for(client_as, rep, other_rep):
    ClientFactory(owner=other_rep, city="Lyon")
    response = _plan(client_as(rep), filters="city=Lyon")
    assert response.status_code == 200
    assert "None of these clients" in response.content.decode()
    assert not FollowUp.objects.exists()


def test_a_selection_too_large_is_refused(client_as, rep, lyon_clients, monkeypatch):
    monkeypatch.setattr(followups, "MAX_BULK_FOLLOW_UPS", 2)
    response = _plan(client_as(rep), filters="city=Lyon")
    assert "narrow them to 2 at most" in response.content.decode()
    assert not FollowUp.objects.exists()


def test_invalid_filters_plan_nothing(client_as, manager, lyon_clients):
    response = _plan(client_as(manager), filters="idle_days=-3")
    assert "Some filters are invalid" in response.content.decode()
    assert not FollowUp.objects.exists()


def test_a_missing_title_is_asked_for(client_as, rep, lyon_clients):
    response = client_as(rep).post(URL, {"due_at": DUE, "assign_to": "owner", "filters": "city=Lyon"})
    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert not FollowUp.objects.exists()


def test_follow_ups_planned_in_bulk_are_each_reminded_once(client_as, rep, lyon_clients):
    due = timezone.localtime() - timedelta(minutes=1)
    _plan(client_as(rep), filters="city=Lyon", due_at=due.strftime("%Y-%m-%dT%H:%M"))
    reminders.reminders_send_due()
    reminders.reminders_send_due()
    assert len(mail.outbox) == 3
