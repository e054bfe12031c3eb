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


def _log_in(page, user):
    page.goto("/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def test_rows_ticked_once_the_form_is_open_narrow_it_before_applying(page, manager):
    alpha = ClientFactory(last_name="Alpha", tier="C", city="Lyon")
    ClientFactory(last_name="Bravo", tier="C", city="Lyon")
    _log_in(page, manager)
    page.goto("/clients/?city=Lyon")
    page.get_by_role("button", name="Bulk actions").click()
    page.get_by_role("link", name="Set the tier").click()
    page.locator("#bulk-count").get_by_text("This will apply to 2 clients.").wait_for()

    page.check(f"input[type=checkbox][name=ids][value='{alpha.pk}']")  # as the form invites to

    page.locator("#bulk-count").get_by_text("This will apply to 1 client.").wait_for()
    page.select_option("#bulk-action-form select[name=tier]", "A")
    page.locator("#bulk-action-form").get_by_role("button", name="Apply").click()
    page.get_by_text("Tier: A (key account): 1 client touched.").wait_for()
    assert list(Client.objects.filter(tier="A").values_list("pk", flat=True)) == [alpha.pk]


def test_rows_unticked_are_left_out_of_the_next_action_chosen(page, manager):
    alpha = ClientFactory(last_name="Alpha", tier="C", city="Lyon")
    ClientFactory(last_name="Bravo", tier="C", city="Lyon")
    _log_in(page, manager)
    page.goto("/clients/?city=Lyon")
    page.check(f"input[type=checkbox][name=ids][value='{alpha.pk}']")
    page.get_by_role("button", name="Bulk actions").click()
    page.get_by_role("link", name="Add a tag").click()
    page.locator("#bulk-count").get_by_text("This will apply to 1 client.").wait_for()

    page.uncheck(f"input[type=checkbox][name=ids][value='{alpha.pk}']")
    page.get_by_role("button", name="Bulk actions").click()
    page.get_by_role("link", name="Set the tier").click()

    page.locator("#bulk-count").get_by_text("This will apply to 2 clients.").wait_for()


def test_filters_changed_once_the_form_is_open_narrow_it_before_applying(page, manager):
    ClientFactory(last_name="Alpha", tier="C", city="Lyon")
    ClientFactory(last_name="Bravo", tier="C", city="Lyon")
    paris = ClientFactory(last_name="Charlie", tier="C", city="Paris")
    _log_in(page, manager)
    page.goto("/clients/?city=Lyon")
    page.get_by_role("button", name="Bulk actions").click()
    page.get_by_role("link", name="Set the tier").click()
    page.locator("#bulk-count").get_by_text("This will apply to 2 clients.").wait_for()

    page.fill("#id_city", "Paris")
    page.locator("#client-filters").get_by_role("button", name="Filter").click()

    page.locator("#bulk-count").get_by_text("This will apply to 1 client.").wait_for()
    page.select_option("#bulk-action-form select[name=tier]", "A")
    page.locator("#bulk-action-form").get_by_role("button", name="Apply").click()
    page.get_by_text("Tier: A (key account): 1 client touched.").wait_for()
    assert list(Client.objects.filter(tier="A").values_list("pk", flat=True)) == [paris.pk]
