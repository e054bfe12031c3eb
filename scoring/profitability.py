"""Profitability per group of clients: RFM segments of the current run, saved segments, personas.

For each group: clients, revenue, gross margin where the cost of goods is known (and the share of revenue it
covers), margin rate, the current run's 12-month CLV (sum and mean), the cost of the campaigns sent to its members,
net contribution and revenue per client.

Definitions:

- **period**: revenue and margin count the purchases of the period (the last 12 months up to today, or all time);
  the campaigns counted are those launched in the period. CLVs are the current run's, whatever the period.
- **gross margin**: amount - cost over the purchases whose cost is known; **coverage** is the share of revenue those
  purchases make; **margin rate** is the margin over their revenue.
- **campaign cost**: each campaign's cost is shared among the groups pro rata of the emails it sent to their members
  (cost x emails sent to the group / all the emails the campaign sent). A campaign without a cost counts 0 and is
  listed as "cost unknown".
- **net contribution**: when some margin is known, the margin rate applied to the group's whole revenue, minus the
  campaign cost (it is the gross margin itself when every cost is known, an estimate otherwise); when no cost is
  known, revenue minus campaign cost, flagged as based on revenue.

The pure functions (``allocate_campaign_costs``, ``profitability_table``) take small frames, one row per group or
per (group, campaign), with money as ``Decimal``. ``profitability_report`` does the I/O: a few aggregate queries
per kind of group, grouped in the database, so the cost grows with the number of groups, never with a Python loop
over clients or purchases. At 1M clients that takes seconds, so after each run a worker computes the tables of
every kind and period and stores them on the run (``profitability_snapshot_store``, ``dashboard["profitability"]``);
the page reads them, and computes only what they lack (saved segments changed since the run, personas made,
deleted or given a cluster's members since, a new day, no stored figures yet), which is then cached per run, period
and kind. Clients moved from one persona to another by hand keep the run's figures until the next run.

Campaigns belong to prospecting, which scoring does not import: ``settings.SCORING_CAMPAIGN_COSTS`` names the
callable ``(since) -> (campaigns frame, queryset of sent emails)`` that reads them; without it, no campaign cost.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache as memoize

import pandas as pd
from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import Count, F, FilteredRelation, Q, QuerySet, Sum
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from crm.filters import client_filter_class
from crm.models import Client, Lifecycle, Persona, Purchase, Segment
from scoring.models import ClientScore, ScoringRun
from scoring.rfm import SEGMENTS

ZERO = Decimal("0")
MONEY = Decimal("0.01")
NO_GROUP = ""  # the group of the clients without one: not scored, or without a persona

PERIOD_12_MONTHS, PERIOD_ALL = "12m", "all"
PERIODS = {PERIOD_12_MONTHS: _("Last 12 months"), PERIOD_ALL: _("All time")}
KIND_RFM, KIND_SEGMENTS, KIND_PERSONAS, KIND_LIFECYCLE = "rfm", "segments", "personas", "lifecycle"
KINDS = {KIND_RFM: _("RFM segments"), KIND_SEGMENTS: _("Saved segments"), KIND_PERSONAS: _("Personas")}
# Saved segments shown, by name: each adds its filter to the members query.
MAX_SAVED_SEGMENTS = 50
CACHE_PREFIX = "scoring:profitability:v1"

TABLE_COLUMNS = [
    "group",
    "clients",
    "revenue",
    "covered_revenue",
    "gross_margin",
    "margin_coverage",
    "margin_rate",
    "clv_12m_sum",
    "clv_12m_mean",
    "campaign_cost",
    "campaigns",
    "campaigns_cost_unknown",
    "contribution",
    "contribution_basis",
    "contribution_estimated",
    "revenue_per_client",
    "clients_share",
    "revenue_share",
]
BASIS_MARGIN, BASIS_REVENUE = "margin", "revenue"


# Pure functions ----------------------------------------------------------------------------------------------------


def _money(value) -> Decimal:
    """An amount to the cent (SQLite's sums come without trailing zeros), 0 for none."""
    return ZERO.quantize(MONEY) if value is None or pd.isna(value) else Decimal(value).quantize(MONEY, ROUND_HALF_UP)


def _ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    return part / whole if whole else None


def allocate_campaign_costs(sends: pd.DataFrame, campaigns: pd.DataFrame) -> pd.DataFrame:
    """Each campaign's cost shared among the groups pro rata of the emails it sent to their members.

    ``sends``: ``group, campaign_id, sends`` (emails sent to the group's members); ``campaigns``:
    ``campaign_id, cost`` (``Decimal``, None when unknown) ``, sends`` (every email the campaign sent). Returns one
    row per group of ``sends``: ``group, campaign_cost`` (to the cent), ``campaigns`` (that reached the group),
    ``campaigns_cost_unknown`` (those of them without a cost).
    """
    columns = ["group", "campaign_cost", "campaigns", "campaigns_cost_unknown"]
    if sends.empty:
        return pd.DataFrame(columns=columns)
    merged = sends.merge(campaigns, on="campaign_id", how="inner", suffixes=("", "_total"))
    unknown = [cost is None or pd.isna(cost) for cost in merged["cost"]]
    shares = [
        ZERO if is_unknown or not total else Decimal(cost) * int(sent) / int(total)
        for cost, sent, total, is_unknown in zip(
            merged["cost"], merged["sends"], merged["sends_total"], unknown, strict=True
        )
    ]
    merged = merged.assign(share=pd.Series(shares, index=merged.index, dtype=object), unknown=unknown)
    table = merged.groupby("group", sort=False).agg(
        campaign_cost=("share", lambda values: sum(values, ZERO).quantize(MONEY, ROUND_HALF_UP)),
        campaigns=("campaign_id", "nunique"),
        campaigns_cost_unknown=("unknown", "sum"),
    )
    table["campaigns_cost_unknown"] = table["campaigns_cost_unknown"].astype(int)
    return table.reset_index()[columns]


def _figures(row: dict) -> dict:
    """The derived figures of one group (see the module docstring)."""
    revenue, covered = _money(row["revenue"]), _money(row["covered_revenue"])
    margin = covered - _money(row["cost_of_goods"]) if covered else None
    campaign_cost = _money(row["campaign_cost"])
    clv_known = int(row["clv_12m_known"])
    clv_sum = _money(row["clv_12m_sum"]) if clv_known else None
    if margin is not None:
        contribution = revenue * margin / covered - campaign_cost
        basis = BASIS_MARGIN
    else:
        contribution = revenue - campaign_cost
        basis = BASIS_REVENUE
    clients = int(row["clients"])
    return {
        "group": row["group"],
        "clients": clients,
        "revenue": revenue,
        "covered_revenue": covered,
        "gross_margin": margin,
        "margin_coverage": _ratio(covered, revenue),
        "margin_rate": _ratio(margin, covered) if margin is not None else None,
        "clv_12m_sum": clv_sum,
        "clv_12m_mean": (clv_sum / clv_known).quantize(MONEY, ROUND_HALF_UP) if clv_known else None,
        "campaign_cost": campaign_cost,
        "campaigns": int(row["campaigns"]),
        "campaigns_cost_unknown": int(row["campaigns_cost_unknown"]),
        "contribution": contribution.quantize(MONEY, ROUND_HALF_UP),
        "contribution_basis": basis,
        "contribution_estimated": basis == BASIS_MARGIN and covered != revenue,
        "revenue_per_client": (revenue / clients).quantize(MONEY, ROUND_HALF_UP) if clients else None,
    }


def profitability_table(members: pd.DataFrame, purchases: pd.DataFrame, allocated: pd.DataFrame) -> pd.DataFrame:
    """One row per group of ``members``, with the columns of ``TABLE_COLUMNS``, by net contribution, highest first.

    ``members``: ``group, clients, clv_12m_sum, clv_12m_known`` (clients with a 12-month CLV); ``purchases``:
    ``group, revenue, covered_revenue`` (revenue of the purchases whose cost is known) ``, cost_of_goods``;
    ``allocated``: the result of ``allocate_campaign_costs``. Shares are of the table's totals (meaningful when
    the groups do not overlap, as RFM segments and personas do not).
    """
    # An empty frame may come with a float group column: every group key is text.
    members, purchases, allocated = (frame.astype({"group": object}) for frame in (members, purchases, allocated))
    table = members.merge(purchases, on="group", how="left").merge(allocated, on="group", how="left")
    for column in ("campaigns", "campaigns_cost_unknown"):
        table[column] = table[column].fillna(0)
    rows = [_figures(row) for row in table.to_dict("records")]
    total_clients = sum(row["clients"] for row in rows)
    total_revenue = sum((row["revenue"] for row in rows), ZERO)
    for row in rows:
        row["clients_share"] = _ratio(Decimal(row["clients"]), Decimal(total_clients))
        row["revenue_share"] = _ratio(row["revenue"], total_revenue)
    rows.sort(key=lambda row: (-row["contribution"], str(row["group"])))
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


# Reading the data ---------------------------------------------------------------------------------------------------

PURCHASE_SUMS = {
    "revenue": Sum("amount"),
    "covered_revenue": Sum("amount", filter=Q(cost__isnull=False)),
    "cost_of_goods": Sum("cost"),
}


def period_start(period: str, *, today: date | None = None) -> date | None:
    """The first day counted: 12 months ago (the same day is left out) or None for all time."""
    if period == PERIOD_ALL:
        return None
    return (today or timezone.localdate()) - relativedelta(months=12) + relativedelta(days=1)


def _purchases(since: date | None) -> QuerySet:
    purchases = Purchase.objects.order_by()
    return purchases.filter(purchased_on__gte=since) if since else purchases


@memoize
def _campaign_costs_reader(path: str):
    return import_string(path) if path else None


def campaign_costs(since: date | None) -> tuple[pd.DataFrame, QuerySet | None]:
    """The campaigns of the period (``campaign_id, name, cost, sends``) and their sent emails (``campaign_id``,
    ``client``), from the app that runs campaigns (``settings.SCORING_CAMPAIGN_COSTS``); none without one."""
    reader = _campaign_costs_reader(getattr(settings, "SCORING_CAMPAIGN_COSTS", ""))
    if reader is None:
        return pd.DataFrame(columns=["campaign_id", "name", "cost", "sends"]), None
    return reader(since)


def _frame(rows, columns: list[str]) -> pd.DataFrame:
    """The rows with their group as text (``NO_GROUP`` for none), read before pandas could make numbers of them."""
    rows = [{**row, "group": NO_GROUP if row["group"] is None else str(row["group"])} for row in rows]
    return pd.DataFrame(rows, columns=columns)


def _with_current_score(queryset: QuerySet, *, to_client: str, run_id: int | None) -> QuerySet:
    """``queryset`` with ``current_score``: the client's score in run ``run_id`` (a LEFT JOIN, one row at most)."""
    condition = Q(**{f"{to_client}scores__run_id": run_id or 0})
    return queryset.annotate(current_score=FilteredRelation(f"{to_client}scores", condition=condition))


def _grouped_frames(group_field: str | None, *, run_id: int | None, since: date | None, sent: QuerySet | None):
    """Members, purchases and sends per group: by RFM segment (``group_field`` None) or by a client field."""

    def grouped(queryset: QuerySet, to_client: str) -> QuerySet:
        if group_field is None:
            queryset = _with_current_score(queryset, to_client=to_client, run_id=run_id)
            return queryset.values(group=F("current_score__segment"))
        return queryset.values(group=F(f"{to_client}{group_field}"))

    members_query = _with_current_score(Client.objects.order_by(), to_client="", run_id=run_id)
    if group_field is None:
        members_query = members_query.values(group=F("current_score__segment"))
    else:
        members_query = members_query.values(group=F(group_field))
    members = members_query.annotate(
        clients=Count("id"), clv_12m_sum=Sum("current_score__clv_12m"), clv_12m_known=Count("current_score__clv_12m")
    )
    purchases = grouped(_purchases(since), "client__").annotate(**PURCHASE_SUMS)
    sends = (
        []
        if sent is None
        else grouped(sent, "client__").annotate(sends=Count("id")).values("group", "campaign_id", "sends")
    )
    return (
        _frame(members, ["group", "clients", "clv_12m_sum", "clv_12m_known"]),
        _frame(purchases, ["group", "revenue", "covered_revenue", "cost_of_goods"]),
        _frame(sends, ["group", "campaign_id", "sends"]),
    )


def _members_sql(sets: dict[str, QuerySet]) -> tuple[str, list, list[str]]:
    """One SQL for every set's members: ``(grp, client_id)`` rows, ``grp`` the set's position in the returned keys."""
    parts, params, keys = [], [], []
    for key, clients in sets.items():
        try:
            sql, set_params = clients.order_by().values("pk").distinct().query.sql_with_params()
        except EmptyResultSet:  # a set that cannot match anyone (an invalid filter)
            continue
        parts.append(f"SELECT {len(keys)} AS grp, m.pk AS client_id FROM ({sql}) m")  # noqa: S608
        params += set_params
        keys.append(key)
    return " UNION ALL ".join(parts), params, keys


def _set_frames(sets: dict[str, QuerySet], *, run_id: int | None, since: date | None, sent: QuerySet | None):
    """Members, purchases and sends of each named set of clients (sets may overlap): three queries for all the sets,
    each reading the purchases (or emails) once, aggregated per client, then summed per set."""
    members_sql, members_params, keys = _members_sql(sets)
    members = pd.DataFrame({"group": list(sets), "clients": 0, "clv_12m_sum": None, "clv_12m_known": 0})
    purchases = pd.DataFrame(columns=["group", "revenue", "covered_revenue", "cost_of_goods"])
    sends = pd.DataFrame(columns=["group", "campaign_id", "sends"])
    if not keys:
        return members, purchases, sends
    quote = connection.ops.quote_name
    with_members = f"WITH members AS ({members_sql}) "
    score_table, purchase_table = quote(ClientScore._meta.db_table), quote(Purchase._meta.db_table)
    figures = _fetch(
        f"{with_members}SELECT members.grp, COUNT(*), SUM(cs.clv_12m), COUNT(cs.clv_12m) FROM members "  # noqa: S608
        f"LEFT JOIN {score_table} cs ON cs.client_id = members.client_id AND cs.run_id = %s GROUP BY members.grp",
        [*members_params, run_id or 0],
    )
    by_key = {keys[grp]: row for grp, *row in figures}
    members = pd.DataFrame(
        [
            {
                "group": key,
                **dict(zip(("clients", "clv_12m_sum", "clv_12m_known"), by_key.get(key, (0, None, 0)), strict=True)),
            }
            for key in sets
        ]
    )
    period_params = [since.isoformat()] if since else []
    if len(keys) == 1:
        # One set: a plain join lets PostgreSQL reach a small set's purchases through the (client, date) index.
        period = "AND p.purchased_on >= %s " if since else ""
        sql = (
            f"{with_members}SELECT members.grp, SUM(p.amount), SUM(CASE WHEN p.cost IS NOT NULL THEN p.amount END), "  # noqa: S608
            f"SUM(p.cost) FROM members JOIN {purchase_table} p ON p.client_id = members.client_id {period}"
            "GROUP BY members.grp"
        )
    else:
        # Several sets, which may overlap: the purchases summed per client once, then per set.
        period = "WHERE purchased_on >= %s " if since else ""
        sql = (
            f"{with_members}, bought AS (SELECT client_id, SUM(amount) AS revenue, "  # noqa: S608
            f"SUM(CASE WHEN cost IS NOT NULL THEN amount END) AS covered, SUM(cost) AS cogs FROM {purchase_table} "
            f"{period}GROUP BY client_id) SELECT members.grp, SUM(bought.revenue), SUM(bought.covered), "
            "SUM(bought.cogs) FROM members JOIN bought ON bought.client_id = members.client_id GROUP BY members.grp"
        )
    rows = _fetch(sql, [*members_params, *period_params])
    purchases = pd.DataFrame([(keys[grp], *row) for grp, *row in rows], columns=purchases.columns)
    if sent is not None:
        try:
            sent_sql, sent_params = sent.order_by().values("campaign_id", "client_id").query.sql_with_params()
        except EmptyResultSet:
            return members, purchases, sends
        rows = _fetch(
            f"{with_members}SELECT members.grp, s.campaign_id, COUNT(*) FROM members "  # noqa: S608
            f"JOIN ({sent_sql}) s ON s.client_id = members.client_id GROUP BY members.grp, s.campaign_id",
            [*members_params, *sent_params],
        )
        sends = pd.DataFrame([(keys[grp], *row) for grp, *row in rows], columns=sends.columns)
    return members, purchases, sends


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def saved_segment_sets(segments: list[Segment]) -> dict[str, QuerySet]:
    """Each saved segment's clients, evaluated as its campaigns see it (for the user who saved it)."""
    filter_class = client_filter_class()
    return {
        str(segment.pk): filter_class(segment.filters, queryset=Client.objects.all(), user=segment.created_by).qs
        for segment in segments
    }


@dataclass
class ProfitabilityReport:
    kind: str
    period: str
    since: date | None
    run_id: int | None
    rows: list[dict]  # the table's rows, each with its ``label``
    campaigns_cost_unknown: list[str]  # names of the campaigns counted without a cost
    computed_at: datetime


def _labels(kind: str, groups: list[str], segments: dict[str, Segment]) -> dict[str, str]:
    if kind == KIND_RFM:
        return {key: str(SEGMENTS[key].label) if key in SEGMENTS else key or str(_("Not scored")) for key in groups}
    if kind == KIND_PERSONAS:
        names = dict(Persona.objects.filter(pk__in=[int(key) for key in groups if key]).values_list("pk", "name"))
        return {key: names.get(int(key), key) if key else str(_("No persona")) for key in groups}
    if kind == KIND_LIFECYCLE:
        return {key: str(Lifecycle(key).label) for key in groups}
    return {key: segments[key].name for key in groups}


def _segments_fingerprint(segments: list[Segment]) -> str:
    text = json.dumps([[segment.pk, segment.filters] for segment in segments], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _personas_fingerprint() -> str:
    """Changes when a persona is made or deleted, or when the assignment of a cluster's members to one ends."""
    rows = list(Persona.objects.order_by("pk").values_list("pk", "scoring_profile__assign_status"))
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()[:16]


def _fingerprint(kind: str, segments: list[Segment]) -> str:
    """What the figures of ``kind`` depend on besides the run and the period: saved segments, personas."""
    if kind == KIND_SEGMENTS:
        return _segments_fingerprint(segments)
    if kind == KIND_PERSONAS:
        return _personas_fingerprint()
    return ""


def _compute(kind: str, *, run_id: int | None, since: date | None, segments: list[Segment]) -> tuple[list, list]:
    """The table's rows (without labels) and the names of the campaigns counted without a cost."""
    campaigns, sent = campaign_costs(since)
    reading = {"run_id": run_id, "since": since, "sent": sent}
    if kind == KIND_RFM:
        frames = _grouped_frames(None, **reading)
    elif kind == KIND_PERSONAS:
        frames = _grouped_frames("persona_id", **reading)
    elif kind == KIND_LIFECYCLE:
        frames = _set_frames(
            {Lifecycle.TO_REACTIVATE: Client.objects.filter(lifecycle=Lifecycle.TO_REACTIVATE)}, **reading
        )
    else:
        frames = _set_frames(saved_segment_sets(segments), **reading)
    members, purchases, sends = frames
    table = profitability_table(members, purchases, allocate_campaign_costs(sends, campaigns))
    reached = set(sends["campaign_id"].tolist())
    unknown = [
        row["name"]
        for row in campaigns.to_dict("records")
        if row["campaign_id"] in reached and (row["cost"] is None or pd.isna(row["cost"]))
    ]
    return table.to_dict("records"), unknown


DECIMAL_COLUMNS = frozenset(
    {
        "revenue",
        "covered_revenue",
        "gross_margin",
        "margin_coverage",
        "margin_rate",
        "clv_12m_sum",
        "clv_12m_mean",
        "campaign_cost",
        "contribution",
        "revenue_per_client",
        "clients_share",
        "revenue_share",
    }
)
SNAPSHOT_KEY = "profitability"  # in ScoringRun.dashboard
SNAPSHOT_KINDS = (KIND_RFM, KIND_LIFECYCLE, KIND_PERSONAS, KIND_SEGMENTS)


def _saved_segments() -> list[Segment]:
    return list(Segment.objects.select_related("created_by").order_by("name")[:MAX_SAVED_SEGMENTS])


def _figures_to_json(figures: tuple) -> dict:
    rows, unknown, computed_at = figures
    rows = [{key: str(value) if isinstance(value, Decimal) else value for key, value in row.items()} for row in rows]
    return {"rows": rows, "unknown": unknown, "computed_at": computed_at.isoformat()}


def _figures_from_json(data: dict) -> tuple:
    rows = [
        {key: Decimal(value) if key in DECIMAL_COLUMNS and value is not None else value for key, value in row.items()}
        for row in data["rows"]
    ]
    return rows, data["unknown"], datetime.fromisoformat(data["computed_at"])


def profitability_snapshot_store(*, run_id: int, today: date | None = None) -> dict[str, float]:
    """Compute the tables of every kind and period for a completed run and keep them on the run, so the analysis
    page reads them rather than aggregating millions of purchases; returns the seconds per period and kind."""
    segments = _saved_segments()
    snapshot = {"segments": _segments_fingerprint(segments), "personas": _personas_fingerprint(), "periods": {}}
    seconds = {}
    for period in PERIODS:
        since = period_start(period, today=today)
        kinds = {}
        for kind in SNAPSHOT_KINDS:
            started = time.perf_counter()
            kinds[kind] = _figures_to_json(
                (*_compute(kind, run_id=run_id, since=since, segments=segments), timezone.now())
            )
            seconds[f"{period} {kind}"] = round(time.perf_counter() - started, 3)
        snapshot["periods"][period] = {"since": str(since), "kinds": kinds}
    run = ScoringRun.objects.only("dashboard").get(pk=run_id)
    run.dashboard = {**run.dashboard, SNAPSHOT_KEY: snapshot}
    run.save(update_fields=["dashboard"])
    return seconds


def _stored_figures(kind: str, *, run_id: int, period: str, since: date | None, fingerprint: str) -> tuple | None:
    """The run's stored figures of ``kind`` when they are of this period (and of these saved segments or personas)."""
    path = f"dashboard__{SNAPSHOT_KEY}"
    fingerprint_path = f"{path}__{kind}" if kind in (KIND_SEGMENTS, KIND_PERSONAS) else f"{path}__segments"
    stored = (
        ScoringRun.objects.filter(pk=run_id)
        .values_list(fingerprint_path, f"{path}__periods__{period}__since", f"{path}__periods__{period}__kinds__{kind}")
        .first()
    )
    if not stored or stored[2] is None or stored[1] != str(since):
        return None
    if kind in (KIND_SEGMENTS, KIND_PERSONAS) and stored[0] != fingerprint:
        return None
    return _figures_from_json(stored[2])


def profitability_report(
    kind: str, *, period: str = PERIOD_12_MONTHS, run_id: int | None, today: date | None = None
) -> ProfitabilityReport:
    """The profitability table of one kind of group: from the cache, else from the figures stored on the run
    (``profitability_snapshot_store``), else computed (and cached).

    The labels are added here, never stored: they follow the reader's language and the personas' names.
    """
    since = period_start(period, today=today)
    segments = _saved_segments()
    fingerprint = _fingerprint(kind, segments)
    key = f"{CACHE_PREFIX}:{kind}:{run_id}:{since}:{fingerprint}"
    figures = cache.get(key)
    if figures is None:
        if run_id is not None:
            figures = _stored_figures(kind, run_id=run_id, period=period, since=since, fingerprint=fingerprint)
        if figures is None:
            figures = (*_compute(kind, run_id=run_id, since=since, segments=segments), timezone.now())
        cache.set(key, figures, getattr(settings, "SCORING_PROFITABILITY_CACHE_SECONDS", 900))
    rows, unknown, computed_at = figures
    labels = _labels(kind, [row["group"] for row in rows], {str(segment.pk): segment for segment in segments})
    rows = [{**row, "label": labels[row["group"]]} for row in rows]
    return ProfitabilityReport(kind, period, since, run_id, rows, unknown, computed_at)
