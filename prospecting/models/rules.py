"""Prospecting models: automation rules, which plan a follow-up for the owner of each client that starts matching.

A rule acts on the clients that match it now and did not at its previous evaluation (``RuleMatch`` keeps that set),
so "enters a segment" and "becomes to reactivate" mean the change, not the state: a client who stays At Risk for
months gets one follow-up, not one a night. And a client never has two open follow-ups from the same rule: they
carry the rule's ``origin_key``, unique among open follow-ups in the database (``crm.followups``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = ["AutomationRule", "RuleMatch", "RuleTrigger"]


class RuleTrigger(models.TextChoices):
    SEGMENT = "segment", _("Enters an RFM segment")
    TO_REACTIVATE = "to_reactivate", _("Becomes “to reactivate”")
    PROSPECT_IDLE = "prospect_idle", _("Prospect without interaction for a number of days")


class AutomationRule(models.Model):
    name = models.CharField(_("name"), max_length=120)
    trigger = models.CharField(_("when"), max_length=20, choices=RuleTrigger.choices)
    # A key of scoring.rfm.SEGMENTS, for the segment trigger.
    segment = models.CharField(_("RFM segment"), max_length=20, blank=True)
    idle_days = models.PositiveSmallIntegerField(_("days without interaction"), null=True, blank=True)
    follow_up_title = models.CharField(_("follow-up title"), max_length=200)
    due_in_days = models.PositiveSmallIntegerField(_("due after (days)"), default=1)
    active = models.BooleanField(_("active"), default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # The last evaluation, shown on the rules page.
    last_run_at = models.DateTimeField(_("last run"), null=True, blank=True)
    last_run_matching = models.PositiveIntegerField(_("clients matching"), default=0)
    last_run_created = models.PositiveIntegerField(_("follow-ups created"), default=0)
    last_run_already_open = models.PositiveIntegerField(_("already with an open follow-up"), default=0)
    last_run_error = models.TextField(_("last error"), blank=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("automation rule")
        verbose_name_plural = _("automation rules")
        constraints = [
            models.CheckConstraint(condition=~Q(trigger="segment") | ~Q(segment=""), name="rule_segment_given"),
            models.CheckConstraint(
                condition=~Q(trigger="prospect_idle") | Q(idle_days__gte=1), name="rule_idle_days_given"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("prospecting:rule-edit", args=[self.pk])

    @property
    def origin_key(self) -> str:
        """The key of the follow-ups this rule plans (``FollowUp.origin_key``)."""
        return f"rule:{self.pk}"


class RuleMatch(models.Model):
    """A client that matched the rule at its last evaluation."""

    rule = models.ForeignKey(AutomationRule, on_delete=models.CASCADE, related_name="matches", verbose_name=_("rule"))
    client = models.ForeignKey("crm.Client", on_delete=models.CASCADE, related_name="+", verbose_name=_("client"))
    since = models.DateTimeField(_("matching since"), default=timezone.now)

    class Meta:
        verbose_name = _("rule match")
        verbose_name_plural = _("rule matches")
        constraints = [models.UniqueConstraint(fields=["rule", "client"], name="rulematch_rule_client_uniq")]

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.client_id}"
