"""``manage.py bench_pages``: server time of the client list, client cards and the admin's client list.

Requests go through Django's test client against the configured database (meant for PostgreSQL holding a large
portfolio, see ``generate_portfolio``): URL resolution, middleware, queries and template rendering are measured,
the network and the browser are not. Prints p50/p95 per page and whether p95 stays within the budget.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.models import Count
from django.test import Client as Browser
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from crm import roles
from crm.models import Client, Purchase

BUDGET_MS = 150.0
REQUESTS_PER_PAGE = 20
WARM_UP_REQUESTS = 2
LATER_PAGE = 200
BENCH_USERS = {"manager": ("bench_manager", roles.MANAGER), "admin": ("bench_admin", roles.ADMIN)}


@dataclass
class Page:
    name: str
    urls: list[str]  # requested in turn, so that a page can cover several clients
    user: str = "manager"


@dataclass
class Result:
    page: str
    url: str
    p50_ms: float
    p95_ms: float
    max_ms: float
    queries: int
    sql_ms: float
    status: int
    within_budget: bool


class Command(BaseCommand):
    help = (
        "Measure the server time of the client list (each filter, sorts, a later page, searches), client cards and "
        "the Django admin's client list, and print p50/p95 per page against a 150 ms p95 budget. Run it with "
        "DEBUG off (SECRET_KEY set) for representative figures."
    )

    def add_arguments(self, parser):
        parser.add_argument("--requests", type=int, default=REQUESTS_PER_PAGE, help="timed requests per page")
        parser.add_argument("--json", action="store_true", help="print the results as JSON")
        parser.add_argument("--only", default="", help="measure only the pages whose name contains this text")

    def handle(self, *args, **options):
        if options["requests"] < 1:
            raise CommandError("--requests must be at least 1.")
        if not Client.objects.exists():
            raise CommandError("The portfolio is empty: run generate_portfolio first.")
        if settings.DEBUG and not options["json"]:
            self.stderr.write("DEBUG is on: every query is recorded, figures are pessimistic.")
        pages = [page for page in _pages(options["requests"]) if options["only"] in page.name]
        # The test client speaks as "testserver" over HTTPS; static file names do not change server time, so the
        # plain storage spares a collectstatic manifest.
        storages = {
            **settings.STORAGES,
            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
        }
        with (
            override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"], STORAGES=storages),
            warnings.catch_warnings(),
        ):
            warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)  # no collectstatic
            browsers = {key: _logged_in_browser(*user) for key, user in BENCH_USERS.items()}
            results = [_measure(browsers[page.user], page, options["requests"]) for page in pages]
        if options["json"]:
            self.stdout.write(json.dumps([asdict(result) for result in results], indent=2))
        else:
            self._print_table(results)

    def _print_table(self, results: list[Result]) -> None:
        width = max(len(result.page) for result in results)
        # Figures taken on a busy machine are slower: say how busy it was.
        self.stdout.write("load average: " + " ".join(f"{load:.2f}" for load in os.getloadavg()))
        self.stdout.write(
            f"{'page':<{width}}  {'p50 ms':>8}  {'p95 ms':>8}  {'max ms':>8}  {'queries':>7}  {'sql ms':>7}  p95 ≤ {BUDGET_MS:.0f} ms"
        )
        for result in results:
            verdict = "yes" if result.within_budget else f"NO (HTTP {result.status})" if result.status != 200 else "NO"
            self.stdout.write(
                f"{result.page:<{width}}  {result.p50_ms:>8.1f}  {result.p95_ms:>8.1f}  {result.max_ms:>8.1f}  "
                f"{result.queries:>7}  {result.sql_ms:>7.1f}  {verdict}"
            )
        slow = [result.page for result in results if not result.within_budget]
        summary = f"{len(results) - len(slow)}/{len(results)} pages within {BUDGET_MS:.0f} ms p95."
        self.stdout.write(
            self.style.SUCCESS(summary) if not slow else self.style.WARNING(f"{summary} Slow: {', '.join(slow)}")
        )


def _measure(browser: Browser, page: Page, requests: int) -> Result:
    for url in (page.urls * WARM_UP_REQUESTS)[:WARM_UP_REQUESTS]:
        browser.get(url, secure=True)
    timings, statuses = [], set()
    for number in range(requests):
        url = page.urls[number % len(page.urls)]
        started = time.perf_counter()
        response = browser.get(url, secure=True)
        timings.append((time.perf_counter() - started) * 1000)
        statuses.add(response.status_code)
    # One more request, outside the timings, to count its queries and their time.
    with CaptureQueriesContext(connection) as queries:
        browser.get(page.urls[0], secure=True)
    status = max(statuses - {200}, default=200)
    p95 = float(np.percentile(timings, 95))
    return Result(
        page=page.name,
        url=page.urls[0],
        p50_ms=round(float(np.percentile(timings, 50)), 1),
        p95_ms=round(p95, 1),
        max_ms=round(max(timings), 1),
        queries=len(queries),
        sql_ms=round(sum(float(query["time"]) for query in queries.captured_queries) * 1000, 1),
        status=status,
        within_budget=status == 200 and p95 <= BUDGET_MS,
    )


def _logged_in_browser(username: str, role: str) -> Browser:
    user, _created = get_user_model().objects.get_or_create(username=username)
    user.set_unusable_password()
    user.is_staff = role == roles.ADMIN
    user.save()
    user.groups.add(Group.objects.get(name=role))
    browser = Browser()
    browser.force_login(user)
    return browser


def _pages(requests: int) -> list[Page]:
    """The pages measured, with filter values taken from the portfolio itself."""
    sample = _sample_client()
    client_list = reverse("crm:client-list")
    admin_list = reverse("admin:crm_client_changelist")

    def listing(**params) -> list[str]:
        return [f"{client_list}?{urlencode(params)}" if params else client_list]

    tag_id = Client.tags.through.objects.values_list("tag_id", flat=True).first()
    persona_id = Client.objects.filter(persona__isnull=False).values_list("persona_id", flat=True).first()
    fragment = sample.company[1:6] if len(sample.company) > 6 else sample.company
    pages = [
        Page("list", listing()),
        Page("list lifecycle=to_reactivate", listing(lifecycle="to_reactivate")),
        Page("list stage=proposal", listing(stage="proposal")),
        Page("list owner", listing(owner=sample.owner_id or "none")),
        Page("list tier=A", listing(tier="A")),
        Page("list tag", listing(tag=tag_id or "")),
        Page("list source=referral", listing(source="referral")),
        Page("list persona", listing(persona=persona_id or "")),
        Page(f"list sector={sample.sector}", listing(sector=sample.sector)),
        Page(f"list city={sample.city}", listing(city=sample.city)),
        Page(f"list country={sample.country}", listing(country=sample.country)),
        Page("list idle_days=90", listing(idle_days=90)),
        Page("list sort=-last_interaction_at", listing(sort="-last_interaction_at")),
        Page("list sort=company", listing(sort="company")),
        Page(f"list page={LATER_PAGE}", listing(page=LATER_PAGE)),
        Page(f"list q={sample.last_name}", listing(q=sample.last_name)),
        Page(f"list q={fragment}", listing(q=fragment)),
        Page("client card", [reverse("crm:client-detail", args=[pk]) for pk in _buyer_ids(requests)]),
        Page("client card, most orders", [reverse("crm:client-detail", args=[_biggest_buyer_id()])]),
        Page("admin list", [admin_list], user="admin"),
        Page("admin list lifecycle", [f"{admin_list}?lifecycle__exact=to_reactivate"], user="admin"),
        Page(f"admin list q={sample.last_name}", [f"{admin_list}?{urlencode({'q': sample.last_name})}"], user="admin"),
        Page(f"admin list p={LATER_PAGE}", [f"{admin_list}?p={LATER_PAGE}"], user="admin"),
    ]
    return pages


def _sample_client() -> Client:
    """A client in the middle of the portfolio, whose values feed the filters (typical rather than rare ones)."""
    middle = (Client.objects.order_by("-pk").values_list("pk", flat=True).first() or 0) // 2
    return Client.objects.filter(pk__gte=middle).exclude(company="").order_by("pk").first() or Client.objects.first()


def _buyer_ids(count: int) -> list[int]:
    """Clients with orders spread over the whole id range, so each card request reads another client."""
    last = Client.objects.order_by("-pk").values_list("pk", flat=True).first()
    step = max(last // (count + WARM_UP_REQUESTS), 1)
    ids = []
    for start in range(1, last + 1, step):
        found = (
            Client.objects.filter(pk__gte=start, last_purchase_at__isnull=False)
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
        if found and found not in ids:
            ids.append(found)
    return ids[WARM_UP_REQUESTS:] + ids[:WARM_UP_REQUESTS]


def _biggest_buyer_id() -> int:
    return (
        Purchase.objects.values("client")
        .annotate(orders=Count("id"))
        .order_by("-orders")
        .values_list("client", flat=True)[0]
    )
