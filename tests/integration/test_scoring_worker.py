"""A real Celery worker on Redis executes the scoring run a manager starts, and the scores become current."""

from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import Lifecycle
from scoring import services, tasks
from scoring.models import ClientScore, RunStatus, ScoringRun
from tests.factories import ClientFactory, PurchaseFactory
from tests.integration.worker import celery_worker, wait_for

pytestmark = [pytest.mark.postgresql, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_worker_executes_a_started_run_and_its_scores_become_current(monkeypatch):
    today = timezone.localdate()
    lapsed = ClientFactory(lifecycle=Lifecycle.CLIENT)
    PurchaseFactory(client=lapsed, purchased_on=today - timedelta(days=800))
    for index in range(8):
        client = ClientFactory(lifecycle=Lifecycle.CLIENT)
        for days_ago in range(index + 1):
            PurchaseFactory(client=client, purchased_on=today - timedelta(days=20 * days_ago + index))

    with celery_worker() as queue:
        # The service enqueues on commit; only the queue is this worker's own.
        send = tasks.score_portfolio_task.apply_async
        monkeypatch.setattr(
            tasks.score_portfolio_task,
            "apply_async",
            lambda args=None, **options: send(args, **{**options, "queue": queue}),
        )
        run = services.scoring_run_start()
        assert run.status == RunStatus.PENDING
        finished = wait_for(
            lambda: ScoringRun.objects.filter(pk=run.pk, status__in=[RunStatus.COMPLETED, RunStatus.FAILED]).first(),
            timeout=120,
        )

    assert finished.status == RunStatus.COMPLETED, finished.error
    assert ScoringRun.objects.current() == finished
    assert ClientScore.objects.filter(run=finished).count() == 9
    assert finished.counts["clients_scored"] == 9 and finished.timings["total"] > 0
    assert len(finished.dashboard["grid"]) == 25
    lapsed.refresh_from_db()
    assert lapsed.lifecycle == Lifecycle.TO_REACTIVATE
