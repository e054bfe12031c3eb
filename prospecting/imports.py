"""Imports of prospects, clients and purchase history: a job from an upload, a dry run, the apply, the undo.

Every step reads the stored file again and plans the whole import in memory (what to create, what to update with
which old -> new values, what is unchanged, which lines are errors) before anything is written:

- ``import_create`` reads the upload (``prospecting.readers``), recognises a Waalaxy export, guesses the mapping.
- ``import_preview`` plans and stores the counts, the first rows and the error report; it writes nothing else.
  ``import_preview_start`` runs it within the request for a small file, in a worker for a large one.
- ``import_apply`` (run by a Celery task) plans again inside one transaction, under a PostgreSQL advisory lock
  shared by every import so that two imports at once never create the same person twice, and writes in bulk
  through ``crm.services``. The job either ends applied with everything written, or failed with nothing written.
  A worker previewing or applying a job holds the job's PostgreSQL session lock: when the worker dies, the lock
  goes with its connection, and ``import_fail_stale`` fails the job instead of leaving it "applying".
- ``import_undo`` removes what the job created and gives updated fields their previous values back, except the
  fields and records edited since the import, which it keeps and lists (``import_undo_conflicts``).

Matching: the normalised email, then the normalised LinkedIn URL (or first name + last name + company, folded, or
the external id: the client's number in the shop or invoicing tool). An external id belongs to one client: a line
giving one that another client holds is an error, never a constraint failure at apply. Purchases find their client
by email or by external id, as the admin chooses. A purchase needs a reference, so that
importing the same file again skips the orders already there (client + reference); lines sharing a client and a
reference are the lines of one order.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext

from crm import services as crm_services
from crm.models import Category, Client, ClientChange, Interaction, Product, Purchase, PurchaseLine, Source, Stage
from crm.normalize import normalize_email
from portfolio.queueing import enqueue_on_commit, worker_lock
from prospecting.mapping import convert_record, guess_mapping
from prospecting.models import (
    ClientKey,
    ImportChange,
    ImportChangeAction,
    ImportEntity,
    ImportJob,
    ImportKind,
    ImportStatus,
    MatchKey,
    UnknownClients,
    UpdatePolicy,
)
from prospecting.readers import ImportFileError, Table, read_table
from prospecting.validation import MAX_AMOUNT, fold
from prospecting.waalaxy import canonical_header, is_waalaxy_export, map_waalaxy_record, waalaxy_subjects

logger = logging.getLogger(__name__)

# pg_advisory_xact_lock key taken by every apply and undo: they serialise, and each matches inside the lock.
IMPORT_LOCK_KEY = 7_324_001
# pg_advisory_lock(IMPORT_JOB_LOCK_CLASS, job id): held by the process previewing or applying a job.
IMPORT_JOB_LOCK_CLASS = 7_324_002
LOOKUP_BATCH_SIZE = 5000
UPDATABLE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "linkedin_url",
    "external_id",
    "job_title",
    "company",
    "sector",
    "city",
    "country",
    "birth_year",
    "notes",
    "source_detail",
    "stage",
)
# Stages only move forward on import (an old export must not send a won client back to "contacted").
STAGE_RANK = {stage: rank for rank, stage in enumerate(Stage.values)}
PURCHASE_STATE_FIELDS = ("lifecycle", "stage", "converted_at", "last_purchase_at")
CREATE, UPDATE, UNCHANGED, ERROR = "create", "update", "unchanged", "error"
LINE = "line"  # another line of the order started on an earlier line (purchases)
RESULT_FIELDS = [
    "status",
    "total_rows",
    "progress",
    "created_count",
    "updated_count",
    "unchanged_count",
    "error_count",
    "preview_rows",
    "errors",
    "error",
    "preview_seconds",
    "apply_seconds",
    "previewed_at",
    "applied_at",
]

DEFAULT_OPTIONS = {
    "owner_id": None,
    "tags": [],
    "source": "",
    "policy": UpdatePolicy.FILL_EMPTY,
    "field_policies": {},
    "match_key": MatchKey.EMAIL_LINKEDIN,
    "client_key": ClientKey.EMAIL,
    "unknown_clients": UnknownClients.REPORT,
}


@dataclass
class RowPlan:
    """What one line of the file does: its action, the values to write and, for an update, old -> new."""

    line: int
    cells: tuple[str, ...]
    action: str = CREATE
    values: dict[str, Any] = field(default_factory=dict)
    client_id: int | None = None
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    interactions: list[dict[str, Any]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (column, reason)
    order: dict[str, Any] = field(default_factory=dict)  # purchases: reference, date, amount, lines

    @property
    def label(self) -> str:
        name = f"{self.values.get('first_name', '')} {self.values.get('last_name', '')}".strip()
        values = self.values
        return name or values.get("email") or values.get("linkedin_url") or values.get("external_id") or ""

    def fail(self, reason: str, column: str = "") -> None:
        self.action = ERROR
        self.errors.append((column, reason))


@dataclass
class Outcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged, "errors": self.errors}


# Creating a job, previewing it


def import_create(*, data: bytes, filename: str, kind: str, user, options: dict | None = None) -> ImportJob:
    """A job for an upload; raises ``ImportFileError`` (nothing stored) when the file cannot be read."""
    table = read_table(data, filename=filename, max_bytes=settings.IMPORT_MAX_BYTES)
    waalaxy = kind == ImportKind.PEOPLE and is_waalaxy_export(table.header)
    mapping = {} if waalaxy else guess_mapping(table.header, target=_target(kind))
    options = dict(options or {})
    if kind == ImportKind.PURCHASES and not options.get("client_key"):
        options["client_key"] = guess_client_key(mapping)
    job = ImportJob.objects.create(
        kind=kind,
        filename=filename[:255],
        data=data,
        is_waalaxy=waalaxy,
        header=list(table.header),
        uploaded_by=user,
        mapping=mapping,
        options=_checked_options(options),
        total_rows=len(table.rows),
    )
    job.notes = table.notes  # what the reader did that the admin should know (a workbook named .csv, ...)
    return job


def guess_client_key(mapping: dict[str, str | None]) -> str:
    """Purchases: find clients by external id when the file has a client-number column and no email column."""
    fields = set(mapping.values())
    return ClientKey.EXTERNAL_ID if "client_ref" in fields and "email" not in fields else ClientKey.EMAIL


def import_read(job: ImportJob) -> Table:
    return read_table(bytes(job.data), filename=job.filename, max_bytes=settings.IMPORT_MAX_BYTES)


def import_configure(*, job: ImportJob, mapping: dict[str, str | None], options: dict) -> ImportJob:
    job.mapping = mapping
    job.options = _checked_options(options)
    job.save(update_fields=["mapping", "options"])
    return job


def import_options_check(options: dict) -> dict:
    """The options over their defaults, for a caller that checks them before the file is read (``ValueError``)."""
    return _checked_options(options)


def _checked_options(options: dict) -> dict:
    """The options over their defaults; raises ``ValueError`` (with a message for the admin) for an unknown policy
    or key."""
    options = {**DEFAULT_OPTIONS, **options}
    if options["match_key"] not in MatchKey.values:
        raise ValueError(
            gettext("“%(key)s” is not a way to recognise people: choose %(choices)s.")
            % {"key": options["match_key"], "choices": ", ".join(MatchKey.values)}
        )
    if options["client_key"] not in ClientKey.values:
        raise ValueError(
            gettext("“%(key)s” is not a way to find clients: choose %(choices)s.")
            % {"key": options["client_key"], "choices": ", ".join(ClientKey.values)}
        )
    policies = {"": options["policy"], **(options["field_policies"] or {})}
    for name, policy in policies.items():
        if name and name not in UPDATABLE_FIELDS:
            raise ValueError(gettext("“%(field)s” is not a field an import can update.") % {"field": name})
        if policy not in UpdatePolicy.values:
            raise ValueError(
                gettext("“%(policy)s” is not an update policy: choose overwrite, fill_empty or never.")
                % {"policy": policy}
            )
    return options


def import_preview(*, job: ImportJob) -> Outcome:
    """Dry run: plan the whole file and store counts, the first rows and the error report on the job only."""
    started = time.monotonic()
    plan = import_plan(job)
    outcome = _outcome(plan)
    job.preview_rows = [_preview_row(row) for row in plan[: settings.IMPORT_PREVIEW_ROWS]]
    job.errors = _error_report(plan)
    job.total_rows = len(plan)
    _store_counts(job, outcome)
    if job.status in (ImportStatus.UPLOADED, ImportStatus.PREVIEWING, ImportStatus.PREVIEWED, ImportStatus.FAILED):
        job.status, job.error = ImportStatus.PREVIEWED, ""
    job.previewed_at = timezone.now()
    job.preview_seconds = round(time.monotonic() - started, 3)
    job.save(update_fields=RESULT_FIELDS)
    return outcome


def import_preview_start(*, job: ImportJob) -> ImportJob:
    """Preview a small file now (``ImportFileError`` if it cannot be read); queue the preview of a large one."""
    if job.total_rows <= settings.PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS:
        import_preview(job=job)
        return job
    from prospecting.tasks import import_preview_task

    # started_at stays empty until a worker takes the preview (see import_fail_stale).
    job.status, job.started_at, job.progress, job.error = ImportStatus.PREVIEWING, None, 0, ""
    job.save(update_fields=["status", "started_at", "progress", "error"])
    job_id = job.pk
    enqueue_on_commit(import_preview_task, job_id, on_failure=lambda error: _fail_unqueued_preview(job_id))
    return job


def import_preview_run(*, job_id: int) -> ImportJob | None:
    """The queued preview of a job (run by a worker); a failure leaves the job to be previewed again, with why."""
    with worker_lock(IMPORT_JOB_LOCK_CLASS, job_id):
        job = ImportJob.objects.filter(pk=job_id, status=ImportStatus.PREVIEWING).first()
        if job is None:
            return ImportJob.objects.defer("data").filter(pk=job_id).first()
        job.started_at = timezone.now()
        job.save(update_fields=["started_at"])
        try:
            import_preview(job=job)
        except ImportFileError as exc:
            _fail_preview(job_id, "\n".join([exc.message, *exc.details]))
        except Exception as exc:
            logger.exception("preview of import %s failed", job_id)
            _fail_preview(job_id, str(exc)[:1000])
    return ImportJob.objects.defer("data").filter(pk=job_id).first()


def _fail_preview(job_id: int, reason: str) -> None:
    ImportJob.objects.filter(pk=job_id, status=ImportStatus.PREVIEWING).update(
        status=ImportStatus.UPLOADED,
        previewed_at=None,
        error=gettext("The preview failed; nothing was written: %(error)s") % {"error": reason},
    )


def _fail_unqueued_preview(job_id: int) -> None:
    ImportJob.objects.filter(pk=job_id, status=ImportStatus.PREVIEWING).update(
        status=ImportStatus.UPLOADED,
        error=gettext("The background workers could not be reached; nothing was previewed. Try again later."),
    )


def import_plan(job: ImportJob, table: Table | None = None) -> list[RowPlan]:
    table = table or import_read(job)
    if job.kind == ImportKind.PURCHASES:
        return _plan_purchases(job, table)
    return _plan_people(job, table)


# People


def _people_rows(job: ImportJob, table: Table) -> Iterator[RowPlan]:
    source = job.options.get("source") or ""
    if job.is_waalaxy:
        header = canonical_header(table.header)
        tz, subjects = timezone.get_default_timezone(), waalaxy_subjects()
        for row in table.rows:
            prospect = map_waalaxy_record(dict(zip(header, row.cells, strict=True)), tz=tz, subjects=subjects)
            plan = RowPlan(row.line, row.cells, values=prospect.client, interactions=prospect.interactions)
            plan.errors = [(error.column, error.message) for error in prospect.errors]
            yield plan
        return
    for row in table.rows:
        converted = convert_record(dict(zip(table.header, row.cells, strict=True)), job.mapping, target="client")
        plan = RowPlan(row.line, row.cells, values=converted.values)
        plan.errors = [(error.column, error.message) for error in converted.errors]
        plan.values.setdefault("source", source or Source.IMPORT)
        yield plan


def _person_keys(values: dict[str, Any], match_key: str) -> list[tuple]:
    if match_key == MatchKey.EXTERNAL_ID:
        return [("external_id", values["external_id"])] if values.get("external_id") else []
    if match_key == MatchKey.NAME_COMPANY:
        first, last = fold(values.get("first_name", "")), fold(values.get("last_name", ""))
        return [("name", first, last, fold(values.get("company", "")))] if first or last else []
    keys: list[tuple] = []
    if values.get("email"):
        keys.append(("email", values["email"]))
    if values.get("linkedin_url"):
        keys.append(("linkedin", values["linkedin_url"]))
    return keys


def _plan_people(job: ImportJob, table: Table) -> list[RowPlan]:
    options = job.options
    match_key = options.get("match_key") or MatchKey.EMAIL_LINKEDIN
    extra_tags = list(options.get("tags") or [])
    plan, seen = [], {}
    for row in _people_rows(job, table):
        plan.append(row)
        row.tags = sorted({*(row.values.pop("tags", None) or []), *extra_tags})
        if row.errors:
            row.action = ERROR
            continue
        keys = _person_keys(row.values, match_key)
        if not keys:
            row.fail(_missing_key_reason(match_key))
            continue
        if row.values.get("external_id") and match_key != MatchKey.EXTERNAL_ID:
            keys.append(("external_id", row.values["external_id"]))  # one external id, one person
        first = next((seen[key] for key in keys if key in seen), None)
        if first is not None:
            row.fail(gettext("duplicate of line %(line)d") % {"line": first})
            continue
        for key in keys:
            seen[key] = row.line
    _match_people(plan, match_key, options)
    return plan


def _missing_key_reason(match_key: str) -> str:
    if match_key == MatchKey.NAME_COMPANY:
        return gettext("a first or last name is needed to recognise this person")
    if match_key == MatchKey.EXTERNAL_ID:
        return gettext("an external id is needed to recognise this person")
    return gettext("an email or a LinkedIn profile is needed to recognise this person")


def _match_people(plan: list[RowPlan], match_key: str, options: dict) -> None:
    rows = [row for row in plan if row.action != ERROR]
    existing = _existing_clients(rows, match_key)
    tags = _existing_tags({client["id"] for client in existing.values()})
    known_keys = _existing_interaction_keys(
        [interaction["external_key"] for row in rows for interaction in row.interactions]
    )
    holders = _external_id_holders(rows, match_key, existing)
    claimed: dict[int, int] = {}
    for row in rows:
        client = next((existing[key] for key in _person_keys(row.values, match_key) if key in existing), None)
        row.interactions = [item for item in row.interactions if item["external_key"] not in known_keys]
        known_keys.update(item["external_key"] for item in row.interactions)
        if client is None:
            row.action = CREATE
            _check_external_id(row, row.values.get("external_id"), holders)
            continue
        if client["id"] in claimed:
            row.fail(gettext("duplicate of line %(line)d (same client)") % {"line": claimed[client["id"]]})
            continue
        claimed[client["id"]] = row.line
        row.client_id = client["id"]
        row.changes = _field_changes(client, row.values, options)
        row.tags = [name for name in row.tags if name not in tags.get(client["id"], set())]
        row.action = UPDATE if row.changes or row.tags or row.interactions else UNCHANGED
        if "external_id" in row.changes:
            _check_external_id(row, row.changes["external_id"][1], holders)


def _external_id_holders(rows: list[RowPlan], match_key: str, existing: dict[tuple, dict]) -> dict[str, int]:
    """``{external id: id of the client holding it}`` for the external ids of the file."""
    if match_key == MatchKey.EXTERNAL_ID:
        return {key[1]: client["id"] for key, client in existing.items()}
    values = sorted({row.values["external_id"] for row in rows if row.values.get("external_id")})
    if not values:
        return {}
    return {client["external_id"]: client["id"] for client in _clients_by("external_id", values, ["id", "external_id"])}


def _check_external_id(row: RowPlan, value: str | None, holders: dict[str, int]) -> None:
    """A line may not give a client an external id another client holds (the database would refuse it)."""
    holder = holders.get(value) if value else None
    if holder is not None and holder != row.client_id:
        row.fail(
            gettext("the external id “%(value)s” already belongs to another client (#%(id)d)")
            % {"value": value, "id": holder},
            "external_id",
        )


def _field_changes(client: dict[str, Any], values: dict[str, Any], options: dict) -> dict[str, tuple[Any, Any]]:
    default = options.get("policy") or UpdatePolicy.FILL_EMPTY
    policies = options.get("field_policies") or {}
    changes = {}
    for name in UPDATABLE_FIELDS:
        if name not in values:
            continue
        old, new = client[name], values[name]
        policy = policies.get(name, default)
        if old == new or policy == UpdatePolicy.NEVER:
            continue
        if policy == UpdatePolicy.FILL_EMPTY and old not in ("", None) and name != "stage":
            continue
        if name == "stage" and (old == Stage.WON or STAGE_RANK.get(new, 0) <= STAGE_RANK.get(old, 0)):
            continue
        changes[name] = (old, new)
    return changes


def _chunked(items: list, size: int = LOOKUP_BATCH_SIZE) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_clients(rows: list[RowPlan], match_key: str) -> dict[tuple, dict[str, Any]]:
    """Existing clients by match key, the oldest first when several share one."""
    columns = ["id", *UPDATABLE_FIELDS]
    found: dict[tuple, dict[str, Any]] = {}
    if match_key == MatchKey.NAME_COMPANY:
        names = sorted({fold(row.values.get("last_name", "")) for row in rows} - {""})
        lowered = sorted({row.values.get("last_name", "").lower() for row in rows} | set(names))
        for chunk in _chunked(lowered):
            clients = Client.objects.annotate(lower_last=Lower("last_name")).filter(lower_last__in=chunk)
            for client in clients.order_by("pk").values(*columns):
                for key in _person_keys(client, match_key):
                    found.setdefault(key, client)
        return found
    if match_key == MatchKey.EXTERNAL_ID:
        values = sorted({row.values["external_id"] for row in rows if row.values.get("external_id")})
        for client in _clients_by("external_id", values, columns):
            found.setdefault(("external_id", client["external_id"]), client)
        return found
    for kind, column in (("email", "email"), ("linkedin", "linkedin_url")):
        values = sorted({row.values[column] for row in rows if row.values.get(column)})
        for client in _clients_by(column, values, columns):
            found.setdefault((kind, client[column]), client)
    return found


def _clients_by(column: str, values: list[str], columns: list[str]) -> Iterator[dict[str, Any]]:
    """The clients whose ``column`` is one of ``values`` (as ``.values(*columns)``), the oldest first per value.

    On PostgreSQL one query with an array (``= ANY``): a 100,000-row file would otherwise make 20 ``IN`` lists of
    5,000 parameters each, whose SQL alone takes Django seconds to build."""
    if connection.vendor != "postgresql":
        for chunk in _chunked(values):
            yield from Client.objects.filter(**{f"{column}__in": chunk}).order_by("pk").values(*columns)
        return
    quote = connection.ops.quote_name
    selected = ", ".join(quote(Client._meta.get_field(name).column) for name in columns)
    table = quote(Client._meta.db_table)
    # The external id's unique index only holds the non-blank ids: the query says so, or it reads the whole table.
    blank = f" AND {quote(column)} <> ''" if column == "external_id" else ""
    sql = f"SELECT {selected} FROM {table} WHERE {quote(column)} = ANY(%s){blank} ORDER BY id"  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(sql, [values])
        for record in cursor.fetchall():
            yield dict(zip(columns, record, strict=True))


def _existing_tags(client_ids: set[int]) -> dict[int, set[str]]:
    tags: dict[int, set[str]] = {}
    through = Client.tags.through
    for chunk in _chunked(sorted(client_ids)):
        for client_id, name in through.objects.filter(client_id__in=chunk).values_list("client_id", "tag__name"):
            tags.setdefault(client_id, set()).add(name)
    return tags


def _existing_interaction_keys(keys: list[str]) -> set[str]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT external_key FROM crm_interaction WHERE external_key = ANY(%s)", [sorted(set(keys))])
            return {key for (key,) in cursor.fetchall()}
    found: set[str] = set()
    for chunk in _chunked(sorted(set(keys))):
        found.update(Interaction.objects.filter(external_key__in=chunk).values_list("external_key", flat=True))
    return found


# Purchases


def _purchase_key(options: dict) -> str:
    """The field of a purchase line naming its client: the email, or the client's external id."""
    return "client_ref" if options.get("client_key") == ClientKey.EXTERNAL_ID else "email"


