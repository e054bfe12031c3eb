"""``manage.py bench_bulk``: time of each bulk action, and of its undo, over a large selection of clients.

Runs against the configured database (meant for PostgreSQL holding a portfolio made by ``generate_portfolio``) as a
manager, on the first ``--clients`` clients by id. Everything happens in one transaction rolled back at the end:
the portfolio is left as it was. Prints, per action, the clients touched, the seconds and the queries; then, for a
selection above ``CRM_BULK_INLINE_MAX``, the seconds the request takes to queue the owner assignment and its undo,
and the seconds the worker's service then takes (run here in-process: the task is never sent).
"""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm import bulk, roles
from crm.models import Client, Tag

BENCH_USER = "bench_bulk_manager"


class Rollback(Exception):
    pass


class Command(BaseCommand):
    help = (
        "Apply then undo each crm bulk action (owner, tier, tags, follow-ups) to the first N clients and print the "
        "time and queries of each; the changes are rolled back."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=50_000, help="size of the selection")

    def handle(self, *args, **options):
        size = options["clients"]
        if size < 1:
            raise CommandError("--clients must be at least 1.")
        if Client.objects.count() < size:
            raise CommandError(f"The portfolio holds fewer than {size} clients: run generate_portfolio first.")
        try:
            with transaction.atomic():
                self._run(size)
                raise Rollback
        except Rollback:
            self.stdout.write("Rolled back: the portfolio is unchanged.")

    def _run(self, size: int) -> None:
        user = get_user_model().objects.create(username=BENCH_USER)
        user.groups.add(Group.objects.get_or_create(name=roles.MANAGER)[0])
        last_pk = Client.objects.order_by("pk").values_list("pk", flat=True)[size - 1]
        clients = Client.objects.filter(pk__lte=last_pk)
        tag = Tag.objects.create(name="bench-bulk-tag")
        due = (timezone.now() + timedelta(days=1)).isoformat()
        runs = [
            ("assign_owner", {"value": user.pk, "name": user.username}),
            ("set_tier", {"value": "A"}),
            ("add_tag", {"name": tag.name}),
            ("remove_tag", {"tag": tag.pk, "name": tag.name}),
            ("plan_follow_ups", {"title": "Bench", "due_at": due, "assign_to": "me", "notes": ""}),
        ]
        self.stdout.write(f"{'action':<18}{'touched':>9}{'apply s':>9}{'queries':>9}{'undo s':>9}{'queries':>9}")
        for kind, params in runs:
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as applied:
                action, outcome = bulk.bulk_action_apply(kind=kind, clients=clients, params=params, user=user)
            apply_seconds = time.perf_counter() - started
            started = time.perf_counter()
            with CaptureQueriesContext(connection) as undone:
                bulk.bulk_action_undo(action_id=action.pk, user=user)
            undo_seconds = time.perf_counter() - started
            if kind == "add_tag":  # the tag goes back on, for remove_tag to take it off
                bulk.bulk_action_apply(kind=kind, clients=clients, params=params, user=user)
            self.stdout.write(
                f"{kind:<18}{outcome.touched:>9}{apply_seconds:>9.2f}{len(applied):>9}"
                f"{undo_seconds:>9.2f}{len(undone):>9}"
            )
        self._background(clients, user, runs[0][1])

    def _background(self, clients, user, params) -> None:
        """The owner assignment through the worker path: what the request does, then what the worker does."""
        if clients.count() <= settings.CRM_BULK_INLINE_MAX:
            self.stdout.write(f"Selection within CRM_BULK_INLINE_MAX ({settings.CRM_BULK_INLINE_MAX}): applied inline.")
            return
        timings = []
        started = time.perf_counter()
        action, _outcome = bulk.bulk_action_submit(kind="assign_owner", clients=clients, params=params, user=user)
        timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        action = bulk.bulk_action_run(action_id=action.pk)
        timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        bulk.bulk_action_undo_submit(action_id=action.pk, user=user)
        timings.append(time.perf_counter() - started)
        started = time.perf_counter()
        undone = bulk.bulk_action_undo_run(action_id=action.pk)
        timings.append(time.perf_counter() - started)
        self.stdout.write(
            f"owner, by a worker: {action.status} ({action.touched} touched) then {undone.status}; "
            "request queues apply {:.2f} s, worker applies {:.2f} s, request queues undo {:.2f} s, "
            "worker undoes {:.2f} s".format(*timings)
        )
