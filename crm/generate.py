"""Synthetic portfolios at benchmark scale: up to a million clients and ten million orders in a few minutes.

The generators are pure numpy/pandas functions (a random generator and counts in, DataFrames out). ``portfolio_generate``
writes their rows in bulk (COPY on PostgreSQL, batched inserts elsewhere) in one transaction, then derives each
client's conversion, last-purchase and last-interaction dates from the rows written, in set-based SQL.

Clients are first written to a temporary table and inserted into ``crm_client`` together with their derived dates,
so no million-row UPDATE is needed. On PostgreSQL, when a load is larger than what a table already holds, its
secondary indexes and constraints are dropped for the load and rebuilt afterwards (all inside the transaction).
"""

from __future__ import annotations

import io
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.color import no_style
from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from crm import roles
from crm.archetypes import ARCHETYPES, TRUE_TO_CATEGORY, Archetype
from crm.models import Category, Client, Interaction, Persona, Product, Purchase, PurchaseLine, Tag

BATCH_SIZE = 200_000
HISTORY_DAYS = 3 * 365
INTERACTIONS_PER_CLIENT = 1.0
COST_SHARE = (0.55, 0.75)  # cost of goods, as a share of the order's amount
UNKNOWN_COST_SHARE = 0.15  # orders whose cost is left unknown
BENCH_REP_COUNT = 5
# Index builds after a large load run with this much memory (session setting, PostgreSQL only).
INDEX_BUILD_MEMORY = "1GB"
STAGING_TABLE = "generated_client"

FIRST_NAMES = [
    ("Camille", "female"), ("Léa", "female"), ("Manon", "female"), ("Chloé", "female"), ("Emma", "female"),
    ("Inès", "female"), ("Sarah", "female"), ("Julie", "female"), ("Laura", "female"), ("Marie", "female"),
    ("Nathalie", "female"), ("Isabelle", "female"), ("Sophie", "female"), ("Hélène", "female"), ("Claire", "female"),
    ("Élodie", "female"), ("Aurélie", "female"), ("Céline", "female"), ("Valérie", "female"), ("Anne", "female"),
    ("Lucas", "male"), ("Hugo", "male"), ("Louis", "male"), ("Nathan", "male"), ("Thomas", "male"),
    ("Nicolas", "male"), ("Julien", "male"), ("Antoine", "male"), ("Maxime", "male"), ("Alexandre", "male"),
    ("Pierre", "male"), ("François", "male"), ("Philippe", "male"), ("Stéphane", "male"), ("Laurent", "male"),
    ("Jérôme", "male"), ("Mathieu", "male"), ("Karim", "male"), ("Mehdi", "male"), ("Olivier", "male"),
    ("Dominique", "other"), ("Claude", "other"),
]  # fmt: skip
LAST_NAMES = [
    "Martin", "Bernard", "Thomas", "Petit", "Robert", "Richard", "Durand", "Dubois", "Moreau", "Laurent",
    "Simon", "Michel", "Lefèvre", "Leroy", "Roux", "David", "Bertrand", "Morel", "Fournier", "Girard",
    "Bonnet", "Dupont", "Lambert", "Fontaine", "Rousseau", "Vincent", "Müller", "Lefebvre", "Faure", "André",
    "Mercier", "Blanc", "Guérin", "Boyer", "Garnier", "Chevalier", "François", "Legrand", "Gauthier", "Garcia",
    "Perrin", "Robin", "Clément", "Morin", "Nicolas", "Henry", "Roussel", "Mathieu", "Gautier", "Masson",
    "Marchand", "Duval", "Denis", "Dumont", "Marie", "Lemaire", "Noël", "Meyer", "Dufour", "Meunier",
    "Brun", "Blanchard", "Giraud", "Joly", "Rivière", "Lucas", "Brunet", "Gaillard", "Barbier", "Arnaud",
    "Benali", "Haddad", "Nguyen", "Da Silva", "Ferreira", "Rolland", "Colin", "Vidal", "Caron", "Picard",
]  # fmt: skip
COMPANY_FORMS = [
    "{} Conseil", "Groupe {}", "{} & Associés", "{} Industrie", "Atelier {}", "{} Distribution", "Cabinet {}",
    "{} Immobilier", "{} Informatique", "Maison {}", "{} Transports", "{} Bâtiment", "{} Santé", "{} Finance",
    "Boulangerie {}", "{} Énergie", "{} Logistique", "{} Studio", "Pharmacie {}", "{} Agro",
]  # fmt: skip
JOB_TITLES = [
    "Gérant", "Directrice générale", "Directeur commercial", "Responsable achats", "DSI", "Directrice financière",
    "Chef de projet", "Responsable marketing", "Office manager", "Fondateur", "Associée", "Acheteur",
]  # fmt: skip
SECTORS = {
    "Services aux entreprises": 18, "Commerce de détail": 14, "Industrie": 12, "BTP": 10, "Santé": 9,
    "Informatique": 9, "Restauration": 7, "Immobilier": 6, "Transport et logistique": 5, "Finance et assurance": 4,
    "Agriculture": 3, "Éducation": 3,
}  # fmt: skip
CITIES_BY_COUNTRY = {
    "France": [
        "Paris", "Lyon", "Marseille", "Toulouse", "Nice", "Nantes", "Strasbourg", "Montpellier", "Bordeaux", "Lille",
        "Rennes", "Reims", "Le Havre", "Saint-Étienne", "Toulon", "Grenoble", "Dijon", "Angers", "Nîmes", "Clermont-Ferrand",
        "Le Mans", "Aix-en-Provence", "Brest", "Tours", "Amiens", "Limoges", "Annecy", "Perpignan", "Metz", "Besançon",
    ],
    "Belgique": ["Bruxelles", "Liège", "Namur", "Charleroi"],
    "Suisse": ["Genève", "Lausanne", "Neuchâtel"],
    "Luxembourg": ["Luxembourg"],
    "Canada": ["Montréal", "Québec"],
}  # fmt: skip
COUNTRY_WEIGHTS = {"France": 86, "Belgique": 5, "Suisse": 4, "Luxembourg": 2, "Canada": 3}
SOURCE_WEIGHTS = {
    "networking": 18, "referral": 22, "inbound": 20, "social_selling": 15, "webinar": 8, "import": 12, "other": 5,
}  # fmt: skip
LIFECYCLE_WEIGHTS = {"prospect": 30, "client": 45, "to_reactivate": 15, "lost": 10}
PROSPECT_STAGE_WEIGHTS = {"new": 30, "contacted": 20, "connected": 15, "engaged": 15, "meeting": 10, "proposal": 10}
# Days since the last order, by lifecycle: a client bought within the year, a client to reactivate the year before.
LAST_ORDER_DAYS = {"client": (0, 365), "to_reactivate": (365, 730), "lost": (730, HISTORY_DAYS)}
INTERACTION_KINDS = {"email": 35, "call": 30, "linkedin": 25, "meeting": 10}
INTERACTION_SUBJECTS = {
    "email": "Envoi de la proposition",
    "call": "Point téléphonique",
    "linkedin": "Message LinkedIn",
    "meeting": "Rendez-vous",
}
TAG_SHARES = {"VIP": 0.03, "Salon 2024": 0.08, "Newsletter": 0.25, "Partenaire": 0.04, "Export": 0.06, "PME": 0.2}
PERSONA_NAMES = ("Camille", "Julien", "Nathalie")
# Archetypes by code (the ``archetype`` column of a plan), and how often each one orders, relative to the others.
ARCHETYPE_NAMES = list(ARCHETYPES)
ORDERS_PER_YEAR = np.array(
    [365 / archetype.days_between_orders if archetype.days_between_orders else 0.2 for archetype in ARCHETYPES.values()]
)
# Share of each archetype's buyers who ordered once: those won lately, most of those who buy once at most.
ONE_OFF_SHARES = np.array(
    [archetype.won_lately if archetype.days_between_orders else 0.9 for archetype in ARCHETYPES.values()]
)
BASKETS = np.array([archetype.basket for archetype in ARCHETYPES.values()])
CATALOGUE = {"Conseil": 900, "Formation": 450, "Logiciels": 120, "Matériel": 300, "Maintenance": 180}
# Times of day between 08:00 and 18:45 by quarter hour, appended to dates to make timestamps.
TIMES_OF_DAY = np.array(
    [f" {hour:02d}:{minute:02d}:00" for hour in range(8, 19) for minute in (0, 15, 30, 45)], dtype=object
)


