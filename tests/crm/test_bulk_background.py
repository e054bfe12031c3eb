"""Bulk actions on a large selection: queued for a worker with the selection frozen at submission, applied and undone
all or nothing, once even when the message comes twice, failed (never left running) when the broker is down or the
worker died; the action's page polls its progress and then shows the count and the Undo button."""

import threading
import time
from contextlib import contextmanager
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from crm import bulk, roles, tasks
from crm.models import BulkAction, BulkActionItem, BulkActionStatus, Client, ClientChange, FollowUp, Tag
from tests.factories import ClientFactory, TagFactory, UserFactory

URL = reverse("crm:bulk-action")


@pytest.fixture(autouse=True)
def small_inline_max(settings, tasks_inline):
    """Anything above three clients goes to the (in-process) worker."""
    settings.CRM_BULK_INLINE_MAX = 3


@pytest.fixture
def lyon(rep, other_rep):
    """Three clients of alice (tier C) and two of bob (tier B) in Lyon, one of alice in Paris."""
    alices = [ClientFactory(owner=rep, city="Lyon", tier="C") for _ in range(3)]
    bobs = [ClientFactory(owner=other_rep, city="Lyon", tier="B") for _ in range(2)]
    ClientFactory(owner=rep, city="Paris", tier="C")
    return alices, bobs


def _tiers():
    return dict(Client.objects.values_list("pk", "tier"))


