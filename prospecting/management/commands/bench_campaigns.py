"""``manage.py bench_campaigns``: how long a campaign step to 50,000 clients takes to be queued, and how fast pages
answer while it is queued and sent.

A manager launches a one-email campaign to ``--clients`` consenting clients (created once, in the city
"Benchville") through the launch page; a real Celery worker (started here, on a queue of its own on the configured
broker) writes the send rows, enqueues the batches and sends them to a local SMTP sink (aiosmtpd in a process of its
own when it is installed, else Django's dummy backend). Meanwhile a thread opens the client list and client cards
through Django's test client and times them. Meant for PostgreSQL holding a large portfolio (``generate_portfolio``).
Prints figures; it is not a test. The campaign, its rows and the emails it logged are removed afterwards.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlencode

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client as Browser
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from crm import roles
from crm.models import Client, Interaction, InteractionKind, Segment
from crm.services import client_refresh_activity
from portfolio.celery import app as celery_app
from prospecting import campaigns as services
from prospecting.models import Campaign, CampaignSend, SendStatus

QUEUE_BUDGET_SECONDS = 10.0
PAGE_BUDGET_MS = 300.0
BENCH_CITY = "Benchville"
BENCH_USER = "bench_campaigns"
BENCH_SEGMENT = "Bench campaign recipients"
CLIENT_INSERT_BATCH_SIZE = 5000
IDLE_SECONDS = 5
WORKER_READY_SECONDS = 60
ROOT = Path(settings.BASE_DIR)


class Command(BaseCommand):
    help = (
        "Launch a campaign step to --clients clients and print how long it takes to be queued (budget 10 s) and "
        "the client list's and cards' times meanwhile (budget 300 ms). Run it on PostgreSQL, DEBUG off."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clients", type=int, default=50_000, help="recipients of the campaign step")
        parser.add_argument("--send-seconds", type=float, default=15, help="how long to watch the sending")
        parser.add_argument("--rate", type=float, default=None, help="emails per second (default: the setting)")
        parser.add_argument("--concurrency", type=int, default=2, help="worker processes")

    def handle(self, *args, **options):
        if options["clients"] < 1:
            raise CommandError("--clients must be at least 1.")
        if connection.vendor != "postgresql":
            self.stderr.write("Not PostgreSQL: figures say little about production.")
        if settings.DEBUG:
            self.stderr.write("DEBUG is on: every query is recorded, figures are pessimistic.")
        rate = settings.CAMPAIGN_SEND_RATE if options["rate"] is None else options["rate"]
        manager = _bench_manager()
        created = _ensure_recipients(options["clients"])
        self.stdout.write(f"recipients: {options['clients']} clients in {BENCH_CITY} ({created} created now)")
        campaign = _bench_campaign(manager)
        queue = f"bench-campaigns-{uuid.uuid4().hex[:8]}"
        started = timezone.now()
        with _smtp_sink() as email_env, _worker(queue, rate, options["concurrency"], email_env) as log_path:
            self.stdout.write(f"worker ready (queue {queue}, rate {rate or 'unlimited'}/s, log {log_path})")
            figures = self._run(campaign, manager, queue, options["send_seconds"])
        _clean_up(campaign, started, queue)
        self._report(figures, rate)

    def _run(self, campaign: Campaign, manager, queue: str, send_seconds: float) -> dict:
        storages = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        with (
            override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"], STORAGES=storages),
            warnings.catch_warnings(),
        ):
            warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
            pages = PageTimer(manager, _page_urls(campaign))
            pages.start()
            time.sleep(IDLE_SECONDS)
            default_queue, celery_app.conf.task_default_queue = celery_app.conf.task_default_queue, queue
            eager, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, False
            try:
                pages.phase = "queuing"
                browser = Browser()
                browser.force_login(manager)
                clicked = time.perf_counter()
                response = browser.post(reverse("prospecting:campaign-launch", args=[campaign.pk]), secure=True)
                launch_ms = (time.perf_counter() - clicked) * 1000
                step = campaign.steps.get()
                while True:
                    step.refresh_from_db()
                    if step.queued_at or step.status == "failed":
                        break
                    time.sleep(0.05)
                queued_after = time.perf_counter() - clicked
                pages.phase = "sending"
                sent_before = _sent(campaign)
                watched = time.perf_counter()
                time.sleep(send_seconds)
                sent = _sent(campaign) - sent_before
                sending_seconds = time.perf_counter() - watched
            finally:
                celery_app.conf.task_default_queue = default_queue
                celery_app.conf.task_always_eager = eager
                pages.stop()
        return {
            "launch_status": response.status_code,
            "launch_ms": launch_ms,
            "recipients": step.recipients,
            "step_error": step.error,
            "worker_queue_seconds": (step.queued_at - step.queue_started_at).total_seconds()
            if step.queued_at
            else None,
            "queued_after_click_seconds": queued_after,
            "sent": sent,
            "sent_per_second": sent / sending_seconds if sending_seconds else 0,
            "pages": pages.summary(),
        }

    def _report(self, figures: dict, rate: float) -> None:
        self.stdout.write("load average: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
        self.stdout.write(f"launch page answered in {figures['launch_ms']:.0f} ms (HTTP {figures['launch_status']})")
        if figures["worker_queue_seconds"] is None:
            self.stdout.write(self.style.ERROR(f"the step failed: {figures['step_error']}"))
            return
        queued = figures["queued_after_click_seconds"]
        verdict = "yes" if queued <= QUEUE_BUDGET_SECONDS else "NO"
        self.stdout.write(
            f"step to {figures['recipients']} clients queued {queued:.2f} s after the click "
            f"(worker: {figures['worker_queue_seconds']:.2f} s for rows and batches); within {QUEUE_BUDGET_SECONDS:.0f} s: {verdict}"
        )
        self.stdout.write(
            f"sending: {figures['sent']} emails sent at {figures['sent_per_second']:.1f}/s (rate {rate or 'unlimited'})"
        )
        self.stdout.write(
            f"{'phase':<8}  {'page':<28}  {'requests':>8}  {'p50 ms':>7}  {'p95 ms':>7}  {'max ms':>7}  p95 ≤ {PAGE_BUDGET_MS:.0f} ms"
        )
        slow = []
        for (phase, page), row in figures["pages"].items():
            ok = row["p95"] <= PAGE_BUDGET_MS and row["errors"] == 0
            slow += [] if ok else [f"{page} ({phase})"]
            errors = f" ({row['errors']} errors)" if row["errors"] else ""
            self.stdout.write(
                f"{phase:<8}  {page:<28}  {row['count']:>8}  {row['p50']:>7.1f}  {row['p95']:>7.1f}  {row['max']:>7.1f}  "
                f"{'yes' if ok else 'NO'}{errors}"
            )
        summary = (
            "every page within budget while the step was queued and sent." if not slow else f"slow: {', '.join(slow)}"
        )
        self.stdout.write(self.style.SUCCESS(summary) if not slow else self.style.WARNING(summary))


class PageTimer(threading.Thread):
    """Requests the pages in turn, as fast as they answer, and times each one under the current phase."""

    def __init__(self, user, urls: dict[str, str]):
        super().__init__(daemon=True)
        self.user, self.urls = user, urls
        self.phase = "idle"
        self.timings: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self._stopped = threading.Event()

    def run(self) -> None:
        browser = Browser()
        browser.force_login(self.user)
        try:
            while not self._stopped.is_set():
                for name, url in self.urls.items():
                    phase = self.phase
                    started = time.perf_counter()
                    status = browser.get(url, secure=True).status_code
                    self.timings[phase, name].append((time.perf_counter() - started) * 1000)
                    if status != 200:
                        self.errors[phase, name] += 1
        finally:
            connection.close()

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=30)

    def summary(self) -> dict:
        return {
            key: {
                "count": len(values),
                "p50": float(np.percentile(values, 50)),
                "p95": float(np.percentile(values, 95)),
                "max": max(values),
                "errors": self.errors[key],
            }
            for key, values in self.timings.items()
        }


def _page_urls(campaign: Campaign) -> dict[str, str]:
    client_list = reverse("crm:client-list")
    recipient = Client.objects.filter(city=BENCH_CITY).order_by("pk").values_list("pk", flat=True).first()
    buyer = Client.objects.filter(last_purchase_at__isnull=False).order_by("pk").values_list("pk", flat=True).first()
    urls = {
        "client list": client_list,
        f"client list city={BENCH_CITY}": f"{client_list}?{urlencode({'city': BENCH_CITY})}",
        "card of a recipient": reverse("crm:client-detail", args=[recipient]),
        "campaign page": reverse("prospecting:campaign-detail", args=[campaign.pk]),
    }
    if buyer:
        urls["card of a buyer"] = reverse("crm:client-detail", args=[buyer])
    return urls


def _bench_manager():
    user, _created = get_user_model().objects.get_or_create(username=BENCH_USER)
    user.set_unusable_password()
    user.save()
    user.groups.add(Group.objects.get(name=roles.MANAGER))
    return user


def _ensure_recipients(count: int) -> int:
    """Consenting clients in the bench city, created once and reused by later runs."""
    existing = Client.objects.filter(city=BENCH_CITY, marketing_consent=True, do_not_contact=False).count()
    missing = max(count - existing, 0)
    for start in range(existing, existing + missing, CLIENT_INSERT_BATCH_SIZE):
        Client.objects.bulk_create(
            Client(
                first_name=f"Bench{number}",
                last_name="Recipient",
                email=f"bench{number}@bench.example.com",
                company="Bench SA",
                city=BENCH_CITY,
                country="France",
                lifecycle="client",
                marketing_consent=True,
            )
            for number in range(start, min(start + CLIENT_INSERT_BATCH_SIZE, existing + missing))
        )
    if existing > count:  # more than asked: the extra ones leave the segment for this run
        extra = Client.objects.filter(city=BENCH_CITY).order_by("-pk").values_list("pk", flat=True)[: existing - count]
        Client.objects.filter(pk__in=list(extra)).update(city=f"{BENCH_CITY} (spare)")
    return missing


def _bench_campaign(manager) -> Campaign:
    segment, _created = Segment.objects.get_or_create(name=BENCH_SEGMENT, defaults={"filters": {"city": BENCH_CITY}})
    campaign = services.campaign_save(
        name=f"Bench {timezone.now():%Y-%m-%d %H:%M:%S}", segment=segment, rfm_segment="", offer=None, user=manager
    )
    services.campaign_step_save(
        campaign=campaign, subject="Hello {first_name}", body="Dear {first_name},\n\nNews from us.", delay_days=0
    )
    return campaign


def _sent(campaign: Campaign) -> int:
    return CampaignSend.objects.filter(campaign=campaign, status=SendStatus.SENT).count()


class _smtp_sink:
    """An SMTP server discarding what it gets, in a process of its own; yields the worker's email settings."""

    def __enter__(self) -> dict:
        self.process = None
        if importlib.util.find_spec("aiosmtpd") is None:
            return {"EMAIL_BACKEND": "django.core.mail.backends.dummy.EmailBackend"}
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink", "-l", f"127.0.0.1:{port}"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as attempt:
                if attempt.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(port),
            "EMAIL_USE_TLS": "0",
        }

    def __exit__(self, *exc_info) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


