"""Bulk actions on a selection of clients (a segment, the client list's filters, ticked rows), and their undo.

Each action is an object offered through ``settings.CRM_BULK_ACTIONS`` (dotted paths), so that another app adds
its own (``prospecting.bulk.ENROL_IN_CAMPAIGN``) without crm importing it. ``bulk_action_apply`` checks the role and
the size of the selection, then runs the action in one transaction with set-based writes in chunks: clients already
in the target state are neither counted nor recorded. The ``BulkAction`` row keeps what undoing needs (one
``BulkActionItem`` per client with the value before, or a key on the rows it created).

``bulk_action_undo`` locks the action row, so two undos at once restore once, and restores a client only when he
still holds the value the action set: a client edited since is left as he is, and counted.

A selection larger than ``CRM_BULK_INLINE_MAX`` does not run in the request: ``bulk_action_submit`` freezes it (the
ids of the clients matching now) on a queued ``BulkAction`` and a worker applies it (``bulk_action_run``), still in
one transaction; so does the undo of such an action (``bulk_action_undo_submit``, ``bulk_action_undo_run``). The
worker claims the action row by its status, so a message delivered twice applies once, and holds a PostgreSQL
session lock on it, so that ``bulk_action_fail_stale`` fails an action whose worker died instead of leaving it
running (elsewhere, or for a hung worker, after ``CRM_BULK_STALE_SECONDS``). ``bulk_action_recover``, run every few
minutes by the beat, does that without waiting for someone to open the pages, and sends again the applies and undos
whose message the broker lost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from functools import cache

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.module_loading import import_string
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm import roles
from crm.followups import follow_up_plan_many
from crm.forms import style_for_bootstrap
from crm.models import (
    BulkAction,
    BulkActionItem,
    BulkActionStatus,
    Client,
    ClientChange,
    FollowUp,
    Segment,
    Tag,
    Tier,
)
from crm.services import records_bulk_insert
from portfolio.queueing import (
    GIVE_UP,
    REQUEUE,
    enqueue_now,
    enqueue_on_commit,
    never_picked_up_message,
    requeue_decision,
    worker_lock,
)

logger = logging.getLogger(__name__)

CHUNK_SIZE = 2000
# pg_advisory_lock(BULK_ACTION_LOCK_CLASS, action id): held by the worker applying or undoing the action.
BULK_ACTION_LOCK_CLASS = 7_324_101


class BulkActionError(Exception):
    """A bulk action or an undo that cannot be done; the message is for the user."""


@dataclass
class Outcome:
    """What an action did: how many clients it touched, and notes for the user (clients skipped and why)."""

    touched: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class UndoOutcome:
    restored: int = 0
    left: int = 0


class BulkActionType:
    """One kind of bulk action. Subclasses give a form for the parameters and the set-based apply and undo."""

    key: str = ""
    label = ""
    allowed_roles: tuple[str, ...] = roles.ALL_ROLES
    undoable = True
    # False: CRM_BULK_MAX_CLIENTS does not apply (the export stops at CRM_EXPORT_MAX_ROWS instead).
    caps_selection = True
    # False: always applied in the request, whatever the size of the selection (the export streams its answer).
    background = True

    class Form(forms.Form):
        pass

    def form(self, data=None, *, user) -> forms.Form:
        return style_for_bootstrap(self.Form(data))

    def params(self, cleaned_data: dict) -> dict:
        """The form's values as plain JSON."""
        return {}

    def describe(self, params: dict) -> str:
        return str(self.label)

    def apply(self, *, action: BulkAction, clients: models.QuerySet, user) -> Outcome:
        raise NotImplementedError

    def undo(self, *, action: BulkAction, user) -> UndoOutcome:
        raise BulkActionError(gettext("This action cannot be undone."))


@cache
def _registry() -> dict[str, BulkActionType]:
    actions = [import_string(path) for path in settings.CRM_BULK_ACTIONS]
    return {action.key: action for action in actions}


def bulk_actions_for(user) -> list[BulkActionType]:
    """The actions the menu offers to this user, in the order of the setting."""
    role = roles.role_of(user)
    return [action for action in _registry().values() if role in action.allowed_roles]


def bulk_action_labels() -> dict[str, str]:
    return {key: str(action.label) for key, action in _registry().items()}


def bulk_action_type(key: str) -> BulkActionType | None:
    return _registry().get(key)


def chunks(items: list, size: int = CHUNK_SIZE) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def selected_client_ids(clients: models.QuerySet) -> list[int]:
    return list(clients.order_by("pk").values_list("pk", flat=True))


