"""Writes on the portfolio that keep it consistent: every change to a client is recorded in its history, and the
derived dates (last interaction, last purchase, conversion) follow the interactions and purchases written here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Max, Min, OuterRef, Subquery
from django.utils import timezone

from crm.models import (
    Client,
    ClientChange,
    Direction,
    FollowUp,
    FollowUpOrigin,
    FollowUpStatus,
    Interaction,
    Lifecycle,
    Persona,
    Purchase,
    PurchaseLine,
    Segment,
    Stage,
    Tag,
)
from crm.normalize import normalize_email, normalize_linkedin_url

CREATED = "__created__"

logger = logging.getLogger(__name__)


def _display(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, models.Model):
        return str(value)
    if isinstance(value, Iterable) and not isinstance(value, str):
        return ", ".join(sorted(str(item) for item in value))
    return str(value)


def _normalized(data: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(data)
    if "email" in data:
        data["email"] = normalize_email(data["email"] or "")
    if "linkedin_url" in data:
        data["linkedin_url"] = normalize_linkedin_url(data["linkedin_url"] or "")
    return data


def _split_many_to_many(data: dict[str, Any]) -> dict[str, Any]:
    many = {}
    for field in Client._meta.many_to_many:
        if field.name in data:
            many[field.name] = data.pop(field.name)
    return many


@transaction.atomic
def client_create(*, data: Mapping[str, Any], user) -> Client:
    """Create a client from cleaned field values and record the creation in its history."""
    data = _normalized(data)
    many = _split_many_to_many(data)
    client = Client.objects.create(**data)
    for name, values in many.items():
        getattr(client, name).set(values)
    ClientChange.objects.create(client=client, user=user, field=CREATED, new_value=str(client))
    return client


@transaction.atomic
def client_update(*, client: Client, data: Mapping[str, Any], user) -> list[ClientChange]:
    """Apply changed field values to a client; each changed field becomes one history row."""
    data = _normalized(data)
    many = _split_many_to_many(data)
    changes = []
    for name, new in data.items():
        old = getattr(client, name)
        if old != new:
            changes.append(
                ClientChange(client=client, user=user, field=name, old_value=_display(old), new_value=_display(new))
            )
            setattr(client, name, new)
    if "lifecycle" in data and any(change.field == "lifecycle" for change in changes) and user is not None:
        client.lifecycle_manual = True
    if changes:
        client.save()
    for name, values in many.items():
        manager = getattr(client, name)
        old = set(manager.all())
        new = set(values)
        if old != new:
            manager.set(new)
            changes.append(
                ClientChange(client=client, user=user, field=name, old_value=_display(old), new_value=_display(new))
            )
    ClientChange.objects.bulk_create(changes)
    return changes


def client_reassign(*, clients: models.QuerySet, owner, user) -> int:
    """Give a set of clients a new owner, with a history row each; returns how many changed."""
    changed = 0
    with transaction.atomic():
        for client in clients.exclude(owner=owner).select_related("owner").select_for_update():
            client_update(client=client, data={"owner": owner}, user=user)
            changed += 1
    return changed


def client_delete(*, client: Client) -> None:
    client.delete()


def interaction_log(
    *,
    client: Client,
    user,
    kind: str,
    occurred_at: datetime | None = None,
    direction: str = Direction.OUTBOUND,
    subject: str = "",
    body: str = "",
) -> Interaction:
    """Log an exchange with a client and move the client's last-interaction date forward when it is newer."""
    occurred_at = occurred_at or timezone.now()
    with transaction.atomic():
        interaction = Interaction.objects.create(
            client=client,
            user=user,
            kind=kind,
            direction=direction,
            occurred_at=occurred_at,
            subject=subject,
            body=body,
        )
        Client.objects.filter(pk=client.pk).filter(
            models.Q(last_interaction_at__lt=occurred_at) | models.Q(last_interaction_at__isnull=True)
        ).update(last_interaction_at=occurred_at)
    client.refresh_from_db(fields=["last_interaction_at"])
    return interaction


