"""Automation rules: which clients a rule matches, what applying it would do (the preview), and applying it.

A rule matches clients with an active owner and without do-not-contact:
- ``segment``: in the RFM segment in the current scoring run (``scoring.selectors.current_run_id``);
- ``to_reactivate``: lifecycle "to reactivate";
- ``prospect_idle``: prospects without an interaction (or, never contacted, created) for ``idle_days`` days.

Applying it plans a follow-up, for the client's owner, for each client *entering* the match: matching now and not
in the rule's ``RuleMatch`` set from its previous evaluation; then the set is replaced by today's. A client who
already has an open follow-up from the rule gets no second one (the database refuses it too). Applying the same
rule twice, at once or on an unchanged scoring run creates nothing more, which is what the nightly task relies on.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from crm.followups import follow_up_plan_many
from crm.models import Client, FollowUp, FollowUpOrigin, Lifecycle
from prospecting.models import AutomationRule, RuleMatch, RuleTrigger
from scoring.models import ClientScore, RunStatus
from scoring.selectors import current_run_id, latest_run

logger = logging.getLogger(__name__)

FOLLOW_UP_TIME = time(9, 0)  # rule follow-ups are due in the morning, not at the time of the nightly run
MATCH_BATCH_SIZE = 1000


@dataclass(frozen=True)
class RuleOutcome:
    matching: int  # clients matching the rule now
    entering: int  # of which not matching at the previous evaluation
    already_open: int  # of which already with an open follow-up from the rule
    follow_ups: int  # follow-ups planned (apply) or that would be (preview)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


RULE_FIELDS = ("name", "trigger", "segment", "idle_days", "follow_up_title", "due_in_days", "active")
TRIGGER_FIELDS = ("trigger", "segment", "idle_days")


def rule_save(*, data: Mapping[str, Any], user, rule: AutomationRule | None = None) -> AutomationRule:
    """Create a rule, or update the given one, from cleaned values.

    A rule whose trigger changes starts afresh: the clients it matched before were matched for another reason.
    """
    with transaction.atomic():
        previous = None
        if rule is not None and rule.pk:
            previous = AutomationRule.objects.filter(pk=rule.pk).values(*TRIGGER_FIELDS).first()
        rule = rule or AutomationRule(created_by=user)
        for name in RULE_FIELDS:
            if name in data:
                setattr(rule, name, data[name])
        rule.save()
        if previous and previous != {name: getattr(rule, name) for name in TRIGGER_FIELDS}:
            RuleMatch.objects.filter(rule=rule).delete()
    return rule


def rule_delete(*, rule: AutomationRule) -> None:
    """Delete a rule and its matches; the follow-ups it planned stay with their assignees."""
    rule.delete()


def rule_matching_clients(rule: AutomationRule, *, now: datetime | None = None) -> QuerySet[Client]:
    """The clients the rule matches now (see the module docstring)."""
    clients = Client.objects.filter(owner__isnull=False, owner__is_active=True, do_not_contact=False)
    if rule.trigger == RuleTrigger.SEGMENT:
        run_id = current_run_id()
        if run_id is None:
            return clients.none()
        scored = ClientScore.objects.filter(run_id=run_id, segment=rule.segment).values("client_id")
        return clients.filter(pk__in=scored)
    if rule.trigger == RuleTrigger.TO_REACTIVATE:
        return clients.filter(lifecycle=Lifecycle.TO_REACTIVATE)
    if rule.trigger == RuleTrigger.PROSPECT_IDLE and rule.idle_days:
        cutoff = (now or timezone.now()) - timedelta(days=rule.idle_days)
        idle = Q(last_interaction_at__lt=cutoff) | Q(last_interaction_at__isnull=True, created_at__lt=cutoff)
        return clients.filter(idle, lifecycle=Lifecycle.PROSPECT)
    return clients.none()


def _entering(rule: AutomationRule, matching: QuerySet[Client]) -> QuerySet[Client]:
    if rule.pk is None:
        return matching
    return matching.exclude(pk__in=RuleMatch.objects.filter(rule=rule).values("client_id"))


def _with_open_follow_up(rule: AutomationRule):
    return FollowUp.objects.open().filter(origin_key=rule.origin_key).values("client_id")


def rule_preview(*, rule: AutomationRule, now: datetime | None = None) -> RuleOutcome:
    """What applying the rule now would do, without writing anything; ``rule`` may be unsaved (a form's values)."""
    matching = rule_matching_clients(rule, now=now)
    entering = _entering(rule, matching)
    entering_count = entering.count()
    already_open = entering.filter(pk__in=_with_open_follow_up(rule)).count() if rule.pk else 0
    return RuleOutcome(
        matching=matching.count(),
        entering=entering_count,
        already_open=already_open,
        follow_ups=entering_count - already_open,
    )


def rule_due_at(rule: AutomationRule, *, now: datetime | None = None) -> datetime:
    day = timezone.localdate(now or timezone.now()) + timedelta(days=rule.due_in_days)
    return timezone.make_aware(datetime.combine(day, FOLLOW_UP_TIME))


def rule_apply(*, rule_id: int, now: datetime | None = None) -> RuleOutcome | None:
    """Plan the follow-ups of the clients entering the rule, remember today's matches, record the figures.

    Returns None when the rule no longer exists.
    """
    now = now or timezone.now()
    with transaction.atomic():
        # Two applications of one rule at once (the nightly task and "apply now") queue up here.
        rule = AutomationRule.objects.select_for_update().filter(pk=rule_id).first()
        if rule is None:
            return None
        matching = rule_matching_clients(rule, now=now)
        entering = _entering(rule, matching)
        entering_ids = list(entering.values_list("pk", flat=True))
        assignments = list(entering.exclude(pk__in=_with_open_follow_up(rule)).values_list("pk", "owner_id"))
        created = follow_up_plan_many(
            assignments=assignments,
            due_at=rule_due_at(rule, now=now),
            title=rule.follow_up_title,
            created_by=rule.created_by,
            origin=FollowUpOrigin.RULE,
            origin_key=rule.origin_key,
        )
        RuleMatch.objects.filter(rule=rule).exclude(client_id__in=matching.values("pk")).delete()
        RuleMatch.objects.bulk_create(
            [RuleMatch(rule=rule, client_id=pk, since=now) for pk in entering_ids],
            batch_size=MATCH_BATCH_SIZE,
            ignore_conflicts=True,
        )
        outcome = RuleOutcome(
            matching=RuleMatch.objects.filter(rule=rule).count(),
            entering=len(entering_ids),
            already_open=len(entering_ids) - len(assignments),
            follow_ups=created,
        )
        AutomationRule.objects.filter(pk=rule.pk).update(
            last_run_at=now,
            last_run_matching=outcome.matching,
            last_run_created=outcome.follow_ups,
            last_run_already_open=outcome.already_open,
            last_run_error="",
        )
    return outcome


def scoring_run_under_way() -> bool:
    """Whether a scoring run is pending or running: the nightly rules wait for its segments and lifecycles."""
    run = latest_run()
    return run is not None and run.status in (RunStatus.PENDING, RunStatus.RUNNING)


def rules_apply_active(*, now: datetime | None = None) -> dict[str, int]:
    """Apply every active rule in turn; one failing rule records its error and does not stop the others."""
    totals = {"rules": 0, "failed": 0, "follow_ups": 0}
    for rule_id in AutomationRule.objects.filter(active=True).order_by("pk").values_list("pk", flat=True):
        try:
            outcome = rule_apply(rule_id=rule_id, now=now)
        except Exception as error:  # one broken rule must not stop the others
            logger.exception("automation rule %s failed", rule_id)
            AutomationRule.objects.filter(pk=rule_id).update(
                last_run_at=now or timezone.now(), last_run_error=f"{type(error).__name__}: {error}"[:1000]
            )
            totals["failed"] += 1
            continue
        if outcome is not None:
            totals["rules"] += 1
            totals["follow_ups"] += outcome.follow_ups
    return totals
