"""A real Celery worker on Redis repairs the derived client dates from the records."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from crm.models import Client, Lifecycle
from crm.tasks import refresh_client_activity_task
from tests.factories import ClientFactory, InteractionFactory, PurchaseFactory
from tests.integration.worker import celery_worker, wait_for

pytestmark = [pytest.mark.postgresql, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_worker_recomputes_derived_dates_from_records():
    client = ClientFactory(lifecycle=Lifecycle.PROSPECT)
    when = timezone.now() - timedelta(days=3)
    InteractionFactory(client=client, occurred_at=when)
    PurchaseFactory(client=client, purchased_on=date(2026, 5, 4))
    PurchaseFactory(client=client, purchased_on=date(2026, 9, 1))
    assert Client.objects.get(pk=client.pk).last_purchase_at is None

    with celery_worker() as queue:
        refresh_client_activity_task.apply_async(queue=queue)
        refreshed = wait_for(
            lambda: Client.objects.filter(pk=client.pk, last_purchase_at__isnull=False).first(), timeout=60
        )

    assert refreshed.last_purchase_at == date(2026, 9, 1)
    assert refreshed.converted_at == date(2026, 5, 4)
    assert refreshed.last_interaction_at == when
    assert refreshed.lifecycle == Lifecycle.CLIENT
