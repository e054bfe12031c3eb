"""Background jobs of scoring. Tasks are thin: they take ids or nothing and call one service."""

import logging

from celery import shared_task
from django.conf import settings

from portfolio.queueing import enqueue_now
from scoring import services
from scoring.models import RunStatus, ScoringRun

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=3,
    soft_time_limit=max(settings.SCORING_RUN_TIME_LIMIT - 60, 1),
    time_limit=settings.SCORING_RUN_TIME_LIMIT,
)
def score_portfolio_task(self, run_id: int) -> None:
    """Execute a pending scoring run.

    Safe to run twice: a finished run is left as it is. A delivery that finds the run still running (a duplicate,
    or a worker killed mid-run whose message came back) retries once the run would be stale, and then marks it
    failed if it is.
    """
    # Only the delivery that executes the run stores its snapshot: a duplicate (a message sent again by the recovery
    # pass, the original arriving after all) finds the run claimed and does nothing.
    pending = ScoringRun.objects.filter(pk=run_id, status=RunStatus.PENDING).exists()
    try:
        run = services.scoring_run_execute(run_id=run_id)
    except services.ScoringRunBusy as busy:
        raise self.retry(countdown=busy.retry_in) from busy
    if pending and run.status == RunStatus.COMPLETED:
        enqueue_now(profitability_snapshot_task, run.pk)


@shared_task(acks_late=True, time_limit=1800)
def profitability_snapshot_task(run_id: int) -> None:
    """Store the analysis page's profitability figures on a completed run; safe to run twice (it recomputes)."""
    from scoring import profitability  # pandas loads only in the workers

    profitability.profitability_snapshot_store(run_id=run_id)


@shared_task(acks_late=True, time_limit=60)
def start_nightly_scoring_task() -> int | None:
    """Start the nightly run as of today; skipped, with a log line, while another run is under way."""
    try:
        return services.scoring_run_start().pk
    except services.ScoringRunInProgress as exc:
        logger.info("nightly scoring run not started: %s", exc)
        return None


@shared_task(acks_late=True, reject_on_worker_lost=True, soft_time_limit=1740, time_limit=1800)
def cluster_study_task(study_id: int) -> None:
    """Run a queued persona study; safe to run twice (a study already claimed is left as it is)."""
    from scoring import personas  # pandas and scikit-learn load only in the workers that run studies

    personas.cluster_study_run(study_id=study_id)


@shared_task(acks_late=True, soft_time_limit=1740, time_limit=1800)
def persona_assign_cluster_task(persona_id: int, user_id: int | None) -> None:
    """Give a persona made from a large cluster to the cluster's members.

    Safe to run twice: a duplicate finds the assignment taken or done and leaves it; clients who already have the
    persona are skipped. A worker that dies leaves it running until stale, when the persona page offers to start it
    again.
    """
    from django.contrib.auth import get_user_model

    from scoring import personas

    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    personas.persona_assignment_run(persona_id=persona_id, user=user)


# Every few minutes (portfolio.schedules): runs, studies and assignments whose worker died are failed without waiting
# for someone to start another job or open their page, and those whose message the broker lost are sent again.
@shared_task(acks_late=True, time_limit=5 * 60, soft_time_limit=4 * 60)
def recover_scoring_jobs_task() -> dict[str, dict[str, int]]:
    """Periodic: fail the scoring jobs whose worker is gone, queue again those no worker took."""
    from scoring.recovery import scoring_jobs_recover

    return scoring_jobs_recover()