def _plan_purchases(job: ImportJob, table: Table) -> list[RowPlan]:
    plan, orders = [], {}
    client_field = _purchase_key(job.options)
    for row in table.rows:
        converted = convert_record(dict(zip(table.header, row.cells, strict=True)), job.mapping, target="purchase")
        item = RowPlan(row.line, row.cells, values=converted.values)
        item.errors = [(error.column, error.message) for error in converted.errors]
        plan.append(item)
        if item.errors:
            item.action = ERROR
            continue
        _check_purchase(item, client_field)
        if item.action == ERROR:
            continue
        key = (item.values[client_field], item.values["reference"])
        first = orders.get(key)
        if first is None:
            orders[key] = item
            item.order = {"lines": [], "amount": Decimal("0"), "rows": [item.line]}
        elif first.values["order_date"] != item.values["order_date"]:
            item.fail(gettext("same order reference as line %(line)d with another date") % {"line": first.line})
            continue
        elif ("cost" in first.values) != ("cost" in item.values):
            item.fail(_cost_mismatch_reason(first))
            continue
        else:
            item.action = LINE
            first.order["rows"].append(item.line)
        _add_order_line(orders[key], item.values)
    _check_order_totals(plan, orders.values())
    _match_purchases(plan, [row for row in orders.values() if row.action != ERROR], job.options)
    return plan


