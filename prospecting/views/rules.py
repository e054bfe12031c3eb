"""Automation rules pages, for managers and admins: the list with each rule's last run, the form with a live preview
("this rule would create 37 follow-ups"), applying a rule now, deleting one.

Applying now goes to the workers after commit; when the broker cannot be reached the page still answers and says
so, and the nightly pass applies the rule anyway.
"""

from __future__ import annotations

import logging

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import roles
from crm.forms import style_for_bootstrap
from portfolio.queueing import enqueue_now
from prospecting import rules as services
from prospecting.models import AutomationRule, RuleTrigger
from prospecting.tasks import apply_automation_rule_task
from prospecting.views import rfm_segment_choices
from scoring.rfm import SEGMENTS
from scoring.selectors import current_run_id

logger = logging.getLogger(__name__)


class AutomationRuleForm(forms.ModelForm):
    segment = forms.ChoiceField(label=_("RFM segment"), required=False)

    class Meta:
        model = AutomationRule
        fields = ["name", "trigger", "segment", "idle_days", "follow_up_title", "due_in_days", "active"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].choices = rfm_segment_choices()
        self.fields["idle_days"].widget.attrs["min"] = 1
        style_for_bootstrap(self)

    def clean(self) -> dict:
        cleaned = super().clean()
        trigger = cleaned.get("trigger")
        if trigger == RuleTrigger.SEGMENT and not cleaned.get("segment"):
            self.add_error("segment", _("Choose the segment."))
        if trigger == RuleTrigger.PROSPECT_IDLE and not cleaned.get("idle_days"):
            self.add_error("idle_days", _("Give the number of days without interaction."))
        # Only the setting of the chosen trigger is kept.
        if trigger != RuleTrigger.SEGMENT:
            cleaned["segment"] = ""
        if trigger != RuleTrigger.PROSPECT_IDLE:
            cleaned["idle_days"] = None
        return cleaned


def _form_page(request: HttpRequest, form: AutomationRuleForm, rule: AutomationRule | None = None) -> HttpResponse:
    return render(request, "prospecting/rule_form.html", {"form": form, "rule": rule})


@roles.role_required(*roles.MANAGERS)
@require_GET
def rule_list(request: HttpRequest) -> HttpResponse:
    rules = list(AutomationRule.objects.select_related("created_by"))
    return render(request, "prospecting/rule_list.html", {"rules": rules, "segments": SEGMENTS})


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "POST"])
def rule_create(request: HttpRequest) -> HttpResponse:
    form = AutomationRuleForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        rule = services.rule_save(data=form.cleaned_data, user=request.user)
        messages.success(request, gettext("Rule “%(name)s” saved.") % {"name": rule.name})
        return redirect("prospecting:rule-list")
    return _form_page(request, form)


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "POST"])
def rule_edit(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AutomationRule, pk=pk)
    form = AutomationRuleForm(request.POST or None, instance=rule)
    if request.method == "POST" and form.is_valid():
        services.rule_save(data=form.cleaned_data, user=request.user, rule=rule)
        messages.success(request, gettext("Rule “%(name)s” saved.") % {"name": rule.name})
        return redirect("prospecting:rule-list")
    return _form_page(request, form, rule)


@roles.role_required(*roles.MANAGERS)
@require_GET
def rule_preview(request: HttpRequest) -> HttpResponse:
    """How many follow-ups the rule in the form would create now (an htmx partial of the form page)."""
    rule = get_object_or_404(AutomationRule, pk=request.GET["rule"]) if request.GET.get("rule", "").isdigit() else None
    form = AutomationRuleForm(request.GET, instance=rule)
    context = {"form": form, "outcome": None, "has_scoring_run": current_run_id() is not None}
    if form.is_valid():
        context["outcome"] = services.rule_preview(rule=form.instance)
        context["trigger"] = form.cleaned_data["trigger"]
    return render(request, "prospecting/_rule_preview.html", context)


def _enqueue_apply(request: HttpRequest, rule: AutomationRule) -> None:
    if not enqueue_now(apply_automation_rule_task, rule.pk):
        messages.warning(
            request,
            gettext("The background workers cannot be reached now; “%(name)s” will be applied with tonight's run.")
            % {"name": rule.name},
        )
        return
    messages.success(
        request, gettext("“%(name)s” is being applied; its figures update in a moment.") % {"name": rule.name}
    )


@roles.role_required(*roles.MANAGERS)
@require_POST
def rule_apply(request: HttpRequest, pk: int) -> HttpResponse:
    rule = get_object_or_404(AutomationRule, pk=pk)
    transaction.on_commit(lambda: _enqueue_apply(request, rule))
    return redirect("prospecting:rule-list")


@roles.role_required(*roles.MANAGERS)
@require_POST
def rule_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Delete a rule; the follow-ups it planned stay with their assignees."""
    rule = get_object_or_404(AutomationRule, pk=pk)
    services.rule_delete(rule=rule)
    messages.success(request, gettext("Rule “%(name)s” deleted.") % {"name": rule.name})
    return redirect("prospecting:rule-list")
