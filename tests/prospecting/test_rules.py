"""Automation rules: what they match, the preview count, one follow-up per entering client, never two open at once."""

import threading
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest
from celery.exceptions import Retry
from django.contrib.messages import get_messages
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from crm import services
from crm.models import FollowUp, FollowUpOrigin, FollowUpStatus, Lifecycle
from prospecting import rules
from prospecting.models import AutomationRule, RuleMatch, RuleTrigger
from prospecting.tasks import apply_automation_rule_task, apply_automation_rules_task
from scoring.models import ClientScore, RunStatus, ScoringRun
from tests.factories import ClientFactory, UserFactory


def scoring_run(segments: dict) -> ScoringRun:
    """A completed scoring run placing each client of ``segments`` (client -> segment key), finished now."""
    run = ScoringRun.objects.create(as_of=timezone.localdate(), status=RunStatus.COMPLETED, finished_at=timezone.now())
    ClientScore.objects.bulk_create(
        ClientScore(
            run=run,
            client=client,
            recency_days=200,
            frequency=3,
            monetary=Decimal("300"),
            r_score=1,
            f_score=3,
            m_score=3,
            rfm_sum=7,
            rfm_code="133",
            segment=segment,
            historical_clv=Decimal("300"),
        )
        for client, segment in segments.items()
    )
    return run


def at_risk_rule(manager, **fields) -> AutomationRule:
    values = {
        "name": "Call back clients at risk",
        "trigger": RuleTrigger.SEGMENT,
        "segment": "at_risk",
        "follow_up_title": "Reactivation call",
        "due_in_days": 2,
        "created_by": manager,
        **fields,
    }
    return AutomationRule.objects.create(**values)


@pytest.fixture
def portfolio(rep, other_rep):
    """Three owned clients At Risk, one At Risk without owner, one Loyal."""
    at_risk = [ClientFactory(owner=rep), ClientFactory(owner=rep), ClientFactory(owner=other_rep)]
    unowned = ClientFactory(owner=None)
    loyal = ClientFactory(owner=rep)
    scoring_run({**dict.fromkeys(at_risk, "at_risk"), unowned: "at_risk", loyal: "loyal"})
    return {"at_risk": at_risk, "unowned": unowned, "loyal": loyal}


def _open_from(rule) -> list[FollowUp]:
    return list(FollowUp.objects.open().filter(origin_key=rule.origin_key))


# Preview and apply


def test_the_preview_counts_the_follow_ups_the_rule_would_create(manager, portfolio):
    rule = at_risk_rule(manager)
    outcome = rules.rule_preview(rule=rule)
    assert outcome == rules.RuleOutcome(matching=3, entering=3, already_open=0, follow_ups=3)
    assert not FollowUp.objects.exists()


def test_the_preview_of_an_unsaved_rule_counts_too(manager, portfolio):
    rule = AutomationRule(trigger=RuleTrigger.SEGMENT, segment="loyal", follow_up_title="Thank you call")
    assert rules.rule_preview(rule=rule).follow_ups == 1


def test_the_form_shows_the_preview_count(client_as, manager, portfolio):
    response = client_as(manager).get(
        reverse("prospecting:rule-preview"),
        {"name": "At risk", "trigger": "segment", "segment": "at_risk", "follow_up_title": "Call", "due_in_days": 1},
    )
    assert response.status_code == 200
    assert "This rule would create 3 follow-ups." in response.content.decode()


def test_applying_a_rule_plans_one_follow_up_for_each_owner(manager, rep, other_rep, portfolio):
    rule = at_risk_rule(manager)
    now = timezone.now()

    outcome = rules.rule_apply(rule_id=rule.pk, now=now)

    assert outcome.follow_ups == 3
    planned = _open_from(rule)
    assert {(f.client_id, f.assignee_id) for f in planned} == {(c.pk, c.owner_id) for c in portfolio["at_risk"]}
    due = timezone.make_aware(datetime.combine(timezone.localdate(now) + timedelta(days=2), time(9, 0)))
    assert {f.due_at for f in planned} == {due}
    assert all(f.title == "Reactivation call" and f.origin == FollowUpOrigin.RULE for f in planned)
    rule.refresh_from_db()
    assert (rule.last_run_at, rule.last_run_matching, rule.last_run_created) == (now, 3, 3)


def test_the_preview_count_is_what_applying_creates(manager, portfolio):
    rule = at_risk_rule(manager)
    assert rules.rule_preview(rule=rule).follow_ups == rules.rule_apply(rule_id=rule.pk).follow_ups