def _check_order_totals(plan: list[RowPlan], orders: Iterable[RowPlan]) -> None:
    """An order whose lines add up to more than an amount column holds is an error on each of its lines."""
    by_line = {row.line: row for row in plan}
    for row in orders:
        if max(row.order["amount"], row.order.get("cost", 0)) > MAX_AMOUNT:
            reason = gettext("the order adds up to more than %(maximum)s") % {"maximum": MAX_AMOUNT}
            for line in row.order["rows"]:
                by_line[line].fail(reason, "amount")


def _check_purchase(item: RowPlan, client_field: str) -> None:
    values = item.values
    if client_field == "email" and "client_ref" in values and "email" not in values:
        item.fail(gettext("clients are found by email in this import: map the client's email column"))
    elif client_field == "client_ref" and "client_ref" not in values:
        item.fail(gettext("the client's external id is missing"))
    elif client_field not in values:
        item.fail(gettext("the client's email is missing"))
    elif "order_date" not in values:
        item.fail(gettext("the order date is missing"))
    elif "reference" not in values:
        item.fail(gettext("the order reference is missing (it prevents counting an order twice)"))
    elif "amount" not in values and not ("quantity" in values and "unit_price" in values):
        item.fail(gettext("an amount, or a quantity and a unit price, is needed"))


