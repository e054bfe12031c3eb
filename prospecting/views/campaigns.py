"""Campaign pages: the list, a campaign with its steps and their figures (polled while a step is being sent),
drafting, launching and cancelling.

Everyone with a role reads campaigns; managers and admins write them. Launching only changes rows and enqueues a
worker task after commit: a page never waits for a segment to be evaluated or an email to be sent.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.validators import MinValueValidator
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from crm import roles
from crm.forms import style_for_bootstrap
from crm.models import Segment
from prospecting import campaigns as services
from prospecting.models import Campaign, CampaignStep, Offer
from prospecting.views import rfm_segment_choices


class CampaignForm(forms.ModelForm):
    rfm_segment = forms.ChoiceField(label=_("RFM segment (current scoring run)"), required=False, choices=())

    class Meta:
        model = Campaign
        fields = ["name", "segment", "rfm_segment", "offer", "cost"]
        help_texts = {
            "segment": _("With both a segment and an RFM segment, the campaign targets clients in both."),
            "cost": _(
                "What the campaign costs (design, sending, discounts): its share goes to each segment it reaches."
            ),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["rfm_segment"].choices = rfm_segment_choices()
        self.fields["segment"].queryset = Segment.objects.order_by("name")
        self.fields["offer"].queryset = Offer.objects.order_by("-valid_from", "code")
        self.fields["cost"].min_value = 0
        self.fields["cost"].validators.append(MinValueValidator(0))
        style_for_bootstrap(self)

    def clean(self):
        cleaned = super().clean()
        has_members = self.instance.pk is not None and self.instance.members.exists()
        if not cleaned.get("segment") and not cleaned.get("rfm_segment") and not has_members:
            raise forms.ValidationError(_("Choose the segment the campaign targets, an RFM segment, or both."))
        return cleaned


class CampaignCostForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ["cost"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["cost"].validators.append(MinValueValidator(0))
        style_for_bootstrap(self)


class CampaignStepForm(forms.ModelForm):
    class Meta:
        model = CampaignStep
        fields = ["subject", "body", "delay_days"]
        widgets = {"body": forms.Textarea(attrs={"rows": 10})}

    def __init__(self, *args, campaign: Campaign, **kwargs):
        super().__init__(*args, **kwargs)
        self.campaign = campaign
        fields = ", ".join(f"{{{name}}}" for name in services.PERSONAL_FIELDS)
        self.fields["body"].help_text = _("Personal fields: %(fields)s.") % {"fields": fields}
        self.fields["delay_days"].help_text = _("For the first email: days after the launch.")
        style_for_bootstrap(self)

    def _check_placeholders(self, text: str) -> str:
        unknown = services.unknown_placeholders(text)
        if unknown:
            raise forms.ValidationError(
                _("Unknown personal field: %(unknown)s. Available: %(fields)s.")
                % {
                    "unknown": ", ".join(f"{{{name}}}" for name in unknown),
                    "fields": ", ".join(f"{{{name}}}" for name in services.PERSONAL_FIELDS),
                }
            )
        if "{offer_code}" in text and self.campaign.offer_id is None:
            raise forms.ValidationError(_("{offer_code} needs an offer: choose one for the campaign first."))
        return text

    def clean_subject(self) -> str:
        return self._check_placeholders(self.cleaned_data["subject"])

    def clean_body(self) -> str:
        return self._check_placeholders(self.cleaned_data["body"])


def _step_rows(campaign: Campaign) -> list[dict]:
    stats = services.campaign_step_stats(campaign)
    rows = []
    for step in campaign.steps.all():
        figures = stats.get(step.pk, {})
        sent = figures.get("sent", 0)
        rows.append(
            {
                "step": step,
                **figures,
                "sent": sent,
                "replied_percent": services.percent(figures.get("replied", 0), sent),
                "converted_percent": services.percent(figures.get("converted", 0), sent),
                "unsubscribed_percent": services.percent(figures.get("unsubscribed", 0), sent),
            }
        )
    return rows


def _steps_context(campaign: Campaign) -> dict:
    return {
        "campaign": campaign,
        "step_rows": _step_rows(campaign),
        "busy": services.campaign_is_busy(campaign),
        "conversion_days": settings.CAMPAIGN_CONVERSION_DAYS,
    }


def _get_campaign(pk: int) -> Campaign:
    return get_object_or_404(Campaign.objects.select_related("segment", "offer", "created_by", "launched_by"), pk=pk)


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def campaign_list(request: HttpRequest) -> HttpResponse:
    campaigns = Campaign.objects.select_related("segment", "offer").annotate(step_count=Count("steps"))
    rows = [
        {"campaign": campaign, "rfm_label": services.rfm_segment_label(campaign.rfm_segment)} for campaign in campaigns
    ]
    return render(request, "prospecting/campaign_list.html", {"rows": rows})


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def campaign_detail(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _get_campaign(pk)
    context = {
        **_steps_context(campaign),
        "rfm_label": services.rfm_segment_label(campaign.rfm_segment) if campaign.rfm_segment else "",
        "target_missing": services.campaign_target_missing(campaign),
        "member_count": campaign.members.count(),
        "can_manage": roles.role_of(request.user) in roles.MANAGERS,
        "cost_form": CampaignCostForm(instance=campaign),
    }
    if campaign.is_draft:
        context["audience"] = services.mailable(services.campaign_audience(campaign)).count()
    return render(request, "prospecting/campaign_detail.html", context)


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def campaign_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The steps and their figures: polled while a step is being queued or sent."""
    campaign = _get_campaign(pk)
    return render(request, "prospecting/_campaign_steps.html", _steps_context(campaign))