def selection_chunks(action: BulkAction, clients: models.QuerySet) -> Iterator[list[int]]:
    """The ids of the selection in chunks; once a chunk is processed, a worker shows the progress."""
    done = 0
    for chunk in chunks(selected_client_ids(clients)):
        yield chunk
        done += len(chunk)
        _report_progress(action, done)


def _report_progress(action: BulkAction, done: int) -> None:
    writer = getattr(action, "progress_writer", None)
    if writer is not None:
        writer(done)


def runs_in_background(action_type: BulkActionType, count: int) -> bool:
    """Whether a selection of ``count`` clients is applied by a worker rather than in the request."""
    return action_type.background and count > settings.CRM_BULK_INLINE_MAX


def _checked_selection(kind: str, clients: models.QuerySet, user) -> tuple[BulkActionType, models.QuerySet]:
    """The action type and the clients of the selection the user may edit, once the role is checked."""
    action_type = bulk_action_type(kind)
    if action_type is None:
        raise BulkActionError(gettext("Unknown bulk action."))
    if roles.role_of(user) not in action_type.allowed_roles:
        raise BulkActionError(gettext("Your role may not use this bulk action."))
    clients = clients.filter(pk__in=Client.objects.editable_by(user).values("pk"))
    return action_type, clients


def _check_size(action_type: BulkActionType, count: int) -> None:
    if action_type.caps_selection and count > settings.CRM_BULK_MAX_CLIENTS:
        raise BulkActionError(
            gettext("This selection holds %(count)d clients; a bulk action takes %(max)d at most: narrow it.")
            % {"count": count, "max": settings.CRM_BULK_MAX_CLIENTS}
        )


def _new_action(
    kind: str, action_type: BulkActionType, *, params: dict, user, selection: str, submission: str = "", **fields
) -> BulkAction:
    """Record the action; the same form submitted twice (a double click) is refused by the unique index, the first
    one stands: a second request sent at once waits on the index until the first commits, then fails here."""
    try:
        with transaction.atomic():
            return BulkAction.objects.create(
                kind=kind,
                user=user,
                selection=selection[:4000],
                params=params,
                description=action_type.describe(params)[:255],
                undoable=action_type.undoable,
                submission=submission[:36],
                **fields,
            )
    except IntegrityError as error:
        raise BulkActionError(
            gettext("This form was already sent: the action was recorded once (see the recent bulk actions).")
        ) from error


def bulk_action_apply(
    *, kind: str, clients: models.QuerySet, params: dict, user, selection: str = ""
) -> tuple[BulkAction, Outcome]:
    """Apply the action ``kind`` to ``clients`` (those of them the user may edit) now, and record it.

    Raises ``BulkActionError`` for a role that may not use the action or a selection too large.
    """
    action_type, clients = _checked_selection(kind, clients, user)
    count = clients.count()
    _check_size(action_type, count)
    return _apply_now(kind, action_type, clients, count, params=params, user=user, selection=selection)


def _apply_now(
    kind, action_type, clients, count, *, params, user, selection, submission=""
) -> tuple[BulkAction, Outcome]:
    with transaction.atomic():
        action = _new_action(
            kind,
            action_type,
            params=params,
            user=user,
            selection=selection,
            submission=submission,
            total=count,
            started_at=timezone.now(),
        )
        outcome = _apply(action, action_type, clients, user)
    return action, outcome


def _apply(action: BulkAction, action_type: BulkActionType, clients: models.QuerySet, user) -> Outcome:
    outcome = action_type.apply(action=action, clients=clients, user=user)
    action.touched, action.notes = outcome.touched, " ".join(outcome.notes)
    action.status, action.progress, action.finished_at = BulkActionStatus.DONE, action.total, timezone.now()
    action.client_ids = []
    action.save(update_fields=["touched", "notes", "status", "progress", "finished_at", "client_ids", "params"])
    return outcome


def bulk_action_submit(
    *, kind: str, clients: models.QuerySet, params: dict, user, selection: str = "", submission: str = ""
) -> tuple[BulkAction, Outcome | None]:
    """Apply a small selection now (as ``bulk_action_apply``); queue a large one for a worker, frozen as the ids
    of the clients matching now. The outcome is None when queued: the action's status tells what becomes of it."""
    from crm.tasks import bulk_action_apply_task

    action_type, clients = _checked_selection(kind, clients, user)
    count = clients.count()
    _check_size(action_type, count)
    if not runs_in_background(action_type, count):
        return _apply_now(
            kind, action_type, clients, count, params=params, user=user, selection=selection, submission=submission
        )
    client_ids = selected_client_ids(clients)
    with transaction.atomic():
        action = _new_action(
            kind,
            action_type,
            params=params,
            user=user,
            selection=selection,
            submission=submission,
            status=BulkActionStatus.QUEUED,
            total=len(client_ids),
            client_ids=client_ids,
        )
        action_id = action.pk
        enqueue_on_commit(bulk_action_apply_task, action_id, on_failure=lambda error: _fail_unqueued(action_id))
    return action, None


