"""Referrals: which clients brought others, what those brought, and whom to ask next.

A referral is crm's ``Client.referred_by``. An ambassador is a client who referred at least one other; the revenue he
brought is what the clients he referred have bought. The candidates most worth asking are the clients with the
best RFM scores of the current scoring run who have referred nobody yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, DecimalField, Exists, OuterRef, QuerySet, Sum, Value
from django.db.models.functions import Coalesce

from crm.models import Client
from scoring.models import ClientScore
from scoring.selectors import current_run_id

AMBASSADORS_SHOWN = 50
CANDIDATES_SHOWN = 20
# Out of 15: clients scoring at least this much are worth asking for a referral.
CANDIDATE_MIN_RFM_SUM = 12


@dataclass(frozen=True)
class ReferralFigures:
    referred: int
    revenue: Decimal


def ambassador_ranking(clients: QuerySet[Client], *, limit: int = AMBASSADORS_SHOWN) -> QuerySet[Client]:
    """The clients of ``clients`` who referred others, by number of clients referred then the revenue those
    brought; each with ``referred_count`` and ``referred_revenue``."""
    referrers = Client.objects.filter(referred_by__isnull=False).values("referred_by")
    return (
        clients.filter(pk__in=referrers)
        .annotate(
            referred_count=Count("referrals", distinct=True),
            referred_revenue=Coalesce(
                Sum("referrals__purchases__amount"), Value(Decimal("0")), output_field=DecimalField()
            ),
        )
        .select_related("owner")
        .order_by("-referred_count", "-referred_revenue", "pk")[:limit]
    )


def referral_candidates(clients: QuerySet[Client], *, limit: int = CANDIDATES_SHOWN) -> list[ClientScore]:
    """The best-scored clients of ``clients`` in the current scoring run who have referred nobody yet and may be
    contacted, best first; empty while no run has completed."""
    run_id = current_run_id()
    if run_id is None:
        return []
    has_referred = Client.objects.filter(referred_by=OuterRef("client_id"))
    return list(
        ClientScore.objects.filter(
            run_id=run_id,
            rfm_sum__gte=CANDIDATE_MIN_RFM_SUM,
            client__in=clients.filter(do_not_contact=False),
        )
        .exclude(Exists(has_referred))
        .select_related("client__owner")
        .order_by("-rfm_sum", "-monetary", "client_id")[:limit]
    )


def referral_figures(client: Client) -> ReferralFigures:
    """How many clients ``client`` referred and what they have bought, in one query."""
    figures = Client.objects.filter(referred_by=client).aggregate(
        referred=Count("id", distinct=True), revenue=Sum("purchases__amount")
    )
    return ReferralFigures(referred=figures["referred"], revenue=figures["revenue"] or Decimal("0"))


def referral_candidate_score(client: Client) -> ClientScore | None:
    """The client's score in the current run when it makes him worth asking for a referral."""
    run_id = current_run_id()
    if run_id is None or client.do_not_contact:
        return None
    return ClientScore.objects.filter(run_id=run_id, client=client, rfm_sum__gte=CANDIDATE_MIN_RFM_SUM).first()