def _ascii_slug(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return folded.lower().replace(" ", "-").replace("&", "et")


def _choice(rng: np.random.Generator, weights: dict[str, float], size: int) -> np.ndarray:
    keys = np.array(list(weights), dtype=object)
    probabilities = np.array(list(weights.values()), dtype=float)
    return keys[rng.choice(len(keys), size=size, p=probabilities / probabilities.sum())]


def day_strings(today: date, days: int) -> np.ndarray:
    """ISO dates indexed by how many days before ``today`` they fall."""
    return np.array([(today - timedelta(days=ago)).isoformat() for ago in range(days + 1)], dtype=object)


def plan_clients(rng: np.random.Generator, *, count: int, orders: int) -> pd.DataFrame:
    """One row per client: lifecycle, archetype (code in ``ARCHETYPE_NAMES``), stage, tier, how many orders and over
    which days (counted back from today).

    About 30% are prospects without orders. Buyers are skewed: a share of them order once (``ONE_OFF_SHARES``), the
    others share the remaining orders by lognormal weights times their archetype's buying frequency, so a few
    champions order very often.
    Dates follow the lifecycle: clients ordered within the year, clients to reactivate the year before, lost
    clients earlier still. The archetype is drawn knowing the lifecycle (most prospects are young freelancers).
    """
    lifecycle = _choice(rng, LIFECYCLE_WEIGHTS, count)
    buyers = np.flatnonzero(lifecycle != "prospect")
    if orders < len(buyers):
        lifecycle[rng.choice(buyers, size=len(buyers) - orders, replace=False)] = "prospect"
        buyers = np.flatnonzero(lifecycle != "prospect")
    archetype = _archetype_codes(rng, lifecycle)

    order_count = np.zeros(count, dtype=np.int64)
    order_count[buyers] = 1
    extra = orders - len(buyers)
    if extra > 0:
        repeat = buyers[rng.random(len(buyers)) >= ONE_OFF_SHARES[archetype[buyers]]]
        repeat = repeat if len(repeat) else buyers
        weights = rng.lognormal(0.0, 0.6, len(repeat)) * ORDERS_PER_YEAR[archetype[repeat]]
        order_count[repeat] += rng.multinomial(extra, weights / weights.sum())

    last_ago = np.zeros(count, dtype=np.int64)
    for status, (low, high) in LAST_ORDER_DAYS.items():
        mask = lifecycle == status
        last_ago[mask] = rng.integers(low, high, mask.sum())
    # Repeat buyers have been ordering for a while; one-off buyers ordered once.
    room = HISTORY_DAYS - last_ago
    first_ago = np.where(order_count > 1, last_ago + (room * rng.random(count) ** 0.5).astype(np.int64), last_ago)
    created_ago = np.where(
        order_count > 0, first_ago + rng.integers(1, 90, count), rng.integers(1, HISTORY_DAYS, count)
    )

    stage = np.where(lifecycle == "lost", "lost", "won").astype(object)
    prospects = lifecycle == "prospect"
    stage[prospects] = _choice(rng, PROSPECT_STAGE_WEIGHTS, prospects.sum())

    # Tiers follow order counts: the top 5% of buyers are key accounts, the next 20% tier B.
    tier = np.full(count, "C", dtype=object)
    if len(buyers):
        rank = order_count + rng.random(count)  # random tie-break
        tier[rank >= np.quantile(rank[buyers], 0.75)] = "B"
        tier[rank >= np.quantile(rank[buyers], 0.95)] = "A"
    tier[prospects & (rng.random(count) < 0.15)] = "B"

    return pd.DataFrame(
        {
            "lifecycle": lifecycle,
            "archetype": archetype,
            "stage": stage,
            "tier": tier,
            "order_count": order_count,
            "first_order_ago": first_ago,
            "last_order_ago": last_ago,
            "created_ago": created_ago,
        }
    )


def _archetype_codes(rng: np.random.Generator, lifecycle: np.ndarray) -> np.ndarray:
    """The archetype of each client given its lifecycle: P(archetype | lifecycle) from the archetypes' shares and
    lifecycle weights. Here every lost client has ordered, so the lost clients of an archetype that buys once at
    most (and mostly never did) count as its prospects."""
    codes = np.zeros(len(lifecycle), dtype=np.int8)
    for status in LIFECYCLE_WEIGHTS:
        mask = lifecycle == status
        weights = np.array([archetype.share * _lifecycle_share(archetype, status) for archetype in ARCHETYPES.values()])
        codes[mask] = rng.choice(len(weights), size=mask.sum(), p=weights / weights.sum())
    return codes


def _lifecycle_share(archetype: Archetype, status: str) -> float:
    weights = dict(archetype.lifecycles)
    if not archetype.days_between_orders:
        weights["prospect"] = weights.get("prospect", 0) + weights.pop("lost", 0)
    return weights.get(status, 0) / sum(weights.values())


def _typical_traits(rng: np.random.Generator, codes: np.ndarray, *, year: int) -> dict[str, np.ndarray]:
    """Demographics true to each client's archetype, each trait on ``typical`` of the clients; the other clients'
    values are left as None (drawn at random by the caller)."""
    count = len(codes)
    traits = {name: np.full(count, None, dtype=object) for name in ("job_title", "sector", "city", "birth_year")}
    for code, archetype in enumerate(ARCHETYPES.values()):
        members = codes == code
        for name, values in traits.items():
            chosen = np.flatnonzero(members & (rng.random(count) < archetype.typical))
            if name == "job_title":
                values[chosen] = np.array(archetype.job_titles, dtype=object)[
                    rng.integers(0, len(archetype.job_titles), len(chosen))
                ]
            elif name == "sector":
                values[chosen] = archetype.sector
            elif name == "city":
                values[chosen] = np.array(archetype.cities, dtype=object)[
                    rng.integers(0, len(archetype.cities), len(chosen))
                ]
            else:
                values[chosen] = year - rng.integers(archetype.ages[0], archetype.ages[1] + 1, len(chosen))
    return traits


def _first_names(rng: np.random.Generator, codes: np.ndarray) -> np.ndarray:
    """Index in ``FIRST_NAMES`` of each client's first name, its gender in the archetype's proportions."""
    genders = np.array([gender for _, gender in FIRST_NAMES], dtype=object)
    female = np.array([archetype.female * 0.96 for archetype in ARCHETYPES.values()])[codes]
    draw = rng.random(len(codes))
    gender = np.where(draw < female, "female", np.where(draw < 0.96, "male", "other"))
    first = np.empty(len(codes), dtype=np.int64)
    for name in ("female", "male", "other"):
        mask = gender == name
        names = np.flatnonzero(genders == name)
        first[mask] = names[rng.integers(0, len(names), mask.sum())]
    return first


def client_frame(
    rng: np.random.Generator,
    plan: pd.DataFrame,
    *,
    first_id: int,
    owner_ids: list[int],
    persona_ids: list[int],
    days: np.ndarray,
    now: str,
) -> pd.DataFrame:
    """The ``crm_client`` columns of the planned clients with ids from ``first_id`` (derived dates left out)."""
    count = len(plan)
    ids = np.arange(first_id, first_id + count)
    first_names = np.array([name for name, _ in FIRST_NAMES], dtype=object)
    genders = np.array([gender for _, gender in FIRST_NAMES], dtype=object)
    first_slugs = np.array([_ascii_slug(name) for name, _ in FIRST_NAMES], dtype=object)
    last_names = np.array(LAST_NAMES, dtype=object)
    last_slugs = np.array([_ascii_slug(name) for name in LAST_NAMES], dtype=object)
    companies = np.array([form.format(name) for form in COMPANY_FORMS for name in LAST_NAMES], dtype=object)
    domains = np.array([_ascii_slug(company) + ".fr" for company in companies], dtype=object)

    codes = plan["archetype"].to_numpy()
    first = _first_names(rng, codes)
    last = rng.integers(0, len(last_names), count)
    company = rng.integers(0, len(companies), count)
    id_text = ids.astype(str).astype(object)
    email = first_slugs[first] + "." + last_slugs[last] + "." + id_text + "@" + domains[company]
    linkedin = np.where(
        rng.random(count) < 0.6,
        "https://www.linkedin.com/in/" + first_slugs[first] + "-" + last_slugs[last] + "-" + id_text,
        "",
    )

    country = _choice(rng, COUNTRY_WEIGHTS, count)
    city = np.empty(count, dtype=object)
    for name, cities in CITIES_BY_COUNTRY.items():
        mask = country == name
        # Big cities hold most clients: Zipf-like weights by rank.
        weights = 1.0 / np.arange(1, len(cities) + 1)
        city[mask] = np.array(cities, dtype=object)[rng.choice(len(cities), mask.sum(), p=weights / weights.sum())]
    typical = _typical_traits(rng, codes, year=int(days[0][:4]))
    in_town = pd.notna(typical["city"])
    city[in_town], country[in_town] = typical["city"][in_town], "France"
    job_title = np.array(JOB_TITLES, dtype=object)[rng.integers(0, len(JOB_TITLES), count)]
    sector = _choice(rng, SECTORS, count)
    job_title = np.where(pd.notna(typical["job_title"]), typical["job_title"], job_title)
    sector = np.where(pd.notna(typical["sector"]), typical["sector"], sector)

    source = _choice(rng, SOURCE_WEIGHTS, count)
    referred_by = pd.array(
        np.where(
            (source == "referral") & (ids > first_id), first_id + np.floor(rng.random(count) * (ids - first_id)), np.nan
        ),
        dtype="Int64",
    )
    owner = pd.array(
        np.where(rng.random(count) < 0.97, np.array(owner_ids)[rng.integers(0, len(owner_ids), count)], np.nan),
        dtype="Int64",
    )
    persona = pd.array(
        np.where(
            (rng.random(count) < 0.2) & bool(persona_ids),
            np.array(persona_ids or [0])[rng.integers(0, max(len(persona_ids), 1), count)],
            np.nan,
        ),
        dtype="Int64",
    )
    birth_year = np.where(pd.notna(typical["birth_year"]), typical["birth_year"], rng.integers(1950, 2003, count))
    birth_year = pd.array(np.where(rng.random(count) < 0.85, birth_year.astype(np.int64), np.nan), dtype="Int64")

    return pd.DataFrame(
        {
            "id": ids,
            "first_name": first_names[first],
            "last_name": last_names[last],
            "email": email,
            "phone": "+336" + rng.integers(10_000_000, 99_999_999, count).astype(str).astype(object),
            "linkedin_url": linkedin,
            "external_id": "",
            "job_title": job_title,
            "company": companies[company],
            "sector": sector,
            "city": city,
            "country": country,
            "birth_year": birth_year,
            "gender": genders[first],
            "lifecycle": plan["lifecycle"].to_numpy(),
            "lifecycle_manual": False,
            "stage": plan["stage"].to_numpy(),
            "owner_id": owner,
            "tier": plan["tier"].to_numpy(),
            "source": source,
            "source_detail": "",
            "referred_by_id": referred_by,
            "persona_id": persona,
            "marketing_consent": rng.random(count) < 0.55,
            "do_not_contact": rng.random(count) < 0.03,
            "notes": "",
            "created_at": days[plan["created_ago"].to_numpy()]
            + TIMES_OF_DAY[rng.integers(0, len(TIMES_OF_DAY), count)],
            "updated_at": now,
        }
    )


def order_frame(rng: np.random.Generator, plan: pd.DataFrame, *, first_client_id: int) -> pd.DataFrame:
    """Every planned order (client id, days ago, amount, cost or NaN), oldest first so that ids grow with dates.

    Each client's first and last planned days are both used, so the dates derived from the orders match the plan.
    """
    counts = plan["order_count"].to_numpy()
    client = np.repeat(np.arange(len(plan)), counts)
    first_ago = plan["first_order_ago"].to_numpy()[client]
    last_ago = plan["last_order_ago"].to_numpy()[client]
    days_ago = last_ago + (rng.random(len(client)) * (first_ago - last_ago + 1)).astype(np.int64)
    starts = np.cumsum(counts) - counts
    buyers = counts > 0
    days_ago[starts[buyers]] = last_ago[starts[buyers]]
    repeat = counts > 1
    days_ago[starts[repeat] + 1] = first_ago[starts[repeat] + 1]

    # A basket level per client (key accounts spend more), and some spread from one order to the next.
    typical_basket = BASKETS[plan["archetype"].to_numpy()]
    basket = rng.lognormal(np.log(typical_basket), 0.4) * np.where(plan["tier"].to_numpy() == "A", 2.5, 1.0)
    amount = np.round(np.maximum(basket[client] * rng.lognormal(0.0, 0.5, len(client)), 1.0), 2)

    # Cost of goods from a child generator, so that the other draws stay those of the seed: 55-75 % of the
    # amount, unknown for some orders.
    cost_rng = rng.spawn(1)[0]
    cost = np.round(amount * cost_rng.uniform(COST_SHARE[0], COST_SHARE[1], len(amount)), 2)
    cost[cost_rng.random(len(amount)) < UNKNOWN_COST_SHARE] = np.nan

    order = np.argsort(-days_ago, kind="stable")
    return pd.DataFrame(
        {
            "client_id": first_client_id + client[order],
            "days_ago": days_ago[order],
            "amount": amount[order],
            "cost": cost[order],
        }
    )


def interaction_frame(
    rng: np.random.Generator, plan: pd.DataFrame, *, first_client_id: int, owner_ids: pd.Series, per_client: float
) -> pd.DataFrame:
    """Calls, emails, meetings and LinkedIn messages, ``per_client`` on average, recent ones more frequent.

    Clients to reactivate and lost clients have not been contacted much since their last order.
    """
    lifecycle = plan["lifecycle"].to_numpy()
    weight = np.select(
        [lifecycle == "client", lifecycle == "to_reactivate", lifecycle == "lost"], [1.3, 0.7, 0.4], default=1.0
    )
    counts = rng.poisson(per_client * weight / weight.mean())
    client = np.repeat(np.arange(len(plan)), counts)
    created_ago = plan["created_ago"].to_numpy()[client]
    lapsed = np.isin(lifecycle[client], ["to_reactivate", "lost"])
    recent_bound = np.where(lapsed, np.maximum(plan["last_order_ago"].to_numpy()[client] - 60, 1), 1)
    recent_bound = np.minimum(recent_bound, created_ago)
    days_ago = recent_bound + ((created_ago - recent_bound) * rng.random(len(client)) ** 2).astype(np.int64)
    kind = _choice(rng, INTERACTION_KINDS, len(client))
    return pd.DataFrame(
        {
            "client_id": first_client_id + client,
            "days_ago": days_ago,
            "time_of_day": rng.integers(0, len(TIMES_OF_DAY), len(client)),
            "kind": kind,
            "direction": np.where(rng.random(len(client)) < 0.75, "outbound", "inbound").astype(object),
            "user_id": owner_ids.array.take(client),
        }
    )


def client_tag_frame(rng: np.random.Generator, *, client_ids: np.ndarray, tag_shares: dict[int, float]) -> pd.DataFrame:
    """Tag links: each tag is on its share of the clients, drawn independently."""
    chosen = rng.random((len(client_ids), len(tag_shares))) < np.array(list(tag_shares.values()))
    rows, columns = np.nonzero(chosen)
    return pd.DataFrame({"client_id": client_ids[rows], "tag_id": np.array(list(tag_shares))[columns]})


@dataclass
class GenerationReport:
    clients: int = 0
    orders: int = 0
    lines: int = 0
    interactions: int = 0
    tag_links: int = 0
    timings: dict[str, float] = field(default_factory=dict)


class _Phases:
    """Times each phase of a generation run and reports it as it ends."""

    def __init__(self, timings: dict[str, float], log: Callable[[str], None]) -> None:
        self.timings = timings
        self.log = log

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - started
        self.log(f"{name}: {self.timings[name]:.1f} s")


def portfolio_generate(
    *,
    clients: int,
    orders: int,
    seed: int = 0,
    batch: int = BATCH_SIZE,
    lines: bool = False,
    interactions_per_client: float = INTERACTIONS_PER_CLIENT,
    log: Callable[[str], None] = lambda message: None,
) -> GenerationReport:
    """Add ``clients`` synthetic clients and ``orders`` orders, with interactions and tags, in one transaction."""
    report = GenerationReport()
    phase = _Phases(report.timings, log)
    rng = np.random.default_rng(seed)
    now = timezone.now().replace(tzinfo=None).isoformat(sep=" ")  # UTC, as the database connection uses
    days = day_strings(timezone.localdate(), HISTORY_DAYS + 100)

    with phase("reference data"):
        owner_ids = _rep_user_ids()
        persona_ids = _persona_ids()
        tag_shares = _tag_shares()
        products = _products_by_category() if lines else {}
        first = _next_ids()
    with phase("plan"):
        plan = plan_clients(rng, count=clients, orders=orders)
        order_plan = order_frame(rng, plan, first_client_id=first["client"])

    writer = _Writer()
    with transaction.atomic():
        writer.drop_indexes_for(_rows_added(clients, len(order_plan), lines=lines))
        writer.execute(f"CREATE TEMPORARY TABLE {STAGING_TABLE} AS SELECT * FROM crm_client WHERE 1 = 0")  # noqa: S608
        with phase("clients"):
            owners: list[pd.Series] = []
            chunks = (
                client_frame(
                    rng,
                    plan.iloc[start : start + batch],
                    first_id=first["client"] + start,
                    owner_ids=owner_ids,
                    persona_ids=persona_ids,
                    days=days,
                    now=now,
                )
                for start in range(0, clients, batch)
            )
            report.clients = writer.write(STAGING_TABLE, _keep_column(chunks, "owner_id", owners))
        with phase("orders"):
            report.orders = writer.write(
                Purchase._meta.db_table,
                _purchase_chunks(order_plan, first_id=first["purchase"], days=days, now=now, batch=batch),
            )
            if lines:
                line_chunks = _line_chunks(
                    rng,
                    order_plan,
                    first_id=first["line"],
                    purchase_id=first["purchase"],
                    archetypes=plan["archetype"].to_numpy(),
                    first_client_id=first["client"],
                    products=products,
                    batch=batch,
                )
                report.lines = writer.write(PurchaseLine._meta.db_table, line_chunks)
        with phase("interactions"):
            interactions = interaction_frame(
                rng,
                plan,
                first_client_id=first["client"],
                owner_ids=pd.concat(owners, ignore_index=True) if owners else pd.Series([], dtype="Int64"),
                per_client=interactions_per_client,
            )
            report.interactions = writer.write(
                Interaction._meta.db_table,
                _interaction_chunks(interactions, first_id=first["interaction"], days=days, batch=batch),
            )
        with phase("tags"):
            client_ids = np.arange(first["client"], first["client"] + clients)
            tag_links = client_tag_frame(rng, client_ids=client_ids, tag_shares=tag_shares)
            tag_links.insert(0, "id", np.arange(first["tag_link"], first["tag_link"] + len(tag_links)))
            report.tag_links = writer.write(Client.tags.through._meta.db_table, _chunks(tag_links, batch))
        with phase("derived dates"):
            writer.execute(_insert_clients_sql(), [first["client"], first["client"]])
            writer.execute(f"DROP TABLE {STAGING_TABLE}")
        with phase("indexes and constraints"):
            writer.restore_indexes()
    with phase("sequences and statistics"):
        _reset_sequences()
        writer.analyze([Client, Purchase, PurchaseLine, Interaction, Client.tags.through])
    return report


def _keep_column(chunks: Iterator[pd.DataFrame], name: str, kept: list[pd.Series]) -> Iterator[pd.DataFrame]:
    for chunk in chunks:
        kept.append(chunk[name])
        yield chunk


def _chunks(frame: pd.DataFrame, batch: int) -> Iterator[pd.DataFrame]:
    for start in range(0, len(frame), batch):
        yield frame.iloc[start : start + batch]


def _purchase_chunks(
    order_plan: pd.DataFrame, *, first_id: int, days: np.ndarray, now: str, batch: int
) -> Iterator[pd.DataFrame]:
    for start in range(0, len(order_plan), batch):
        chunk = order_plan.iloc[start : start + batch]
        ids = np.arange(first_id + start, first_id + start + len(chunk))
        days_ago = chunk["days_ago"].to_numpy()
        purchased_on = days[days_ago]
        yield pd.DataFrame(
            {
                "id": ids,
                "client_id": chunk["client_id"].to_numpy(),
                "reference": "CMD-" + ids.astype(str).astype(object),
                "purchased_on": purchased_on,
                "amount": chunk["amount"].to_numpy(),
                "cost": chunk["cost"].to_numpy(),
                "created_at": np.where(days_ago == 0, now, purchased_on + TIMES_OF_DAY[ids % len(TIMES_OF_DAY)]),
            }
        )


def line_products(rng: np.random.Generator, codes: np.ndarray, products: dict[str, list[int]]) -> np.ndarray:
    """A product id for each order of a client of archetype ``codes``: in the archetype's category on
    ``TRUE_TO_CATEGORY`` of the orders (when the catalogue has that category), anywhere in the catalogue otherwise."""
    every = np.array([pk for ids in products.values() for pk in ids])
    chosen = every[rng.integers(0, len(every), len(codes))]
    own = rng.random(len(codes)) < TRUE_TO_CATEGORY
    for code, archetype in enumerate(ARCHETYPES.values()):
        ids = np.array(products.get(archetype.category, []))
        mask = own & (codes == code)
        if len(ids):
            chosen[mask] = ids[rng.integers(0, len(ids), mask.sum())]
    return chosen


def _line_chunks(
    rng: np.random.Generator,
    order_plan: pd.DataFrame,
    *,
    first_id: int,
    purchase_id: int,
    archetypes: np.ndarray,
    first_client_id: int,
    products: dict[str, list[int]],
    batch: int,
) -> Iterator[pd.DataFrame]:
    """One line per order: one unit of a product (mostly of the client's archetype's category) at its amount."""
    for start in range(0, len(order_plan), batch):
        amount = order_plan["amount"].to_numpy()[start : start + batch]
        clients = order_plan["client_id"].to_numpy()[start : start + batch] - first_client_id
        yield pd.DataFrame(
            {
                "id": np.arange(first_id + start, first_id + start + len(amount)),
                "purchase_id": np.arange(purchase_id + start, purchase_id + start + len(amount)),
                "product_id": line_products(rng, archetypes[clients], products),
                "quantity": 1,
                "unit_price": amount,
            }
        )


def _interaction_chunks(
    interactions: pd.DataFrame, *, first_id: int, days: np.ndarray, batch: int
) -> Iterator[pd.DataFrame]:
    for start in range(0, len(interactions), batch):
        chunk = interactions.iloc[start : start + batch]
        occurred_at = days[chunk["days_ago"].to_numpy()] + TIMES_OF_DAY[chunk["time_of_day"].to_numpy()]
        yield pd.DataFrame(
            {
                "id": np.arange(first_id + start, first_id + start + len(chunk)),
                "client_id": chunk["client_id"].to_numpy(),
                "kind": chunk["kind"].to_numpy(),
                "direction": chunk["direction"].to_numpy(),
                "occurred_at": occurred_at,
                "subject": chunk["kind"].map(INTERACTION_SUBJECTS).to_numpy(),
                "body": "",
                "user_id": chunk["user_id"].array,
                "created_at": occurred_at,
            }
        )


def _insert_clients_sql() -> str:
    """Staged clients into ``crm_client`` with the dates derived from their orders and interactions."""
    columns = [f.column for f in Client._meta.local_concrete_fields]
    derived = {
        "converted_at": "purchases.first_day",
        "last_purchase_at": "purchases.last_day",
        "last_interaction_at": "interactions.last_at",
    }
    selected = ", ".join(derived.get(column, f"staged.{column}") for column in columns)
    # Every name in this statement comes from the models; the only values are parameters.
    return (
        f"INSERT INTO crm_client ({', '.join(columns)}) SELECT {selected} FROM {STAGING_TABLE} staged "  # noqa: S608
        "LEFT JOIN (SELECT client_id, MIN(purchased_on) AS first_day, MAX(purchased_on) AS last_day "
        "FROM crm_purchase WHERE client_id >= %s GROUP BY client_id) purchases ON purchases.client_id = staged.id "
        "LEFT JOIN (SELECT client_id, MAX(occurred_at) AS last_at "
        "FROM crm_interaction WHERE client_id >= %s GROUP BY client_id) interactions "
        "ON interactions.client_id = staged.id"
    )


def _rows_added(clients: int, orders: int, *, lines: bool) -> dict[str, int]:
    added = {
        "crm_client": clients,
        "crm_purchase": orders,
        "crm_interaction": clients,
        Client.tags.through._meta.db_table: clients // 2,
    }
    if lines:
        added["crm_purchaseline"] = orders
    return added


class _Writer:
    """Bulk writes on the default connection: COPY on PostgreSQL, batched ``executemany`` elsewhere."""

    def __init__(self) -> None:
        self.is_postgresql = connection.vendor == "postgresql"
        self.dropped: list[str] = []

    def execute(self, sql: str, params: list | None = None) -> None:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)

    def write(self, table: str, chunks: Iterator[pd.DataFrame]) -> int:
        """Write frames one after the other; on PostgreSQL one chunk is formatted while the previous is copied."""
        if not self.is_postgresql:
            return sum(self._insert(table, chunk) for chunk in chunks)
        written = 0
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = None
            for chunk in chunks:
                formatted = pool.submit(_csv, chunk)
                if pending is not None:
                    written += self._copy(table, *pending.result())
                pending = formatted
            if pending is not None:
                written += self._copy(table, *pending.result())
        return written

    def _insert(self, table: str, frame: pd.DataFrame) -> int:
        placeholders = ", ".join(["%s"] * len(frame.columns))
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(frame.columns)}) VALUES ({placeholders})",  # noqa: S608
                _python_rows(frame),
            )
        return len(frame)

    def _copy(self, table: str, columns: list[str], text: str, rows: int) -> int:
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", io.StringIO(text)
            )
        return rows

    def drop_indexes_for(self, rows_added: dict[str, int]) -> None:
        """On PostgreSQL, drop the secondary indexes and constraints of the tables this load at least doubles.

        Rebuilding an index once is much faster than maintaining it row by row; the transaction around the load
        brings them back if it fails.
        """
        if not self.is_postgresql:
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s) AND relkind = 'r'", [list(rows_added)]
            )
            tables = [name for name, estimate in cursor.fetchall() if rows_added[name] >= estimate]
            if tables:
                # Constraints cannot be dropped while checks deferred earlier in the transaction are pending.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                self.dropped = _drop_secondary_indexes(cursor, tables)
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")

    def restore_indexes(self) -> None:
        if not self.dropped:
            return
        with connection.cursor() as cursor:
            cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
            for statement in self.dropped:
                cursor.execute(statement)
        self.dropped = []

    def analyze(self, models: list) -> None:
        # VACUUM also fills the visibility map, so counts can use index-only scans straight away.
        command = "VACUUM ANALYZE" if self.is_postgresql and not connection.in_atomic_block else "ANALYZE"
        with connection.cursor() as cursor:
            for model in models:
                cursor.execute(f"{command} {model._meta.db_table}")


