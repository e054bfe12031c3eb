"""Waalaxy exports (LinkedIn prospecting): recognising one, mapping its columns to client fields, deriving the
sales-cycle stage and the interactions its activity columns record.

A file is a Waalaxy export when its header has ``firstName``, ``lastName`` and ``linkedinUrl``, or
``salesNavigatorId`` with at least two other Waalaxy columns; any other column may be missing (older exports have
no ``state``). Column names are matched ignoring case and surrounding spaces, not underscores: ``first_name``
is a generic contact list, not Waalaxy.

Client fields: ``first_name``, ``last_name``, ``company`` (``company_name``), ``job_title`` (``job_title``, else
the LinkedIn headline ``occupation``, shortened with "…" past 200 characters since it only stands in for a title),
``city`` and ``country`` (first and last parts of ``location``, "Paris, Île-de-France, France"; a single part is a
country unless it names an area such as "Greater Paris Metropolitan Region"), ``linkedin_url`` (normalised),
``email`` (``proEmail``, else ``linkedinEmail``), ``phone`` (first of ``phoneNumbers``), ``tags``,
``source`` = ``social_selling`` and ``source_detail`` = ``prospectList``.

Stage, first matching row wins (``state`` is a label set by a person, so it outranks activity):

=====================================================================================  =========
Condition                                                                              Stage
=====================================================================================  =========
``state`` says not interested (not_interested, pas intéressé, lost, perdu, refus…)     lost
``state`` says interested (interested, intéressé(e), meeting booked, rdv pris…)        meeting
``state`` is later_interested, or ``messageReplied``/``emailReplied`` is true, or a    engaged
reply date (``lastLinkedinReplyDate``, ``lastEmailReplyDate``) is set
``connectedAt`` is set or ``profileStatus`` is connected                               connected
invitation pending (``connectionRequestDate`` set), or a message or email was sent     contacted
nothing of the above                                                                   new
=====================================================================================  =========

Each activity date becomes an interaction (a plain dict: kind, direction, occurred_at, subject, external_key).
``external_key`` is ``waalaxy:<LinkedIn slug, else salesNavigatorId, else email>:<column>:<moment>``, where the
moment is the date as written for a date alone and the UTC ISO time otherwise, so the same cell always gives the
same key and a re-import can skip interactions it already created (an identity too long for the 255 characters of
the key is replaced by its SHA-256 digest).

Any cell that cannot be read (a date, a yes/no flag, an email…) is reported as a :class:`CellError` naming the
column; the values that could be read are still returned so the report can show the whole row.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from functools import lru_cache, partial
from typing import Any

from django.utils.translation import get_language, gettext, gettext_lazy

from prospecting.validation import (
    CellError,
    InvalidValue,
    fold,
    parse_bool,
    parse_datetime,
    parse_email,
    parse_linkedin_url,
    parse_phone,
    parse_tags,
    parse_text,
)

WAALAXY_COLUMNS = (
    "firstName",
    "lastName",
    "occupation",
    "job_title",
    "location",
    "linkedinUrl",
    "salesNavigatorId",
    "company_name",
    "company_website",
    "linkedinEmail",
    "proEmail",
    "phoneNumbers",
    "prospectList",
    "tags",
    "profileStatus",
    "messageSent",
    "messageReplied",
    "emailSent",
    "emailReplied",
    "connectionRequestDate",
    "connectedAt",
    "firstMessageAt",
    "lastLinkedinMessageSentDate",
    "lastLinkedinReplyDate",
    "lastEmailSentDate",
    "lastEmailReplyDate",
    "state",
)
SOURCE = "social_selling"
JOB_TITLE_MAX_LENGTH = 200
EXTERNAL_KEY_MAX_LENGTH = 255  # crm.Interaction.external_key

# Column, interaction kind, direction, subject.
ACTIVITY_COLUMNS = (
    ("connectionRequestDate", "linkedin", "outbound", gettext_lazy("LinkedIn invitation sent (Waalaxy)")),
    ("connectedAt", "linkedin", "inbound", gettext_lazy("LinkedIn invitation accepted (Waalaxy)")),
    ("firstMessageAt", "linkedin", "outbound", gettext_lazy("First LinkedIn message sent (Waalaxy)")),
    ("lastLinkedinMessageSentDate", "linkedin", "outbound", gettext_lazy("LinkedIn message sent (Waalaxy)")),
    ("lastLinkedinReplyDate", "linkedin", "inbound", gettext_lazy("LinkedIn reply received (Waalaxy)")),
    ("lastEmailSentDate", "email", "outbound", gettext_lazy("Email sent (Waalaxy)")),
    ("lastEmailReplyDate", "email", "inbound", gettext_lazy("Email reply received (Waalaxy)")),
)
FLAG_COLUMNS = ("messageSent", "messageReplied", "emailSent", "emailReplied")
SENT_COLUMNS = ("connectionRequestDate", "firstMessageAt", "lastLinkedinMessageSentDate", "lastEmailSentDate")

# ``state`` values, folded (no accents, case or punctuation). Unknown values leave the stage to the activity.
LOST_STATES = frozenset(
    ["notinterested", "pasinteresse", "pasinteressee", "noninteresse", "noninteressee", "notrelevant"]
    + ["lost", "perdu", "refus", "refuse", "refused", "declined"]
)
MEETING_STATES = frozenset(
    ["interested", "interesse", "interessee", "meeting", "meetingbooked", "meetingscheduled", "callbooked"]
    + ["rdv", "rdvpris", "rendezvous", "rendezvouspris"]
)
ENGAGED_STATES = frozenset(["laterinterested", "interestedlater", "interesseplustard", "interesseeplustard"])
_AREA_WORDS = frozenset(["region", "area", "metropolitan", "greater", "grand", "agglomeration", "metropole"])

_NAME = partial(parse_text, max_length=150)
_COMPANY = partial(parse_text, max_length=200)
_JOB_TITLE = partial(parse_text, max_length=JOB_TITLE_MAX_LENGTH)
_SOURCE_DETAIL = partial(parse_text, max_length=255)
# Subjects translated once per language rather than once per interaction (100,000 rows make 300,000 of them).
_SUBJECTS_BY_LANGUAGE: dict[str | None, dict[str, str]] = {}
_BY_LOWER_NAME = {name.lower(): name for name in WAALAXY_COLUMNS}
_PROFILE_SLUG = re.compile(r"https://www\.linkedin\.com/in/([^/?#]+)")
_DATE_ONLY = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}")
_LIST_SEPARATORS = re.compile(r"[,;|\n]")
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


@dataclass
class WaalaxyProspect:
    """One row of an export: client field values, interactions to record, and the cells that could not be read."""

    client: dict[str, Any] = field(default_factory=dict)
    interactions: list[dict[str, Any]] = field(default_factory=list)
    errors: list[CellError] = field(default_factory=list)


def canonical_header(header: Sequence[str]) -> list[str]:
    """The header with Waalaxy columns spelled as Waalaxy spells them (`` FirstName`` -> ``firstName``)."""
    return [_BY_LOWER_NAME.get(name.strip().lower(), name) for name in header]


def is_waalaxy_export(header: Sequence[str]) -> bool:
    present = set(canonical_header(header)) & set(WAALAXY_COLUMNS)
    if {"firstName", "lastName", "linkedinUrl"} <= present:
        return True
    return "salesNavigatorId" in present and len(present) >= 3


def map_waalaxy_record(
    record: Mapping[str, str], *, tz: tzinfo = UTC, subjects: Mapping[str, str] | None = None
) -> WaalaxyProspect:
    """Map one row, keyed by canonical Waalaxy column names (see :func:`canonical_header`).

    ``tz`` is the time zone of dates written without one (the site's time zone). ``subjects`` are the interaction
    subjects by column (:func:`waalaxy_subjects`), looked up once by a caller mapping many rows.
    """
    prospect = WaalaxyProspect()

    def read(column: str, parse: Callable[[str], Any]) -> Any:
        raw = record.get(column, "")
        try:
            return parse(raw)
        except InvalidValue as exc:
            prospect.errors.append(CellError(column, raw, str(exc)))
            return None

    client = prospect.client
    client["first_name"] = read("firstName", _NAME)
    client["last_name"] = read("lastName", _NAME)
    client["company"] = read("company_name", _COMPANY)
    client["job_title"] = read("job_title", _JOB_TITLE) or _shortened(
        record.get("occupation", ""), JOB_TITLE_MAX_LENGTH
    )
    client["city"], client["country"] = read("location", _parse_location) or (None, None)
    client["linkedin_url"] = read("linkedinUrl", parse_linkedin_url)
    client["email"] = read("proEmail", parse_email) or read("linkedinEmail", parse_email)
    client["phone"] = read("phoneNumbers", _parse_first_phone)
    client["tags"] = read("tags", _parse_tag_list)
    client["source"] = SOURCE
    client["source_detail"] = read("prospectList", _SOURCE_DETAIL)

    flags = {column: read(column, parse_bool) for column in FLAG_COLUMNS}
    parse_moment = _moment_parser(tz)
    moments = {column: read(column, parse_moment) for column, *_ in ACTIVITY_COLUMNS}
    client["stage"] = waalaxy_stage(
        state=record.get("state", ""),
        replied=bool(flags["messageReplied"] or flags["emailReplied"])
        or bool(moments["lastLinkedinReplyDate"] or moments["lastEmailReplyDate"]),
        connected=bool(moments["connectedAt"]) or fold(record.get("profileStatus", "")).strip() == "connected",
        contacted=bool(flags["messageSent"] or flags["emailSent"]) or any(moments[column] for column in SENT_COLUMNS),
    )
    prospect.client = {name: value for name, value in client.items() if value is not None}

    identity = _identity(client.get("linkedin_url"), record.get("salesNavigatorId", ""), client.get("email"))
    if identity is None and any(moments.values()):
        prospect.errors.append(
            CellError("linkedinUrl", "", gettext("a LinkedIn profile, Sales Navigator id or email is needed"))
        )
    elif identity is not None:
        prospect.interactions = _interactions(record, moments, identity, subjects or waalaxy_subjects())
    return prospect


def waalaxy_stage(*, state: str, replied: bool, connected: bool, contacted: bool) -> str:
    """The sales-cycle stage from the ``state`` label and the activity (see the table in the module docstring)."""
    label = _NOT_ALNUM.sub("", fold(state))
    if label in LOST_STATES:
        return "lost"
    if label in MEETING_STATES:
        return "meeting"
    if replied or label in ENGAGED_STATES:
        return "engaged"
    if connected:
        return "connected"
    if contacted:
        return "contacted"
    return "new"


def _interactions(
    record: Mapping[str, str], moments: dict[str, datetime | None], identity: str, subjects: Mapping[str, str]
) -> list[dict]:
    interactions = []
    for column, kind, direction, _subject in ACTIVITY_COLUMNS:
        occurred_at = moments[column]
        if occurred_at is None:
            continue
        # Waalaxy repeats the first message as the last one when only one was sent.
        if column == "lastLinkedinMessageSentDate" and occurred_at == moments["firstMessageAt"]:
            continue
        raw = record[column].strip()
        moment = (
            occurred_at.date().isoformat() if _DATE_ONLY.fullmatch(raw) else occurred_at.astimezone(UTC).isoformat()
        )
        interactions.append(
            {
                "kind": kind,
                "direction": direction,
                "occurred_at": occurred_at,
                "subject": subjects[column],
                "external_key": _external_key(identity, column, moment),
            }
        )
    return sorted(interactions, key=lambda interaction: interaction["occurred_at"])


def _external_key(identity: str, column: str, moment: str) -> str:
    key = f"waalaxy:{identity}:{column}:{moment}"
    if len(key) <= EXTERNAL_KEY_MAX_LENGTH:
        return key
    # A long email or Sales Navigator id: a digest of it keeps the key within the column and the same on re-import.
    digest = hashlib.sha256(identity.encode(), usedforsecurity=False).hexdigest()
    return f"waalaxy:sha256-{digest}:{column}:{moment}"


def waalaxy_subjects() -> dict[str, str]:
    """The subject of the interaction each activity column records, in the active language."""
    language = get_language()
    if language not in _SUBJECTS_BY_LANGUAGE:
        _SUBJECTS_BY_LANGUAGE[language] = {column: str(subject) for column, _, _, subject in ACTIVITY_COLUMNS}
    return _SUBJECTS_BY_LANGUAGE[language]


def _identity(linkedin_url: str | None, sales_navigator_id: str, email: str | None) -> str | None:
    if linkedin_url:
        match = _PROFILE_SLUG.match(linkedin_url)
        return match.group(1) if match else linkedin_url.removeprefix("https://www.linkedin.com/")
    return sales_navigator_id.strip() or email or None


@lru_cache(maxsize=8)
def _moment_parser(tz: tzinfo) -> Callable[[str], datetime | None]:
    # Exports repeat moments (dates alone, campaigns sent in bulk): each distinct text is read once per time zone.
    return lru_cache(maxsize=65_536)(partial(parse_datetime, tz=tz))


def _shortened(text: str, max_length: int) -> str | None:
    text = text.strip()
    if len(text) <= max_length:
        return text or None
    return text[: max_length - 1].rstrip() + "…"


@lru_cache(maxsize=16_384)
def _parse_location(text: str) -> tuple[str | None, str | None] | None:
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        return None
    if len(parts) == 1:
        words = set(_NOT_ALNUM.split(fold(parts[0])))
        city, country = (parts[0], None) if words & _AREA_WORDS else (None, parts[0])
    else:
        city, country = parts[0], parts[-1]
    return (
        parse_text(city or "", max_length=120),
        parse_text(country or "", max_length=120),
    )


def _list_items(text: str) -> list[str]:
    """Items of a list cell: a JSON array (of strings or of objects with a number/value) or separated text."""
    text = text.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise InvalidValue(gettext("expected a list, got %(value)s") % {"value": text[:60]}) from exc
        if not isinstance(items, list):
            raise InvalidValue(gettext("expected a list, got %(value)s") % {"value": text[:60]})
        return [_list_item_text(item) for item in items]
    return [item.strip() for item in _LIST_SEPARATORS.split(text)]


def _list_item_text(item: Any) -> str:
    if isinstance(item, dict):
        item = next((item[key] for key in ("number", "phoneNumber", "value", "name") if key in item), "")
    return str(item).strip()


def _parse_first_phone(text: str) -> str | None:
    return next((parse_phone(item) for item in _list_items(text) if item), None)


def _parse_tag_list(text: str) -> list[str] | None:
    return parse_tags("\n".join(_list_items(text)))