def follow_up_plan(
    *,
    client: Client,
    assignee,
    due_at: datetime,
    title: str,
    created_by,
    notes: str = "",
    origin: str = FollowUpOrigin.MANUAL,
) -> FollowUp:
    return FollowUp.objects.create(
        client=client, assignee=assignee, due_at=due_at, title=title, notes=notes, created_by=created_by, origin=origin
    )


def follow_up_close(*, follow_up: FollowUp, status: str = FollowUpStatus.DONE) -> FollowUp:
    """Mark an open follow-up done or cancelled; closing one twice changes nothing."""
    if follow_up.status == FollowUpStatus.OPEN:
        follow_up.status = status
        follow_up.completed_at = timezone.now()
        follow_up.save(update_fields=["status", "completed_at"])
    return follow_up


def purchase_record(
    *,
    client: Client,
    purchased_on: date,
    amount: Decimal | None = None,
    reference: str = "",
    lines: Iterable[Mapping[str, Any]] = (),
) -> Purchase:
    """Record an order; a prospect's first purchase makes him a client and sets the conversion date."""
    lines = list(lines)
    if amount is None:
        amount = sum((Decimal(line["quantity"]) * Decimal(line["unit_price"]) for line in lines), Decimal("0"))
    with transaction.atomic():
        purchase = Purchase.objects.create(client=client, purchased_on=purchased_on, amount=amount, reference=reference)
        PurchaseLine.objects.bulk_create(PurchaseLine(purchase=purchase, **line) for line in lines)
        client_refresh_purchase_dates(client_ids=[client.pk])
    client.refresh_from_db()
    return purchase


def client_refresh_purchase_dates(*, client_ids: Iterable[int] | None = None) -> int:
    """Recompute last purchase and conversion dates from the purchases, and convert prospects who bought.

    Runs as a few set-based UPDATEs, for a handful of clients or the whole portfolio.
    """
    clients = Client.objects.all() if client_ids is None else Client.objects.filter(pk__in=list(client_ids))
    purchases = Purchase.objects.filter(client=OuterRef("pk")).order_by().values("client")
    updated = clients.update(
        last_purchase_at=Subquery(purchases.annotate(day=Max("purchased_on")).values("day")[:1]),
        converted_at=models.functions.Coalesce(
            "converted_at", Subquery(purchases.annotate(day=Min("purchased_on")).values("day")[:1])
        ),
    )
    clients.filter(lifecycle=Lifecycle.PROSPECT, last_purchase_at__isnull=False).update(
        lifecycle=Lifecycle.CLIENT, stage=Stage.WON
    )
    return updated


def client_refresh_activity(*, client_ids: Iterable[int] | None = None) -> int:
    """Recompute every derived date from the records (repairs drift after deletions or edits in the admin)."""
    clients = Client.objects.all() if client_ids is None else Client.objects.filter(pk__in=list(client_ids))
    interactions = Interaction.objects.filter(client=OuterRef("pk")).order_by().values("client")
    clients.update(last_interaction_at=Subquery(interactions.annotate(last=Max("occurred_at")).values("last")[:1]))
    return client_refresh_purchase_dates(client_ids=client_ids)


def segment_save(*, name: str, filters: Mapping[str, Any], user, description: str = "") -> Segment:
    return Segment.objects.create(name=name, filters=dict(filters), description=description, created_by=user)


PERSONA_ASSIGN_BATCH_SIZE = 1000


def persona_save(*, data: Mapping[str, Any], persona: Persona | None = None) -> Persona:
    """Create a persona, or update the given one, from cleaned field values."""
    persona = persona or Persona()
    for name, value in data.items():
        setattr(persona, name, value)
    persona.save()
    return persona


