"""What the campaigns cost and whom they reached, for scoring's profitability per segment and persona.

Plugged into scoring through the ``SCORING_CAMPAIGN_COSTS`` setting (scoring does not import prospecting): scoring
groups the sent emails by its own groups of clients and shares each campaign's cost pro rata of them.
"""

from __future__ import annotations

from datetime import date, datetime, time

import pandas as pd
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from prospecting.models import Campaign, CampaignSend, SendStatus


def campaign_costs(since: date | None) -> tuple[pd.DataFrame, QuerySet]:
    """The campaigns launched on or after ``since`` (all when None) that sent email, as ``campaign_id, name, cost``
    (None when unknown) ``, sends`` (emails sent), and their sent emails (rows with ``campaign_id`` and ``client``)."""
    campaigns = Campaign.objects.filter(launched_at__isnull=False)
    if since:
        campaigns = campaigns.filter(launched_at__gte=timezone.make_aware(datetime.combine(since, time.min)))
    rows = (
        campaigns.annotate(emails=Count("sends", filter=Q(sends__status=SendStatus.SENT)))
        .filter(emails__gt=0)
        .order_by("name", "id")
        .values("id", "name", "cost", "emails")
    )
    frame = pd.DataFrame(list(rows), columns=["id", "name", "cost", "emails"])
    frame = frame.rename(columns={"id": "campaign_id", "emails": "sends"})
    frame["cost"] = frame["cost"].astype(object)
    sent = CampaignSend.objects.filter(campaign_id__in=frame["campaign_id"].tolist(), status=SendStatus.SENT)
    return frame, sent.order_by()