def _fail_unqueued(action_id: int) -> None:
    BulkAction.objects.filter(pk=action_id, status=BulkActionStatus.QUEUED).update(
        status=BulkActionStatus.FAILED,
        finished_at=timezone.now(),
        client_ids=[],
        error=gettext("The background workers could not be reached; nothing was changed. Try again later."),
    )


def _fail_unqueued_undo(action_id: int) -> None:
    BulkAction.objects.filter(pk=action_id, status=BulkActionStatus.UNDO_QUEUED).update(
        status=BulkActionStatus.DONE,
        undone_by=None,
        error=gettext("The background workers could not be reached; nothing was restored. Undo it again later."),
    )


class _ProgressWriter:
    """Writes the clients processed to the action through a second connection: the apply's own transaction hides
    its writes until it commits. Only on PostgreSQL; SQLite allows one writer, so the page shows no figure."""

    def __init__(self, action_id: int) -> None:
        self.action_id = action_id
        self.connection = None
        if connection.vendor == "postgresql" and not connection.in_atomic_block:
            self.connection = connections.create_connection(DEFAULT_DB_ALIAS)

    def __call__(self, done: int) -> None:
        if self.connection is not None:
            with self.connection.cursor() as cursor:
                cursor.execute("UPDATE crm_bulkaction SET progress = %s WHERE id = %s", [done, self.action_id])

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def _claim(action_id: int, *, waiting: str, running: str, started_field: str) -> bool:
    """Move the action from ``waiting`` to ``running``; False when it is no longer waiting (done, or gone)."""
    with transaction.atomic():
        action = BulkAction.objects.select_for_update().filter(pk=action_id).first()
        if action is None or action.status != waiting:
            return False
        action.status, action.progress, action.error = running, 0, ""
        setattr(action, started_field, timezone.now())
        action.save(update_fields=["status", "progress", "error", started_field])
    return True


def _run_claimed(action_id: int, status: str, work: Callable[[BulkAction], None], fail: Callable[[str], None]) -> None:
    """Run ``work`` on the claimed action in one transaction; on any error nothing is written and ``fail`` says why."""
    writer = _ProgressWriter(action_id)
    try:
        with transaction.atomic():
            # Not locked: the progress writer updates this row; the session lock keeps other workers out.
            action = BulkAction.objects.get(pk=action_id)
            if action.status != status:
                return  # failed as stale meanwhile
            action.progress_writer = writer
            work(action)
    except BulkActionError as error:
        fail(str(error))
    except Exception as error:
        logger.exception("bulk action %s failed", action_id)
        fail(str(error)[:1000])
    finally:
        writer.close()


def _runner(action: BulkAction) -> tuple[BulkActionType, object]:
    action_type = bulk_action_type(action.kind)
    if action_type is None:
        raise BulkActionError(gettext("Unknown bulk action."))
    user = action.user
    if user is None or not user.is_active or roles.role_of(user) not in action_type.allowed_roles:
        raise BulkActionError(gettext("The user who submitted this action may no longer use it."))
    return action_type, user


def bulk_action_run(*, action_id: int) -> BulkAction | None:
    """Apply a queued action (by a worker) all or nothing to its frozen selection, minus the clients its author may
    no longer edit. Nothing happens when the action is no longer queued: a message delivered twice applies once."""
    bulk_action_fail_stale()

    def work(action: BulkAction) -> None:
        action_type, user = _runner(action)
        editable = Client.objects.editable_by(user).values("pk")
        clients = Client.objects.filter(pk__in=action.client_ids).filter(pk__in=editable)
        _apply(action, action_type, clients, user)

    def fail(reason: str) -> None:
        BulkAction.objects.filter(pk=action_id, status=BulkActionStatus.RUNNING).update(
            status=BulkActionStatus.FAILED,
            finished_at=timezone.now(),
            client_ids=[],
            error=gettext("The action failed and nothing was changed: %(error)s") % {"error": reason},
        )

    with worker_lock(BULK_ACTION_LOCK_CLASS, action_id):
        waiting, running = BulkActionStatus.QUEUED, BulkActionStatus.RUNNING
        if _claim(action_id, waiting=waiting, running=running, started_field="started_at"):
            _run_claimed(action_id, running, work, fail)
    return BulkAction.objects.filter(pk=action_id).first()


