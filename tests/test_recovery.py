"""The periodic recovery passes: a job whose worker died is failed with a message without anyone opening its page
(by age everywhere; on PostgreSQL as soon as no live session holds its worker lock), and a job whose queue message
the broker lost is sent again, a few times, then given up; the original message arriving after all does nothing.
The beat runs one pass per app every five minutes."""

from datetime import timedelta

import pytest
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils import timezone

from crm import bulk
from crm import tasks as crm_tasks
from crm.models import BulkAction, BulkActionStatus, Client, ClientChange
from portfolio import queueing
from portfolio.schedules import BEAT_SCHEDULE
from prospecting import imports
from prospecting import tasks as prospecting_tasks
from prospecting.models import ImportJob, ImportStatus
from prospecting.recovery import import_recover
from scoring import personas, recovery, services
from scoring import tasks as scoring_tasks
from scoring.models import (
    AssignmentStatus,
    ClusterLabel,
    ClusterStudy,
    PersonaProfile,
    RunStatus,
    ScoringRun,
    StudyStatus,
)
from tests.factories import ClientFactory
from tests.scoring.test_personas import _create_group

NEVER_PICKED_UP = "The background workers never picked this up; nothing was changed. Start it again."
CONTACTS = b"email,first name\nann@x.com,Ann\nbob@x.com,Bob\n"


@pytest.fixture(autouse=True)
def recovery_settings(settings):
    settings.JOBS_RECOVERY_INTERVAL_SECONDS = 300
    settings.JOBS_REQUEUE_AFTER_SECONDS = 600
    settings.JOBS_REQUEUE_ATTEMPTS = 3
    settings.CRM_BULK_INLINE_MAX = 3
    settings.SCORING_RUN_TIME_LIMIT = 3600
    settings.SCORING_PERSONA_INLINE_ASSIGN_MAX = 2


def _ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


@pytest.fixture
def other_session():
    """A second PostgreSQL session, as a live worker's would be; closing it ends it and frees its locks."""
    session = connections.create_connection(DEFAULT_DB_ALIAS)
    yield session
    session.close()


def _hold_lock(session, lock_class: int, object_id: int) -> None:
    with session.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [lock_class, object_id])


# When to send again.


@pytest.mark.parametrize(
    ("waited", "decision"),
    [
        (300, queueing.WAIT),
        (650, queueing.REQUEUE),  # first attempt
        (950, queueing.WAIT),  # the next pass: already sent again
        (1250, queueing.REQUEUE),
        (1850, queueing.REQUEUE),  # third and last attempt
        (2150, queueing.WAIT),
        (2450, queueing.GIVE_UP),
    ],
)
def test_a_waiting_job_is_sent_again_once_per_period_three_times_then_given_up(waited, decision):
    now = timezone.now()
    assert queueing.requeue_decision(now - timedelta(seconds=waited), now=now) == decision


def test_a_kind_of_job_with_a_shorter_limit_is_given_up_sooner():
    now = timezone.now()
    assert queueing.requeue_decision(now - timedelta(seconds=1850), now=now, give_up_after=1800) == queueing.GIVE_UP


# The beat.


def test_the_beat_runs_each_apps_recovery_pass_every_five_minutes():
    from portfolio.celery import app

    app.loader.import_default_modules()
    names = {"recover-imports", "recover-bulk-actions", "recover-scoring-jobs"}
    assert names <= set(BEAT_SCHEDULE)
    for name in names:
        assert BEAT_SCHEDULE[name]["schedule"] == 300
        assert BEAT_SCHEDULE[name]["task"] in app.tasks


@pytest.mark.django_db
def test_the_recovery_tasks_run_their_pass():
    assert prospecting_tasks.recover_imports_task.apply().get() == {"failed": 0, "requeued": 0, "given_up": 0}
    assert crm_tasks.recover_bulk_actions_task.apply().get() == {"failed": 0, "requeued": 0, "given_up": 0, "pruned": 0}
    assert set(scoring_tasks.recover_scoring_jobs_task.apply().get()) == {"runs", "studies", "assignments"}