def persona_assign_clients(*, persona: Persona, clients: models.QuerySet, user) -> int:
    """Give the persona to every client of ``clients`` (an unsliced queryset) that does not have it yet.

    Works in batches of set-based writes, each with one history row per client, so a search matching a large part of
    the portfolio never loops over ``save()``; returns how many clients changed.
    """
    pending = clients.exclude(persona=persona).order_by("pk")
    assigned, last_pk = 0, 0
    while True:
        with transaction.atomic():
            batch = list(pending.filter(pk__gt=last_pk).values_list("pk", "persona__name")[:PERSONA_ASSIGN_BATCH_SIZE])
            if not batch:
                return assigned
            Client.objects.filter(pk__in=[pk for pk, _old in batch]).update(persona=persona, updated_at=timezone.now())
            ClientChange.objects.bulk_create(
                ClientChange(client_id=pk, user=user, field="persona", old_value=old or "", new_value=str(persona))
                for pk, old in batch
            )
        assigned += len(batch)
        last_pk = batch[-1][0]


LIFECYCLE_APPLY_BATCH_SIZE = 5000


def client_lifecycle_apply(*, changes: Mapping[int, str], reason: str) -> int:
    """Move clients to the lifecycle an automatic rule calls for (``client id -> lifecycle``), in bulk.

    Each change becomes one history row without a user (the rule, not a person). A lifecycle chosen by hand is never
    overwritten: those clients are skipped, and so are clients already in the target lifecycle. ``reason`` names the
    rule in the log. Returns how many clients changed.
    """
    by_target: dict[str, list[int]] = {}
    for client_id, lifecycle in changes.items():
        if lifecycle not in Lifecycle.values:
            raise ValueError(f"unknown lifecycle {lifecycle!r}")
        by_target.setdefault(lifecycle, []).append(client_id)
    changed = 0
    now = timezone.now()
    with transaction.atomic():
        for target, client_ids in sorted(by_target.items()):
            client_ids.sort()
            for start in range(0, len(client_ids), LIFECYCLE_APPLY_BATCH_SIZE):
                batch = client_ids[start : start + LIFECYCLE_APPLY_BATCH_SIZE]
                current = list(
                    Client.objects.filter(pk__in=batch, lifecycle_manual=False)
                    .exclude(lifecycle=target)
                    .select_for_update()
                    .values_list("pk", "lifecycle")
                )
                if not current:
                    continue
                Client.objects.filter(pk__in=[pk for pk, _old in current]).update(lifecycle=target, updated_at=now)
                ClientChange.objects.bulk_create(
                    ClientChange(
                        client_id=pk, user=None, changed_at=now, field="lifecycle", old_value=old, new_value=target
                    )
                    for pk, old in current
                )
                changed += len(current)
    if changed:
        logger.info("lifecycle of %d client(s) changed (%s)", changed, reason)
    return changed


# Bulk writes for imports (prospecting.imports): a few queries per batch, never a loop of save(), history included.
BULK_BATCH_SIZE = 2000


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def client_bulk_create(*, clients: list[Client], user, batch_size: int = BULK_BATCH_SIZE) -> list[Client]:
    """Insert new clients (email and LinkedIn URL normalised) with one "created" history row each."""
    for client in clients:
        client.email = normalize_email(client.email or "")
        client.linkedin_url = normalize_linkedin_url(client.linkedin_url or "")
    created = records_bulk_insert(objects=clients, batch_size=batch_size)
    records_bulk_insert(
        objects=[
            ClientChange(client_id=client.pk, user=user, field=CREATED, new_value=str(client)) for client in created
        ],
        batch_size=batch_size,
    )
    return created