def bulk_action_fail_stale(*, now: datetime | None = None) -> int:
    """Fail the applies and undos whose worker died (their writes rolled back): on PostgreSQL as soon as the
    worker's lock is free, everywhere once they are older than ``CRM_BULK_STALE_SECONDS``."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.CRM_BULK_STALE_SECONDS)
    running = BulkAction.objects.filter(status=BulkActionStatus.RUNNING)
    undoing = BulkAction.objects.filter(status=BulkActionStatus.UNDOING)
    stale = set(running.filter(started_at__lt=cutoff).values_list("pk", flat=True))
    stale |= set(undoing.filter(undo_started_at__lt=cutoff).values_list("pk", flat=True))
    if connection.vendor == "postgresql":
        in_hand = BulkAction.objects.filter(status__in=(BulkActionStatus.RUNNING, BulkActionStatus.UNDOING))
        for action_id in in_hand.values_list("pk", flat=True):
            with worker_lock(BULK_ACTION_LOCK_CLASS, action_id, wait=False) as free:
                if free:
                    stale.add(action_id)
    return sum(_fail_stopped(action_id) for action_id in sorted(stale))


def bulk_action_recover(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic recovery pass: fail the actions whose worker died (``bulk_action_fail_stale``), send again the
    applies and undos still waiting for a worker (a message the broker lost), give up those never picked up."""
    from crm.tasks import bulk_action_apply_task, bulk_action_undo_task

    now = now or timezone.now()
    counts = {"failed": bulk_action_fail_stale(now=now), "requeued": 0, "given_up": 0}
    counts["pruned"] = bulk_action_items_prune(now=now)
    waiting = BulkAction.objects.filter(status__in=(BulkActionStatus.QUEUED, BulkActionStatus.UNDO_QUEUED))
    for action_id, status, created_at, undo_queued_at in waiting.values_list(
        "pk", "status", "created_at", "undo_started_at"
    ):
        undo = status == BulkActionStatus.UNDO_QUEUED
        waiting_since = (undo_queued_at or created_at) if undo else created_at
        decision = requeue_decision(waiting_since, now=now)
        if decision == REQUEUE:
            counts["requeued"] += enqueue_now(bulk_action_undo_task if undo else bulk_action_apply_task, action_id)
        elif decision == GIVE_UP:
            counts["given_up"] += _give_up(action_id, undo=undo)
    return counts


def bulk_action_items_prune(*, now: datetime | None = None) -> int:
    """Delete what undoing needs once it can no longer be used: the items of actions undone, failed, or past their
    undo window (an undo queued or running keeps them). Returns how many items went."""
    now = now or timezone.now()
    finished = BulkAction.objects.filter(
        models.Q(status__in=(BulkActionStatus.UNDONE, BulkActionStatus.FAILED))
        | models.Q(created_at__lt=now - timedelta(hours=settings.CRM_BULK_UNDO_HOURS))
    ).exclude(status__in=(BulkActionStatus.UNDO_QUEUED, BulkActionStatus.UNDOING))
    deleted, _by_model = BulkActionItem.objects.filter(action__in=finished.values("pk")).delete()
    return deleted


def _give_up(action_id: int, *, undo: bool) -> int:
    if undo:
        return BulkAction.objects.filter(pk=action_id, status=BulkActionStatus.UNDO_QUEUED).update(
            status=BulkActionStatus.DONE, undone_by=None, error=never_picked_up_message()
        )
    return BulkAction.objects.filter(pk=action_id, status=BulkActionStatus.QUEUED).update(
        status=BulkActionStatus.FAILED, finished_at=timezone.now(), client_ids=[], error=never_picked_up_message()
    )


def _fail_stopped(action_id: int) -> int:
    applying = BulkAction.objects.filter(pk=action_id, status=BulkActionStatus.RUNNING).update(
        status=BulkActionStatus.FAILED,
        finished_at=timezone.now(),
        client_ids=[],
        error=gettext("The action stopped before the end (the worker was stopped); nothing was changed."),
    )
    return applying + BulkAction.objects.filter(pk=action_id, status=BulkActionStatus.UNDOING).update(
        status=BulkActionStatus.DONE,
        undone_by=None,
        error=gettext("The undo stopped before the end (the worker was stopped); nothing was restored."),
    )