# Imports.


def _import(user, status=None, **fields) -> ImportJob:
    job = imports.import_create(data=CONTACTS, filename="list.csv", kind="people", user=user)
    if status is not None:
        ImportJob.objects.filter(pk=job.pk).update(status=status, **fields)
    return ImportJob.objects.get(pk=job.pk)


def _queued_import(user, waited: float) -> ImportJob:
    """A previewed job queued for its apply, whose message never reached a worker (no commit runs it here)."""
    job = _import(user)
    imports.import_preview(job=job)
    imports.import_queue(job=job)
    ImportJob.objects.filter(pk=job.pk).update(started_at=_ago(waited))
    return ImportJob.objects.get(pk=job.pk)


@pytest.mark.django_db
def test_an_import_whose_worker_died_is_failed_by_the_pass_with_its_message(admin_member):
    applying = _import(admin_member, ImportStatus.APPLYING, started_at=_ago(3600))
    previewing = _import(admin_member, ImportStatus.PREVIEWING, started_at=_ago(3600))

    assert import_recover()["failed"] == 2

    applying.refresh_from_db()
    previewing.refresh_from_db()
    assert applying.status == ImportStatus.FAILED
    assert applying.error.startswith("The import stopped before the end (the worker was stopped)")
    assert previewing.status == ImportStatus.UPLOADED
    assert previewing.error.startswith("The preview stopped before the end")


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("role_groups_restored")
def test_on_postgresql_an_import_is_failed_once_its_workers_session_is_gone(admin_member, other_session):
    job = _import(admin_member, ImportStatus.APPLYING, started_at=timezone.now())
    _hold_lock(other_session, imports.IMPORT_JOB_LOCK_CLASS, job.pk)

    assert import_recover()["failed"] == 0
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.APPLYING

    other_session.close()
    assert import_recover()["failed"] == 1
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and "the worker was stopped" in job.error


@pytest.mark.django_db
def test_a_long_queued_import_is_sent_again_and_applied_once(admin_member, tasks_inline):
    job = _queued_import(admin_member, waited=650)
    recent = _queued_import(admin_member, waited=60)

    assert import_recover() == {"failed": 0, "requeued": 1, "given_up": 0}

    job.refresh_from_db()
    assert job.status == ImportStatus.APPLIED and job.created_count == 2
    assert ImportJob.objects.get(pk=recent.pk).status == ImportStatus.QUEUED
    clients = Client.objects.count()

    assert prospecting_tasks.import_apply_task.apply(args=[job.pk]).get() == ImportStatus.APPLIED  # the original
    assert Client.objects.count() == clients
    assert ImportJob.objects.get(pk=job.pk).applied_at == job.applied_at


@pytest.mark.django_db
def test_a_preview_no_worker_took_is_sent_again(admin_member, tasks_inline):
    job = _import(admin_member, ImportStatus.PREVIEWING, started_at=None)
    ImportJob.objects.filter(pk=job.pk).update(created_at=_ago(650))

    assert import_recover()["requeued"] == 1

    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED and job.created_count == 2


@pytest.mark.django_db
def test_an_import_never_picked_up_is_given_up_and_its_late_message_does_nothing(admin_member, tasks_inline):
    job = _queued_import(admin_member, waited=2500)
    preview = _import(admin_member, ImportStatus.PREVIEWING, started_at=None)
    ImportJob.objects.filter(pk=preview.pk).update(created_at=_ago(2500))

    assert import_recover()["given_up"] == 2

    job.refresh_from_db()
    assert (job.status, job.error) == (ImportStatus.FAILED, NEVER_PICKED_UP)
    preview.refresh_from_db()
    assert preview.status == ImportStatus.UPLOADED and "never picked this preview up" in preview.error
    prospecting_tasks.import_apply_task.apply(args=[job.pk])
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.FAILED and not Client.objects.exists()


