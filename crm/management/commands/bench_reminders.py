"""``manage.py bench_reminders``: how long the reminder pass takes to email 10,000 due follow-ups.

It starts an SMTP server (aiosmtpd, a development requirement) in a child process on a free local port, points
Django's SMTP backend at it, plans ``--count`` follow-ups due a minute ago for a benchmark user, then times the
reminder pass as the per-minute task runs it: reminder rows created, claimed, rendered, sent over SMTP and marked
sent. ``--workers N`` runs N passes at once in N processes, as N Celery workers would. It prints the figures, checks
that the server received each reminder exactly once, and deletes its data.

Meant for a benchmark database (PostgreSQL): the passes only send the benchmark's reminders, but they also create
the reminders of any other follow-up that is due there.
"""

from __future__ import annotations

import logging
import multiprocessing
import socket
import time
from dataclasses import asdict
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.db.models import Q
from django.test import override_settings
from django.utils import timezone

from crm import reminders
from crm.models import Client, DeliveryState, FollowUp, Reminder

BUDGET_SECONDS = 60.0
BENCH_USERNAME = "bench_reminders"
INSERT_BATCH_SIZE = 2000
SERVER_READY_TIMEOUT = 30


class _CountingHandler:
    """Accepts every message and keeps its Message-ID."""

    def __init__(self):
        self.message_ids: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        for line in envelope.content.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                self.message_ids.append(line.split(b":", 1)[1].strip().decode())
                break
        return "250 OK"


def _serve(port: int, pipe) -> None:
    """The SMTP server process: serves until told to stop, then sends back the Message-IDs it received."""
    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)
    handler = _CountingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    pipe.send("ready")
    pipe.recv()
    controller.stop()
    pipe.send(handler.message_ids)


def _one_pass(batch_size: int, only: Q, pipe=None) -> dict:
    """One reminder pass, as a worker runs it; in a child process, the result goes back through ``pipe``."""
    try:
        result = asdict(reminders.reminders_send_due(batch_size=batch_size, only=only))
    finally:
        connections.close_all()
    if pipe is not None:
        pipe.send(result)
    return result


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _delete_bench_data(user) -> None:
    FollowUp.objects.filter(assignee=user).delete()
    Client.objects.filter(owner=user).delete()


class Command(BaseCommand):
    help = "Time the reminder pass emailing --count due follow-ups to a local SMTP server (budget: 10,000 in 60 s)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=10_000, help="due follow-ups to remind (default 10,000)")
        parser.add_argument("--workers", type=int, default=1, help="passes at once, in as many processes")
        parser.add_argument("--batch-size", type=int, default=reminders.CLAIM_BATCH_SIZE, help="rows per claim")

    def handle(self, *args, **options):
        try:
            import aiosmtpd  # noqa: F401
        except ImportError as error:
            raise CommandError("bench_reminders needs aiosmtpd (pip install -r requirements-dev.txt).") from error
        if options["count"] < 1 or options["workers"] < 1:
            raise CommandError("--count and --workers must be at least 1.")
        # Children are forked: none may share the parent's database connections.
        fork = multiprocessing.get_context("fork")
        port = _free_port()
        server_pipe, child_pipe = fork.Pipe()
        connections.close_all()
        server = fork.Process(target=_serve, args=(port, child_pipe), daemon=True)
        server.start()
        if not server_pipe.poll(SERVER_READY_TIMEOUT):
            server.kill()
            raise CommandError("The SMTP server did not start.")
        server_pipe.recv()

        user, _created = get_user_model().objects.update_or_create(
            username=BENCH_USERNAME, defaults={"email": "bench-reminders@example.invalid", "is_active": True}
        )
        _delete_bench_data(user)  # left by an interrupted run
        try:
            with override_settings(
                EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
                EMAIL_HOST="127.0.0.1",
                EMAIL_PORT=port,
                EMAIL_USE_TLS=False,
                EMAIL_HOST_USER="",
                EMAIL_HOST_PASSWORD="",
            ):
                figures = self._run(user, fork, options)
        finally:
            server_pipe.send("stop")
            received = server_pipe.recv() if server_pipe.poll(SERVER_READY_TIMEOUT) else []
            server.join(timeout=10)
            marked = Reminder.objects.filter(follow_up__assignee=user, state=DeliveryState.SENT).count()
            _delete_bench_data(user)
            user.delete()
        self._report(figures, received=received, marked=marked, count=options["count"])

    def _run(self, user, fork, options: dict) -> dict:
        count, workers, batch_size = options["count"], options["workers"], options["batch_size"]
        client = Client.objects.create(first_name="Bench", last_name="Reminders", owner=user)
        due = timezone.now() - timedelta(minutes=1)
        FollowUp.objects.bulk_create(
            (FollowUp(client=client, assignee=user, due_at=due, title=f"Bench call {n}") for n in range(count)),
            batch_size=INSERT_BATCH_SIZE,
        )
        mine = Q(follow_up__in=FollowUp.objects.filter(assignee=user).values("pk"))
        connections.close_all()
        started = time.perf_counter()
        if workers == 1:
            results = [_one_pass(batch_size, mine)]
        else:
            pipes, processes = [], []
            for _ in range(workers):
                receiving, sending = fork.Pipe(duplex=False)
                process = fork.Process(target=_one_pass, args=(batch_size, mine, sending))
                process.start()
                pipes.append(receiving)
                processes.append(process)
            results = [pipe.recv() for pipe in pipes]
            for process in processes:
                process.join()
        return {"elapsed": time.perf_counter() - started, "results": results, "workers": workers, "batch": batch_size}

    def _report(self, figures: dict, *, received: list[str], marked: int, count: int) -> None:
        elapsed, results = figures["elapsed"], figures["results"]
        sent = sum(result["sent"] for result in results)
        distinct = len(set(received))
        per_10k = elapsed * 10_000 / count
        self.stdout.write(f"database:            {connections['default'].vendor}")
        self.stdout.write(f"due follow-ups:      {count}")
        self.stdout.write(f"passes at once:      {figures['workers']} (claims of {figures['batch']} rows)")
        self.stdout.write(f"elapsed:             {elapsed:.1f} s ({sent / elapsed:.0f} emails/s)")
        self.stdout.write(f"sent, per pass:      {sent} ({', '.join(str(result['sent']) for result in results)})")
        self.stdout.write(f"marked sent:         {marked}")
        self.stdout.write(
            f"received by SMTP:    {len(received)} ({distinct} distinct, {len(received) - distinct} twice)"
        )
        verdict = "met" if per_10k <= BUDGET_SECONDS else "MISSED"
        self.stdout.write(f"budget, 10,000 in {BUDGET_SECONDS:.0f} s: {verdict} ({per_10k:.1f} s per 10,000)")
        if len(received) != count or distinct != count or marked != count:
            raise CommandError("Some reminders were not delivered exactly once.")
