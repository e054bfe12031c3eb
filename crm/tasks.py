"""Background jobs of the CRM core. Tasks are thin: they take ids or plain values and call one service."""

from celery import shared_task

from crm import services


@shared_task(acks_late=True, time_limit=30 * 60, soft_time_limit=25 * 60)
def refresh_client_activity_task(client_ids: list[int] | None = None) -> int:
    """Recompute the derived dates (last interaction, last purchase, conversion) from the records.

    Safe to run twice: it recomputes from the source rows and overwrites.
    """
    return services.client_refresh_activity(client_ids=client_ids)
