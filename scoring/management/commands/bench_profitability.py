"""``manage.py bench_profitability [--requests N] [--sample-data] [--json]``: the time of the profitability figures
and of the analysis page.

Meant for PostgreSQL holding a large portfolio (see ``generate_portfolio``) with a completed scoring run. It prints:
the time the worker takes after a run to compute and store the last 12 months' tables of every kind (RFM segments,
the clients to reactivate, personas, saved segments; last 12 months and all time); then the analysis page's server
time per tab, first request with the cache empty and p50/p95 over N more, with those figures stored on the run and
again without them (the first request computes them: the page before the worker is done, or after saved segments
changed).

Everything runs in a transaction rolled back at the end. ``--sample-data`` first adds five saved segments and two
campaigns (one with a cost) that each emailed ``--sample-emails`` clients: a generated portfolio has neither.
"""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
from django.apps import apps
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management.base import BaseCommand
from django.db import connection, transaction
from django.test import Client as Browser
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from crm import roles
from crm.models import Client, Purchase, Segment
from scoring import profitability
from scoring.models import ScoringRun
from scoring.selectors import current_run_id

BENCH_MANAGER = "bench_manager"
TABS = (profitability.KIND_RFM, profitability.KIND_SEGMENTS, profitability.KIND_PERSONAS)


SAMPLE_SEGMENTS = {
    "bench: clients": {"lifecycle": "client"},
    "bench: key accounts": {"tier": "A"},
    "bench: referrals": {"source": "referral"},
    "bench: to reactivate": {"lifecycle": "to_reactivate"},
    "bench: champions": {"segment": "champions"},
}


class _Rollback(Exception):
    pass


def _add_sample_data(emails: int) -> None:
    # Looked up by name: scoring does not import prospecting (this is a benchmark's fixture, not the product).
    campaign_model, step_model, send_model = (
        apps.get_model("prospecting", name) for name in ("Campaign", "CampaignStep", "CampaignSend")
    )
    for name, filters in SAMPLE_SEGMENTS.items():
        Segment.objects.create(name=name, filters=filters)
    for name, cost, offset in (("bench: with cost", 5000, 0), ("bench: no cost", None, emails // 2)):
        campaign = campaign_model.objects.create(name=name, cost=cost, status="finished", launched_at=timezone.now())
        step = step_model.objects.create(campaign=campaign, position=1, subject="Bench", body="Bench")
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {send_model._meta.db_table} (campaign_id, step_id, client_id, status, skip_reason, error) "  # noqa: S608
                f"SELECT %s, %s, id, %s, '', '' FROM {Client._meta.db_table} ORDER BY id LIMIT %s OFFSET %s",
                [campaign.pk, step.pk, "sent", emails, offset],
            )
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {send_model._meta.db_table}")


def _snapshot_seconds(run_id: int | None) -> dict[str, float]:
    """What the worker does after a run: the last 12 months' tables of every kind, stored on the run."""
    if run_id is None:
        return {}
    seconds = profitability.profitability_snapshot_store(run_id=run_id)
    seconds["total"] = round(sum(seconds.values()), 3)
    return seconds


def _forget_stored_figures(run_id: int | None) -> None:
    """The run without its stored figures: what the page does before the worker has stored them."""
    run = ScoringRun.objects.filter(pk=run_id).only("dashboard").first()
    if run is not None:
        run.dashboard = {key: value for key, value in run.dashboard.items() if key != profitability.SNAPSHOT_KEY}
        run.save(update_fields=["dashboard"])


def _page_timings(period: str, requests: int) -> dict:
    """Per tab: the first request with the cache empty (cold), then ``requests`` more (p50, p95, max)."""
    user, _created = get_user_model().objects.get_or_create(username=BENCH_MANAGER)
    user.groups.add(Group.objects.get(name=roles.MANAGER))
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    url = reverse("scoring:analysis")
    figures = {}
    with (
        override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"], STORAGES=storages),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        browser = Browser()
        browser.force_login(user)
        cache.clear()
        for tab in TABS:
            params = {"period": period, "by": tab}
            started = time.perf_counter()
            status = browser.get(url, params, secure=True).status_code
            cold_ms = (time.perf_counter() - started) * 1000
            timings = []
            for _ in range(requests):
                started = time.perf_counter()
                status = max(status, browser.get(url, params, secure=True).status_code)
                timings.append((time.perf_counter() - started) * 1000)
            figures[tab] = {
                "status": status,
                "cold_ms": round(cold_ms, 1),
                "p50_ms": round(float(np.percentile(timings, 50)), 1),
                "p95_ms": round(float(np.percentile(timings, 95)), 1),
                "max_ms": round(max(timings), 1),
            }
    return figures


class Command(BaseCommand):
    help = (
        "Time the profitability tables a worker stores on a run, and the analysis page per tab (first request with "
        "the cache empty, then p50/p95 over N more), in a transaction rolled back at the end."
    )

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=20, help="warm requests per tab (default 20)")
        parser.add_argument("--json", action="store_true", help="print the figures as JSON")
        parser.add_argument("--sample-data", action="store_true", help="add saved segments and campaigns first")
        parser.add_argument("--sample-emails", type=int, default=100_000, help="emails per sample campaign")

    def handle(self, *args, **options):
        # Everything happens in a transaction rolled back at the end: the figures stored on the run and the sample
        # data leave the database as it was.
        try:
            with transaction.atomic():
                if options["sample_data"]:
                    _add_sample_data(options["sample_emails"])
                self._bench(options)
                raise _Rollback
        except _Rollback:
            self.stdout.write("Rolled back: the database is as it was.")

    def _bench(self, options) -> None:
        run_id = current_run_id()
        figures = {
            "clients": Client.objects.count(),
            "purchases": Purchase.objects.count(),
            "campaign_emails": apps.get_model("prospecting", "CampaignSend").objects.count(),
            "saved_segments": min(Segment.objects.count(), profitability.MAX_SAVED_SEGMENTS),
            "run_id": run_id,
            "snapshot_seconds": _snapshot_seconds(run_id),
            "page_stored": _page_timings(profitability.PERIOD_12_MONTHS, options["requests"]),
        }
        _forget_stored_figures(run_id)
        figures["page_computed"] = _page_timings(profitability.PERIOD_12_MONTHS, options["requests"])
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2))
            return
        self.stdout.write(
            f"{figures['clients']:,} clients, {figures['purchases']:,} purchases, "
            f"{figures['campaign_emails']:,} campaign emails, {figures['saved_segments']} saved segments; "
            f"run {run_id or 'none'}"
        )
        self.stdout.write("After a run, the worker computes and stores the tables of each period and kind:")
        for kind, seconds in figures["snapshot_seconds"].items():
            self.stdout.write(f"  {kind:<14} {seconds:8.3f} s")
        for key, title in (
            ("page_stored", "Analysis page, last 12 months, figures stored on the run"),
            ("page_computed", "Analysis page, last 12 months, nothing stored (computed when first asked, then cached)"),
        ):
            self.stdout.write(f"{title}, {options['requests']} requests per tab after the first:")
            for tab, page in figures[key].items():
                self.stdout.write(
                    f"  {tab:<10} status {page['status']}  first {page['cold_ms']:9.1f} ms  "
                    f"p50 {page['p50_ms']:7.1f} ms  p95 {page['p95_ms']:7.1f} ms  max {page['max_ms']:7.1f} ms"
                )
