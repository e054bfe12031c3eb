"""The segment dashboard, starting a run and watching its progress, and the list of runs."""

import json
import re
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scoring.models import RunStatus, ScoringRun
from tests.factories import PurchaseFactory
from tests.scoring.factories import ScoringRunFactory, dashboard_data, rep_figures

HTMX = {"HTTP_HX_REQUEST": "true"}
DASHBOARD = reverse("scoring:dashboard")
PROGRESS = reverse("scoring:run-progress")
START = reverse("scoring:run-start")
SCRIPT = "<script>alert('x')</script>"


def _cell(html: str, r: int, f: int) -> str:
    match = re.search(rf'<td[^>]*id="grid-{r}-{f}">(.*?)</td>', html, re.DOTALL)
    assert match, f"no grid cell {r}, {f}"
    return match.group(1)


def _row(html: str, row_id: str) -> str:
    match = re.search(rf'<tr id="{row_id}">(.*?)</tr>', html, re.DOTALL)
    assert match, f"no row {row_id}"
    return match.group(1)


def test_dashboard_shows_the_grid_with_links_to_the_clients_of_each_cell(client_as, manager):
    ScoringRunFactory()

    html = client_as(manager).get(DASHBOARD).content.decode()

    cell = _cell(html, 5, 4)
    assert '<span class="fw-semibold d-block" data-figure="clients">54</span>' in cell
    assert '<span class="small d-block" data-figure="revenue">54,000</span>' in cell
    assert f'href="{reverse("crm:client-list")}?r=5&amp;f=4"' in cell
    assert 'title="Champions"' in cell
    # The colour scale: the fullest cell is the darkest, the emptiest the lightest.
    assert 'id="grid-5-5"' in html and "bg-opacity-100" in re.search(r'<td[^>]*id="grid-5-5"', html).group(0)
    assert "bg-opacity-10" in re.search(r'<td[^>]*id="grid-1-1"', html).group(0)


def test_dashboard_shows_each_segment_with_its_figures_action_and_clients_link(client_as, manager):
    ScoringRunFactory()

    html = client_as(manager).get(DASHBOARD).content.decode()

    champions = _row(html, "segment-champions")
    assert f'<a href="{reverse("crm:client-list")}?segment=champions">Champions</a>' in champions
    assert 'data-figure="clients">1,234<' in champions
    assert 'data-figure="revenue-share">42.1 %<' in champions
    assert 'data-figure="avg-clv-12m">321.46<' in champions
    assert 'data-figure="avg-historical-clv">1,500.25<' in champions
    assert 'data-figure="avg-recency">12<' in champions
    assert "ask for referrals" in champions
    assert 'data-figure="avg-clv-12m">—<' in _row(html, "segment-hibernating")


def test_dashboard_shows_kpis_composition_conversion_and_movements(client_as, manager):
    ScoringRunFactory()

    html = client_as(manager).get(DASHBOARD).content.decode()

    assert 'id="kpi-clients-scored">2,110<' in html
    assert 'id="kpi-conversion">12.5 %<' in html
    assert 'id="kpi-average-value">187.50<' in html
    assert 'id="kpi-idle-days">23.8<' in html
    assert 'id="kpi-clv-12m">987,654<' in html
    assert 'id="kpi-clv-36m">2,345,679<' in html
    composition = html[html.index('id="composition-table"') :]
    assert re.search(r">Prospect</th><td[^>]*>300</td>", composition)
    assert re.search(r">To reactivate</th><td[^>]*>55</td>", composition)
    by_source = html[html.index('id="conversion-by-source"') :]
    assert re.search(r">Referral</th><td[^>]*>80</td>\s*<td[^>]*>20</td><td[^>]*>25.0 %</td>", by_source)
    assert re.search(r">2026-10</th><td[^>]*>50</td>", html)
    movements = html[html.index('id="movements"') :]
    assert re.search(r"<td>Loyal</td><td[^>]*>→</td><td>Champions</td><td[^>]*>42</td>", movements)
    assert re.search(r"<td>Not scored before</td><td[^>]*>→</td><td>New Customers</td><td[^>]*>17</td>", movements)


def test_without_predictions_the_predicted_clv_shows_no_figure_rather_than_zero(client_as, manager):
    data = dashboard_data()
    data["kpis"] = {**data["kpis"], "total_clv_12m": None, "total_clv_36m": None}
    ScoringRunFactory(dashboard=data)

    html = client_as(manager).get(DASHBOARD).content.decode()

    assert 'id="kpi-clv-12m">—<' in html and 'id="kpi-clv-36m">—<' in html


def test_dashboard_feeds_its_charts_through_json_script(client_as, manager):
    ScoringRunFactory()

    html = client_as(manager).get(DASHBOARD).content.decode()

    charts = json.loads(re.search(r'<script id="scoring-charts" type="application/json">(.*?)</script>', html).group(1))
    assert charts["segments"] == {
        "type": "bar",
        "labels": ["Champions", "Hibernating"],
        "datasets": [{"label": "Clients", "data": [1234, 876]}],
    }
    assert charts["conversion"]["datasets"][0]["data"] == [10.0, 20.0]
    assert 'src="/static/js/scoring-charts.js"' in html
    assert 'src="/static/vendor/chartjs/chart-4.6.1.umd.min.js"' in html
    assert '<canvas data-chart="segments" data-chart-source="scoring-charts"' in html