def _cost_mismatch_reason(first: RowPlan) -> str:
    # An order's cost of goods is the sum of its lines' costs: known for every line, or for none.
    if "cost" in first.values:
        return gettext("the cost of goods is missing, while line %(line)d of the same order has one") % {
            "line": first.line
        }
    return gettext("line %(line)d of the same order has no cost of goods: give every line one, or none") % {
        "line": first.line
    }


def _add_order_line(order_row: RowPlan, values: dict[str, Any]) -> None:
    quantity = values.get("quantity") or 1
    amount = values.get("amount")
    if amount is None:
        amount = quantity * values["unit_price"]
    order_row.order["amount"] += amount
    if "cost" in values:
        order_row.order["cost"] = order_row.order.get("cost", Decimal("0")) + values["cost"]
    if values.get("product") or values.get("sku") or values.get("category"):
        unit_price = values.get("unit_price")
        if unit_price is None:
            unit_price = (amount / quantity).quantize(Decimal("0.01"))
        order_row.order["lines"].append(
            {
                "product": values.get("product") or values.get("category") or values.get("sku"),
                "sku": values.get("sku") or "",
                "category": values.get("category") or "",
                "quantity": quantity,
                "unit_price": unit_price,
            }
        )


def _match_purchases(plan: list[RowPlan], orders: list[RowPlan], options: dict) -> None:
    client_field = _purchase_key(options)
    column = "external_id" if client_field == "client_ref" else "email"
    keys = sorted({row.values[client_field] for row in orders})
    clients: dict[str, int] = {}
    for chunk in _chunked(keys):
        found = Client.objects.filter(**{f"{column}__in": chunk}).exclude(**{column: ""})
        for pk, key in found.order_by("-pk").values_list("pk", column):
            clients[key] = pk
    existing: set[tuple[int, str]] = set()
    for chunk in _chunked(sorted(set(clients.values()))):
        existing.update(Purchase.objects.filter(client_id__in=chunk).values_list("client_id", "reference"))
    create_clients = options.get("unknown_clients") == UnknownClients.CREATE
    by_line = {row.line: row for row in plan}
    unknown = (
        gettext("no client has this external id") if column == "external_id" else gettext("no client has this email")
    )
    for row in orders:
        row.client_id = clients.get(row.values[client_field])
        if row.client_id is None and not create_clients:
            for line in row.order["rows"]:
                by_line[line].fail(unknown, column)
            continue
        if row.client_id is not None and (row.client_id, row.values["reference"]) in existing:
            row.action = UNCHANGED
            continue
        row.action = CREATE