def _undo_checked(action: BulkAction | None, user) -> BulkActionType:
    """The action's type, once it is sure this user may undo it now; raises ``BulkActionError`` otherwise."""
    if action is None or not BulkAction.objects.visible_to(user).filter(pk=action.pk).exists():
        raise BulkActionError(gettext("This bulk action does not exist or is not yours."))
    if not action.undoable:
        raise BulkActionError(gettext("This action cannot be undone."))
    if action.undone_at is not None or action.status == BulkActionStatus.UNDONE:
        raise BulkActionError(gettext("This action was already undone."))
    if action.status in (BulkActionStatus.UNDO_QUEUED, BulkActionStatus.UNDOING):
        raise BulkActionError(gettext("This action is being undone."))
    if action.status != BulkActionStatus.DONE:
        raise BulkActionError(gettext("This action was not applied: there is nothing to undo."))
    if timezone.now() >= action.undo_deadline:
        raise BulkActionError(
            ngettext(
                "This action is more than %(hours)d hour old: it can no longer be undone.",
                "This action is more than %(hours)d hours old: it can no longer be undone.",
                settings.CRM_BULK_UNDO_HOURS,
            )
            % {"hours": settings.CRM_BULK_UNDO_HOURS}
        )
    action_type = bulk_action_type(action.kind)
    if action_type is None:
        raise BulkActionError(gettext("This action cannot be undone."))
    if roles.role_of(user) not in action_type.allowed_roles:
        raise BulkActionError(gettext("Your role may not use this bulk action."))
    return action_type


def bulk_action_undo(*, action_id: int, user) -> UndoOutcome:
    """Undo a bulk action once, now, within ``CRM_BULK_UNDO_HOURS``; only its author, a manager or an admin may."""
    with transaction.atomic():
        action = BulkAction.objects.select_for_update().filter(pk=action_id).first()
        action_type = _undo_checked(action, user)
        return _undo(action, action_type, user)


def _undo(action: BulkAction, action_type: BulkActionType, user) -> UndoOutcome:
    outcome = action_type.undo(action=action, user=user)
    action.status, action.undone_at, action.undone_by = BulkActionStatus.UNDONE, timezone.now(), user
    action.restored, action.left_as_they_are, action.progress = outcome.restored, outcome.left, action.touched
    action.save(update_fields=["status", "undone_at", "undone_by", "restored", "left_as_they_are", "progress"])
    return outcome


def bulk_action_undo_submit(*, action_id: int, user) -> UndoOutcome | None:
    """Undo now an action that touched up to ``CRM_BULK_INLINE_MAX`` clients; queue the undo of a larger one for a
    worker and return None (the action's status tells what becomes of it)."""
    from crm.tasks import bulk_action_undo_task

    with transaction.atomic():
        action = BulkAction.objects.select_for_update().filter(pk=action_id).first()
        action_type = _undo_checked(action, user)
        if action.touched <= settings.CRM_BULK_INLINE_MAX:
            return _undo(action, action_type, user)
        action.status, action.undone_by, action.progress, action.error = BulkActionStatus.UNDO_QUEUED, user, 0, ""
        # Until a worker claims the undo (and sets it again), undo_started_at says since when it waits for one.
        action.undo_started_at = timezone.now()
        action.save(update_fields=["status", "undone_by", "progress", "error", "undo_started_at"])
        enqueue_on_commit(bulk_action_undo_task, action_id, on_failure=lambda error: _fail_unqueued_undo(action_id))
    return None


def bulk_action_undo_run(*, action_id: int) -> BulkAction | None:
    """Undo (by a worker) an action whose undo was queued, all or nothing, as the user who asked for it; nothing
    happens when it is no longer waiting for its undo."""
    bulk_action_fail_stale()

    def work(action: BulkAction) -> None:
        action_type = bulk_action_type(action.kind)
        if action_type is None or action.undone_by is None:
            raise BulkActionError(gettext("This action cannot be undone."))
        # Checked again: a requester without a role would see none of the clients and restore nothing, for good.
        if roles.role_of(action.undone_by) not in action_type.allowed_roles:
            raise BulkActionError(gettext("The user who asked for the undo may no longer use it."))
        _undo(action, action_type, action.undone_by)

    def fail(reason: str) -> None:
        BulkAction.objects.filter(pk=action_id, status=BulkActionStatus.UNDOING).update(
            status=BulkActionStatus.DONE,
            undone_by=None,
            error=gettext("The undo failed and nothing was restored: %(error)s") % {"error": reason},
        )

    with worker_lock(BULK_ACTION_LOCK_CLASS, action_id):
        waiting, running = BulkActionStatus.UNDO_QUEUED, BulkActionStatus.UNDOING
        if _claim(action_id, waiting=waiting, running=running, started_field="undo_started_at"):
            _run_claimed(action_id, running, work, fail)
    return BulkAction.objects.filter(pk=action_id).first()


def undo_message(outcome: UndoOutcome) -> str:
    message = ngettext("%(count)d client restored.", "%(count)d clients restored.", outcome.restored) % {
        "count": outcome.restored
    }
    if outcome.left:
        message += " " + ngettext(
            "%(count)d client edited since was left as it is.",
            "%(count)d clients edited since were left as they are.",
            outcome.left,
        ) % {"count": outcome.left}
    return message