def client_bulk_update(
    *,
    updates: list[tuple[Client, Mapping[str, Any]]],
    user,
    batch_size: int = BULK_BATCH_SIZE,
    derived: Iterable[str] = (),
) -> int:
    """Set new values on loaded clients (``(client, {field: value})``), one history row per changed field.

    ``derived`` names fields the caller has already set on the clients (derived dates such as the last interaction),
    written in the same pass without history rows.
    """
    now = timezone.now()
    changes, changed, fields = [], [], {"updated_at", *derived}
    for client, data in updates:
        data = _normalized(data)
        for name, new in data.items():
            old = getattr(client, name)
            if old != new:
                changes.append(
                    ClientChange(
                        client_id=client.pk,
                        user=user,
                        changed_at=now,
                        field=name,
                        old_value=_display(old),
                        new_value=_display(new),
                    )
                )
                setattr(client, name, new)
                fields.add(name)
        client.updated_at = now
        changed.append(client)
    if _copies():
        _client_copy_update(clients=changed, fields=sorted(fields - {"updated_at"}), now=now)
    else:
        Client.objects.bulk_update(changed, sorted(fields), batch_size=batch_size)
    records_bulk_insert(objects=changes, batch_size=batch_size)
    return len(changed)


def _copies() -> bool:
    """Bulk writes stream through COPY on PostgreSQL; other databases take Django's bulk_create and bulk_update."""
    return connection.vendor == "postgresql"


def _copy_text(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    text = value.isoformat() if isinstance(value, (datetime, date)) else str(value)
    if text.isprintable() and "\\" not in text:
        return text
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


COPY_CHUNK_ROWS = 20_000


def _copy_in(cursor, *, table: str, columns: list[str], rows: Iterable[Iterable[Any]]) -> None:
    """COPY rows into a table, in chunks so that the text of a large import is never all in memory at once."""
    import io
    from itertools import islice

    quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
    rows = iter(rows)
    while chunk := list(islice(rows, COPY_CHUNK_ROWS)):
        buffer = io.StringIO("".join("\t".join(_copy_text(value) for value in row) + "\n" for row in chunk))
        cursor.copy_expert(f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN", buffer)


def _db_value(field: models.Field, obj: models.Model, *, add: bool) -> Any:
    # The values of this app's columns go into COPY as they are (text, numbers, dates); JSON is the one to encode.
    value = field.pre_save(obj, add) if add else getattr(obj, field.attname)
    if value is not None and isinstance(field, models.JSONField):
        import json

        return json.dumps(value, cls=field.encoder)
    return value


def records_bulk_insert(*, objects: list[models.Model], batch_size: int = BULK_BATCH_SIZE) -> list[models.Model]:
    """Insert new instances of one model and set their ids, as bulk_create does: on PostgreSQL the ids are drawn from
    the table's sequence and the rows go in with COPY."""
    if not objects:
        return objects
    meta = type(objects[0])._meta
    if not _copies():
        return meta.model.objects.bulk_create(objects, batch_size=batch_size)
    fields = [meta.pk, *(field for field in meta.concrete_fields if not field.primary_key)]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objects)],
        )
        for obj, (pk,) in zip(objects, cursor.fetchall(), strict=True):
            obj.pk = pk
        rows = ([_db_value(field, obj, add=True) for field in fields] for obj in objects)
        _copy_in(cursor, table=meta.db_table, columns=[field.column for field in fields], rows=rows)
    for obj in objects:
        obj._state.adding, obj._state.db = False, connection.alias
    return objects


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_lines(rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """COPY text lines of plain values (str, int, bool, Decimal, date, datetime, None)."""
    escapes = _COPY_ESCAPES
    for row in rows:
        yield (
            "\t".join(
                [
                    value.translate(escapes)
                    if value.__class__ is str
                    else "\\N"
                    if value is None
                    else str(value)
                    if value.__class__ is int
                    else _copy_other(value)
                    for value in row
                ]
            )
            + "\n"
        )


def _copy_other(value: Any) -> str:
    if value.__class__ is bool:
        return "t" if value else "f"
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value).translate(_COPY_ESCAPES)


COPY_READ_SIZE = 1 << 20


