"""Events and webinars as sources of prospects.

A registration, typed in a form or read from a small CSV file (name, email, company), is matched to a known client
by normalised email; otherwise it becomes a new prospect whose source is the event (networking for an event,
webinar for a webinar; the event's name as detail). Either way the registration is logged as an "event"
interaction on the card, once per client and event.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, time

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from crm.models import Client, Direction, InteractionKind, Lifecycle, Source
from crm.normalize import normalize_email
from crm.services import client_create, interaction_log
from prospecting.models import Event, EventKind, EventRegistration

EVENT_IMPORT_MAX_ROWS = 2000
EVENT_IMPORT_MAX_BYTES = 1024 * 1024
EVENT_SOURCES = {EventKind.EVENT: Source.NETWORKING, EventKind.WEBINAR: Source.WEBINAR}
# Accepted column titles, compared in lower case (English and French).
COLUMN_NAMES = {
    "name": ("name", "full name", "nom", "nom complet", "prénom nom"),
    "email": ("email", "e-mail", "mail", "courriel", "adresse email", "adresse e-mail"),
    "company": ("company", "organisation", "organization", "société", "societe", "entreprise"),
}


class EventImportError(Exception):
    """A file that cannot be read as registrations; the message is for the user."""


@dataclass(frozen=True)
class Registrant:
    name: str
    email: str
    company: str = ""


@dataclass
class RegistrationReport:
    created: int = 0
    matched: int = 0
    already_registered: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def registered(self) -> int:
        return self.created + self.matched


def split_name(name: str) -> tuple[str, str]:
    """ "Jean-Pierre Dupont" -> ("Jean-Pierre", "Dupont"): the first word is the first name."""
    words = name.split()
    if not words:
        return "", ""
    return words[0], " ".join(words[1:])


def _interaction_moment(event: Event) -> datetime:
    """Now for an event to come; noon on its day for one already held (people met there are entered afterwards)."""
    now = timezone.now()
    held = timezone.make_aware(datetime.combine(event.held_on, time(12, 0)))
    return min(now, held) if event.held_on < timezone.localdate() else now


def event_register(*, event: Event, registrant: Registrant, user) -> tuple[EventRegistration, str]:
    """Register one person: returns the registration and "created", "matched" or "already"."""
    email = normalize_email(registrant.email)
    with transaction.atomic():
        client = Client.objects.filter(email=email).order_by("pk").first() if email else None
        outcome = "matched"
        if client is None:
            first_name, last_name = split_name(registrant.name)
            client = client_create(
                data={
                    "first_name": first_name[:150],
                    "last_name": last_name[:150],
                    "email": email,
                    "company": registrant.company[:200],
                    "lifecycle": Lifecycle.PROSPECT,
                    "source": EVENT_SOURCES[event.kind],
                    "source_detail": event.name[:255],
                    "owner": event.owner or user,
                },
                user=user,
            )
            outcome = "created"
        registration, new = EventRegistration.objects.get_or_create(
            event=event, client=client, defaults={"created_prospect": outcome == "created", "registered_by": user}
        )
        if not new:
            return registration, "already"
        interaction_log(
            client=client,
            user=user,
            kind=InteractionKind.EVENT,
            direction=Direction.INBOUND,
            occurred_at=_interaction_moment(event),
            subject=(
                gettext("Registered for the webinar “%(name)s”")
                if event.kind == EventKind.WEBINAR
                else gettext("Met at the event “%(name)s”")
            )
            % {"name": event.name},
        )
    return registration, outcome


def event_register_many(*, event: Event, registrants: list[tuple[int, Registrant]], user) -> RegistrationReport:
    """Register each (line number, registrant), each in its own transaction."""
    report = RegistrationReport()
    for _line, registrant in registrants:
        _registration, outcome = event_register(event=event, registrant=registrant, user=user)
        if outcome == "created":
            report.created += 1
        elif outcome == "matched":
            report.matched += 1
        else:
            report.already_registered += 1
    return report


def read_registrants(content: bytes) -> tuple[list[tuple[int, Registrant]], list[tuple[int, str]]]:
    """The registrants of a CSV file with a header row (name, email, company; comma or semicolon), by line number,
    and the lines that could not be used with the reason."""
    if len(content) > EVENT_IMPORT_MAX_BYTES:
        raise EventImportError(gettext("The file is too large: at most 1 MB."))
    text = _decode(content)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    columns = _columns(header or [])
    rows, errors = [], []
    for line, values in enumerate(reader, start=2):
        if not any(value.strip() for value in values):
            continue
        if len(rows) + len(errors) >= EVENT_IMPORT_MAX_ROWS:
            raise EventImportError(
                gettext("The file has more than %(count)d registrations: split it.") % {"count": EVENT_IMPORT_MAX_ROWS}
            )
        cells = {key: values[index].strip() if index < len(values) else "" for key, index in columns.items()}
        email = normalize_email(cells.get("email", ""))
        try:
            validate_email(email)
        except ValidationError:
            errors.append((line, gettext("missing or invalid email: “%(email)s”") % {"email": cells.get("email", "")}))
            continue
        rows.append((line, Registrant(name=cells.get("name", ""), email=email, company=cells.get("company", ""))))
    return rows, errors


def _decode(content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return content.decode("cp1252", errors="replace")


def _columns(header: list[str]) -> dict[str, int]:
    titles = [title.strip().lower() for title in header]
    columns = {}
    for key, names in COLUMN_NAMES.items():
        for index, title in enumerate(titles):
            if title in names:
                columns[key] = index
                break
    if "email" not in columns:
        raise EventImportError(
            gettext("The first line must name the columns, among them an email column (name, email, company).")
        )
    return columns
