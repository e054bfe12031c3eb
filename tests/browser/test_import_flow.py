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