class _CopySource:
    """A file for ``copy_expert`` that writes its lines as PostgreSQL asks for them: the server inserts one piece
    (and updates the indexes) while the next is being written, so Python and PostgreSQL work at the same time, and
    the text of a large import is never all in memory."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines

    def read(self, size: int = -1) -> str:
        from itertools import islice

        pieces, length = [], 0
        while size < 0 or length < size:
            piece = "".join(islice(self.lines, 500))
            if not piece:
                break
            pieces.append(piece)
            length += len(piece)
        return "".join(pieces)

    readline = read


def _copy_rows(cursor, *, table: str, columns: list[str], rows: Iterable[Iterable[Any]]) -> None:
    quoted = ", ".join(connection.ops.quote_name(column) for column in columns)
    sql = f"COPY {connection.ops.quote_name(table)} ({quoted}) FROM STDIN"
    cursor.copy_expert(sql, _CopySource(_copy_lines(rows)), COPY_READ_SIZE)


def _row_defaults(meta, now: datetime) -> dict[str, Any]:
    defaults = {}
    for field in meta.concrete_fields:
        if field.primary_key:
            continue
        automatic = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        if automatic or (field.has_default() and field.default is timezone.now):
            defaults[field.attname] = now
        else:
            defaults[field.attname] = field.get_default()
    return defaults


def rows_bulk_insert(
    *, model: type[models.Model], rows: list[Mapping[str, Any]], batch_size: int = BULK_BATCH_SIZE
) -> list[int]:
    """Insert plain rows of one model (``{attname: value}``, the others take their default) and return their new
    ids in order. No model instance is built: on PostgreSQL the ids are drawn from the table's sequence and the rows
    go in with COPY; elsewhere through ``bulk_create``. JSON fields take Python values; ``now`` defaults
    (``timezone.now``, ``auto_now``) are one moment for the whole call."""
    if not rows:
        return []
    meta = model._meta
    if not _copies():
        created = model.objects.bulk_create([model(**row) for row in rows], batch_size=batch_size)
        return [obj.pk for obj in created]
    import json

    defaults = _row_defaults(meta, timezone.now())
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    pairs = [(field.attname, defaults[field.attname]) for field in fields]
    json_columns = [
        (index, field.encoder) for index, field in enumerate(fields, start=1) if isinstance(field, models.JSONField)
    ]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(rows)],
        )
        ids = [pk for (pk,) in cursor.fetchall()]

        def values(pk: int, row: Mapping[str, Any]) -> list[Any]:
            line = [pk, *[row.get(name, default) for name, default in pairs]]
            for index, encoder in json_columns:
                if line[index] is not None:
                    line[index] = json.dumps(line[index], cls=encoder)
            return line

        _copy_rows(
            cursor,
            table=meta.db_table,
            columns=[meta.pk.column, *(field.column for field in fields)],
            rows=(values(pk, row) for pk, row in zip(ids, rows, strict=True)),
        )
    return ids


def client_bulk_insert(*, rows: list[dict[str, Any]], user) -> list[int]:
    """Insert new clients from plain field values (``{field: value}``, email and LinkedIn URL normalised) with one
    "created" history row each; returns their ids in order. The bulk twin of :func:`client_create`, without model
    instances, for imports of many thousand rows."""
    for row in rows:
        row["email"] = normalize_email(row.get("email") or "")
        row["linkedin_url"] = normalize_linkedin_url(row.get("linkedin_url") or "")
    ids = rows_bulk_insert(model=Client, rows=rows)
    now, user_id = timezone.now(), getattr(user, "pk", None)
    history = []
    for pk, row in zip(ids, rows, strict=True):
        label = f"{row.get('first_name', '')} {row.get('last_name', '')}".strip() or row["email"] or f"#{pk}"
        history.append({"client_id": pk, "user_id": user_id, "changed_at": now, "field": CREATED, "new_value": label})
    rows_bulk_insert(model=ClientChange, rows=history)
    return ids


def client_bulk_change(
    *,
    changes: Mapping[int, Mapping[str, tuple[Any, Any]]],
    user,
    last_interaction_at: Mapping[int, datetime] | None = None,
) -> int:
    """Write field changes worked out from a read of the clients in this transaction (``{client id: {field: (old,
    new)}}``), with one history row per field, and move last-interaction dates forward (``{client id: moment}``,
    never backward). Only the clients with a change or a later date are written, in one UPDATE on PostgreSQL: every
    rewritten row costs an entry in each of the client table's indexes. Returns how many clients were written.

    A new value is never ``None`` (``ValueError``): this is for filling and overwriting, not for blanking fields."""
    moments = {pk: moment for pk, moment in (last_interaction_at or {}).items() if moment is not None}
    if any(new is None for values in changes.values() for _old, new in values.values()):
        raise ValueError("client_bulk_change cannot set a field to None")
    changes = {
        pk: {name: (old, _normalized({name: new})[name]) for name, (old, new) in values.items()}
        for pk, values in changes.items()
        if values
    }
    if not changes and not moments:
        return 0
    now, user_id = timezone.now(), getattr(user, "pk", None)
    history = [
        {
            "client_id": pk,
            "user_id": user_id,
            "changed_at": now,
            "field": name,
            "old_value": _display(old),
            "new_value": _display(new),
        }
        for pk, values in changes.items()
        for name, (old, new) in values.items()
    ]
    written = _client_change_write(changes, moments, now) if _copies() else _client_change_save(changes, moments, now)
    rows_bulk_insert(model=ClientChange, rows=history)
    return written


def _client_change_write(
    changes: Mapping[int, Mapping[str, tuple[Any, Any]]], moments: Mapping[int, datetime], now: datetime
) -> int:
    """One UPDATE ... FROM a temporary table: a NULL there keeps the client's value (an import never blanks one)."""
    quote = connection.ops.quote_name
    names = sorted({name for values in changes.values() for name in values})
    columns = [Client._meta.get_field(name).column for name in names]
    table = "crm_client_bulk_change"
    rows = (
        [pk, *(changes.get(pk, {}).get(name, (None, None))[1] for name in names), moments.get(pk), pk in changes]
        for pk in sorted({*changes, *moments})
    )
    assignments = [f"{quote(column)} = COALESCE(t.{quote(column)}, c.{quote(column)})" for column in columns]
    assignments += [
        "last_interaction_at = GREATEST(c.last_interaction_at, t.last_interaction_at)",
        "updated_at = CASE WHEN t.has_changes THEN %s ELSE c.updated_at END",
    ]
    later = "t.last_interaction_at > c.last_interaction_at OR c.last_interaction_at IS NULL"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        selected = ", ".join(quote(column) for column in ["id", *columns, "last_interaction_at"])
        source = f"SELECT {selected}, NULL::boolean AS has_changes FROM {quote(Client._meta.db_table)} WITH NO DATA"  # noqa: S608
        cursor.execute(f"CREATE TEMPORARY TABLE {table} ON COMMIT DROP AS {source}")
        _copy_rows(cursor, table=table, columns=["id", *columns, "last_interaction_at", "has_changes"], rows=rows)
        cursor.execute(f"ANALYZE {table}")  # without statistics the planner scans the whole client table
        cursor.execute(
            f"UPDATE {quote(Client._meta.db_table)} AS c SET {', '.join(assignments)} FROM {table} AS t"  # noqa: S608
            f" WHERE c.id = t.id AND (t.has_changes OR {later})",
            [now],
        )
        return cursor.rowcount