# Summaries


def _outcome(plan: list[RowPlan]) -> Outcome:
    outcome = Outcome()
    for row in plan:
        if row.action == CREATE:
            outcome.created += 1
        elif row.action == UPDATE:
            outcome.updated += 1
        elif row.action == ERROR:
            outcome.errors += 1
        elif row.action == UNCHANGED:
            outcome.unchanged += 1
    return outcome


def _json_value(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, bool)) else str(value)


def _preview_row(row: RowPlan) -> dict[str, Any]:
    client = row.values.get("email") or row.values.get("client_ref", "")
    label = row.label if not row.order else f"{row.values.get('reference', '')} · {client}"
    return {
        "line": row.line,
        "action": row.action,
        "label": label or (row.values.get("email") or ""),
        "changes": [[name, _json_value(old), _json_value(new)] for name, (old, new) in row.changes.items()],
        "tags": row.tags,
        "interactions": len(row.interactions),
        "reasons": [reason for _column, reason in row.errors],
        "new_client": bool(row.order) and row.client_id is None and row.action == CREATE,
    }


def _error_report(plan: list[RowPlan]) -> list[dict[str, Any]]:
    return [
        {"line": row.line, "column": column, "reason": reason, "cells": list(row.cells)}
        for row in plan
        if row.action == ERROR
        for column, reason in row.errors
    ]


def _store_counts(job: ImportJob, outcome: Outcome) -> None:
    job.created_count = outcome.created
    job.updated_count = outcome.updated
    job.unchanged_count = outcome.unchanged
    job.error_count = outcome.errors


# Applying


def import_queue(*, job: ImportJob) -> ImportJob:
    """Queue the apply of a previewed (or failed) job; the task starts once this transaction commits."""
    from prospecting.tasks import import_apply_task

    if not job.can_apply:
        return job
    job.status = ImportStatus.QUEUED
    job.error = ""
    job.progress = 0
    job.started_at = timezone.now()  # while queued: since when it waits for a worker (prospecting.recovery)
    job.save(update_fields=["status", "error", "progress", "started_at"])
    job_id = job.pk
    enqueue_on_commit(import_apply_task, job_id, on_failure=lambda error: _fail_unqueued(job_id))
    return job


def _fail_unqueued(job_id: int) -> None:
    ImportJob.objects.filter(pk=job_id, status=ImportStatus.QUEUED).update(
        status=ImportStatus.FAILED,
        error=gettext("The background workers could not be reached; nothing was imported. Apply it again later."),
    )


