"""The home page: my follow-ups due today, my recently touched clients, the team's overdue counts for managers."""

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from crm.models import FollowUpStatus
from tests.factories import ClientFactory, FollowUpFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def _row_classes(html: str, follow_up_pk: int) -> str:
    match = re.search(rf'<li class="([^"]*)" id="follow-up-{follow_up_pk}"', html)
    assert match, f"follow-up {follow_up_pk} is not listed"
    return match.group(1)


def test_home_lists_my_follow_ups_due_today_and_highlights_the_overdue_ones(client_as, rep, other_rep, rep_client):
    now = timezone.now()
    overdue = FollowUpFactory(client=rep_client, assignee=rep, title="Overdue call", due_at=now - timedelta(days=2))
    end_of_today = timezone.localtime().replace(hour=23, minute=59, second=0)
    today = FollowUpFactory(client=rep_client, assignee=rep, title="Today call", due_at=end_of_today)
    FollowUpFactory(client=rep_client, assignee=rep, title="Next week call", due_at=now + timedelta(days=7))
    FollowUpFactory(client=rep_client, assignee=other_rep, title="Bob's call", due_at=now)
    FollowUpFactory(client=rep_client, assignee=rep, title="Closed call", due_at=now, status=FollowUpStatus.DONE)

    html = client_as(rep).get(reverse("crm:home")).content.decode()

    assert "Overdue call" in html and "Today call" in html
    assert "Next week call" not in html and "Bob&#x27;s call" not in html and "Closed call" not in html
    assert "list-group-item-danger" in _row_classes(html, overdue.pk)
    if today.is_overdue:  # only at the last minute of the day
        return
    assert "list-group-item-danger" not in _row_classes(html, today.pk)


def test_done_button_closes_the_follow_up_in_place(client_as, rep, rep_client):
    follow_up = FollowUpFactory(client=rep_client, assignee=rep, due_at=timezone.now())
    browser = client_as(rep)
    html = browser.get(reverse("crm:home")).content.decode()
    assert f'hx-post="{reverse("crm:follow-up-close", args=[follow_up.pk])}"' in html

    response = browser.post(
        reverse("crm:follow-up-close", args=[follow_up.pk]),
        {"status": "done"},
        HTTP_HX_TARGET=f"follow-up-{follow_up.pk}",
        **HTMX,
    )

    assert response.status_code == 200 and response.content == b""
    follow_up.refresh_from_db()
    assert follow_up.status == FollowUpStatus.DONE
    assert f'id="follow-up-{follow_up.pk}"' not in browser.get(reverse("crm:home")).content.decode()


def test_home_lists_my_ten_most_recently_touched_clients(client_as, rep, other_rep):
    now = timezone.now()
    for days in range(12):
        ClientFactory(owner=rep, last_name=f"Mine{days:02d}", last_interaction_at=now - timedelta(days=days))
    ClientFactory(owner=other_rep, last_name="NotMine", last_interaction_at=now)
    ClientFactory(owner=rep, last_name="NeverTouched")

    html = client_as(rep).get(reverse("crm:home")).content.decode()

    shown = re.findall(r"Mine(\d\d)", html)
    assert shown == [f"{days:02d}" for days in range(10)]
    assert "NotMine" not in html and "NeverTouched" not in html


def test_home_has_a_quick_search_to_the_client_list(client_as, rep):
    html = client_as(rep).get(reverse("crm:home")).content.decode()
    assert f'action="{reverse("crm:client-list")}" method="get"' in html and 'name="q"' in html


def test_managers_see_the_teams_overdue_follow_ups_per_person(client_as, manager, rep, other_rep, rep_client):
    past = timezone.now() - timedelta(hours=3)
    FollowUpFactory.create_batch(3, client=rep_client, assignee=rep, due_at=past)
    FollowUpFactory(client=rep_client, assignee=other_rep, due_at=past)
    FollowUpFactory(client=rep_client, assignee=other_rep, due_at=past, status=FollowUpStatus.DONE)

    html = client_as(manager).get(reverse("crm:home")).content.decode()

    assert re.search(r"<td>alice</td>\s*<td class=\"text-end\">3</td>", html)
    assert re.search(r"<td>bob</td>\s*<td class=\"text-end\">1</td>", html)


def test_reps_do_not_see_the_teams_overdue_counts(client_as, rep):
    assert "Team: overdue follow-ups" not in client_as(rep).get(reverse("crm:home")).content.decode()


def test_home_is_closed_to_accounts_without_a_role(client_as, outsider):
    assert client_as(outsider).get(reverse("crm:home")).status_code == 403
