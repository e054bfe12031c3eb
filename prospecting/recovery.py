"""The periodic recovery pass of the import jobs (``prospecting.tasks.recover_imports_task``, every few minutes).

Without it a job is only looked at when someone opens the import pages or starts another import. The pass fails the
previews and applies whose worker died (``import_fail_stale``), and sends again the applies and previews that no
worker took (a message lost by the broker), until it gives them up (``portfolio.queueing.requeue_decision``). The
tasks claim their job by its status, so the original message arriving after all does nothing more.

A queued apply waits since its ``started_at`` (set when queued, set again when a worker takes it); a preview not yet
taken has no such time and waits since the upload.
"""

from __future__ import annotations

from datetime import datetime

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from portfolio.queueing import GIVE_UP, REQUEUE, enqueue_now, never_picked_up_message, requeue_decision
from prospecting.imports import import_fail_stale
from prospecting.models import ImportJob, ImportStatus


def import_recover(*, now: datetime | None = None) -> dict[str, int]:
    """Fail the jobs whose worker is gone, queue again those waiting for one, give up those never picked up."""
    from prospecting.tasks import import_apply_task, import_preview_task

    now = now or timezone.now()
    counts = {"failed": import_fail_stale(now=now), "requeued": 0, "given_up": 0}
    waiting = ImportJob.objects.filter(
        Q(status=ImportStatus.QUEUED) | Q(status=ImportStatus.PREVIEWING, started_at__isnull=True)
    )
    for job_id, status, started_at, created_at in waiting.values_list("pk", "status", "started_at", "created_at"):
        applying = status == ImportStatus.QUEUED
        decision = requeue_decision((started_at if applying else None) or created_at, now=now)
        if decision == REQUEUE:
            counts["requeued"] += enqueue_now(import_apply_task if applying else import_preview_task, job_id)
        elif decision == GIVE_UP:
            counts["given_up"] += _give_up(job_id, applying=applying)
    return counts


def _give_up(job_id: int, *, applying: bool) -> int:
    if applying:
        return ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
            status=ImportStatus.FAILED, error=never_picked_up_message()
        )
    return ImportJob.objects.filter(pk=job_id, status=ImportStatus.PREVIEWING, started_at__isnull=True).update(
        status=ImportStatus.UPLOADED,
        error=gettext("The background workers never picked this preview up. Preview it again."),
    )
