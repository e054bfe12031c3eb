"""A manager in headless Chromium sets the tier of a selection too large for the request: the action's page says
it applies to the clients matching now, polls while it waits for the worker, then shows the count and Undo; the undo
goes through the worker the same way."""

import pytest

from crm import bulk, tasks
from crm.models import BulkAction, Client
from tests.factories import ClientFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups_restored"),
]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def held_messages(monkeypatch):
    """The tasks are not sent: the test plays the worker, so that the page is seen waiting for it."""
    sent = []
    for task in (tasks.bulk_action_apply_task, tasks.bulk_action_undo_task):
        monkeypatch.setattr(task, "apply_async", lambda args=None, _task=task, **options: sent.append((_task, args)))
    return sent


def test_a_large_selection_is_applied_then_undone_by_the_worker_while_the_page_polls(
    page, manager, settings, held_messages
):
    settings.CRM_BULK_INLINE_MAX = 2
    for name in ("Alpha", "Bravo", "Charlie"):
        ClientFactory(last_name=name, tier="C", city="Lyon")

    page.goto("/")
    page.fill("#id_username", manager.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.goto("/clients/?city=Lyon")
    page.get_by_role("button", name="Bulk actions").click()
    page.get_by_role("link", name="Set the tier").click()
    page.get_by_text("A background worker applies it to the 3 clients matching now").wait_for()
    page.select_option("#bulk-action-form select[name=tier]", "A")
    page.locator("#bulk-action-form").get_by_role("button", name="Apply").click()

    page.get_by_text("Applies to the 3 clients that matched when it was submitted").wait_for()
    assert page.locator("#bulk-action-status").inner_text() == "Queued"
    assert set(Client.objects.values_list("tier", flat=True)) == {"C"}

    ((task, args),) = held_messages
    assert task is tasks.bulk_action_apply_task
    bulk.bulk_action_run(action_id=args[0])  # the worker
    page.get_by_text("3 clients touched.").wait_for()  # the polled partial, without reloading
    assert set(Client.objects.values_list("tier", flat=True)) == {"A"}

    page.locator("#bulk-action-progress").get_by_role("button", name="Undo").click()
    page.get_by_text("The undo runs in the background").wait_for()
    assert page.locator("#bulk-action-status").inner_text() == "Undo queued"
    bulk.bulk_action_undo_run(action_id=held_messages[1][1][0])
    page.get_by_text("3 clients restored.").wait_for()
    assert set(Client.objects.values_list("tier", flat=True)) == {"C"}
    assert BulkAction.objects.get().status == "undone"
