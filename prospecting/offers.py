"""Promotional offers: a code, a discount, a validity window and the clients it is meant for, and the purchases
that used it.

Codes are matched without regard to case and stored in capitals. crm's ``Purchase`` knows nothing of offers: a
redemption is prospecting's own row, one per purchase at most.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet, Sum
from django.utils.formats import date_format
from django.utils.translation import gettext

from crm.models import Purchase
from prospecting.models import Offer, OfferRedemption

REDEMPTIONS_SHOWN = 50


class OfferError(Exception):
    """An offer action that cannot be done; the message is for the user."""


def normalize_code(code: str) -> str:
    return code.strip().upper()


def offer_find(*, code: str) -> Offer | None:
    """The offer whose code is ``code``, whatever its case."""
    return Offer.objects.filter(code__iexact=code.strip()).first() if code.strip() else None


def offer_save(*, data: Mapping[str, Any], user, offer: Offer | None = None) -> Offer:
    """Create an offer, or update ``offer``, from cleaned field values."""
    offer = offer or Offer(created_by=user)
    for name, value in data.items():
        setattr(offer, name, value)
    offer.code = normalize_code(offer.code)
    offer.save()
    return offer


def offer_redeem(*, offer: Offer, purchase: Purchase, user=None) -> OfferRedemption:
    """Record that ``purchase`` used ``offer``: the purchase must fall in the offer's validity window, and a
    purchase uses one offer at most."""
    if not offer.is_valid_on(purchase.purchased_on):
        raise OfferError(
            gettext("The offer %(code)s was not valid on %(date)s (valid from %(start)s to %(end)s).")
            % {
                "code": offer.code,
                "date": date_format(purchase.purchased_on, "SHORT_DATE_FORMAT"),
                "start": date_format(offer.valid_from, "SHORT_DATE_FORMAT"),
                "end": date_format(offer.valid_until, "SHORT_DATE_FORMAT"),
            }
        )
    try:
        with transaction.atomic():
            return OfferRedemption.objects.create(offer=offer, purchase=purchase, recorded_by=user)
    except IntegrityError as exc:
        raise OfferError(gettext("This purchase already used an offer.")) from exc


def offer_redeem_by_code(*, code: str, purchase: Purchase, user=None) -> OfferRedemption:
    """``offer_redeem`` for a code as typed or imported with a purchase."""
    offer = offer_find(code=code)
    if offer is None:
        raise OfferError(gettext("No offer has the code %(code)s.") % {"code": normalize_code(code)})
    return offer_redeem(offer=offer, purchase=purchase, user=user)


def offer_figures(offer: Offer) -> dict:
    """Redemptions, the clients who used the offer and the revenue of their purchases, in one query."""
    figures = offer.redemptions.aggregate(
        redemptions=Count("id"),
        clients=Count("purchase__client", distinct=True),
        revenue=Sum("purchase__amount"),
    )
    figures["revenue"] = figures["revenue"] or Decimal("0")
    return figures


def offer_redemptions(offer: Offer) -> QuerySet[OfferRedemption]:
    return offer.redemptions.select_related("purchase__client", "recorded_by").order_by(
        "-purchase__purchased_on", "-id"
    )


def offers_with_figures() -> QuerySet[Offer]:
    """Every offer with its number of redemptions and their revenue."""
    return Offer.objects.select_related("segment").annotate(
        redemption_count=Count("redemptions"), revenue=Sum("redemptions__purchase__amount")
    )