def test_dashboard_shows_the_runs_fitted_parameters_warnings_and_timings(client_as, manager):
    ScoringRunFactory(warnings=["BG/NBD did not converge; the previous parameters were kept."])

    html = client_as(manager).get(DASHBOARD).content.decode()

    assert "BG/NBD did not converge; the previous parameters were kept." in html
    assert re.search(r">alpha</dt><dd[^>]*>4.4140<", html)
    assert re.search(r">gamma</dt><dd[^>]*>15.4400<", html)
    assert re.search(r">Expected lifespan \(years\)</dt><dd[^>]*>3<", html)
    assert re.search(r">Total</dt><dd[^>]*>4.25 s<", html)


def test_dashboard_shows_only_the_latest_completed_run(client_as, manager):
    older = ScoringRunFactory(as_of="2026-09-30")
    shown = ScoringRunFactory(as_of="2026-10-01")
    ScoringRunFactory(
        as_of="2026-10-02",
        status=RunStatus.FAILED,
        error="The database went away",
        dashboard=dashboard_data(kpis={**dashboard_data()["kpis"], "clients_scored": 99999}),
    )
    ScoringRunFactory(as_of="2026-10-03", status=RunStatus.RUNNING, finished_at=None, dashboard={}, progress=40)
    ScoringRun.objects.filter(pk=older.pk).update(finished_at=shown.finished_at.replace(year=2025))

    html = client_as(manager).get(DASHBOARD).content.decode()

    assert 'id="kpi-clients-scored">2,110<' in html
    assert "99,999" not in html
    assert "Scores as of 10/01/2026" in html
    # The run going on shows as progress only.
    assert 'data-run-status="running"' in html
    assert 'hx-trigger="every 2s"' in html


def test_a_failed_latest_run_is_reported_above_the_previous_figures(client_as, manager):
    ScoringRunFactory()
    ScoringRunFactory(status=RunStatus.FAILED, error="Fit <b>exploded</b>", dashboard={})

    html = client_as(manager).get(DASHBOARD).content.decode()

    assert 'data-run-status="failed"' in html
    assert "Fit &lt;b&gt;exploded&lt;/b&gt;" in html
    assert 'id="kpi-clients-scored">2,110<' in html
    assert 'hx-trigger="every 2s"' not in html


def test_without_a_completed_run_the_dashboard_says_so_and_offers_to_run_now(client_as, manager):
    ScoringRunFactory(status=RunStatus.FAILED, dashboard={})

    html = client_as(manager).get(DASHBOARD).content.decode()

    assert 'id="dashboard-empty"' in html
    assert "No scoring run has completed yet." in html
    assert f'action="{START}"' in html and ">Run now<" in html
    assert 'id="rfm-grid"' not in html


@pytest.mark.parametrize("url", [DASHBOARD, PROGRESS, reverse("scoring:run-list")])
def test_reps_cannot_open_the_scoring_pages(client_as, rep, url):
    ScoringRunFactory()
    assert client_as(rep).get(url).status_code == 403


def test_rep_cannot_start_a_run(client_as, rep):
    assert client_as(rep).post(START).status_code == 403
    assert not ScoringRun.objects.exists()


def test_managers_see_the_dashboard_in_the_menu_and_reps_do_not(client_as, rep, manager):
    assert f'href="{DASHBOARD}"' in client_as(manager).get(reverse("crm:home")).content.decode()
    assert f'href="{DASHBOARD}"' not in client_as(rep).get(reverse("crm:home")).content.decode()


# Per rep


def test_choosing_a_rep_shows_his_figures_alone_for_htmx(client_as, manager, rep):
    ScoringRunFactory(dashboard=dashboard_data(per_rep=[rep_figures(rep)]))
    browser = client_as(manager)

    response = browser.get(DASHBOARD, {"rep": rep.pk}, **HTMX)

    html = response.content.decode()
    assert html.lstrip().startswith("<div") and "<html" not in html
    assert 'id="rep-clients">321<' in html
    assert 'id="rep-revenue">65,432<' in html
    assert re.search(r">To reactivate</th><td[^>]*>15<", html)
    assert f'href="{reverse("crm:client-list")}?segment=at_risk&amp;owner={rep.pk}">At Risk</a>' in html
    chart = json.loads(
        re.search(r'<script id="scoring-rep-chart" type="application/json">(.*?)</script>', html).group(1)
    )
    assert chart["segments"]["labels"] == ["Champions", "At Risk"]
    assert "HX-Request" in response["Vary"]


def test_the_whole_page_shows_the_chosen_rep_too(client_as, manager, rep):
    ScoringRunFactory(dashboard=dashboard_data(per_rep=[rep_figures(rep)]))

    html = client_as(manager).get(DASHBOARD, {"rep": rep.pk}).content.decode()

    assert 'id="rfm-grid"' in html
    assert 'id="rep-clients">321<' in html
    assert f'<option value="{rep.pk}" selected>alice</option>' in html