def import_fail_stale(*, now=None) -> int:
    """Fail the applies and previews whose worker died (their writes rolled back): on PostgreSQL as soon as the
    worker's job lock is free, elsewhere once they are older than any apply may take."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.IMPORT_STALE_SECONDS)
    # A preview is only someone's once a worker has started it; until then its message waits in the broker.
    running = ImportJob.objects.filter(
        status__in=(ImportStatus.APPLYING, ImportStatus.PREVIEWING), started_at__isnull=False
    )
    orphans = list(running.values_list("pk", flat=True)) if connection.vendor == "postgresql" else []
    stale = set(running.filter(started_at__lt=cutoff).values_list("pk", flat=True))
    count = 0
    for job_id in orphans:
        # The lock tells: a job whose lock a live session holds is running, however long (import_file has no limit).
        stale.discard(job_id)
        with worker_lock(IMPORT_JOB_LOCK_CLASS, job_id, wait=False) as free:
            if free:
                count += _fail_stopped(job_id)
    return count + sum(_fail_stopped(job_id) for job_id in sorted(stale))


def _fail_stopped(job_id: int) -> int:
    previewing = ImportJob.objects.filter(pk=job_id, status=ImportStatus.PREVIEWING).update(
        status=ImportStatus.UPLOADED,
        previewed_at=None,
        error=gettext("The preview stopped before the end (the worker was stopped). Preview it again."),
    )
    return previewing + ImportJob.objects.filter(pk=job_id, status=ImportStatus.APPLYING).update(
        status=ImportStatus.FAILED,
        error=gettext("The import stopped before the end (the worker was stopped); nothing was written. Try again."),
    )


def import_apply(*, job_id: int) -> ImportJob | None:
    """Apply a queued job all or nothing; running it again on an applied job does nothing."""
    import_fail_stale()
    with worker_lock(IMPORT_JOB_LOCK_CLASS, job_id):
        return _apply_locked(job_id)


def _apply_locked(job_id: int) -> ImportJob | None:
    with transaction.atomic():
        job = ImportJob.objects.select_for_update().filter(pk=job_id).first()
        if job is None or job.status not in (ImportStatus.QUEUED, ImportStatus.APPLYING):
            return job
        job.status, job.started_at, job.progress, job.error = ImportStatus.APPLYING, timezone.now(), 0, ""
        job.save(update_fields=["status", "started_at", "progress", "error"])
    started = time.monotonic()
    progress = _ProgressWriter(job_id)
    try:
        with transaction.atomic():
            _lock_imports()
            job = ImportJob.objects.get(pk=job_id)
            if job.status != ImportStatus.APPLYING:
                return job  # another worker applied it while this one waited for the lock
            plan = import_plan(job)
            logger.info("import %s: planned in %.2f s", job_id, time.monotonic() - started)
            job.total_rows = len(plan)
            writer = _apply_purchases if job.kind == ImportKind.PURCHASES else _apply_people
            writer(job, plan, progress)
            _store_counts(job, _outcome(plan))
            job.errors = _error_report(plan)
            job.status, job.applied_at, job.progress = ImportStatus.APPLIED, timezone.now(), len(plan)
            job.apply_seconds = round(time.monotonic() - started, 3)
            job.save(update_fields=RESULT_FIELDS)
    except Exception as exc:
        logger.exception("import %s failed", job_id)
        # Only the claimed apply: a duplicate that failed must not mark failed a job another delivery applied.
        ImportJob.objects.filter(pk=job_id, status=ImportStatus.APPLYING).update(
            status=ImportStatus.FAILED,
            error=gettext("The import failed and nothing was written: %(error)s") % {"error": str(exc)[:1000]},
            apply_seconds=round(time.monotonic() - started, 3),
        )
    finally:
        progress.close()
    return ImportJob.objects.filter(pk=job_id).first()


def _lock_imports() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [IMPORT_LOCK_KEY])


class _ProgressWriter:
    """Writes the rows done to the job through a second connection: the apply's own transaction hides its writes
    until it commits. Only on PostgreSQL; SQLite allows one writer, so the page shows "applying" without a figure."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.connection = None
        if settings.IS_POSTGRESQL and not connection.in_atomic_block:
            self.connection = connections.create_connection(DEFAULT_DB_ALIAS)

    def __call__(self, done: int) -> None:
        if self.connection is None:
            return
        with self.connection.cursor() as cursor:
            cursor.execute("UPDATE prospecting_importjob SET progress = %s WHERE id = %s", [done, self.job_id])

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def _batches(rows: list[RowPlan]) -> Iterator[list[RowPlan]]:
    size = settings.IMPORT_BATCH_SIZE
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _last_interaction(row: RowPlan) -> datetime | None:
    return max((item["occurred_at"] for item in row.interactions if item.get("occurred_at")), default=None)


def _new_client(row: RowPlan, options: dict) -> dict[str, Any]:
    fields = {name: value for name, value in row.values.items() if name in UPDATABLE_FIELDS or name == "source"}
    # Written with the row rather than after the interactions: each client row is written once.
    return {**fields, "owner_id": options.get("owner_id"), "last_interaction_at": _last_interaction(row)}


def _apply_people(job: ImportJob, plan: list[RowPlan], progress) -> None:
    """Plain rows all the way (no model instance per row): the clients, their history and the undo records go in
    with COPY, and each existing client is rewritten at most once, only when something of it changes."""
    user, done, lap = job.uploaded_by, 0, _stopwatch(job.pk)
    creates = [row for row in plan if row.action == CREATE]
    for batch in _batches(creates):
        ids = crm_services.client_bulk_insert(rows=[_new_client(row, job.options) for row in batch], user=user)
        for row, pk in zip(batch, ids, strict=True):
            row.client_id = pk
        _record_changes(job, ImportEntity.CLIENT, ImportChangeAction.CREATED, ids)
        done += len(batch)
        progress(done)
    lap("%d clients created", len(creates))
    updates = [row for row in plan if row.action == UPDATE]
    written = crm_services.client_bulk_change(
        changes={row.client_id: row.changes for row in updates if row.changes},
        last_interaction_at={row.client_id: _last_interaction(row) for row in updates if row.interactions},
        user=user,
    )
    done += len(updates)
    progress(done)
    lap("%d clients updated", written)
    previous = {row.client_id: {name: _json_value(old) for name, (old, _new) in row.changes.items()} for row in updates}
    added = crm_services.client_bulk_add_tags(
        tags_by_client={row.client_id: row.tags for row in plan if row.action in (CREATE, UPDATE)},
        batch_size=settings.IMPORT_BATCH_SIZE,
    )
    for client_id, names in added.items():
        if client_id in previous:
            previous[client_id]["__tags_added__"] = names
    _record_changes(job, ImportEntity.CLIENT, ImportChangeAction.UPDATED, list(previous), list(previous.values()))
    lap("tags and undo records of %d updates", len(updates))
    interactions = [
        {"client_id": row.client_id, **item}
        for row in plan
        if row.action in (CREATE, UPDATE)
        for item in row.interactions
    ]
    ids = crm_services.interaction_bulk_insert(rows=interactions)
    del interactions
    lap("%d interactions", len(ids))
    _record_changes(job, ImportEntity.INTERACTION, ImportChangeAction.CREATED, ids)
    lap("their undo records")