# Bulk actions.


@pytest.fixture
def lyon(rep):
    return [ClientFactory(owner=rep, city="Lyon", tier="C") for _ in range(5)]


def _submit_set_tier(user) -> BulkAction:
    """A large selection queued for a worker, whose message never reached one (no commit runs it here)."""
    action, outcome = bulk.bulk_action_submit(
        kind="set_tier", clients=Client.objects.filter(city="Lyon"), params={"value": "B"}, user=user
    )
    assert outcome is None
    return action


@pytest.mark.django_db
def test_a_bulk_action_whose_worker_died_is_failed_by_the_pass_with_its_message(manager):
    running = BulkAction.objects.create(kind="set_tier", user=manager, status=BulkActionStatus.RUNNING)
    undoing = BulkAction.objects.create(kind="set_tier", user=manager, status=BulkActionStatus.UNDOING)
    BulkAction.objects.filter(pk=running.pk).update(started_at=_ago(3600))
    BulkAction.objects.filter(pk=undoing.pk).update(undo_started_at=_ago(3600))

    assert bulk.bulk_action_recover()["failed"] == 2

    running.refresh_from_db()
    undoing.refresh_from_db()
    assert running.status == BulkActionStatus.FAILED
    assert running.error == "The action stopped before the end (the worker was stopped); nothing was changed."
    assert undoing.status == BulkActionStatus.DONE
    assert undoing.error == "The undo stopped before the end (the worker was stopped); nothing was restored."


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("role_groups_restored")
def test_on_postgresql_a_bulk_action_is_failed_once_its_workers_session_is_gone(manager, other_session):
    action = BulkAction.objects.create(
        kind="set_tier", user=manager, status=BulkActionStatus.RUNNING, started_at=timezone.now()
    )
    _hold_lock(other_session, bulk.BULK_ACTION_LOCK_CLASS, action.pk)

    assert bulk.bulk_action_recover()["failed"] == 0
    assert BulkAction.objects.get(pk=action.pk).status == BulkActionStatus.RUNNING

    other_session.close()
    assert bulk.bulk_action_recover()["failed"] == 1
    action.refresh_from_db()
    assert action.status == BulkActionStatus.FAILED and "the worker was stopped" in action.error


@pytest.mark.django_db
def test_a_long_queued_bulk_action_and_its_undo_are_sent_again_and_run_once(manager, lyon, tasks_inline):
    action = _submit_set_tier(manager)
    BulkAction.objects.filter(pk=action.pk).update(created_at=_ago(650))

    assert bulk.bulk_action_recover() == {"failed": 0, "requeued": 1, "given_up": 0, "pruned": 0}

    action.refresh_from_db()
    assert (action.status, action.touched) == (BulkActionStatus.DONE, 5)
    assert set(Client.objects.values_list("tier", flat=True)) == {"B"}
    changes = ClientChange.objects.count()
    crm_tasks.bulk_action_apply_task.apply(args=[action.pk])  # the original message, after all
    assert ClientChange.objects.count() == changes
    assert BulkAction.objects.get(pk=action.pk).finished_at == action.finished_at

    assert bulk.bulk_action_undo_submit(action_id=action.pk, user=manager) is None  # queued, message lost
    assert BulkAction.objects.get(pk=action.pk).status == BulkActionStatus.UNDO_QUEUED
    BulkAction.objects.filter(pk=action.pk).update(undo_started_at=_ago(650))

    assert bulk.bulk_action_recover()["requeued"] == 1

    action.refresh_from_db()
    assert (action.status, action.restored) == (BulkActionStatus.UNDONE, 5)
    assert set(Client.objects.values_list("tier", flat=True)) == {"C"}
    crm_tasks.bulk_action_undo_task.apply(args=[action.pk])
    assert BulkAction.objects.get(pk=action.pk).undone_at == action.undone_at