def _drop_secondary_indexes(cursor, tables: list[str]) -> list[tuple[str, str]]:
    """Drop indexes, unique and foreign-key constraints (primary keys stay); return the statements recreating them."""
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = ANY(%s::regclass[]) AND contype IN ('u', 'f') ORDER BY contype DESC",
        [tables],
    )
    constraints = cursor.fetchall()
    cursor.execute(
        "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
        "WHERE indrelid = ANY(%s::regclass[]) AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint WHERE conindid = indexrelid AND conrelid = indrelid)",
        [tables],
    )
    indexes = cursor.fetchall()
    for table, name, _kind, _definition in constraints:
        cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
    # Rebuild indexes first, then unique constraints, then foreign keys (each validated in one pass).
    return [definition for _name, definition in indexes] + [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' for table, name, _kind, definition in constraints
    ]


def _csv(frame: pd.DataFrame) -> tuple[list[str], str, int]:
    return list(frame.columns), frame.to_csv(index=False, header=False, na_rep="\\N"), len(frame)


def _python_rows(frame: pd.DataFrame) -> list[tuple]:
    columns = [
        [None if pd.isna(value) else value for value in frame[name].astype(object)]
        if frame[name].hasnans
        else frame[name].tolist()
        for name in frame.columns
    ]
    return list(zip(*columns, strict=True))


