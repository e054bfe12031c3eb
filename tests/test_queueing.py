"""A broker that cannot be reached never breaks the page that queues work, and the job says what happened."""

import pytest
from django.urls import reverse
from kombu.exceptions import OperationalError

from portfolio.queueing import enqueue_now
from scoring.models import RunStatus, ScoringRun
from scoring.tasks import score_portfolio_task


@pytest.fixture
def broker_down(monkeypatch):
    def refuse(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(score_portfolio_task, "apply_async", refuse)


def test_enqueue_reports_an_unreachable_broker_instead_of_raising(broker_down):
    failures = []
    assert enqueue_now(score_portfolio_task, 1, on_failure=failures.append) is False
    assert len(failures) == 1 and isinstance(failures[0], OperationalError)


def test_run_now_with_the_broker_down_answers_and_marks_the_run_failed(
    client_as, manager, broker_down, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(manager).post(reverse("scoring:run-start"))

    assert response.status_code == 302
    run = ScoringRun.objects.get()
    assert run.status == RunStatus.FAILED
    assert "could not be reached" in run.error
    # The next attempt is not blocked by the run that never reached a worker.
    assert not ScoringRun.objects.filter(status__in=[RunStatus.PENDING, RunStatus.RUNNING]).exists()
