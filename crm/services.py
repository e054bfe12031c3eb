"""Writes on the portfolio that keep it consistent: every change to a client is recorded in its history, and the
derived dates (last interaction, last purchase, conversion) follow the interactions and purchases written here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import models, transaction
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
)
from crm.normalize import normalize_email, normalize_linkedin_url

CREATED = "__created__"


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
            changes.append(ClientChange(client=client, user=user, field=name, old_value=_display(old), new_value=_display(new)))
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
            changes.append(ClientChange(client=client, user=user, field=name, old_value=_display(old), new_value=_display(new)))
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
            client=client, user=user, kind=kind, direction=direction, occurred_at=occurred_at, subject=subject, body=body
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
