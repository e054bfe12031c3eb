"""``manage.py score_portfolio``: one synchronous run, a readable summary or one JSON object."""

import json
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from scoring.models import RunStatus, ScoringRun
from scoring.rfm import SEGMENTS
from tests.factories import ClientFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def buyers():
    today = timezone.localdate()
    for index in range(6):
        client = ClientFactory(lifecycle="client")
        for days in range(index + 1):
            PurchaseFactory(client=client, purchased_on=today - timedelta(days=30 * days + index))


def _score(*args) -> str:
    out = StringIO()
    call_command("score_portfolio", *args, stdout=out)
    return out.getvalue()


def test_json_output_has_the_figures_of_the_run(buyers):
    summary = json.loads(_score("--json"))

    assert summary["clients_scored"] == 6
    assert set(summary["segments"]) == set(SEGMENTS) and sum(summary["segments"].values()) == 6
    assert {"r", "alpha", "a", "b", "loglik", "time_unit"} <= set(summary["bgnbd"])
    assert summary["bgnbd"]["time_unit"] == "weeks"
    assert {"p", "q", "gamma"} <= set(summary["gamma_gamma"])
    assert {"aggregate", "rfm", "fit", "predict", "write", "dashboard", "total"} <= set(summary["seconds"])
    assert summary["seconds"]["total"] >= summary["seconds"]["aggregate"]
    run = ScoringRun.objects.get()
    assert (summary["run_id"], summary["status"], summary["as_of"]) == (run.pk, "completed", run.as_of.isoformat())


def test_the_summary_says_what_the_run_found(buyers):
    text = _score()

    assert "clients scored: 6" in text
    assert "BG/NBD (weeks)" in text and "Gamma-Gamma" in text and "total" in text


def test_the_as_of_date_is_taken_from_the_option(buyers):
    summary = json.loads(_score("--as-of", "2026-01-15", "--json"))

    assert summary["as_of"] == "2026-01-15"
    assert ScoringRun.objects.get().as_of == date(2026, 1, 15)


def test_the_command_refuses_while_a_run_is_under_way():
    ScoringRun.objects.create(as_of=timezone.localdate(), status=RunStatus.RUNNING, started_at=timezone.now())

    with pytest.raises(CommandError, match="already under way"):
        _score()


def test_a_failed_run_is_reported_as_an_error(buyers, monkeypatch):
    from scoring import services

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "compute_rfm", broken)

    with pytest.raises(CommandError, match="disk full"):
        _score("--json")
    assert ScoringRun.objects.get().status == RunStatus.FAILED


def test_the_command_stores_the_profitability_figures_on_the_run(buyers):
    from scoring.profitability import SNAPSHOT_KEY

    summary = json.loads(_score("--json"))

    run = ScoringRun.objects.get()
    assert set(run.dashboard[SNAPSHOT_KEY]["periods"]) == {"12m", "all"}
    assert summary["profitability_seconds"] >= 0
    assert "profitability figures stored" in _score()


def test_the_profitability_figures_can_be_left_to_the_worker(buyers):
    from scoring.profitability import SNAPSHOT_KEY

    summary = json.loads(_score("--json", "--skip-profitability"))

    assert SNAPSHOT_KEY not in ScoringRun.objects.get().dashboard
    assert "profitability_seconds" not in summary