def _next_ids() -> dict[str, int]:
    def after(model) -> int:
        return (model.objects.aggregate(last=Max("pk"))["last"] or 0) + 1

    return {
        "client": after(Client),
        "purchase": after(Purchase),
        "line": after(PurchaseLine),
        "interaction": after(Interaction),
        "tag_link": after(Client.tags.through),
    }


def _reset_sequences() -> None:
    statements = connection.ops.sequence_reset_sql(
        no_style(), [Client, Purchase, PurchaseLine, Interaction, Client.tags.through]
    )
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


def _rep_user_ids() -> list[int]:
    """The active reps, or five benchmark reps created for the purpose when there is none."""
    user_model = get_user_model()
    reps = list(
        user_model.objects.filter(groups__name=roles.REP, is_active=True).order_by("pk").values_list("pk", flat=True)
    )
    if reps:
        return reps
    group = Group.objects.get(name=roles.REP)
    for number in range(1, BENCH_REP_COUNT + 1):
        user, _created = user_model.objects.get_or_create(username=f"bench_rep{number}")
        user.set_unusable_password()
        user.save()
        user.groups.add(group)
        reps.append(user.pk)
    return reps


def _persona_ids() -> list[int]:
    ids = list(Persona.objects.order_by("pk").values_list("pk", flat=True))
    if not ids:
        Persona.objects.bulk_create(Persona(name=name) for name in PERSONA_NAMES)
        ids = list(Persona.objects.order_by("pk").values_list("pk", flat=True))
    return ids


def _tag_shares() -> dict[int, float]:
    Tag.objects.bulk_create([Tag(name=name) for name in TAG_SHARES], ignore_conflicts=True)
    return {tag.pk: TAG_SHARES[tag.name] for tag in Tag.objects.filter(name__in=TAG_SHARES)}


def _products_by_category() -> dict[str, list[int]]:
    """The ids of the products of each category (the name of a product without one is empty); a generated
    catalogue is added first when there are no products at all."""
    if not Product.objects.exists():
        _catalogue_create()
    products: dict[str, list[int]] = {}
    for pk, category in Product.objects.order_by("pk").values_list("pk", "category__name"):
        products.setdefault(category or "", []).append(pk)
    return products


def _catalogue_create() -> None:
    Category.objects.bulk_create([Category(name=name) for name in CATALOGUE], ignore_conflicts=True)
    categories = {category.name: category for category in Category.objects.filter(name__in=CATALOGUE)}
    Product.objects.bulk_create(
        Product(
            name=f"{name} {level}",
            sku=f"GEN-{_ascii_slug(name)}-{level}",
            category=categories[name],
            price=Decimal(price * level),
        )
        for name, price in CATALOGUE.items()
        for level in (1, 2, 3)
    )