def write_items(action: BulkAction, rows: Iterable[tuple[int, dict]]) -> None:
    records_bulk_insert(objects=[BulkActionItem(action=action, client_id=pk, previous=value) for pk, value in rows])


def _history(user, now: datetime, field_name: str, rows: Iterable[tuple[int, str, str]]) -> None:
    records_bulk_insert(
        objects=[
            ClientChange(client_id=pk, user=user, changed_at=now, field=field_name, old_value=old, new_value=new)
            for pk, old, new in rows
        ]
    )


def undo_candidates(action: BulkAction, user) -> Iterator[list[tuple[int, dict]]]:
    """The action's items, in chunks, for the clients the user may still edit (the others count as left)."""
    items = action.items.order_by("client_id")
    if roles.role_of(user) not in roles.MANAGERS:
        items = items.filter(client__in=Client.objects.editable_by(user))
    pairs, done = list(items.values_list("client_id", "previous")), 0
    for chunk in chunks(pairs):
        yield chunk
        done += len(chunk)
        _report_progress(action, done)


# --- Setting a field: owner, tier -----------------------------------------------------------------------------


class FieldAction(BulkActionType):
    """Set one field of the client to the same value for the whole selection."""

    field_name = ""
    attname = ""

    def display(self, values: Iterable) -> dict:
        """The history's text for each stored value."""
        return {value: "" if value is None else str(value) for value in values}

    def restorable(self, values: set) -> set:
        """The values among ``values`` that the field can still take."""
        return values

    def apply(self, *, action, clients, user) -> Outcome:
        target = action.params["value"]
        now, touched = timezone.now(), 0
        for chunk in selection_chunks(action, clients):
            current = list(
                Client.objects.filter(pk__in=chunk)
                .exclude(**{self.attname: target})
                .select_for_update()
                .values_list("pk", self.attname)
            )
            if not current:
                continue
            Client.objects.filter(pk__in=[pk for pk, _old in current]).update(
                **{self.attname: target, "updated_at": now}
            )
            names = self.display({target, *(old for _pk, old in current)})
            _history(user, now, self.field_name, ((pk, names[old], names[target]) for pk, old in current))
            write_items(action, ((pk, {"value": old}) for pk, old in current))
            touched += len(current)
        return Outcome(touched=touched)

    def undo(self, *, action, user) -> UndoOutcome:
        target = action.params["value"]
        now, restored = timezone.now(), 0
        for chunk in undo_candidates(action, user):
            previous = {pk: value["value"] for pk, value in chunk}
            # A value that can no longer be written back (an owner whose account was deleted) is left as it is.
            possible = self.restorable(set(previous.values()))
            previous = {pk: value for pk, value in previous.items() if value in possible}
            unchanged = list(
                Client.objects.filter(pk__in=list(previous), **{self.attname: target})
                .select_for_update()
                .values_list("pk", flat=True)
            )
            by_value: dict = {}
            for pk in unchanged:
                by_value.setdefault(previous[pk], []).append(pk)
            for value, pks in by_value.items():
                Client.objects.filter(pk__in=pks).update(**{self.attname: value, "updated_at": now})
            names = self.display({target, *by_value})
            _history(user, now, self.field_name, ((pk, names[target], names[previous[pk]]) for pk in unchanged))
            restored += len(unchanged)
        return UndoOutcome(restored=restored, left=action.touched - restored)