def _client_change_save(
    changes: Mapping[int, Mapping[str, tuple[Any, Any]]], moments: Mapping[int, datetime], now: datetime
) -> int:
    clients = Client.objects.in_bulk(sorted({*changes, *moments}))
    written, fields = [], {"last_interaction_at"}
    for pk, client in clients.items():
        for name, (_old, new) in changes.get(pk, {}).items():
            setattr(client, name, new)
            fields.add(name)
        moment = moments.get(pk)
        later = moment is not None and (client.last_interaction_at is None or moment > client.last_interaction_at)
        if later:
            client.last_interaction_at = moment
        if pk in changes:
            client.updated_at = now
        if pk in changes or later:
            written.append(client)
    Client.objects.bulk_update(written, sorted(fields | {"updated_at"}), batch_size=BULK_BATCH_SIZE)
    return len(written)


def interaction_bulk_insert(*, rows: list[dict[str, Any]]) -> list[int]:
    """Insert interactions from plain values (``client_id``, ``kind``, ``occurred_at``...) and move their clients'
    last-interaction dates forward; returns their ids in order. Call once per import, not per row."""
    ids = rows_bulk_insert(model=Interaction, rows=rows)
    latest: dict[int, datetime] = {}
    for row in rows:
        moment = row.get("occurred_at")
        if moment is not None and (row["client_id"] not in latest or moment > latest[row["client_id"]]):
            latest[row["client_id"]] = moment
    if not latest:
        return ids
    if not _copies():
        _client_change_save({}, latest, timezone.now())
        return ids
    # Only the clients whose date moves are rewritten (an import writes its clients' dates with their fields).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE crm_client AS c SET last_interaction_at = m.last"
            " FROM unnest(%s::bigint[], %s::timestamptz[]) AS m(client_id, last)"
            " WHERE c.id = m.client_id AND (c.last_interaction_at IS NULL OR c.last_interaction_at < m.last)",
            [list(latest), list(latest.values())],
        )
    return ids


