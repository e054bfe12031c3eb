"""Background jobs of prospecting. Tasks are thin: they take ids or plain values and call one service.

Each one is safe to run twice: the services claim their work (a step, a send row) before doing it.
"""

from celery import shared_task

from prospecting import campaigns, rules

SEND_RETRY_DELAYS = (30, 60, 120, 300, 600)


@shared_task(acks_late=True, time_limit=30 * 60, soft_time_limit=25 * 60)
def campaign_step_queue_task(step_id: int) -> int | None:
    """Write a due step's send rows and enqueue its send batches; returns how many recipients."""
    step = campaigns.campaign_step_queue(step_id=step_id)
    return step.recipients if step else None


@shared_task(bind=True, acks_late=True, time_limit=30 * 60, soft_time_limit=25 * 60, max_retries=len(SEND_RETRY_DELAYS))
def campaign_send_batch_task(self, step_id: int, send_ids: list[int]) -> dict:
    """Send one batch of a step's emails; retried while the mail server is unreachable or the rate is booked,
    and the rows are marked failed once the retries are spent."""
    try:
        result = campaigns.campaign_send_batch(step_id=step_id, send_ids=send_ids)
    except campaigns.SendRateBusy as exc:
        # Waiting for its turn at the send rate is not a failure: the batch comes back later as a new task.
        countdown = min(exc.wait, campaigns.MAX_PACE_WAIT_SECONDS)
        campaign_send_batch_task.apply_async((step_id, send_ids), countdown=countdown)
        return {"postponed": len(send_ids)}
    except campaigns.MailServerUnavailable as exc:
        if self.request.retries >= len(SEND_RETRY_DELAYS):
            campaigns.campaign_batch_abandon(send_ids=send_ids, error=f"mail server unavailable: {exc}")
            return {"abandoned": len(send_ids)}
        raise self.retry(countdown=SEND_RETRY_DELAYS[self.request.retries]) from exc
    return {"sent": result.sent, "failed": result.failed, "skipped": result.skipped}


@shared_task(acks_late=True, time_limit=10 * 60, soft_time_limit=9 * 60)
def campaign_advance_task() -> dict:
    """Periodic: queue due steps, recover sends a dead worker left, record replies and conversions."""
    return campaigns.campaign_advance()


# Automation rules (prospecting.rules): each application compares the clients with the rule's previous evaluation,
# so running one twice, or at once, plans nothing more.
RULES_WAIT_SECONDS = 10 * 60
RULES_WAIT_RETRIES = 18


@shared_task(bind=True, acks_late=True, time_limit=30 * 60, soft_time_limit=25 * 60, max_retries=RULES_WAIT_RETRIES)
def apply_automation_rules_task(self) -> dict | None:
    """Nightly: apply every active rule once the night's scoring run is over (waiting up to three hours for it)."""
    if rules.scoring_run_under_way() and self.request.retries < RULES_WAIT_RETRIES:
        raise self.retry(countdown=RULES_WAIT_SECONDS)
    return rules.rules_apply_active()


@shared_task(acks_late=True, time_limit=30 * 60, soft_time_limit=25 * 60)
def apply_automation_rule_task(rule_id: int) -> dict | None:
    """Apply one rule now (a manager's "apply now"); nothing when the rule was deleted meanwhile."""
    outcome = rules.rule_apply(rule_id=rule_id)
    return outcome.as_dict() if outcome else None


# Imports (prospecting.imports): the apply is one transaction, so a worker killed in the middle leaves nothing
# written. The job is failed as stale (at once on PostgreSQL, when the dead worker's job lock is gone), and the
# message that comes back later (acks_late) finds it failed and does nothing: the admin applies it again.
@shared_task(acks_late=True, time_limit=40 * 60, soft_time_limit=35 * 60)
def import_apply_task(job_id: int) -> str | None:
    """Apply an import job; nothing happens when it is already applied, undone or gone."""
    from prospecting.imports import import_apply

    job = import_apply(job_id=job_id)
    return job.status if job else None


# Read only: a preview run twice stores the same figures; one whose worker died is failed by import_fail_stale.
@shared_task(acks_late=True, time_limit=30 * 60, soft_time_limit=25 * 60)
def import_preview_task(job_id: int) -> str | None:
    """Preview (dry run) a large import; nothing happens unless the job is waiting for its preview."""
    from prospecting.imports import import_preview_run

    job = import_preview_run(job_id=job_id)
    return job.status if job else None


# Every few minutes (portfolio.schedules): an import whose worker died is failed without waiting for someone to open
# the import pages, and one whose message the broker lost is sent again (the claim keeps a late original harmless).
@shared_task(acks_late=True, time_limit=5 * 60, soft_time_limit=4 * 60)
def recover_imports_task() -> dict[str, int]:
    """Periodic: fail the imports whose worker is gone, queue again those no worker took."""
    from prospecting.recovery import import_recover

    return import_recover()
