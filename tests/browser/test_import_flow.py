"""An admin imports a Waalaxy export in headless Chromium: upload, preview counts, apply, prospects in the list."""

import pytest
from django.contrib.auth.models import Group

from crm import roles
from crm.models import Client
from tests.factories import UserFactory

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups_restored"),
]

PASSWORD = "correct horse battery staple"
WAALAXY = (
    "firstName,lastName,linkedinUrl,proEmail,company_name,connectionRequestDate,connectedAt,prospectList\n"
    "Hélène,Rivière,https://www.linkedin.com/in/helene-riviere,helene@atelier.fr,Atelier,2024-03-01,2024-03-02,Salon\n"
    "Paul,Verne,https://www.linkedin.com/in/paul-verne,,Verne SA,2024-03-01,,Salon\n"
    "Paul,Verne,https://www.linkedin.com/in/paul-verne,,Verne SA,2024-03-01,,Salon\n"
)


def test_admin_uploads_a_waalaxy_export_previews_and_applies_it(page, tmp_path, tasks_inline):
    Group.objects.get_or_create(name=roles.ADMIN)  # an earlier transactional test may have flushed the roles
    admin = UserFactory(username="adele", role=roles.ADMIN)
    path = tmp_path / "waalaxy.csv"
    path.write_text(WAALAXY, encoding="utf-8")

    page.goto("/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")

    page.get_by_role("link", name="Imports").click()
    page.get_by_role("link", name="Import a file").click()
    page.set_input_files("#id_file", str(path))
    page.select_option("#id_kind", "people")
    page.click("#upload-form button[type=submit]")
    page.locator("#waalaxy-note").wait_for()
    page.click("#mapping-form button[type=submit]")

    page.locator("#import-counts").wait_for()
    assert page.inner_text("#count-created") == "2"
    assert page.inner_text("#count-errors") == "1"
    assert "duplicate of line 3" in page.inner_text("#import-errors")
    assert not Client.objects.exists()

    page.click("#apply-button")
    page.locator("#import-status", has_text="Applied").wait_for()
    assert Client.objects.count() == 2

    page.get_by_role("link", name="Clients", exact=True).click()
    page.get_by_text("Hélène Rivière").first.wait_for()
    assert page.get_by_text("Paul Verne").first.is_visible()


def test_a_file_over_the_threshold_is_previewed_in_the_background_while_the_page_polls(
    page, tmp_path, settings, monkeypatch
):
    from prospecting import tasks

    Group.objects.get_or_create(name=roles.ADMIN)
    admin = UserFactory(username="adele", role=roles.ADMIN)
    settings.PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS = 2
    sent = []
    monkeypatch.setattr(tasks.import_preview_task, "apply_async", lambda args=None, **options: sent.append(args))
    path = tmp_path / "waalaxy.csv"
    path.write_text(WAALAXY, encoding="utf-8")

    page.goto("/prospecting/imports/new/")
    page.fill("#id_username", admin.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.set_input_files("#id_file", str(path))
    page.click("#upload-form button[type=submit]")
    page.locator("#waalaxy-note").wait_for()
    page.select_option("#id_field_policy_company", "never")
    page.click("#mapping-form button[type=submit]")

    page.locator("#import-status", has_text="Previewing").wait_for()
    assert page.locator("#import-counts").count() == 0 and page.locator("#apply-button").count() == 0
    # The worker's turn: the polling partial sees the preview done and reloads the page with its counts.
    tasks.import_preview_task(*sent[0])
    page.locator("#import-counts").wait_for()
    assert page.inner_text("#count-created") == "2"
    assert "company: Never change" in page.inner_text("#import-policies")
    assert page.locator("#apply-button").is_visible()
    assert not Client.objects.exists()