def _client_copy_update(*, clients: list[Client], fields: list[str], now: datetime) -> None:
    """One UPDATE ... FROM a temporary table COPYed with the id and the given fields of each client."""
    if not clients:
        return
    quote = connection.ops.quote_name
    model_fields = [Client._meta.get_field(name) for name in fields]
    columns = [field.column for field in model_fields]
    table = "crm_client_bulk_update"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {table}")
        selected = ", ".join(quote(column) for column in ["id", *columns])
        source = f"SELECT {selected} FROM {quote(Client._meta.db_table)} WITH NO DATA"  # noqa: S608
        cursor.execute(f"CREATE TEMPORARY TABLE {table} ON COMMIT DROP AS {source}")
        rows = ([client.pk, *(_db_value(field, client, add=False) for field in model_fields)] for client in clients)
        _copy_in(cursor, table=table, columns=["id", *columns], rows=rows)
        cursor.execute(f"ANALYZE {table}")  # without statistics the planner scans the whole client table
        assignments = ", ".join([f"{quote(column)} = t.{quote(column)}" for column in columns] + ["updated_at = %s"])
        cursor.execute(
            f"UPDATE {quote(Client._meta.db_table)} AS c SET {assignments} FROM {table} AS t WHERE c.id = t.id",  # noqa: S608
            [now],
        )


def client_bulk_add_tags(
    *, tags_by_client: Mapping[int, Iterable[str]], batch_size: int = BULK_BATCH_SIZE
) -> dict[int, list[str]]:
    """Give clients tags (created by name when missing); returns, per client, the tag names it did not have."""
    wanted = {client_id: set(names) for client_id, names in tags_by_client.items() if names}
    names = set().union(*wanted.values()) if wanted else set()
    if not names:
        return {}
    Tag.objects.bulk_create([Tag(name=name) for name in sorted(names)], ignore_conflicts=True)
    tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "id"))
    through = Client.tags.through
    existing: set[tuple[int, int]] = set()
    for chunk in _chunks(list(wanted), batch_size):
        existing.update(through.objects.filter(client_id__in=chunk).values_list("client_id", "tag_id"))
    added: dict[int, list[str]] = {}
    rows = []
    for client_id, client_names in wanted.items():
        for name in sorted(client_names):
            if (client_id, tag_ids[name]) not in existing:
                rows.append(through(client_id=client_id, tag_id=tag_ids[name]))
                added.setdefault(client_id, []).append(name)
    through.objects.bulk_create(rows, batch_size=batch_size)
    return added


