"""Offer pages: the list with each offer's redemptions and revenue, an offer with the purchases that used it,
creating and editing offers, recording that a purchase used one.

Everyone with a role reads offers (reps quote them to clients); managers and admins write them.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from crm import roles
from crm.forms import style_for_bootstrap
from crm.models import Purchase, Segment
from prospecting import offers as services
from prospecting.campaigns import rfm_segment_label
from prospecting.models import DiscountKind, Offer
from prospecting.views import rfm_segment_choices


class OfferForm(forms.ModelForm):
    rfm_segment = forms.ChoiceField(label=_("RFM segment"), required=False, choices=())

    class Meta:
        model = Offer
        fields = [
            "code",
            "name",
            "description",
            "discount_kind",
            "discount_value",
            "valid_from",
            "valid_until",
            "segment",
            "rfm_segment",
        ]
        widgets = {
            "valid_from": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "valid_until": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "description": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rfm_segment"].choices = rfm_segment_choices()
        self.fields["segment"].queryset = Segment.objects.order_by("name")
        style_for_bootstrap(self)

    def clean_code(self) -> str:
        code = services.normalize_code(self.cleaned_data["code"])
        if not code:
            raise forms.ValidationError(_("Enter a code."))
        taken = Offer.objects.filter(code__iexact=code)
        if self.instance.pk:
            taken = taken.exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(_("Another offer already has this code."))
        return code

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("valid_from"), cleaned.get("valid_until")
        if start and end and end < start:
            self.add_error("valid_until", _("The offer must end on or after its first day."))
        value = cleaned.get("discount_value")
        if value is not None and value <= 0:
            self.add_error("discount_value", _("The discount must be more than zero."))
        elif value is not None and cleaned.get("discount_kind") == DiscountKind.PERCENT and value > 100:
            self.add_error("discount_value", _("A percentage discount is at most 100."))
        return cleaned


class RedeemForm(forms.Form):
    reference = forms.CharField(label=_("Purchase reference"), max_length=64)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_for_bootstrap(self)

    def clean_reference(self) -> Purchase:
        reference = self.cleaned_data["reference"].strip()
        purchases = list(Purchase.objects.filter(reference=reference).select_related("client")[:2])
        if not purchases:
            raise forms.ValidationError(_("No purchase has this reference."))
        if len(purchases) > 1:
            raise forms.ValidationError(_("Several purchases have this reference: the redemption cannot be recorded."))
        return purchases[0]


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def offer_list(request: HttpRequest) -> HttpResponse:
    return render(request, "prospecting/offer_list.html", {"offers": services.offers_with_figures()})


def _offer_detail_page(request: HttpRequest, offer: Offer, redeem_form: RedeemForm | None = None) -> HttpResponse:
    context = {
        "offer": offer,
        "figures": services.offer_figures(offer),
        "redemptions": services.offer_redemptions(offer)[: services.REDEMPTIONS_SHOWN],
        "redemptions_shown": services.REDEMPTIONS_SHOWN,
        "rfm_label": rfm_segment_label(offer.rfm_segment) if offer.rfm_segment else "",
        "can_manage": roles.role_of(request.user) in roles.MANAGERS,
    }
    if context["can_manage"]:
        context["redeem_form"] = redeem_form or RedeemForm()
    return render(request, "prospecting/offer_detail.html", context)


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def offer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _offer_detail_page(request, get_object_or_404(Offer.objects.select_related("segment"), pk=pk))


def _offer_form_page(request: HttpRequest, offer: Offer | None) -> HttpResponse:
    form = OfferForm(request.POST or None, instance=offer)
    if request.method == "POST" and form.is_valid():
        offer = services.offer_save(data=form.cleaned_data, user=request.user, offer=offer)
        return redirect(offer)
    return render(request, "prospecting/offer_form.html", {"form": form, "offer": offer})


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def offer_create(request: HttpRequest) -> HttpResponse:
    return _offer_form_page(request, None)


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def offer_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _offer_form_page(request, get_object_or_404(Offer, pk=pk))


@roles.role_required(*roles.MANAGERS)
@require_POST
def offer_redeem(request: HttpRequest, pk: int) -> HttpResponse:
    """Record that the purchase with the reference typed used this offer."""
    offer = get_object_or_404(Offer.objects.select_related("segment"), pk=pk)
    form = RedeemForm(request.POST)
    if form.is_valid():
        purchase = form.cleaned_data["reference"]
        try:
            services.offer_redeem(offer=offer, purchase=purchase, user=request.user)
        except services.OfferError as exc:
            form.add_error("reference", str(exc))
        else:
            messages.success(
                request,
                gettext("Purchase %(reference)s of %(client)s recorded with the offer %(code)s.")
                % {"reference": purchase.reference, "client": purchase.client, "code": offer.code},
            )
            return redirect(offer)
    return _offer_detail_page(request, offer, redeem_form=form)
