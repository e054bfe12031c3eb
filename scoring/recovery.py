"""The periodic recovery pass of scoring's background jobs (``scoring.tasks.recover_scoring_jobs_task``).

Scoring runs, persona studies and the assignment of a large cluster's members keep their state on a row; a worker that
dies, or a message the broker loses, would leave the row "running" or "queued" until someone starts another job or
opens the persona page. The pass fails what a dead worker left (by age: these jobs hold no worker lock) and sends
again what no worker took, until it gives it up (``portfolio.queueing.requeue_decision``). Every task claims its row
by its status, so a message sent again and the original arriving after all run the job once.

This module loads neither pandas nor scikit-learn: the pass runs in any worker.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from portfolio.queueing import GIVE_UP, REQUEUE, enqueue_now, never_picked_up_message, requeue_decision
from scoring.models import ASSIGNMENT_STALE_SECONDS, AssignmentStatus, ClusterStudy, PersonaProfile, StudyStatus

STUDY_TIME_LIMIT = 1800  # seconds; a study queued or running for longer is stale
IN_PROGRESS = (StudyStatus.QUEUED, StudyStatus.RUNNING)


def scoring_jobs_recover(*, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """The whole pass: scoring runs, persona studies and member assignments, with what was done to each."""
    from scoring.services import scoring_run_recover

    now = now or timezone.now()
    return {
        "runs": scoring_run_recover(now=now),
        "studies": cluster_study_recover(now=now),
        "assignments": persona_assignment_recover(now=now),
    }


def cluster_studies_fail_stale(*, now=None) -> int:
    """Fail the studies queued, or running, for longer than a worker may take: a running study's time limit counts
    from when its worker took it, not from when it was queued."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=STUDY_TIME_LIMIT)
    stale = Q(status=StudyStatus.QUEUED, created_at__lt=cutoff) | Q(status=StudyStatus.RUNNING, started_at__lt=cutoff)
    return ClusterStudy.objects.filter(stale).update(
        status=StudyStatus.FAILED,
        finished_at=now,
        error=gettext("The study stopped without finishing (its worker was stopped or it ran out of time)."),
    )


def cluster_study_recover(*, now: datetime | None = None) -> dict[str, int]:
    """Send again the queued studies no worker took, give up those never picked up, fail the stale ones."""
    from scoring.tasks import cluster_study_task

    now = now or timezone.now()
    counts = {"requeued": 0, "given_up": 0}
    for study_id, created_at in ClusterStudy.objects.filter(status=StudyStatus.QUEUED).values_list("pk", "created_at"):
        decision = requeue_decision(created_at, now=now, give_up_after=STUDY_TIME_LIMIT)
        if decision == REQUEUE:
            counts["requeued"] += enqueue_now(cluster_study_task, study_id)
        elif decision == GIVE_UP:
            counts["given_up"] += ClusterStudy.objects.filter(pk=study_id, status=StudyStatus.QUEUED).update(
                status=StudyStatus.FAILED, finished_at=now, error=never_picked_up_message()
            )
    counts["failed"] = cluster_studies_fail_stale(now=now)
    return counts


def persona_assignment_recover(*, now: datetime | None = None) -> dict[str, int]:
    """Fail the assignments whose worker stopped moving them, send again the pending ones no worker took (as no one:
    the user who asked is not kept), give up those never picked up. A failed assignment can be started again from
    the persona's page."""
    from scoring.tasks import persona_assign_cluster_task

    now = now or timezone.now()
    stalled = PersonaProfile.objects.filter(
        assign_status=AssignmentStatus.RUNNING, assign_updated_at__lt=now - timedelta(seconds=ASSIGNMENT_STALE_SECONDS)
    )
    counts = {"failed": _assignments_fail(stalled, now=now), "requeued": 0, "given_up": 0}
    pending = PersonaProfile.objects.filter(assign_status=AssignmentStatus.PENDING)
    for persona_id, waiting_since in pending.values_list("pk", "assign_updated_at"):
        decision = requeue_decision(waiting_since, now=now)
        if decision == REQUEUE:
            counts["requeued"] += enqueue_now(persona_assign_cluster_task, persona_id, None)
        elif decision == GIVE_UP:
            pending_one = PersonaProfile.objects.filter(pk=persona_id, assign_status=AssignmentStatus.PENDING)
            counts["given_up"] += pending_one.update(
                assign_status=AssignmentStatus.FAILED, assign_error=never_picked_up_message(), assign_updated_at=now
            )
    return counts


def _assignments_fail(stalled, *, now: datetime) -> int:
    return stalled.update(
        assign_status=AssignmentStatus.FAILED,
        assign_error=gettext(
            "The assignment stopped before the end (its worker was stopped); assign the members again."
        ),
        assign_updated_at=now,
    )