def _stopwatch(job_id: int):
    """Logs the time since the last lap (the benchmark command shows these lines)."""
    last = time.monotonic()

    def lap(message: str, *args: Any) -> None:
        nonlocal last
        now = time.monotonic()
        logger.info("import %s: " + message + " in %.2f s", job_id, *args, now - last)
        last = now

    return lap


def _record_changes(
    job: ImportJob, entity: str, action: str, object_ids: list[int], previous: list[dict] | None = None
) -> None:
    """The undo records of one kind, as plain rows."""
    rows = [
        {"job_id": job.pk, "entity": entity, "object_id": pk, "action": action, "previous": values}
        for pk, values in zip(object_ids, previous or [{}] * len(object_ids), strict=True)
    ]
    crm_services.rows_bulk_insert(model=ImportChange, rows=rows)


def _change(job: ImportJob, entity: str, object_id: int, action: str, previous: dict | None = None) -> ImportChange:
    return ImportChange(job=job, entity=entity, object_id=object_id, action=action, previous=previous or {})


def _apply_purchases(job: ImportJob, plan: list[RowPlan], progress) -> None:
    user, batch_size = job.uploaded_by, settings.IMPORT_BATCH_SIZE
    orders = [row for row in plan if row.action == CREATE]
    changes: list[ImportChange] = []
    created = crm_services.client_bulk_create(
        clients=_unknown_buyers(orders, job.options), user=user, batch_size=batch_size
    )
    by_external_id = _purchase_key(job.options) == "client_ref"
    new_clients = {client.external_id if by_external_id else client.email: client.pk for client in created}
    changes += [_change(job, ImportEntity.CLIENT, pk, ImportChangeAction.CREATED) for pk in new_clients.values()]
    buyers = sorted({row.client_id for row in orders if row.client_id is not None})
    for chunk in _chunked(buyers):
        for state in Client.objects.filter(pk__in=chunk).values("pk", *PURCHASE_STATE_FIELDS):
            previous = {name: _json_value(state[name]) for name in PURCHASE_STATE_FIELDS}
            changes.append(_change(job, ImportEntity.CLIENT, state["pk"], ImportChangeAction.UPDATED, previous))
    products = _products_for([line for row in orders for line in row.order["lines"]])
    done = 0
    for batch in _batches(orders):
        records = []
        for row in batch:
            key = row.values["client_ref"] if by_external_id else normalize_email(row.values["email"])
            client_id = row.client_id or new_clients[key]
            purchase = Purchase(
                client_id=client_id,
                reference=row.values["reference"],
                purchased_on=row.values["order_date"],
                amount=row.order["amount"],
                cost=row.order.get("cost"),
            )
            lines = [
                PurchaseLine(
                    product_id=products[_product_key(line)], quantity=line["quantity"], unit_price=line["unit_price"]
                )
                for line in row.order["lines"]
            ]
            records.append((purchase, lines))
        purchases = crm_services.purchase_bulk_record(orders=records, batch_size=batch_size)
        changes += [_change(job, ImportEntity.PURCHASE, item.pk, ImportChangeAction.CREATED) for item in purchases]
        done += len(batch)
        progress(done)
    crm_services.records_bulk_insert(objects=changes, batch_size=batch_size)


def _unknown_buyers(orders: list[RowPlan], options: dict) -> list[Client]:
    """The clients to create for orders of unknown clients: by email, or by external id (with the email of their
    first order line that gives one)."""
    owner_id = options.get("owner_id")
    if _purchase_key(options) == "email":
        emails = sorted({row.values["email"] for row in orders if row.client_id is None})
        return [Client(email=email, source=Source.IMPORT, owner_id=owner_id) for email in emails]
    emails: dict[str, str] = {}
    for row in orders:
        if row.client_id is None and not emails.get(row.values["client_ref"]):
            emails[row.values["client_ref"]] = row.values.get("email") or ""
    return [
        Client(external_id=key, email=email, source=Source.IMPORT, owner_id=owner_id)
        for key, email in sorted(emails.items())
    ]


def _product_key(line: dict[str, Any]) -> tuple[str, str]:
    return (line["sku"], "") if line["sku"] else ("", line["product"])