def _campaign_form_page(request: HttpRequest, campaign: Campaign | None) -> HttpResponse:
    if campaign is not None and not campaign.is_draft:
        messages.warning(request, gettext("Only a draft campaign can be changed."))
        return redirect(campaign)
    # The analysis page links here with the target preset (``?rfm_segment=at_risk`` or ``?segment=<id>``).
    initial = {name: request.GET[name] for name in ("segment", "rfm_segment") if request.GET.get(name)}
    form = CampaignForm(request.POST or None, instance=campaign, initial=initial)
    if request.method == "POST" and form.is_valid():
        campaign = services.campaign_save(
            name=form.cleaned_data["name"],
            segment=form.cleaned_data["segment"],
            rfm_segment=form.cleaned_data["rfm_segment"],
            offer=form.cleaned_data["offer"],
            cost=form.cleaned_data["cost"],
            user=request.user,
            campaign=campaign,
        )
        return redirect(campaign)
    return render(request, "prospecting/campaign_form.html", {"form": form, "campaign": campaign})


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_create(request: HttpRequest) -> HttpResponse:
    return _campaign_form_page(request, None)


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _campaign_form_page(request, _get_campaign(pk))


def _step_form_page(request: HttpRequest, campaign: Campaign, step: CampaignStep | None) -> HttpResponse:
    if not campaign.is_draft:
        messages.warning(request, gettext("Only a draft campaign can be changed."))
        return redirect(campaign)
    form = CampaignStepForm(request.POST or None, instance=step, campaign=campaign)
    if request.method == "POST" and form.is_valid():
        services.campaign_step_save(campaign=campaign, step=step, **form.cleaned_data)
        return redirect(campaign)
    return render(request, "prospecting/campaign_step_form.html", {"form": form, "campaign": campaign, "step": step})


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_step_create(request: HttpRequest, pk: int) -> HttpResponse:
    return _step_form_page(request, _get_campaign(pk), None)


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def campaign_step_edit(request: HttpRequest, pk: int) -> HttpResponse:
    step = get_object_or_404(CampaignStep.objects.select_related("campaign__offer"), pk=pk)
    return _step_form_page(request, step.campaign, step)


@roles.role_required(*roles.MANAGERS)
@require_POST
def campaign_step_delete(request: HttpRequest, pk: int) -> HttpResponse:
    step = get_object_or_404(CampaignStep.objects.select_related("campaign"), pk=pk)
    try:
        services.campaign_step_delete(step=step)
    except services.CampaignError as exc:
        messages.warning(request, str(exc))
    return redirect(step.campaign)


@roles.role_required(*roles.MANAGERS)
@require_POST
def campaign_launch(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _get_campaign(pk)
    try:
        services.campaign_launch(campaign=campaign, user=request.user)
    except services.CampaignError as exc:
        messages.warning(request, str(exc))
    else:
        messages.success(request, gettext("Campaign launched: the emails go out in the background."))
    return redirect(campaign)


@roles.role_required(*roles.MANAGERS)
@require_POST
def campaign_cost(request: HttpRequest, pk: int) -> HttpResponse:
    """Record the campaign's cost, at any status (a draft's form has it too)."""
    campaign = _get_campaign(pk)
    form = CampaignCostForm(request.POST, instance=campaign)
    if form.is_valid():
        services.campaign_cost_set(campaign=campaign, cost=form.cleaned_data["cost"])
        messages.success(request, gettext("Campaign cost saved."))
    else:
        errors = " ".join(error for errors in form.errors.values() for error in errors)
        messages.error(request, gettext("The cost was not saved: %(errors)s") % {"errors": errors})
    return redirect(campaign)


@roles.role_required(*roles.MANAGERS)
@require_POST
def campaign_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    campaign = _get_campaign(pk)
    try:
        services.campaign_cancel(campaign=campaign)
    except services.CampaignError as exc:
        messages.warning(request, str(exc))
    else:
        messages.success(request, gettext("Campaign cancelled: no further email will go out."))
    return redirect(campaign)
