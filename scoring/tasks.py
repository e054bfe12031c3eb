"""Background jobs of scoring. Tasks are thin: they take ids or nothing and call one service."""

import logging

from celery import shared_task
from django.conf import settings

from scoring import services

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
    try:
        services.scoring_run_execute(run_id=run_id)
    except services.ScoringRunBusy as busy:
        raise self.retry(countdown=busy.retry_in) from busy


@shared_task(acks_late=True, time_limit=60)
def start_nightly_scoring_task() -> int | None:
    """Start the nightly run as of today; skipped, with a log line, while another run is under way."""
    try:
        return services.scoring_run_start().pk
    except services.ScoringRunInProgress as exc:
        logger.info("nightly scoring run not started: %s", exc)
        return None
