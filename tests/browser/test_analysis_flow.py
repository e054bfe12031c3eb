"""A manager in headless Chromium reads the analysis of the scored demo portfolio, switches the profitability table
to personas (htmx swaps the table alone and the address follows), then follows the "reactivate" action to the list of
the clients to reactivate."""

import pytest
from django.urls import reverse

from crm.demo import demo_portfolio_seed, demo_users_ensure
from crm.models import Client, Lifecycle
from scoring.models import RunStatus
from scoring.services import scoring_run_create, scoring_run_execute

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups_restored"),
]

PASSWORD = "correct horse battery staple"


@pytest.fixture
def scored_demo():
    demo_users_ensure(password="demo-password-42")
    demo_portfolio_seed(clients=300, seed=3)
    run = scoring_run_execute(run_id=scoring_run_create().pk)
    assert run.status == RunStatus.COMPLETED, run.error


def test_manager_switches_the_profitability_tab_then_opens_the_clients_to_reactivate(page, manager, scored_demo):
    page.goto("/")
    page.fill("#id_username", manager.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.goto(reverse("scoring:analysis"))
    page.locator("#tab-rfm[aria-selected=true]").wait_for()
    page.evaluate("window.analysisPage = true")  # gone if the tab reloaded the whole page

    page.locator("#tab-personas").click()

    page.locator("#tab-personas[aria-selected=true]").wait_for()
    page.wait_for_url("**by=personas**")
    table = page.locator("#profitability")
    for name in ("Camille", "Julien", "Nathalie"):
        table.get_by_role("link", name=name).wait_for()
    assert page.evaluate("window.analysisPage") is True

    to_reactivate = Client.objects.filter(lifecycle=Lifecycle.TO_REACTIVATE)
    assert to_reactivate.exists()
    page.locator(f"#reactivate-{Lifecycle.TO_REACTIVATE}").get_by_role("link", name="See the clients").click()

    page.wait_for_url(f"**/clients/?*lifecycle={Lifecycle.TO_REACTIVATE}*")
    count = to_reactivate.count()
    page.locator("#client-count").get_by_text(f"{count} client{'s' if count > 1 else ''}").wait_for()
    listed = page.locator("#client-table tbody tr").all_inner_texts()
    some = to_reactivate.order_by("last_name").first()
    assert any(some.last_name in row for row in listed)
