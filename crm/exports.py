"""CSV exports: spreadsheet-safe cells, a streaming CSV writer, and the rows of the client export.

Every exported cell goes through ``neutralize_formula`` so a value typed by a client or an import (``=HYPERLINK(...)``)
is shown as text by Excel or LibreOffice instead of being run as a formula.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, tzinfo
from decimal import Decimal

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext

from crm.models import Lifecycle, Source, Stage, Tier

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
UTF8_BOM = "\ufeff"
CLIENT_EXPORT_CHUNK_SIZE = 2000
CSV_LINES_PER_PIECE = 500


def neutralize_formula(value: object) -> str:
    """The cell as text, with a leading apostrophe when a spreadsheet would read it as a formula.

    Numbers computed by the product (a negative margin, say) stay numbers: their text cannot hold a formula. Text
    that merely looks like a number ("-2" typed in a field) is still neutralised.
    """
    if isinstance(value, int | float | Decimal):
        return str(value)
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_PREFIXES) else text


class _Echo:
    """A file-like object whose ``write`` hands the line back, so ``csv.writer`` can feed a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_stream(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """CSV text in pieces of a few hundred lines: a byte-order mark (Excel then reads UTF-8 accents right), the
    header, then the rows; every cell neutralised."""
    writer = csv.writer(_Echo())
    yield UTF8_BOM + writer.writerow([neutralize_formula(cell) for cell in header])
    # One piece per line would make a streamed response pay its per-chunk cost a hundred thousand times.
    lines = []
    for row in rows:
        lines.append(writer.writerow([neutralize_formula(cell) for cell in row]))
        if len(lines) == CSV_LINES_PER_PIECE:
            yield "".join(lines)
            lines = []
    if lines:
        yield "".join(lines)


_CLIENT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "job_title",
    "city",
    "country",
    "lifecycle",
    "stage",
    "tier",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
    "source",
    "last_interaction_at",
    "last_purchase_at",
    "external_id",
)


def client_export_header() -> list[str]:
    """The column titles, in the active language."""
    return [
        gettext("First name"),
        gettext("Last name"),
        gettext("Email"),
        gettext("Phone"),
        gettext("Company"),
        gettext("Job title"),
        gettext("City"),
        gettext("Country"),
        gettext("Lifecycle"),
        gettext("Stage"),
        gettext("Tier"),
        gettext("Owner"),
        gettext("Source"),
        gettext("Last interaction"),
        gettext("Last purchase"),
        gettext("External id"),
    ]


def _format_moment(value: date | datetime | None, tz: tzinfo) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def client_export_rows(clients: QuerySet) -> Iterator[list[object]]:
    """One row per client, read in chunks so a large export never holds the whole result in memory."""
    # Labels and time zone are resolved now, for the request; the response streams after the view has returned.
    tz = timezone.get_current_timezone()
    labels = {
        "lifecycle": {value: str(label) for value, label in Lifecycle.choices},
        "stage": {value: str(label) for value, label in Stage.choices},
        "tier": {value: str(label) for value, label in Tier.choices},
        "source": {value: str(label) for value, label in Source.choices},
    }

    def rows() -> Iterator[list[object]]:
        for values in clients.values_list(*_CLIENT_FIELDS).iterator(chunk_size=CLIENT_EXPORT_CHUNK_SIZE):
            record = dict(zip(_CLIENT_FIELDS, values, strict=True))
            owner = f"{record['owner__first_name']} {record['owner__last_name']}".strip() or record["owner__username"]
            yield [
                record["first_name"],
                record["last_name"],
                record["email"],
                record["phone"],
                record["company"],
                record["job_title"],
                record["city"],
                record["country"],
                labels["lifecycle"].get(record["lifecycle"], record["lifecycle"]),
                labels["stage"].get(record["stage"], record["stage"]),
                labels["tier"].get(record["tier"], record["tier"]),
                owner or "",
                labels["source"].get(record["source"], record["source"]),
                _format_moment(record["last_interaction_at"], tz),
                _format_moment(record["last_purchase_at"], tz),
                record["external_id"],
            ]

    return rows()