def _products_for(lines: list[dict[str, Any]]) -> dict[tuple[str, str], int]:
    """Product ids by (sku, "") or ("", name), creating missing categories and products by name."""
    wanted = {_product_key(line): line for line in lines}
    found: dict[tuple[str, str], int] = {}
    skus = sorted(sku for sku, _name in wanted if sku)
    names = sorted(name for sku, name in wanted if not sku)
    for chunk in _chunked(skus):
        found.update({(sku, ""): pk for pk, sku in Product.objects.filter(sku__in=chunk).values_list("pk", "sku")})
    for chunk in _chunked(names):
        for pk, name in Product.objects.filter(name__in=chunk).order_by("-pk").values_list("pk", "name"):
            found[("", name)] = pk
    # A product an earlier import created by name and that was renamed since keeps the SKU made from that name.
    generated = {_generated_sku(name): ("", name) for name in names if ("", name) not in found}
    for chunk in _chunked(sorted(generated)):
        for pk, sku in Product.objects.filter(sku__in=chunk).values_list("pk", "sku"):
            found[generated[sku]] = pk
    missing = [key for key in wanted if key not in found]
    if not missing:
        return found
    category_names = {wanted[key]["category"] or gettext("Imported") for key in missing}
    Category.objects.bulk_create([Category(name=name) for name in sorted(category_names)], ignore_conflicts=True)
    categories = dict(Category.objects.filter(name__in=category_names).values_list("name", "pk"))
    new = [
        Product(
            name=wanted[key]["product"][:200],
            sku=key[0] or _generated_sku(key[1]),
            category_id=categories[wanted[key]["category"] or gettext("Imported")],
            price=wanted[key]["unit_price"],
        )
        for key in missing
    ]
    for key, product in zip(missing, Product.objects.bulk_create(new), strict=True):
        found[key] = product.pk
    return found


def _generated_sku(name: str) -> str:
    return "IMPORT-" + hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:12].upper()


# Undoing


def import_undo_conflicts(*, job: ImportJob) -> dict[int, set[str]]:
    """Clients of the job edited since it was applied: ``{client id: fields changed since}`` (``{"__created__"}``
    alone for a created client edited since, or given interactions since). These are kept as they are by undo."""
    if job.applied_at is None:
        return {}
    ids = list(job.changes.filter(entity=ImportEntity.CLIENT).values_list("object_id", flat=True))
    conflicts: dict[int, set[str]] = {}
    for chunk in _chunked(ids):
        edits = ClientChange.objects.filter(client_id__in=chunk, changed_at__gt=job.applied_at)
        for client_id, name in edits.values_list("client_id", "field"):
            conflicts.setdefault(client_id, set()).add(name)
        later = Interaction.objects.filter(client_id__in=chunk, created_at__gt=job.applied_at)
        for client_id in later.values_list("client_id", flat=True):
            conflicts.setdefault(client_id, set()).add(crm_services.CREATED)
    return conflicts


def import_undo(*, job_id: int, user) -> dict[int, set[str]]:
    """Undo an applied job, all or nothing; returns the clients kept or partly kept because edited since."""
    with transaction.atomic():
        _lock_imports()
        job = ImportJob.objects.select_for_update().get(pk=job_id)
        if not job.can_undo:
            return {}
        conflicts = import_undo_conflicts(job=job)
        records = job.changes.values_list("entity", "object_id", "action", "previous")
        by_kind: dict[tuple[str, str], list[tuple[int, dict]]] = {}
        for entity, object_id, action, previous in records:
            by_kind.setdefault((entity, action), []).append((object_id, previous))
        touched = crm_services.records_bulk_delete(
            interaction_ids=[pk for pk, _ in by_kind.get((ImportEntity.INTERACTION, ImportChangeAction.CREATED), [])],
            purchase_ids=[pk for pk, _ in by_kind.get((ImportEntity.PURCHASE, ImportChangeAction.CREATED), [])],
        )
        created = [pk for pk, _ in by_kind.get((ImportEntity.CLIENT, ImportChangeAction.CREATED), [])]
        crm_services.client_bulk_delete(client_ids=[pk for pk in created if pk not in conflicts])
        _restore_clients(by_kind.get((ImportEntity.CLIENT, ImportChangeAction.UPDATED), []), conflicts, user)
        touched.update(pk for pk, _ in by_kind.get((ImportEntity.CLIENT, ImportChangeAction.UPDATED), []))
        crm_services.client_refresh_activity_in_batches(client_ids=touched - set(created) | set(conflicts))
        job.status, job.undone_at = ImportStatus.UNDONE, timezone.now()
        job.save(update_fields=["status", "undone_at"])
    return conflicts


def _restore_clients(updated: list[tuple[int, dict]], conflicts: dict[int, set[str]], user) -> None:
    for chunk in _chunked(updated, settings.IMPORT_BATCH_SIZE):
        clients = Client.objects.in_bulk([pk for pk, _ in chunk])
        _keep_taken_external_ids(chunk, conflicts)
        restores, tags = [], {}
        for pk, previous in chunk:
            if pk not in clients:
                continue
            kept = conflicts.get(pk, set())
            values = {
                name: _field_value(name, value)
                for name, value in previous.items()
                if not name.startswith("__") and name not in kept
            }
            if values:
                restores.append((clients[pk], values))
            if previous.get("__tags_added__") and "tags" not in kept:
                tags[pk] = previous["__tags_added__"]
        crm_services.client_bulk_update(updates=restores, user=user)
        crm_services.client_bulk_remove_tags(tags_by_client=tags)


def _field_value(name: str, value: Any) -> Any:
    """A value kept as JSON in an undo record back to the field's type (dates were stored as text): compared as
    text, an unchanged date would be written again with a history row."""
    return Client._meta.get_field(name).to_python(value)


def _keep_taken_external_ids(chunk: list[tuple[int, dict]], conflicts: dict[int, set[str]]) -> None:
    """An external id given since to another client stays with it: the client of the job keeps its current one."""
    wanted = {pk: previous["external_id"] for pk, previous in chunk if previous.get("external_id")}
    found = Client.objects.filter(external_id__in=sorted(set(wanted.values()))).exclude(external_id="")
    holders = dict(found.values_list("external_id", "pk"))
    for pk, value in wanted.items():
        if holders.get(value, pk) != pk:
            conflicts.setdefault(pk, set()).add("external_id")


def _target(kind: str) -> str:
    return "purchase" if kind == ImportKind.PURCHASES else "client"


def saved_mapping_apply(mapping: dict[str, str | None], header: Iterable[str]) -> dict[str, str | None]:
    """A saved mapping laid over a file's columns: columns it does not name are ignored."""
    return {column: mapping.get(column) for column in header}