# Deduplication


def test_a_rule_applied_twice_creates_no_second_follow_up(manager, portfolio):
    rule = at_risk_rule(manager)
    rules.rule_apply(rule_id=rule.pk)
    second = rules.rule_apply(rule_id=rule.pk)
    assert second.follow_ups == 0
    assert len(_open_from(rule)) == 3
    assert rules.rule_preview(rule=rule).follow_ups == 0


def test_a_client_staying_in_the_segment_gets_one_follow_up_not_one_a_night(manager, portfolio):
    rule = at_risk_rule(manager)
    rules.rule_apply(rule_id=rule.pk)
    for follow_up in _open_from(rule):
        services.follow_up_close(follow_up=follow_up)
    scoring_run(dict.fromkeys(portfolio["at_risk"], "at_risk"))

    assert rules.rule_apply(rule_id=rule.pk).follow_ups == 0
    assert FollowUp.objects.filter(origin_key=rule.origin_key).count() == 3


def test_a_client_back_in_the_segment_while_his_follow_up_is_open_gets_no_second_one(manager, portfolio):
    rule = at_risk_rule(manager)
    client = portfolio["at_risk"][0]
    rules.rule_apply(rule_id=rule.pk)
    scoring_run({client: "need_attention"})
    rules.rule_apply(rule_id=rule.pk)
    scoring_run({client: "at_risk"})

    assert rules.rule_preview(rule=rule) == rules.RuleOutcome(matching=1, entering=1, already_open=1, follow_ups=0)
    assert rules.rule_apply(rule_id=rule.pk).already_open == 1
    assert FollowUp.objects.filter(client=client, origin_key=rule.origin_key).count() == 1


def test_a_client_entering_again_after_his_follow_up_was_closed_gets_a_new_one(manager, portfolio):
    rule = at_risk_rule(manager)
    client = portfolio["at_risk"][0]
    rules.rule_apply(rule_id=rule.pk)
    services.follow_up_close(follow_up=FollowUp.objects.get(client=client))
    scoring_run({client: "need_attention"})
    rules.rule_apply(rule_id=rule.pk)
    scoring_run({client: "at_risk"})

    assert rules.rule_apply(rule_id=rule.pk).follow_ups == 1
    statuses = FollowUp.objects.filter(client=client).values_list("status", flat=True)
    assert sorted(statuses) == [FollowUpStatus.DONE, FollowUpStatus.OPEN]