class OwnerForm(forms.Form):
    owner = forms.ModelChoiceField(label=_("New owner"), queryset=get_user_model().objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        users = get_user_model().objects.filter(is_active=True, groups__name__in=roles.ROLES).distinct()
        self.fields["owner"].queryset = users.order_by("last_name", "first_name", "username")
        self.fields["owner"].label_from_instance = lambda user: user.get_full_name() or user.get_username()


class AssignOwner(FieldAction):
    key = "assign_owner"
    label = _("Assign an owner")
    allowed_roles = roles.MANAGERS
    field_name, attname = "owner", "owner_id"
    Form = OwnerForm

    def params(self, cleaned_data):
        owner = cleaned_data["owner"]
        return {"value": owner.pk, "name": owner.get_full_name() or owner.get_username()}

    def describe(self, params):
        return gettext("Owner: %(name)s") % {"name": params["name"]}

    def restorable(self, values):
        users = set(get_user_model().objects.filter(pk__in=[v for v in values if v]).values_list("pk", flat=True))
        return {value for value in values if value is None or value in users}

    def display(self, values):
        # The history shows a user as client_update does: str(user), the username.
        users = dict(get_user_model().objects.filter(pk__in=[v for v in values if v]).values_list("pk", "username"))
        return {value: users.get(value, "") for value in values}


class TierForm(forms.Form):
    tier = forms.ChoiceField(label=_("Tier"), choices=Tier.choices)


class SetTier(FieldAction):
    key = "set_tier"
    label = _("Set the tier")
    allowed_roles = roles.MANAGERS
    field_name = attname = "tier"
    Form = TierForm

    def params(self, cleaned_data):
        return {"value": cleaned_data["tier"]}

    def describe(self, params):
        return gettext("Tier: %(tier)s") % {"tier": Tier(params["value"]).label}


# --- Tags --------------------------------------------------------------------------------------------------------

Through = Client.tags.through


def _tag_names(client_ids: list[int]) -> dict[int, list[str]]:
    names: dict[int, list[str]] = {pk: [] for pk in client_ids}
    for pk, name in Through.objects.filter(client_id__in=client_ids).values_list("client_id", "tag__name"):
        names[pk].append(name)
    return names


def _tags_history(user, now, client_ids: list[int], tag_name: str, *, added: bool) -> None:
    """One "tags" history row per client, with the whole list before and after, as client_update writes it."""
    after = _tag_names(client_ids)
    rows = []
    for pk, names in after.items():
        before = [name for name in names if name != tag_name] if added else [*names, tag_name]
        rows.append((pk, ", ".join(sorted(before)), ", ".join(sorted(names))))
    _history(user, now, "tags", rows)


def _tag_add(tag: Tag, client_ids: list[int]) -> list[int]:
    """Give the tag to those clients lacking it; returns the ids of the clients that got it."""
    having = set(Through.objects.filter(tag=tag, client_id__in=client_ids).values_list("client_id", flat=True))
    lacking = [pk for pk in client_ids if pk not in having]
    Through.objects.bulk_create([Through(client_id=pk, tag=tag) for pk in lacking], ignore_conflicts=True)
    return lacking


def _tag_remove(tag: Tag, client_ids: list[int]) -> list[int]:
    rows = Through.objects.filter(tag=tag, client_id__in=client_ids)
    having = list(rows.values_list("client_id", flat=True))
    rows.delete()
    return having


def _lock(client_ids: list[int]) -> None:
    """Lock the clients' rows, so two bulk actions on the same clients' tags take turns."""
    list(Client.objects.filter(pk__in=client_ids).select_for_update().values_list("pk", flat=True))


class TagAction(BulkActionType):
    adds = True

    def describe(self, params):
        template = gettext("Tag added: %(tag)s") if self.adds else gettext("Tag removed: %(tag)s")
        return template % {"tag": params["name"]}

    def _tag(self, params) -> Tag | None:
        return Tag.objects.filter(pk=params["tag"]).first()

    def apply(self, *, action, clients, user) -> Outcome:
        tag, now, touched = self._target_tag(action), timezone.now(), 0
        change = _tag_add if self.adds else _tag_remove
        for chunk in selection_chunks(action, clients):
            _lock(chunk)
            changed = change(tag, chunk)
            if changed:
                _tags_history(user, now, changed, tag.name, added=self.adds)
                write_items(action, ((pk, {}) for pk in changed))
                touched += len(changed)
        return Outcome(touched=touched)

    def undo(self, *, action, user) -> UndoOutcome:
        tag, now, restored = self._tag(action.params), timezone.now(), 0
        if tag is None:  # deleted since: nothing left to restore
            return UndoOutcome(restored=0, left=action.touched)
        change = _tag_remove if self.adds else _tag_add
        for chunk in undo_candidates(action, user):
            client_ids = [pk for pk, _previous in chunk]
            _lock(client_ids)
            changed = change(tag, client_ids)
            if changed:
                _tags_history(user, now, changed, tag.name, added=not self.adds)
                restored += len(changed)
        return UndoOutcome(restored=restored, left=action.touched - restored)


class AddTagForm(forms.Form):
    tag = forms.CharField(
        label=_("Tag"), max_length=80, help_text=_("An existing tag, or a new one created with this name.")
    )

    def clean_tag(self) -> str:
        name = " ".join(self.cleaned_data["tag"].split())
        if not name:
            raise forms.ValidationError(_("Give the tag a name."))
        return name


class AddTag(TagAction):
    key = "add_tag"
    label = _("Add a tag")
    Form = AddTagForm

    def params(self, cleaned_data):
        return {"name": cleaned_data["tag"]}

    def _target_tag(self, action) -> Tag:
        """The tag of that name whatever its case, created when there is none; its id goes into the params."""
        tag, created = Tag.objects.filter(name__iexact=action.params["name"]).first(), False
        if tag is None:
            tag, created = Tag.objects.get_or_create(name=action.params["name"])
        action.params = {"tag": tag.pk, "name": tag.name, **({"created": True} if created else {})}
        return tag

    def undo(self, *, action, user) -> UndoOutcome:
        outcome = super().undo(action=action, user=user)
        if action.params.get("created"):
            _tag_delete_if_unused(action.params["tag"])
        return outcome


def _tag_delete_if_unused(tag_id: int) -> None:
    """Delete a tag an action created, once no client holds it and no segment filters on it."""
    # Locked: giving the tag to a client waits on this row, so none gets it between the check and the delete.
    tag = Tag.objects.select_for_update().filter(pk=tag_id).first()
    if tag is None or Through.objects.filter(tag=tag).exists():
        return
    if Segment.objects.filter(filters__tag=str(tag.pk)).exists():
        return
    tag.delete()


class RemoveTagForm(forms.Form):
    tag = forms.ModelChoiceField(label=_("Tag"), queryset=Tag.objects.all())


class RemoveTag(TagAction):
    key = "remove_tag"
    label = _("Remove a tag")
    adds = False
    Form = RemoveTagForm

    def params(self, cleaned_data):
        return {"tag": cleaned_data["tag"].pk, "name": cleaned_data["tag"].name}

    def _target_tag(self, action) -> Tag:
        tag = self._tag(action.params)
        if tag is None:
            raise BulkActionError(gettext("This tag was deleted meanwhile."))
        return tag


# --- Follow-ups ---------------------------------------------------------------------------------------------------

ASSIGN_TO_OWNER, ASSIGN_TO_ME = "owner", "me"


def _tomorrow_morning() -> datetime:
    return timezone.make_aware(datetime.combine(timezone.localdate() + timedelta(days=1), time(9, 0)))


class FollowUpsForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200)
    due_at = forms.DateTimeField(
        label=_("Due"),
        initial=_tomorrow_morning,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    assign_to = forms.ChoiceField(
        label=_("Assign to"),
        choices=[(ASSIGN_TO_OWNER, _("Each client's owner (me when there is none)")), (ASSIGN_TO_ME, _("Me"))],
        initial=ASSIGN_TO_OWNER,
    )
    notes = forms.CharField(label=_("Notes"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class PlanFollowUps(BulkActionType):
    """One follow-up per client, keyed ``bulk:<action id>`` so that the undo finds exactly the ones it planned."""

    key = "plan_follow_ups"
    label = _("Plan a follow-up")
    Form = FollowUpsForm

    def params(self, cleaned_data):
        return {**cleaned_data, "due_at": cleaned_data["due_at"].isoformat()}

    def describe(self, params):
        return gettext("Follow-up: %(title)s") % {"title": params["title"]}

    @staticmethod
    def origin_key(action: BulkAction) -> str:
        return f"bulk:{action.pk}"

    def apply(self, *, action, clients, user) -> Outcome:
        params = action.params
        rows = clients.order_by("pk").values_list("pk", "owner_id")
        if params["assign_to"] == ASSIGN_TO_ME:
            assignments = [(pk, user.pk) for pk, _owner in rows]
        else:
            assignments = [(pk, owner or user.pk) for pk, owner in rows]
        planned = follow_up_plan_many(
            assignments=assignments,
            due_at=parse_datetime(params["due_at"]),
            title=params["title"],
            notes=params["notes"],
            created_by=user,
            origin_key=self.origin_key(action),
        )
        return Outcome(touched=planned)

    def undo(self, *, action, user) -> UndoOutcome:
        """Delete the follow-ups it planned that are still open; those done or cancelled since stay."""
        planned = FollowUp.objects.open().filter(origin_key=self.origin_key(action))
        if roles.role_of(user) not in roles.MANAGERS:
            planned = planned.filter(client__in=Client.objects.editable_by(user))
        # Locked first: the delete itself reads the rows and then deletes them by id, so one closed meanwhile went too.
        still_open = list(planned.select_for_update().values_list("pk", flat=True))
        restored = FollowUp.objects.filter(pk__in=still_open).delete()[1].get(FollowUp._meta.label, 0)
        return UndoOutcome(restored=restored, left=action.touched - restored)


# --- Export -------------------------------------------------------------------------------------------------------


class Export(BulkActionType):
    """Logged with its count; the view streams the CSV through crm.exports. Nothing to undo."""

    key = "export"
    label = _("Export as CSV")
    allowed_roles = roles.MANAGERS
    undoable = False
    caps_selection = False
    background = False

    def apply(self, *, action, clients, user) -> Outcome:
        return Outcome(touched=min(clients.count(), settings.CRM_EXPORT_MAX_ROWS))


ASSIGN_OWNER = AssignOwner()
ADD_TAG = AddTag()
REMOVE_TAG = RemoveTag()
SET_TIER = SetTier()
PLAN_FOLLOW_UPS = PlanFollowUps()
EXPORT = Export()
