"""A manager in headless Chromium runs a persona study of the scored demo portfolio, reads the clusters' profiles
and which variables mattered, turns the Lyon cluster into a persona with a fictive first name, and lands on the
persona's page with its members and figures. The study's task runs in-process (``tasks_inline``)."""

import pytest
from django.urls import reverse

from crm.demo import demo_portfolio_seed, demo_users_ensure
from crm.models import Client
from scoring.models import ClusterStudy, RunStatus
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


def test_manager_turns_a_cluster_of_the_demo_into_a_persona(page, manager, scored_demo, tasks_inline):
    page.goto("/")
    page.fill("#id_username", manager.username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.goto(reverse("scoring:persona-builder"))
    page.get_by_text("No persona study has finished yet.").wait_for()

    page.select_option("#study-form select[name=k]", "4")
    page.get_by_role("button", name="Run a study").click()

    # The study ran in the request; the progress partial then has the page reloaded with its clusters.
    page.locator("#study-summary").get_by_text("300 clients in 4 clusters").wait_for()
    cards = page.locator("#clusters article")
    assert cards.count() == 4
    profiles = page.locator(".cluster-profile").all_inner_texts()
    assert any("Lyon" in profile and "Formation" in profile for profile in profiles), profiles
    assert any("no purchase yet" in profile for profile in profiles), profiles
    importance = page.locator("#importance")
    assert importance.get_by_role("heading", name="Which variables mattered").is_visible()
    assert importance.locator("tbody tr").count() >= 8

    lyon = cards.filter(has=page.locator(".cluster-profile", has_text="Lyon"))
    lyon.get_by_role("link", name="Turn into a persona").click()
    page.locator("#cluster-summary").get_by_text("Lyon").wait_for()
    page.fill("#id_name", "Bertrand")
    page.get_by_role("button", name="Create the persona").click()

    page.get_by_role("heading", name="Bertrand").wait_for()
    study = ClusterStudy.objects.get()
    members = Client.objects.filter(persona__name="Bertrand")
    (cluster,) = [row for row in study.clusters if "Lyon" in row["profile"]]
    assert members.count() == cluster["size"]
    assert page.locator("#persona-members").inner_text() == str(cluster["size"])
    page.get_by_text(f"{cluster['size']} clients fit this persona").wait_for()
    assert page.locator("#persona-revenue").inner_text() != "0.00"
    assert page.locator("#persona-origin").is_visible()
