"""A rep's day in headless Chromium: log in, find a client, log a call, plan a follow-up, see both on the card."""

import pytest

from crm.models import FollowUp, Interaction
from tests.factories import ClientFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups_restored"),
]

PASSWORD = "correct horse battery staple"


def test_rep_logs_a_call_and_plans_a_follow_up_from_the_card(page, rep):
    client = ClientFactory(owner=rep, first_name="Hélène", last_name="Rivière", company="Atelier Rivière")
    ClientFactory(owner=rep, first_name="Paul", last_name="Other", company="Elsewhere")

    page.goto("/")
    page.fill("#id_username", rep.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    page.fill("input[name=q]", "Rivière")
    page.press("input[name=q]", "Enter")
    page.get_by_role("link", name="Hélène Rivière").first.click()
    page.wait_for_url(f"**/clients/{client.pk}/")

    page.select_option("#interaction-form select[name=kind]", "call")
    page.fill("#interaction-form input[name=subject]", "Discussed the spring order")
    page.click("#interaction-form button[type=submit]")
    page.locator("#timeline").get_by_text("Discussed the spring order").wait_for()

    page.fill("#follow-up-form input[name=title]", "Send the spring quote")
    page.fill("#follow-up-form input[name=due_at]", "2030-04-02T09:30")
    page.click("#follow-up-form button[type=submit]")
    page.locator("#timeline").get_by_text("Send the spring quote").wait_for()

    page.reload()
    timeline = page.locator("#timeline")
    assert timeline.get_by_text("Discussed the spring order").is_visible()
    assert timeline.get_by_text("Send the spring quote").is_visible()
    assert Interaction.objects.filter(client=client, kind="call", user=rep).count() == 1
    follow_up = FollowUp.objects.get(client=client)
    assert follow_up.assignee == rep and follow_up.title == "Send the spring quote"