def client_bulk_remove_tags(*, tags_by_client: Mapping[int, Iterable[str]]) -> None:
    """Take the named tags off each client (the reverse of :func:`client_bulk_add_tags`)."""
    through = Client.tags.through
    by_names: dict[tuple[str, ...], list[int]] = {}
    for client_id, names in tags_by_client.items():
        if names:
            by_names.setdefault(tuple(sorted(set(names))), []).append(client_id)
    for names, client_ids in by_names.items():
        for chunk in _chunks(client_ids, BULK_BATCH_SIZE):
            through.objects.filter(client_id__in=chunk, tag__name__in=names).delete()


def client_bulk_delete(*, client_ids: Iterable[int], batch_size: int = BULK_BATCH_SIZE) -> int:
    """Delete clients with their interactions, purchases and history."""
    deleted = 0
    for chunk in _chunks(list(client_ids), batch_size):
        deleted += Client.objects.filter(pk__in=chunk).delete()[1].get(Client._meta.label, 0)
    return deleted


def interaction_bulk_create(*, interactions: list[Interaction], batch_size: int = BULK_BATCH_SIZE) -> list[Interaction]:
    """Insert interactions and move their clients' last-interaction dates (call once per import, not per row)."""
    if not _copies():
        created = Interaction.objects.bulk_create(interactions, batch_size=batch_size)
        client_refresh_activity_in_batches(client_ids={interaction.client_id for interaction in created})
        return created
    with transaction.atomic():
        records_bulk_insert(objects=interactions)
        client_ids = sorted({interaction.client_id for interaction in interactions})
        if client_ids:
            # Interactions move only the last-interaction date (purchase dates stay): one set-based UPDATE over
            # their clients, which leaves alone the rows already right (new clients are written with theirs).
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE crm_client AS c SET last_interaction_at = m.last"
                    " FROM (SELECT client_id, max(occurred_at) AS last FROM crm_interaction"
                    " WHERE client_id = ANY(%s) GROUP BY client_id) AS m"
                    " WHERE c.id = m.client_id AND c.last_interaction_at IS DISTINCT FROM m.last",
                    [client_ids],
                )
    return interactions


def purchase_bulk_record(
    *, orders: list[tuple[Purchase, list[PurchaseLine]]], batch_size: int = BULK_BATCH_SIZE
) -> list[Purchase]:
    """Insert orders with their lines, then refresh the buyers' purchase dates and lifecycle (as purchase_record)."""
    purchases = Purchase.objects.bulk_create([purchase for purchase, _lines in orders], batch_size=batch_size)
    lines = []
    for purchase, order_lines in zip(purchases, (order_lines for _purchase, order_lines in orders), strict=True):
        for line in order_lines:
            line.purchase_id = purchase.pk
            lines.append(line)
    PurchaseLine.objects.bulk_create(lines, batch_size=batch_size)
    client_refresh_activity_in_batches(client_ids={purchase.client_id for purchase in purchases})
    return purchases


def records_bulk_delete(
    *, interaction_ids: Iterable[int] = (), purchase_ids: Iterable[int] = (), batch_size: int = BULK_BATCH_SIZE
) -> set[int]:
    """Delete interactions and purchases by id; returns the ids of the clients they belonged to."""
    client_ids: set[int] = set()
    for model, ids in ((Interaction, interaction_ids), (Purchase, purchase_ids)):
        for chunk in _chunks(list(ids), batch_size):
            records = model.objects.filter(pk__in=chunk)
            client_ids.update(records.values_list("client_id", flat=True))
            records.delete()
    return client_ids


def client_refresh_activity_in_batches(*, client_ids: Iterable[int], batch_size: int = BULK_BATCH_SIZE) -> None:
    for chunk in _chunks(sorted(client_ids), batch_size):
        client_refresh_activity(client_ids=chunk)
