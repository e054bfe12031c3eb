"""A real Celery worker with its beat recovers a bulk action whose queue message was lost: the recovery pass sends
it again and the worker applies it, without anyone opening a page."""

import pytest

from crm import bulk, roles, tasks
from crm.models import BulkAction, BulkActionStatus, Client
from tests.factories import ClientFactory, UserFactory
from tests.integration.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups_restored"),
]

# The worker's beat runs the recovery passes every two seconds; a job waiting 4 s is sent again.
FAST_RECOVERY = {"JOBS_RECOVERY_INTERVAL_SECONDS": "2", "JOBS_REQUEUE_AFTER_SECONDS": "4"}


def test_the_beat_sends_again_a_bulk_action_whose_message_the_broker_lost(monkeypatch, settings):
    settings.CRM_BULK_INLINE_MAX = 3
    manager = UserFactory(username="martine", role=roles.MANAGER)
    ClientFactory.create_batch(5, tier="C")
    monkeypatch.setattr(tasks.bulk_action_apply_task, "apply_async", lambda *args, **options: None)  # lost
    action, outcome = bulk.bulk_action_submit(
        kind="set_tier", clients=Client.objects.all(), params={"value": "A"}, user=manager
    )
    assert outcome is None and BulkAction.objects.get(pk=action.pk).status == BulkActionStatus.QUEUED

    with celery_worker(beat=True, extra_env=FAST_RECOVERY):
        done = wait_for(
            lambda: BulkAction.objects.filter(pk=action.pk, status=BulkActionStatus.DONE).first(), timeout=60
        )

    assert done.touched == 5 and done.error == ""
    assert set(Client.objects.values_list("tier", flat=True)) == {"A"}
