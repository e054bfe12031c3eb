"""A manager in headless Chromium ticks two rows of the client list, sets their tier through the Bulk actions menu,
reads the count, then undoes it from the message."""

import pytest

from crm.models import Client
from tests.factories import ClientFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups_restored"),
]

PASSWORD = "correct horse battery staple"


def test_manager_sets_the_tier_of_ticked_rows_then_undoes_it(page, manager):
    ticked = [ClientFactory(last_name=name, tier="C", city="Lyon") for name in ("Alpha", "Bravo")]
    ClientFactory(last_name="Charlie", tier="C", city="Lyon")

    page.goto("/")
    page.fill("#id_username", manager.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.goto("/clients/?city=Lyon")
    for client in ticked:
        page.check(f"input[name=ids][value='{client.pk}']")

    page.get_by_role("button", name="Bulk actions").click()
    page.get_by_role("link", name="Set the tier").click()
    page.locator("#bulk-count").get_by_text("This will apply to 2 clients.").wait_for()
    page.select_option("#bulk-action-form select[name=tier]", "A")
    page.locator("#bulk-action-form").get_by_role("button", name="Apply").click()

    page.get_by_text("Tier: A (key account): 2 clients touched.").wait_for()
    assert set(Client.objects.filter(tier="A").values_list("pk", flat=True)) == {client.pk for client in ticked}

    page.locator(".alert").get_by_role("button", name="Undo").click()
    page.get_by_text("2 clients restored.").wait_for()
    assert set(Client.objects.values_list("tier", flat=True)) == {"C"}