def test_a_rep_absent_from_the_run_gets_a_message(client_as, manager):
    ScoringRunFactory()

    html = client_as(manager).get(DASHBOARD, {"rep": "999999"}, **HTMX).content.decode()

    assert "This rep has no figures in the current run." in html


def test_html_in_rep_names_and_warnings_is_shown_escaped(client_as, manager, rep):
    rep.first_name = SCRIPT
    rep.save()
    ScoringRunFactory(dashboard=dashboard_data(per_rep=[rep_figures(rep)]), warnings=[SCRIPT])

    browser = client_as(manager)
    for html in (
        browser.get(DASHBOARD).content.decode(),
        browser.get(DASHBOARD, {"rep": rep.pk}, **HTMX).content.decode(),
    ):
        assert "&lt;script&gt;alert(" in html
        assert SCRIPT not in html


# Starting a run and watching it


def test_progress_partial_polls_while_the_run_is_going(client_as, manager):
    ScoringRunFactory(status=RunStatus.RUNNING, phase="", progress=35, finished_at=None, dashboard={})

    response = client_as(manager).get(PROGRESS, **HTMX)

    html = response.content.decode()
    assert 'hx-trigger="every 2s"' in html
    assert f'hx-get="{PROGRESS}"' in html
    assert 'value="35"' in html and "Running" in html
    assert "HX-Refresh" not in response


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED])
def test_progress_partial_stops_and_reloads_the_page_when_the_run_has_finished(client_as, manager, status):
    ScoringRunFactory(status=status, error="Out of memory" if status == RunStatus.FAILED else "")

    response = client_as(manager).get(PROGRESS, **HTMX)

    assert 'hx-trigger="every 2s"' not in response.content.decode()
    assert response["HX-Refresh"] == "true"


def test_progress_partial_without_any_run_is_empty_and_does_not_poll(client_as, manager):
    response = client_as(manager).get(PROGRESS, **HTMX)

    assert response.status_code == 200
    assert 'hx-trigger="every 2s"' not in response.content.decode()
    assert "HX-Refresh" not in response


def test_run_now_creates_a_run_that_completes(client_as, manager, django_capture_on_commit_callbacks, tasks_inline):
    pytest.importorskip("scoring.tasks")

    for days_ago in (3, 40, 400):
        PurchaseFactory(purchased_on=timezone.localdate() - timedelta(days=days_ago))
    browser = client_as(manager)

    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(START)

    assert response.status_code == 302 and response.url == DASHBOARD
    run = ScoringRun.objects.get()
    assert run.started_by == manager
    assert run.status == RunStatus.COMPLETED, run.error
    html = browser.get(DASHBOARD).content.decode()
    assert 'id="kpi-clients-scored">3<' in html
    assert 'id="rfm-grid"' in html


def test_run_now_with_htmx_answers_with_the_progress_partial(client_as, manager, monkeypatch):
    services = pytest.importorskip("scoring.services")

    def start_without_running(*, as_of=None, user=None):
        return ScoringRun.objects.create(as_of="2026-11-01", status=RunStatus.PENDING, started_by=user)

    monkeypatch.setattr(services, "scoring_run_start", start_without_running)

    html = client_as(manager).post(START, **HTMX).content.decode()

    assert 'id="run-progress"' in html
    assert 'data-run-status="pending"' in html
    assert 'hx-trigger="every 2s"' in html


def test_run_now_while_a_run_is_going_says_so(client_as, manager, monkeypatch):
    services = pytest.importorskip("scoring.services")

    under_way = ScoringRunFactory(as_of=date(2026, 11, 1), status=RunStatus.RUNNING, finished_at=None, dashboard={})

    def refuse(*, as_of=None, user=None):
        raise services.ScoringRunInProgress(under_way)

    monkeypatch.setattr(services, "scoring_run_start", refuse)

    html = client_as(manager).post(START, follow=True).content.decode()

    assert "A scoring run (as of 2026-11-01) is already under way" in html
    assert 'data-run-status="running"' in html


# The runs


def test_run_list_shows_status_counts_timings_and_errors(client_as, manager):
    completed = ScoringRunFactory(as_of="2026-10-01")
    failed = ScoringRunFactory(as_of="2026-10-02", status=RunStatus.FAILED, error="Fit <b>exploded</b>", counts={})

    html = client_as(manager).get(reverse("scoring:run-list")).content.decode()

    completed_row = _row(html, f"run-{completed.pk}")
    assert "Completed" in completed_row and ">shown<" in completed_row
    assert re.search(r'<td class="text-end">2,110</td>\s*<td class="text-end">4.3 s</td>', completed_row)
    assert re.search(r">Reading purchases</dt><dd[^>]*>1.50 s<", completed_row)
    failed_row = _row(html, f"run-{failed.pk}")
    assert "Failed" in failed_row and "Fit &lt;b&gt;exploded&lt;/b&gt;" in failed_row
    assert html.index(f'id="run-{failed.pk}"') < html.index(f'id="run-{completed.pk}"')
