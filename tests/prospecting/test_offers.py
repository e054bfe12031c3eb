"""Promotional offers: unique codes whatever their case, redemptions within the validity window, one offer per
purchase, the offer page's redemptions and revenue, and who may do what."""

from datetime import date
from decimal import Decimal

import pytest
from django.db import IntegrityError
from django.urls import reverse

from prospecting import offers as services
from prospecting.models import Offer, OfferRedemption
from tests.factories import ClientFactory, PurchaseFactory, SegmentFactory


def make_offer(**fields) -> Offer:
    values = {
        "code": "FIRST15",
        "name": "15% on a first purchase, this month only",
        "discount_kind": "percent",
        "discount_value": Decimal("15"),
        "valid_from": date(2026, 11, 1),
        "valid_until": date(2026, 11, 30),
        **fields,
    }
    return services.offer_save(data=values, user=None)


def form_data(**fields) -> dict:
    return {
        "code": "first15",
        "name": "15% on a first purchase, this month only",
        "discount_kind": "percent",
        "discount_value": "15",
        "valid_from": "2026-11-01",
        "valid_until": "2026-11-30",
        **fields,
    }


def test_codes_are_stored_in_capitals_and_unique_whatever_the_case(db):
    offer = make_offer(code=" first15 ")

    assert offer.code == "FIRST15"
    assert services.offer_find(code="First15") == offer
    with pytest.raises(IntegrityError):
        Offer.objects.create(
            code="first15", name="x", discount_kind="amount", discount_value=5, valid_from=date(2026, 1, 1),
            valid_until=date(2026, 1, 2),
        )  # fmt: skip


def test_a_redemption_records_the_purchase_and_counts_in_the_figures(db):
    offer = make_offer()
    ann, bob = ClientFactory(), ClientFactory()
    purchases = [
        PurchaseFactory(client=ann, purchased_on=date(2026, 11, 3), amount=Decimal("100.00")),
        PurchaseFactory(client=ann, purchased_on=date(2026, 11, 20), amount=Decimal("40.50")),
        PurchaseFactory(client=bob, purchased_on=date(2026, 11, 30), amount=Decimal("60.00")),
    ]
    PurchaseFactory(client=bob, purchased_on=date(2026, 11, 5), amount=Decimal("999"))  # without the code

    for purchase in purchases:
        services.offer_redeem(offer=offer, purchase=purchase)

    assert services.offer_figures(offer) == {"redemptions": 3, "clients": 2, "revenue": Decimal("200.50")}
    listed = services.offers_with_figures().get(pk=offer.pk)
    assert (listed.redemption_count, listed.revenue) == (3, Decimal("200.50"))


def test_a_purchase_outside_the_window_cannot_use_the_offer(db):
    offer = make_offer()
    before = PurchaseFactory(purchased_on=date(2026, 10, 31))
    after = PurchaseFactory(purchased_on=date(2026, 12, 1))

    for purchase in (before, after):
        with pytest.raises(services.OfferError, match="was not valid on"):
            services.offer_redeem(offer=offer, purchase=purchase)
    assert not OfferRedemption.objects.exists()


def test_a_purchase_uses_one_offer_at_most(db):
    first, second = make_offer(), make_offer(code="WELCOME10", discount_kind="amount", discount_value=10)
    purchase = PurchaseFactory(purchased_on=date(2026, 11, 10))
    services.offer_redeem(offer=first, purchase=purchase)

    with pytest.raises(services.OfferError, match="already used an offer"):
        services.offer_redeem(offer=second, purchase=purchase)
    with pytest.raises(services.OfferError, match="already used an offer"):
        services.offer_redeem_by_code(code="first15", purchase=purchase)
    assert OfferRedemption.objects.get().offer == first


def test_an_unknown_code_is_refused(db):
    with pytest.raises(services.OfferError, match="No offer has the code NOPE"):
        services.offer_redeem_by_code(code="nope", purchase=PurchaseFactory())


def test_the_offer_page_shows_redemptions_and_revenue(client_as, rep):
    offer = make_offer(segment=SegmentFactory(name="First-time buyers"))
    client = ClientFactory(first_name="Ann", last_name="Martin")
    services.offer_redeem(
        offer=offer,
        purchase=PurchaseFactory(
            client=client, purchased_on=date(2026, 11, 3), amount=Decimal("80"), reference="ORD-42"
        ),
    )

    response = client_as(rep).get(offer.get_absolute_url())

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="offer-redemptions">1<' in html and 'id="offer-revenue">80.00<' in html
    assert "Ann Martin" in html and "ORD-42" in html and "First-time buyers" in html
    assert reverse("prospecting:offer-redeem", args=[offer.pk]) not in html  # reps read only


def test_a_manager_records_a_redemption_by_purchase_reference(client_as, manager):
    offer = make_offer()
    purchase = PurchaseFactory(reference="ORD-7", purchased_on=date(2026, 11, 12))
    browser = client_as(manager)

    response = browser.post(reverse("prospecting:offer-redeem", args=[offer.pk]), {"reference": "ORD-7"})
    assert response.status_code == 302
    assert OfferRedemption.objects.get().purchase == purchase

    again = browser.post(reverse("prospecting:offer-redeem", args=[offer.pk]), {"reference": "ORD-7"})
    assert again.status_code == 200 and "already used an offer" in again.content.decode()
    missing = browser.post(reverse("prospecting:offer-redeem", args=[offer.pk]), {"reference": "ORD-404"})
    assert "No purchase has this reference" in missing.content.decode()


def test_a_manager_creates_an_offer_and_the_form_checks_it(client_as, manager):
    browser = client_as(manager)

    response = browser.post(reverse("prospecting:offer-create"), form_data())
    offer = Offer.objects.get()
    assert response.url == offer.get_absolute_url() and offer.code == "FIRST15"

    duplicate = browser.post(reverse("prospecting:offer-create"), form_data(code="First15"))
    assert "Another offer already has this code." in duplicate.content.decode()
    wrong = browser.post(
        reverse("prospecting:offer-create"),
        form_data(code="X", discount_value="120", valid_until="2026-10-01"),
    )
    html = wrong.content.decode()
    assert "at most 100" in html and "on or after its first day" in html
    assert Offer.objects.count() == 1


def test_a_rep_sees_offers_but_cannot_write_them(client_as, rep):
    offer = make_offer()
    purchase = PurchaseFactory(reference="ORD-9", purchased_on=date(2026, 11, 12))
    browser = client_as(rep)

    assert browser.get(reverse("prospecting:offer-list")).status_code == 200
    assert browser.post(reverse("prospecting:offer-create"), form_data(code="MINE")).status_code == 403
    assert browser.post(reverse("prospecting:offer-edit", args=[offer.pk]), form_data()).status_code == 403
    assert (
        browser.post(
            reverse("prospecting:offer-redeem", args=[offer.pk]), {"reference": purchase.reference}
        ).status_code
        == 403
    )
    assert not OfferRedemption.objects.exists() and Offer.objects.count() == 1
