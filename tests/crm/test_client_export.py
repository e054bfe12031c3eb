"""The CSV export of the client list: who may export, what the file holds, and spreadsheet-formula neutralising."""

import csv
import io
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from crm import exports, models
from crm.exports import csv_stream, neutralize_formula
from tests.factories import ClientFactory

HEADER = [
    "First name",
    "Last name",
    "Email",
    "Phone",
    "Company",
    "Job title",
    "City",
    "Country",
    "Lifecycle",
    "Stage",
    "Tier",
    "Owner",
    "Source",
    "Last interaction",
    "Last purchase",
    "External id",
]


def export_url() -> str:
    return reverse("crm:client-export")


def download(response) -> tuple[bytes, list[list[str]]]:
    """The raw bytes and the parsed rows (header first) of a streamed export."""
    raw = b"".join(response.streaming_content)
    return raw, list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+33612345678", "'+33612345678"),
        ("-2", "'-2"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Lyon", "Lyon"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (42, "42"),
        (-5, "-5"),
        (Decimal("-12.50"), "-12.50"),
        (-0.5, "-0.5"),
    ],
)
def test_neutralize_formula_prefixes_cells_a_spreadsheet_would_run(value, expected):
    assert neutralize_formula(value) == expected


def test_csv_stream_starts_with_a_byte_order_mark_and_neutralises_every_cell():
    assert "".join(csv_stream(["=Name"], [["=cmd"], ["Zoé"]])) == "\ufeff'=Name\r\n'=cmd\r\nZoé\r\n"


def test_csv_stream_sends_rows_in_pieces(monkeypatch):
    monkeypatch.setattr(exports, "CSV_LINES_PER_PIECE", 2)
    pieces = list(csv_stream(["Name"], [["a"], ["b"], ["c"]]))
    assert pieces == ["\ufeffName\r\n", "a\r\nb\r\n", "c\r\n"]


def test_rep_cannot_export(client_as, rep, rep_client):
    assert client_as(rep).get(export_url()).status_code == 403


def test_user_without_role_cannot_export(client_as, outsider):
    assert client_as(outsider).get(export_url()).status_code == 403


@pytest.mark.parametrize("user_fixture", ["manager", "admin_member"])
def test_managers_and_admins_download_a_utf8_csv_with_bom(request, client_as, user_fixture, rep, rep_client):
    models.Client.objects.filter(pk=rep_client.pk).update(
        first_name="Élodie",
        phone="04 72 00 00 00",
        company="Café Lumière",
        job_title="Gérante",
        lifecycle=models.Lifecycle.CLIENT,
        stage=models.Stage.WON,
        tier=models.Tier.A,
        source=models.Source.REFERRAL,
        last_purchase_at=date(2024, 3, 9),
        external_id="C-00042",
    )
    response = client_as(request.getfixturevalue(user_fixture)).get(export_url())
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="clients-')
    raw, rows = download(response)
    assert raw.startswith(b"\xef\xbb\xbf")
    assert rows == [
        HEADER,
        [
            "Élodie",
            "Martin",
            "ann@example.com",
            "04 72 00 00 00",
            "Café Lumière",
            "Gérante",
            "Lyon",
            "France",
            "Client",
            "Won",
            "A (key account)",
            "alice",
            "Referral",
            "",
            "2024-03-09",
            "C-00042",
        ],
    ]


def test_export_neutralises_formulas_in_client_fields(client_as, manager):
    ClientFactory(
        first_name="=1+1",
        last_name="@SUM(A1:A9)",
        phone="+33612345678",
        company="-2",
        job_title="\tjob",
        city="\rcity",
        external_id="=cmd",
        owner=None,
    )
    _raw, rows = download(client_as(manager).get(export_url()))
    assert rows[1][:7] == ["'=1+1", "'@SUM(A1:A9)", rows[1][2], "'+33612345678", "'-2", "'\tjob", "'\rcity"]
    assert rows[1][-1] == "'=cmd"


def test_export_applies_the_list_filters_and_sort(client_as, manager):
    ClientFactory(first_name="Anna", last_name="Zed", city="Nantes")
    ClientFactory(first_name="Bruno", last_name="Abel", city="Nantes")
    ClientFactory(first_name="Carla", last_name="Milo", city="Lyon")
    _raw, rows = download(client_as(manager).get(export_url(), {"city": "Nantes", "sort": "-name"}))
    assert [row[0] for row in rows[1:]] == ["Anna", "Bruno"]


def test_export_stops_at_the_row_cap(settings, client_as, manager):
    settings.CRM_EXPORT_MAX_ROWS = 2
    for index in range(4):
        ClientFactory(first_name=f"Client{index}", last_name="Capped")
    _raw, rows = download(client_as(manager).get(export_url()))
    assert len(rows) == 1 + 2


def test_export_with_invalid_filters_goes_back_to_the_list(client_as, manager, rep_client):
    response = client_as(manager).get(export_url(), {"idle_days": "abc"})
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('crm:client-list')}?idle_days=abc"