def _broker_down(monkeypatch, task):
    def unreachable(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(task, "apply_async", unreachable)


def _submit(kind, user, **params):
    return bulk.bulk_action_submit(
        kind=kind, clients=Client.objects.filter(city="Lyon"), params=params, user=user, selection="Lyon"
    )


def test_the_form_says_a_worker_applies_it_to_the_clients_matching_now(client_as, manager, lyon):
    page = client_as(manager).get(URL, {"city": "Lyon", "action": "set_tier"}).content.decode()
    assert "A background worker applies it to the 5 clients matching now" in page

    page = client_as(manager).get(URL, {"city": "Paris", "action": "set_tier"}).content.decode()
    assert "This will apply to 1 client." in page and "background worker" not in page


def test_a_large_selection_goes_through_the_task_and_its_page_reports_the_count(
    client_as, manager, lyon, django_capture_on_commit_callbacks
):
    alices, bobs = lyon
    browser = client_as(manager)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = browser.post(URL, {"action": "set_tier", "filters": "city=Lyon", "tier": "B"})

    assert len(callbacks) == 1  # the task was queued, not run in the request
    action = BulkAction.objects.get()
    assert response.status_code == 302
    assert response.url.startswith(reverse("crm:bulk-action-detail", args=[action.pk]))
    assert (action.status, action.total, action.touched, action.client_ids) == (BulkActionStatus.DONE, 5, 3, [])
    assert action.started_at <= action.finished_at
    assert set(Client.objects.filter(city="Lyon").values_list("tier", flat=True)) == {"B"}
    assert ClientChange.objects.filter(field="tier", old_value="C", new_value="B").count() == 3

    page = browser.get(response.url).content.decode()
    assert "Applies to the 5 clients that matched when it was submitted" in page
    assert "3 clients touched." in page
    assert f'action="{reverse("crm:bulk-action-undo", args=[action.pk])}"' in page
    assert 'hx-trigger="every 2s"' not in page  # done: no more polling


def test_the_selection_is_frozen_at_submission(manager, lyon, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        action, outcome = _submit("set_tier", manager, value="A")
    assert outcome is None and BulkAction.objects.get().status == BulkActionStatus.QUEUED
    latecomer = ClientFactory(city="Lyon", tier="C")  # matches the filters after the submission

    for callback in callbacks:
        callback()

    action.refresh_from_db()
    assert action.status == BulkActionStatus.DONE and action.touched == 5
    assert Client.objects.get(pk=latecomer.pk).tier == "C"


def test_the_progress_partial_polls_while_queued_and_stops_when_done(
    client_as, manager, lyon, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        action, _outcome = _submit("set_tier", manager, value="A")
    progress_url = reverse("crm:bulk-action-progress", args=[action.pk])

    partial = client_as(manager).get(progress_url, headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial
    assert 'hx-trigger="every 2s"' in partial and "Queued" in partial
    assert "Waiting for a background worker; nothing is changed yet." in partial

    callbacks[0]()
    partial = client_as(manager).get(progress_url, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 2s"' not in partial
    assert "Done" in partial and "5 clients touched." in partial and ">Undo</button>" in partial


def test_with_the_broker_down_the_action_fails_with_a_message_and_nothing_changes(
    client_as, manager, lyon, monkeypatch, django_capture_on_commit_callbacks
):
    before = _tiers()
    _broker_down(monkeypatch, tasks.bulk_action_apply_task)

    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(manager).post(URL, {"action": "set_tier", "filters": "city=Lyon", "tier": "A"})

    action = BulkAction.objects.get()
    assert action.status == BulkActionStatus.FAILED and action.touched == 0 and action.client_ids == []
    assert "could not be reached; nothing was changed" in action.error
    assert _tiers() == before
    assert not ClientChange.objects.exists() and not BulkActionItem.objects.exists()
    page = client_as(manager).get(response.url).content.decode()
    assert "Failed" in page and "could not be reached; nothing was changed" in page
    assert reverse("crm:bulk-action-undo", args=[action.pk]) not in page


def test_a_message_delivered_twice_applies_once(manager, lyon, django_capture_on_commit_callbacks):
    due = (timezone.now() + timedelta(days=1)).isoformat()
    with django_capture_on_commit_callbacks():
        action, _outcome = _submit("plan_follow_ups", manager, title="Call", due_at=due, assign_to="me", notes="")

    assert tasks.bulk_action_apply_task.apply(args=[action.pk]).get() == BulkActionStatus.DONE
    assert tasks.bulk_action_apply_task.apply(args=[action.pk]).get() == BulkActionStatus.DONE

    assert FollowUp.objects.filter(title="Call").count() == 5
    assert BulkAction.objects.get(pk=action.pk).touched == 5


def test_a_failure_in_the_worker_changes_nothing_and_says_why(
    manager, lyon, monkeypatch, django_capture_on_commit_callbacks
):
    """Halfway through (the second chunk of two clients), an error: the first chunk is rolled back too."""
    original_chunks, original_write = bulk.chunks, bulk.write_items
    monkeypatch.setattr(bulk, "chunks", lambda items, size=2: original_chunks(items, 2))
    written = []

    def write_then_break(action, rows):
        if written:
            raise RuntimeError("disk full")
        written.append(original_write(action, rows))

    monkeypatch.setattr(bulk, "write_items", write_then_break)
    before = _tiers()

    with django_capture_on_commit_callbacks(execute=True):
        action, _outcome = _submit("set_tier", manager, value="A")

    assert len(written) == 1  # the first chunk was written before the error
    action.refresh_from_db()
    assert action.status == BulkActionStatus.FAILED
    assert action.error == "The action failed and nothing was changed: disk full"
    assert _tiers() == before
    assert not ClientChange.objects.exists() and not BulkActionItem.objects.exists()


def test_a_tag_deleted_before_the_worker_runs_fails_the_action(manager, lyon, django_capture_on_commit_callbacks):
    alices, bobs = lyon
    vip = TagFactory(name="VIP")
    for client in [*alices, *bobs]:
        client.tags.add(vip)
    with django_capture_on_commit_callbacks() as callbacks:
        action, _outcome = _submit("remove_tag", manager, tag=vip.pk, name="VIP")
    Tag.objects.filter(pk=vip.pk).delete()

    callbacks[0]()

    action.refresh_from_db()
    assert action.status == BulkActionStatus.FAILED
    assert "This tag was deleted meanwhile." in action.error


def test_an_author_who_lost_his_role_before_the_worker_runs_changes_nothing(
    lyon, django_capture_on_commit_callbacks, rep
):
    boss = UserFactory(username="boss", role=roles.MANAGER)
    before = _tiers()
    with django_capture_on_commit_callbacks() as callbacks:
        action, _outcome = _submit("set_tier", boss, value="A")
    boss.groups.clear()

    callbacks[0]()

    action.refresh_from_db()
    assert action.status == BulkActionStatus.FAILED and "may no longer use it" in action.error
    assert _tiers() == before


# --- Undo through the task ----------------------------------------------------------------------------------------


def test_undoing_a_large_action_goes_through_the_task_and_restores(
    client_as, manager, lyon, django_capture_on_commit_callbacks
):
    before = _tiers()
    with django_capture_on_commit_callbacks(execute=True):
        action, _outcome = _submit("set_tier", manager, value="A")
    assert BulkAction.objects.get(pk=action.pk).touched == 5
    browser = client_as(manager)
    undo_url = reverse("crm:bulk-action-undo", args=[action.pk])

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = browser.post(undo_url, {"next": "/clients/?city=Lyon"})

    assert len(callbacks) == 1
    assert response.url.startswith(reverse("crm:bulk-action-detail", args=[action.pk]))
    action.refresh_from_db()
    assert (action.status, action.restored, action.left_as_they_are, action.undone_by) == (
        BulkActionStatus.UNDONE,
        5,
        0,
        manager,
    )
    assert _tiers() == before
    page = browser.get(response.url).content.decode()
    assert "The undo runs in the background" in page
    assert "5 clients restored." in page and undo_url not in page


def test_a_queued_undo_whose_requester_lost_his_role_restores_nothing_and_can_be_tried_again(
    lyon, django_capture_on_commit_callbacks
):
    boss = UserFactory(username="boss", role=roles.MANAGER)
    with django_capture_on_commit_callbacks(execute=True):
        action, _outcome = _submit("set_tier", boss, value="A")
    after = _tiers()
    with django_capture_on_commit_callbacks() as callbacks:
        assert bulk.bulk_action_undo_submit(action_id=action.pk, user=boss) is None
    boss.groups.clear()

    callbacks[0]()

    action.refresh_from_db()
    assert action.status == BulkActionStatus.DONE and action.undone_at is None and action.undone_by is None
    assert "may no longer use it" in action.error
    assert _tiers() == after


def test_a_small_action_is_still_undone_in_the_request(client_as, manager, rep, lyon):
    action, _outcome = bulk.bulk_action_apply(
        kind="add_tag", clients=Client.objects.filter(owner=rep, city="Lyon"), params={"name": "Mine"}, user=rep
    )
    assert action.touched == 3  # not more than CRM_BULK_INLINE_MAX

    response = client_as(rep).post(reverse("crm:bulk-action-undo", args=[action.pk]), follow=True)

    assert "3 clients restored." in response.content.decode()
    assert BulkAction.objects.get(pk=action.pk).status == BulkActionStatus.UNDONE


def test_with_the_broker_down_the_undo_is_refused_and_can_be_tried_again(
    manager, lyon, monkeypatch, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        action, _outcome = _submit("set_tier", manager, value="A")
    after = _tiers()
    _broker_down(monkeypatch, tasks.bulk_action_undo_task)

    with django_capture_on_commit_callbacks(execute=True):
        assert bulk.bulk_action_undo_submit(action_id=action.pk, user=manager) is None

    action.refresh_from_db()
    assert action.status == BulkActionStatus.DONE and action.undone_by is None and action.can_undo
    assert "could not be reached; nothing was restored" in action.error
    assert _tiers() == after


def test_an_undo_already_queued_is_not_queued_twice(manager, lyon, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        action, _outcome = _submit("set_tier", manager, value="A")
    with django_capture_on_commit_callbacks():
        bulk.bulk_action_undo_submit(action_id=action.pk, user=manager)

    with pytest.raises(bulk.BulkActionError, match="being undone"):
        bulk.bulk_action_undo_submit(action_id=action.pk, user=manager)


def test_an_action_still_queued_cannot_be_undone(manager, lyon, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        action, _outcome = _submit("set_tier", manager, value="A")
    with pytest.raises(bulk.BulkActionError, match="not applied"):
        bulk.bulk_action_undo_submit(action_id=action.pk, user=manager)


# --- A worker that died -----------------------------------------------------------------------------------------


def _running(user, *, minutes_ago: int, **fields) -> BulkAction:
    return BulkAction.objects.create(
        kind="set_tier",
        user=user,
        params={"value": "A"},
        total=5,
        client_ids=list(Client.objects.values_list("pk", flat=True)),
        started_at=timezone.now() - timedelta(minutes=minutes_ago),
        **{"status": BulkActionStatus.RUNNING, **fields},
    )


@contextmanager
def _workers_holding(*actions):
    """On PostgreSQL, another session holds the actions' locks, as their (live or hung) workers would."""
    if connection.vendor != "postgresql":
        yield
        return
    worker = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with worker.cursor() as cursor:
            for action in actions:
                cursor.execute("SELECT pg_advisory_lock(%s, %s)", [bulk.BULK_ACTION_LOCK_CLASS, action.pk])
        yield
    finally:
        with worker.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        worker.close()  # the worker dies: PostgreSQL ends its session and frees the locks
        _wait_until_gone(pid)


def _wait_until_gone(pid: int) -> None:
    """The server ends a closed session a moment later: wait for it, so that its locks are really free."""
    with connection.cursor() as cursor:
        for _attempt in range(100):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.05)
    raise AssertionError(f"the session {pid} did not end")


def test_an_action_running_longer_than_any_worker_may_is_failed(manager, lyon, settings):
    settings.CRM_BULK_STALE_SECONDS = 30 * 60
    stale, fresh = _running(manager, minutes_ago=31), _running(manager, minutes_ago=1)

    with _workers_holding(stale, fresh):
        assert bulk.bulk_action_fail_stale() == 1

    stale.refresh_from_db()
    assert stale.status == BulkActionStatus.FAILED
    assert stale.error == "The action stopped before the end (the worker was stopped); nothing was changed."
    assert stale.client_ids == []
    assert BulkAction.objects.get(pk=fresh.pk).status == BulkActionStatus.RUNNING


def test_the_redelivered_message_of_a_dead_worker_applies_nothing(client_as, manager, lyon):
    before = _tiers()
    stale = _running(manager, minutes_ago=60)

    assert tasks.bulk_action_apply_task.apply(args=[stale.pk]).get() == BulkActionStatus.FAILED

    assert _tiers() == before
    page = client_as(manager).get(reverse("crm:bulk-action-list")).content.decode()
    assert "Failed" in page and "the worker was stopped" in page


def test_an_undo_whose_worker_died_goes_back_to_done_and_can_be_tried_again(
    manager, lyon, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        action, _outcome = _submit("set_tier", manager, value="A")
    BulkAction.objects.filter(pk=action.pk).update(
        status=BulkActionStatus.UNDOING, undone_by=manager, undo_started_at=timezone.now() - timedelta(hours=1)
    )

    assert bulk.bulk_action_fail_stale() == 1

    action.refresh_from_db()
    assert action.status == BulkActionStatus.DONE and action.undone_by is None and action.can_undo
    assert "nothing was restored" in action.error


# --- On PostgreSQL: the worker's session lock, two deliveries at once -------------------------------------------


@pytest.mark.postgresql
def test_on_postgresql_a_running_action_is_failed_once_its_workers_lock_is_free(manager, lyon):
    action = _running(manager, minutes_ago=1)
    with _workers_holding(action):
        assert bulk.bulk_action_fail_stale() == 0  # its worker is alive
        assert BulkAction.objects.get(pk=action.pk).status == BulkActionStatus.RUNNING

    assert bulk.bulk_action_fail_stale() == 1
    assert BulkAction.objects.get(pk=action.pk).status == BulkActionStatus.FAILED


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("role_groups_restored")
def test_two_deliveries_at_once_apply_once():
    manager = UserFactory(username="martine", role=roles.MANAGER)
    clients = [ClientFactory(city="Lyon") for _ in range(6)]
    due = (timezone.now() + timedelta(days=1)).isoformat()
    action = BulkAction.objects.create(
        kind="plan_follow_ups",
        user=manager,
        params={"title": "Call", "due_at": due, "assign_to": "me", "notes": ""},
        status=BulkActionStatus.QUEUED,
        total=6,
        client_ids=[client.pk for client in clients],
    )
    barrier = threading.Barrier(2)

    def deliver():
        try:
            barrier.wait()
            bulk.bulk_action_run(action_id=action.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert BulkAction.objects.get(pk=action.pk).status == BulkActionStatus.DONE
    assert FollowUp.objects.filter(title="Call").count() == 6


def test_the_bench_command_measures_the_worker_path_and_leaves_the_portfolio_as_it_was(lyon):
    before, out = _tiers(), StringIO()

    call_command("bench_bulk", "--clients", "5", stdout=out)

    assert "owner, by a worker: done (5 touched) then undone; request queues apply" in out.getvalue()
    assert not BulkAction.objects.exists() and _tiers() == before
