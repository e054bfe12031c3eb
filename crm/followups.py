"""Planning follow-ups in bulk: for a selection of the client list, a segment, or an automation rule.

One set-based insert per batch, never a loop of ``save()``. With an ``origin_key`` (e.g. ``"rule:12"``) a client that
already has an open follow-up of that origin gets no second one: the partial unique constraint
``followup_open_origin_key_uniq`` enforces it in the database, so two concurrent plans cannot both insert one.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from crm.models import FollowUp, FollowUpOrigin

PLAN_BATCH_SIZE = 1000


def follow_up_plan_many(
    *,
    assignments: Iterable[tuple[int, int]],
    due_at: datetime,
    title: str,
    created_by,
    notes: str = "",
    origin: str = FollowUpOrigin.MANUAL,
    origin_key: str = "",
) -> int:
    """Plan one follow-up per ``(client_id, assignee_id)`` pair; returns how many were created.

    Pairs whose client already has an open follow-up with the same non-empty ``origin_key`` are skipped.
    """
    created_at = timezone.now()
    rows = [
        FollowUp(
            client_id=client_id,
            assignee_id=assignee_id,
            due_at=due_at,
            title=title,
            notes=notes,
            origin=origin,
            origin_key=origin_key,
            created_by=created_by,
            created_at=created_at,
        )
        for client_id, assignee_id in assignments
    ]
    if not rows:
        return 0
    with transaction.atomic():
        # Conflicts can only come from the open-origin constraint, hence only when a key is given.
        FollowUp.objects.bulk_create(rows, batch_size=PLAN_BATCH_SIZE, ignore_conflicts=bool(origin_key))
        if not origin_key:
            return len(rows)
        # Read through the small partial index of open keyed follow-ups.
        return FollowUp.objects.open().filter(origin_key=origin_key, created_at=created_at).count()
