"""Prospecting's panels on crm's pages: the referrals panel of the client card (``CRM_CARD_PANELS``) and the
channels panel of the persona page (``CRM_PERSONA_PANELS``).

The card itself shows who referred the client and whom he referred; the panel adds what those referrals brought,
or, for a well-scored client who has referred nobody yet, that he is worth asking. At most two queries.
The persona panel tells which lead sources, campaigns and offers worked for the persona's members.
"""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from django.http import HttpRequest

from crm.models import Client, Persona, Source
from prospecting.models import CampaignSend, OfferRedemption, SendStatus
from prospecting.referrals import referral_candidate_score, referral_figures

PANEL_TEMPLATE = "prospecting/_referral_panel.html"


def referrals_panel(request: HttpRequest, client: Client) -> dict | None:
    figures = referral_figures(client)
    if figures.referred:
        return {"template": PANEL_TEMPLATE, "context": {"figures": figures}}
    score = referral_candidate_score(client)
    if score is not None:
        return {"template": PANEL_TEMPLATE, "context": {"candidate_score": score}}
    return None


PERSONA_CHANNELS_TEMPLATE = "prospecting/_persona_channels_panel.html"
PERSONA_CAMPAIGNS_SHOWN = 10
PERSONA_OFFERS_SHOWN = 10


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def persona_channels_panel(request: HttpRequest, persona: Persona) -> dict | None:
    """What worked for the persona's members (those the user may see): the sources they came from and the share of
    them converted, the campaigns sent to them (reply and conversion rates), the offers they redeemed. Three
    grouped queries; nothing when none of them has a row."""
    members = Client.objects.visible_to(request.user).filter(persona=persona).values("pk")
    sources = (
        Client.objects.filter(pk__in=members)
        .values("source")
        .annotate(clients=Count("id"), converted=Count("id", filter=Q(converted_at__isnull=False)))
        .order_by("-clients", "source")
    )
    source_labels = dict(Source.choices)
    source_rows = [
        {
            **row,
            "label": source_labels.get(row["source"], row["source"]),
            "rate": _rate(row["converted"], row["clients"]),
        }
        for row in sources
    ]
    campaigns = (
        CampaignSend.objects.filter(client_id__in=members, status=SendStatus.SENT)
        .values("campaign_id", "campaign__name")
        .annotate(
            sent=Count("id"),
            replied=Count("id", filter=Q(replied_at__isnull=False)),
            converted=Count("id", filter=Q(converted_on__isnull=False)),
        )
        .order_by("-converted", "-replied", "-sent", "campaign_id")[:PERSONA_CAMPAIGNS_SHOWN]
    )
    campaign_rows = [
        {
            **row,
            "reply_rate": _rate(row["replied"], row["sent"]),
            "conversion_rate": _rate(row["converted"], row["sent"]),
        }
        for row in campaigns
    ]
    offer_rows = list(
        OfferRedemption.objects.filter(purchase__client_id__in=members)
        .values("offer_id", "offer__code", "offer__name")
        .annotate(
            redemptions=Count("id"),
            clients=Count("purchase__client_id", distinct=True),
            revenue=Sum("purchase__amount"),
        )
        .order_by("-redemptions", "offer__code")[:PERSONA_OFFERS_SHOWN]
    )
    if not (source_rows or campaign_rows or offer_rows):
        return None
    context = {"sources": source_rows, "campaigns": campaign_rows, "offers": offer_rows}
    return {"template": PERSONA_CHANNELS_TEMPLATE, "context": context}
