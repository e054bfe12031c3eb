"""Background jobs of the CRM core. Tasks are thin: they take ids or plain values and call one service."""

from celery import shared_task
from django.conf import settings

from crm import bulk, reminders, services


@shared_task(acks_late=True, time_limit=30 * 60, soft_time_limit=25 * 60)
def refresh_client_activity_task(client_ids: list[int] | None = None) -> int:
    """Recompute the derived dates (last interaction, last purchase, conversion) from the records.

    Safe to run twice: it recomputes from the source rows and overwrites.
    """
    return services.client_refresh_activity(client_ids=client_ids)


# The reminder passes scan the database on every tick: a tick lost to a broker outage is caught up by the next, and
# two overlapping passes share the due rows through their claims. The hard time limit is far below the claim
# timeout (REMINDER_CLAIM_TIMEOUT_SECONDS), so a claim is only ever taken over from a worker that is gone.
@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def send_due_reminders_task() -> dict[str, int]:
    """Create the reminders of the follow-ups that came due and email them; safe to run twice, or at once."""
    return reminders.reminders_send_due(time_budget=settings.REMINDER_PASS_SECONDS).as_dict()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=150)
def send_digests_task() -> dict[str, int]:
    """From the digest hour, email each user one digest of the day's and overdue follow-ups; safe to run twice."""
    return reminders.digests_send_due(time_budget=settings.REMINDER_PASS_SECONDS).as_dict()


# Bulk actions on a large selection (crm.bulk): one transaction, so a worker killed in the middle leaves nothing
# written; bulk_action_fail_stale fails the action (at once on PostgreSQL, when the dead worker's lock is gone), and
# the message that comes back (acks_late) finds it failed and does nothing. A message delivered twice applies once.
@shared_task(acks_late=True, time_limit=20 * 60, soft_time_limit=18 * 60)
def bulk_action_apply_task(action_id: int) -> str | None:
    """Apply a queued bulk action; nothing happens when it is no longer queued or is gone."""
    action = bulk.bulk_action_run(action_id=action_id)
    return action.status if action else None


@shared_task(acks_late=True, time_limit=20 * 60, soft_time_limit=18 * 60)
def bulk_action_undo_task(action_id: int) -> str | None:
    """Undo a bulk action whose undo was queued; nothing happens when it is no longer waiting for it."""
    action = bulk.bulk_action_undo_run(action_id=action_id)
    return action.status if action else None


# Every few minutes (portfolio.schedules): a bulk action whose worker died is failed without waiting for someone to
# open its page, and one whose message the broker lost is sent again (the claim keeps a late original harmless).
@shared_task(acks_late=True, time_limit=5 * 60, soft_time_limit=4 * 60)
def recover_bulk_actions_task() -> dict[str, int]:
    """Periodic: fail the bulk actions whose worker is gone, queue again those no worker took."""
    return bulk.bulk_action_recover()