class _worker:
    """A Celery worker on ``queue`` with the product's settings; yields its log file."""

    def __init__(self, queue: str, rate: float, concurrency: int, email_env: dict):
        self.queue, self.rate, self.concurrency, self.email_env = queue, rate, concurrency, email_env

    def __enter__(self) -> Path:
        env = {
            **os.environ,
            **self.email_env,
            "DJANGO_SETTINGS_MODULE": "portfolio.settings",
            "CELERY_TASK_DEFAULT_QUEUE": self.queue,
            "CELERY_TASK_ALWAYS_EAGER": "0",
            "CAMPAIGN_SEND_RATE": str(self.rate),
        }
        for key in ("data_folder_in", "data_folder_out", "processed_folder"):  # the file-based broker's folders
            if folder := getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {}).get(key):
                Path(folder).mkdir(parents=True, exist_ok=True)
        self.log_path = Path(settings.BASE_DIR) / "var" / f"bench-worker-{self.queue}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "celery", "-A", "portfolio", "worker", "-Q", self.queue,
            f"--concurrency={self.concurrency}", "--prefetch-multiplier=1", "-l", "INFO",
        ]  # fmt: skip
        self.log = open(self.log_path, "wb")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + WORKER_READY_SECONDS
        while b"ready." not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise CommandError(f"The Celery worker did not start: see {self.log_path}")
            time.sleep(0.2)
        return self.log_path

    def __exit__(self, *exc_info) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def _clean_up(campaign: Campaign, started, queue: str) -> None:
    """Stop the campaign, empty its queue, and remove it with the emails it logged on the bench clients."""
    services.campaign_cancel(campaign=campaign)
    with celery_app.connection_for_write() as broker:
        broker.default_channel.queue_purge(queue)
    touched = list(
        Interaction.objects.filter(
            client__city=BENCH_CITY, kind=InteractionKind.EMAIL, occurred_at__gte=started
        ).values_list("client_id", flat=True)
    )
    Interaction.objects.filter(client_id__in=touched, kind=InteractionKind.EMAIL, occurred_at__gte=started).delete()
    client_refresh_activity(client_ids=touched)
    campaign.delete()
