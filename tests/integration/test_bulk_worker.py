"""A real Celery worker on Redis applies a bulk action queued for a large selection, then undoes it."""

import pytest

from crm import bulk, roles, tasks
from crm.models import BulkAction, BulkActionStatus, Client, ClientChange
from tests.factories import ClientFactory, UserFactory
from tests.integration.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups_restored"),
]


def _route_to(monkeypatch, queue):
    """The services enqueue on commit; only the queue is this worker's own."""
    for task in (tasks.bulk_action_apply_task, tasks.bulk_action_undo_task):
        send = task.apply_async
        monkeypatch.setattr(
            task, "apply_async", lambda args=None, _send=send, **options: _send(args, **{**options, "queue": queue})
        )


def _settled(action_id, *waiting):
    return BulkAction.objects.filter(pk=action_id).exclude(status__in=waiting).first()


def test_a_worker_applies_a_queued_bulk_action_and_undoes_it(monkeypatch, settings):
    settings.CRM_BULK_INLINE_MAX = 10
    manager = UserFactory(username="martine", role=roles.MANAGER)
    for _ in range(30):
        ClientFactory(tier="C")

    with celery_worker() as queue:
        _route_to(monkeypatch, queue)
        action, outcome = bulk.bulk_action_submit(
            kind="set_tier", clients=Client.objects.all(), params={"value": "A"}, user=manager, selection="All"
        )
        assert outcome is None and action.status == BulkActionStatus.QUEUED
        applied = wait_for(lambda: _settled(action.pk, BulkActionStatus.QUEUED, BulkActionStatus.RUNNING), timeout=60)
        assert applied.status == BulkActionStatus.DONE, applied.error
        assert (applied.touched, applied.total, applied.progress) == (30, 30, 30)
        assert set(Client.objects.values_list("tier", flat=True)) == {"A"}

        assert bulk.bulk_action_undo_submit(action_id=action.pk, user=manager) is None
        undone = wait_for(
            lambda: _settled(action.pk, BulkActionStatus.UNDO_QUEUED, BulkActionStatus.UNDOING), timeout=60
        )

    assert undone.status == BulkActionStatus.UNDONE, undone.error
    assert (undone.restored, undone.left_as_they_are, undone.undone_by) == (30, 0, manager)
    assert set(Client.objects.values_list("tier", flat=True)) == {"C"}
    assert ClientChange.objects.filter(field="tier", old_value="A", new_value="C", user=manager).count() == 30