@pytest.mark.django_db
def test_a_bulk_action_never_picked_up_is_given_up_and_its_late_message_does_nothing(manager, lyon, tasks_inline):
    action = _submit_set_tier(manager)
    BulkAction.objects.filter(pk=action.pk).update(created_at=_ago(2500))

    assert bulk.bulk_action_recover()["given_up"] == 1

    action.refresh_from_db()
    assert (action.status, action.error, action.client_ids) == (BulkActionStatus.FAILED, NEVER_PICKED_UP, [])
    crm_tasks.bulk_action_apply_task.apply(args=[action.pk])
    assert set(Client.objects.values_list("tier", flat=True)) == {"C"}


# Scoring runs.


@pytest.mark.django_db
def test_a_scoring_run_whose_worker_died_is_failed_by_the_pass_with_its_message():
    run = ScoringRun.objects.create(as_of=timezone.localdate(), status=RunStatus.RUNNING, started_at=_ago(7200))

    assert services.scoring_run_recover()["failed"] == 1

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error == "The run stopped without finishing (its worker was stopped or it ran out of time)."


@pytest.mark.django_db
def test_a_long_pending_scoring_run_is_sent_again_and_executed_once(tasks_inline, monkeypatch):
    snapshots = []
    monkeypatch.setattr(scoring_tasks.profitability_snapshot_task, "apply_async", lambda **kw: snapshots.append(kw))
    ClientFactory.create_batch(2)
    run = services.scoring_run_create()  # its message never reached a worker
    ScoringRun.objects.filter(pk=run.pk).update(created_at=_ago(650))

    assert services.scoring_run_recover() == {"requeued": 1, "given_up": 0, "failed": 0}

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and len(snapshots) == 1
    scoring_tasks.score_portfolio_task.apply(args=[run.pk])  # the original message, after all
    assert ScoringRun.objects.get(pk=run.pk).finished_at == run.finished_at
    assert len(snapshots) == 1


@pytest.mark.django_db
def test_a_scoring_run_never_picked_up_is_given_up():
    run = services.scoring_run_create()
    ScoringRun.objects.filter(pk=run.pk).update(created_at=_ago(2500))

    assert services.scoring_run_recover()["given_up"] == 1

    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, NEVER_PICKED_UP) and run.finished_at is not None


# Persona studies.


@pytest.mark.django_db
def test_a_persona_study_whose_worker_died_is_failed_by_the_pass_with_its_message():
    study = ClusterStudy.objects.create(
        as_of=timezone.localdate(), sample_size=10, status=StudyStatus.RUNNING, started_at=_ago(3600)
    )
    ClusterStudy.objects.filter(pk=study.pk).update(created_at=_ago(3600))

    assert recovery.cluster_study_recover()["failed"] == 1

    study.refresh_from_db()
    assert study.status == StudyStatus.FAILED
    assert study.error == "The study stopped without finishing (its worker was stopped or it ran out of time)."


@pytest.mark.django_db
def test_a_long_queued_persona_study_is_sent_again_and_run_once(tasks_inline):
    _create_group("young_paris_retail", count=6)
    _create_group("lyon_industry", count=6)
    study = personas.cluster_study_create(k=2)  # its message never reached a worker
    ClusterStudy.objects.filter(pk=study.pk).update(created_at=_ago(650))

    assert recovery.cluster_study_recover() == {"requeued": 1, "given_up": 0, "failed": 0}

    study.refresh_from_db()
    assert study.status == StudyStatus.DONE, study.error
    scoring_tasks.cluster_study_task.apply(args=[study.pk])  # the original message, after all
    assert ClusterStudy.objects.get(pk=study.pk).finished_at == study.finished_at
    assert ClusterLabel.objects.filter(study=study).count() == 12