def test_the_database_refuses_a_second_open_follow_up_from_the_same_rule(manager, rep, portfolio):
    rule = at_risk_rule(manager)
    client = portfolio["at_risk"][0]
    rules.rule_apply(rule_id=rule.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        FollowUp.objects.create(
            client=client, assignee=rep, due_at=timezone.now(), title="Again", origin_key=rule.origin_key
        )


def test_two_rules_each_plan_their_own_follow_up(manager, portfolio):
    first, second = at_risk_rule(manager), at_risk_rule(manager, name="Second look", follow_up_title="Email")
    rules.rule_apply(rule_id=first.pk)
    assert rules.rule_apply(rule_id=second.pk).follow_ups == 3
    assert FollowUp.objects.open().count() == 6


def test_a_manual_follow_up_does_not_stop_a_rule(manager, rep, portfolio):
    client = portfolio["at_risk"][0]
    services.follow_up_plan(client=client, assignee=rep, due_at=timezone.now(), title="Mine", created_by=rep)
    rule = at_risk_rule(manager)
    assert rules.rule_apply(rule_id=rule.pk).follow_ups == 3


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_the_same_rule_applied_twice_at_once_plans_each_follow_up_once():
    manager = UserFactory(username="martine")
    owner = UserFactory(username="alice")
    clients = [ClientFactory(owner=owner) for _ in range(30)]
    scoring_run(dict.fromkeys(clients, "at_risk"))
    rule = at_risk_rule(manager)
    barrier, outcomes = threading.Barrier(2), []

    def apply():
        try:
            barrier.wait()
            outcomes.append(rules.rule_apply(rule_id=rule.pk).follow_ups)
        finally:
            connection.close()

    threads = [threading.Thread(target=apply) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == [0, 30]
    assert FollowUp.objects.filter(origin_key=rule.origin_key).count() == 30


# The other triggers


def test_clients_becoming_to_reactivate_get_a_follow_up(manager, rep):
    rule = AutomationRule.objects.create(
        name="Reactivate", trigger=RuleTrigger.TO_REACTIVATE, follow_up_title="Win-back call", created_by=manager
    )
    sleeping = ClientFactory(owner=rep, lifecycle=Lifecycle.TO_REACTIVATE)
    ClientFactory(owner=rep, lifecycle=Lifecycle.CLIENT)
    rules.rule_apply(rule_id=rule.pk)

    waking = ClientFactory(owner=rep, lifecycle=Lifecycle.TO_REACTIVATE)
    assert rules.rule_preview(rule=rule).follow_ups == 1
    rules.rule_apply(rule_id=rule.pk)

    assert sorted(f.client_id for f in _open_from(rule)) == sorted([sleeping.pk, waking.pk])


def test_prospects_idle_for_n_days_get_a_follow_up(manager, rep):
    now = timezone.now()
    idle = ClientFactory(owner=rep, lifecycle=Lifecycle.PROSPECT, last_interaction_at=now - timedelta(days=31))
    never_contacted = ClientFactory(owner=rep, lifecycle=Lifecycle.PROSPECT, created_at=now - timedelta(days=40))
    ClientFactory(owner=rep, lifecycle=Lifecycle.PROSPECT, last_interaction_at=now - timedelta(days=3))
    ClientFactory(owner=rep, lifecycle=Lifecycle.PROSPECT, created_at=now - timedelta(days=2))
    ClientFactory(owner=rep, lifecycle=Lifecycle.CLIENT, last_interaction_at=now - timedelta(days=90))
    rule = AutomationRule.objects.create(
        name="Idle prospects",
        trigger=RuleTrigger.PROSPECT_IDLE,
        idle_days=30,
        follow_up_title="Relaunch",
        created_by=manager,
    )

    rules.rule_apply(rule_id=rule.pk, now=now)

    assert sorted(f.client_id for f in _open_from(rule)) == sorted([idle.pk, never_contacted.pk])


def test_clients_not_to_be_contacted_or_without_active_owner_are_left_out(manager, rep):
    gone = UserFactory(username="gone", is_active=False)
    kept = ClientFactory(owner=rep, lifecycle=Lifecycle.TO_REACTIVATE)
    ClientFactory(owner=rep, lifecycle=Lifecycle.TO_REACTIVATE, do_not_contact=True)
    ClientFactory(owner=gone, lifecycle=Lifecycle.TO_REACTIVATE)
    rule = AutomationRule.objects.create(
        name="Reactivate", trigger=RuleTrigger.TO_REACTIVATE, follow_up_title="Call", created_by=manager
    )
    rules.rule_apply(rule_id=rule.pk)
    assert [f.client_id for f in _open_from(rule)] == [kept.pk]


def test_a_segment_rule_matches_nobody_before_the_first_scoring_run(manager, rep):
    ClientFactory(owner=rep)
    assert rules.rule_preview(rule=at_risk_rule(manager)).matching == 0


# The nightly task


def test_the_nightly_task_applies_the_active_rules(manager, portfolio):
    active = at_risk_rule(manager)
    inactive = at_risk_rule(manager, name="Paused", active=False)

    assert apply_automation_rules_task() == {"rules": 1, "failed": 0, "follow_ups": 3}
    assert apply_automation_rules_task() == {"rules": 1, "failed": 0, "follow_ups": 0}
    assert len(_open_from(active)) == 3 and _open_from(inactive) == []


def test_a_failing_rule_records_its_error_and_the_others_still_run(manager, portfolio, monkeypatch):
    broken, working = at_risk_rule(manager, name="Broken"), at_risk_rule(manager, name="Working")
    original = rules.rule_matching_clients

    def matching(rule, **kwargs):
        if rule.pk == broken.pk:
            raise ValueError("segment gone")
        return original(rule, **kwargs)

    monkeypatch.setattr(rules, "rule_matching_clients", matching)
    assert apply_automation_rules_task() == {"rules": 1, "failed": 1, "follow_ups": 3}
    broken.refresh_from_db()
    assert "segment gone" in broken.last_run_error
    assert len(_open_from(working)) == 3


def test_applying_a_deleted_rule_does_nothing(db):
    assert apply_automation_rule_task(987654) is None


# The pages


def test_a_manager_creates_a_rule(client_as, manager):
    response = client_as(manager).post(
        reverse("prospecting:rule-create"),
        {
            "name": "Can't lose them",
            "trigger": "segment",
            "segment": "cant_lose_them",
            "idle_days": "12",
            "follow_up_title": "Call from the account manager",
            "due_in_days": "1",
            "active": "on",
        },
    )
    assert response.status_code == 302
    rule = AutomationRule.objects.get()
    assert (rule.segment, rule.idle_days, rule.created_by) == ("cant_lose_them", None, manager)


def test_a_segment_rule_needs_its_segment(client_as, manager):
    response = client_as(manager).post(
        reverse("prospecting:rule-create"),
        {"name": "x", "trigger": "segment", "segment": "", "follow_up_title": "Call", "due_in_days": "1"},
    )
    assert response.status_code == 200
    assert "Choose the segment." in response.content.decode()
    assert not AutomationRule.objects.exists()


def test_changing_a_rules_trigger_starts_it_afresh(client_as, manager, portfolio):
    rule = at_risk_rule(manager)
    rules.rule_apply(rule_id=rule.pk)
    assert RuleMatch.objects.filter(rule=rule).count() == 3

    client_as(manager).post(
        reverse("prospecting:rule-edit", args=[rule.pk]),
        {"name": rule.name, "trigger": "segment", "segment": "loyal", "follow_up_title": "Call", "due_in_days": "1"},
    )

    assert not RuleMatch.objects.filter(rule=rule).exists()
    assert rules.rule_preview(rule=AutomationRule.objects.get(pk=rule.pk)).follow_ups == 1


def test_renaming_a_rule_keeps_its_matches(client_as, manager, portfolio):
    rule = at_risk_rule(manager)
    rules.rule_apply(rule_id=rule.pk)
    client_as(manager).post(
        reverse("prospecting:rule-edit", args=[rule.pk]),
        {"name": "Renamed", "trigger": "segment", "segment": "at_risk", "follow_up_title": "x", "due_in_days": "2"},
    )
    assert RuleMatch.objects.filter(rule=rule).count() == 3


def test_apply_now_runs_the_rule_in_the_workers(
    client_as, manager, portfolio, monkeypatch, django_capture_on_commit_callbacks
):
    queued = []

    def worker(args, **options):
        queued.append(args)
        apply_automation_rule_task.run(*args)  # what the worker does with the message

    monkeypatch.setattr(apply_automation_rule_task, "apply_async", worker)
    rule = at_risk_rule(manager)
    browser = client_as(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = browser.post(reverse("prospecting:rule-apply", args=[rule.pk]))
    assert response.status_code == 302
    assert queued == [[rule.pk]]
    assert len(_open_from(rule)) == 3
    page = browser.get(reverse("prospecting:rule-list")).content.decode()
    assert f'id="rule-{rule.pk}"' in page


def test_apply_now_with_the_broker_down_still_answers(
    client_as, manager, portfolio, monkeypatch, django_capture_on_commit_callbacks
):
    def unreachable(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(apply_automation_rule_task, "apply_async", unreachable)
    rule = at_risk_rule(manager)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(manager).post(reverse("prospecting:rule-apply", args=[rule.pk]))

    assert response.status_code == 302
    assert "tonight" in " ".join(str(message) for message in get_messages(response.wsgi_request))
    assert not FollowUp.objects.exists()


def test_deleting_a_rule_keeps_the_follow_ups_it_planned(client_as, manager, portfolio):
    rule = at_risk_rule(manager)
    rules.rule_apply(rule_id=rule.pk)
    response = client_as(manager).post(reverse("prospecting:rule-delete", args=[rule.pk]))
    assert response.status_code == 302
    assert not AutomationRule.objects.exists()
    assert FollowUp.objects.open().count() == 3


def test_the_rule_list_shows_the_last_run(client_as, manager, portfolio):
    rule = at_risk_rule(manager)
    rules.rule_apply(rule_id=rule.pk)
    page = client_as(manager).get(reverse("prospecting:rule-list")).content.decode()
    assert "Call back clients at risk" in page
    assert "At Risk" in page


def test_reps_do_not_see_the_rules(client_as, rep):
    assert client_as(rep).get(reverse("prospecting:rule-list")).status_code == 403
    assert reverse("prospecting:rule-list") not in client_as(rep).get(reverse("crm:home")).content.decode()


def test_the_nightly_task_waits_for_a_scoring_run_under_way(manager, portfolio):
    at_risk_rule(manager)
    ScoringRun.objects.create(as_of=timezone.localdate(), status=RunStatus.RUNNING)
    with pytest.raises(Retry):
        apply_automation_rules_task.apply(throw=True)
    assert not FollowUp.objects.exists()