@pytest.mark.django_db
def test_a_persona_study_never_picked_up_is_given_up_before_it_counts_as_stale():
    study = personas.cluster_study_create(k=2)
    ClusterStudy.objects.filter(pk=study.pk).update(created_at=_ago(1900))

    assert recovery.cluster_study_recover() == {"requeued": 0, "given_up": 1, "failed": 0}

    study.refresh_from_db()
    assert (study.status, study.error) == (StudyStatus.FAILED, NEVER_PICKED_UP)


# Persona member assignments.


@pytest.fixture
def members():
    return ClientFactory.create_batch(5)


@pytest.fixture
def finished_study(members):
    study = ClusterStudy.objects.create(
        as_of=timezone.localdate(),
        status=StudyStatus.DONE,
        k=1,
        sample_size=10,
        clients_count=len(members),
        finished_at=timezone.now(),
        fitted={"columns": ["basket_log"], "mean": [0.0], "scale": [1.0], "fill": {}, "centers": [[1.0]]},
        clusters=[{"cluster": 0, "size": len(members), "share": 1.0, "top_categories": []}],
    )
    ClusterLabel.objects.bulk_create(ClusterLabel(study=study, client=client, cluster=0) for client in members)
    return study


def _persona(study, manager):
    """A persona from a large cluster, whose assignment message never reached a worker (no commit runs it here)."""
    persona, assigned = personas.persona_from_cluster(study=study, cluster=0, data={"name": "Lea"}, user=manager)
    assert assigned is None
    return persona


@pytest.mark.django_db
def test_an_assignment_whose_worker_died_is_failed_by_the_pass_with_its_message(finished_study, manager):
    persona = _persona(finished_study, manager)
    PersonaProfile.objects.filter(pk=persona.pk).update(
        assign_status=AssignmentStatus.RUNNING, assign_done=2, assign_updated_at=_ago(3600)
    )

    assert recovery.persona_assignment_recover()["failed"] == 1

    profile = PersonaProfile.objects.get(pk=persona.pk)
    assert profile.assign_status == AssignmentStatus.FAILED and profile.assignment_retryable
    assert profile.assign_error == (
        "The assignment stopped before the end (its worker was stopped); assign the members again."
    )


@pytest.mark.django_db
def test_a_running_assignment_still_moving_is_left_alone(finished_study, manager):
    persona = _persona(finished_study, manager)
    PersonaProfile.objects.filter(pk=persona.pk).update(assign_status=AssignmentStatus.RUNNING)

    assert recovery.persona_assignment_recover() == {"failed": 0, "requeued": 0, "given_up": 0}
    assert PersonaProfile.objects.get(pk=persona.pk).assign_status == AssignmentStatus.RUNNING


@pytest.mark.django_db
def test_a_long_pending_assignment_is_sent_again_and_run_once(finished_study, manager, members, tasks_inline):
    persona = _persona(finished_study, manager)
    PersonaProfile.objects.filter(pk=persona.pk).update(assign_updated_at=_ago(650))

    assert recovery.persona_assignment_recover()["requeued"] == 1

    profile = PersonaProfile.objects.get(pk=persona.pk)
    assert (profile.assign_status, profile.assign_changed) == (AssignmentStatus.DONE, 5)
    assert set(Client.objects.values_list("persona", flat=True)) == {persona.pk}
    changes = ClientChange.objects.count()
    scoring_tasks.persona_assign_cluster_task.apply(args=[persona.pk, manager.pk])  # the original message
    assert ClientChange.objects.count() == changes
    assert PersonaProfile.objects.get(pk=persona.pk).assign_changed == 5


@pytest.mark.django_db
def test_an_assignment_never_picked_up_is_given_up(finished_study, manager):
    persona = _persona(finished_study, manager)
    PersonaProfile.objects.filter(pk=persona.pk).update(assign_updated_at=_ago(2500))

    assert recovery.persona_assignment_recover()["given_up"] == 1

    profile = PersonaProfile.objects.get(pk=persona.pk)
    assert (profile.assign_status, profile.assign_error) == (AssignmentStatus.FAILED, NEVER_PICKED_UP)
