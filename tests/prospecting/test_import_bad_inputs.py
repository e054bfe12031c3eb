"""Every bad input the issue lists gets its clear message on the upload page, and nothing is written: no job, no
client. Bad cells (emails, dates, amounts) are reported line by line and their rows are not imported."""

import io

import openpyxl
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Client, Interaction, Purchase
from prospecting import imports
from prospecting.models import ImportChange, ImportJob, ImportStatus
from prospecting.readers import ImportFileError
from tests.factories import ClientFactory


def _workbook(rows) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _upload(client, data, name="list.csv", kind="people"):
    return client.post(reverse("prospecting:import-upload"), {"file": SimpleUploadedFile(name, data), "kind": kind})


def _nothing_written():
    return not (
        ImportJob.objects.exists()
        or Client.objects.exists()
        or Interaction.objects.exists()
        or Purchase.objects.exists()
        or ImportChange.objects.exists()
    )


REFUSED = [
    pytest.param(b"", "list.csv", ["The file is empty."], id="empty"),
    pytest.param(
        b"email;nom;ville\n\n", "list.csv", ["The file has column names (line 1) but no data rows."], id="header-only"
    ),
    pytest.param(
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200),
        "photo.csv",
        ["This file is a PNG image, not a CSV or Excel file."],
        id="binary-png",
    ),
    pytest.param(
        bytes(range(256)) * 40,
        "list.csv",
        ["This file is not a text (CSV) file or an Excel workbook."],
        id="binary-unknown",
    ),
    pytest.param(
        b"nom;ville\nDupont;Paris\n",
        "clients.xlsx",
        ["“clients.xlsx” is not a valid Excel workbook", "rename it to .csv"],
        id="csv-renamed-xlsx",
    ),
    pytest.param(
        b"email;ville\na@x.com;Paris\nb@x.com;\x81\x8d\n",
        "list.csv",
        [
            "The file&#x27;s character encoding is not recognised (line 3 cannot be read as UTF-8 or Windows-1252). "
            "Save it as CSV UTF-8 and try again."
        ],
        id="unknown-encoding",
    ),
    pytest.param(
        b"Email;nom;email ;ville\na@x.com;b;c;d\n",
        "list.csv",
        [
            "A column name is used twice (line 1); rename or remove one of the columns so that their values are "
            "not mixed up:",
            "“Email” is in columns 1, 3",
        ],
        id="duplicate-columns",
    ),
    pytest.param(
        b"email,first name,last name,company,city\na@x.com,Ann,Martin,Acme,Paris\nb@x.com,Bob,Stone,Beta,Lyon,extra\n",
        "list.csv",
        ["line 3: expected 5 fields, got 6"],
        id="ragged-rows",
    ),
    pytest.param(
        b"email;notes\na@x.com;ok\nb@x.com;nul\x00byte\nc@x.com;bell\x07\n",
        "list.csv",
        [
            "line 3, column “notes”: control character U+0000 is not allowed",
            "line 4, column “notes”: control character U+0007 is not allowed",
        ],
        id="nul-and-control-bytes",
    ),
]


@pytest.mark.parametrize(("data", "name", "messages"), REFUSED)
def test_a_bad_file_is_refused_on_the_upload_page_and_nothing_is_written(client_as, admin_member, data, name, messages):
    response = _upload(client_as(admin_member), data, name=name)
    assert response.status_code == 400
    page = response.content.decode()
    for message in messages:
        assert message in page
    assert _nothing_written()


@pytest.mark.parametrize(("data", "name", "messages"), REFUSED)
def test_the_service_refuses_the_same_files_with_the_same_message(admin_member, data, name, messages):
    with pytest.raises(ImportFileError) as caught:
        imports.import_create(data=data, filename=name, kind="people", user=admin_member)
    text = str(caught.value)
    for message in messages:
        assert message.replace("&#x27;", "'") in text
    assert _nothing_written()


def test_an_oversized_file_is_refused_by_size_before_it_is_read(client_as, admin_member, settings):
    settings.IMPORT_MAX_BYTES = 1_000_000
    data = b"email\n" + b"someone@example.com\n" * 75_000
    response = _upload(client_as(admin_member), data)
    assert response.status_code == 400
    assert "The file is 1.5 MB, more than the 1.0 MB allowed. Split it into smaller files." in response.content.decode()
    with pytest.raises(ImportFileError, match=r"^The file is 1\.5 MB, more than the 1\.0 MB allowed\."):
        imports.import_create(data=data, filename="list.csv", kind="people", user=admin_member)
    assert _nothing_written()


def test_an_excel_workbook_renamed_csv_is_read_as_a_workbook_and_the_admin_is_told(client_as, admin_member):
    client = client_as(admin_member)
    response = _upload(client, _workbook([["email", "prénom"], ["ann@x.com", "Ann"]]), name="export.csv")
    job = ImportJob.objects.get()
    assert response.url == reverse("prospecting:import-mapping", args=[job.pk])
    page = client.get(response.url).content.decode()
    assert "“export.csv” is an Excel workbook despite its name; it was read as a workbook." in page
    assert job.total_rows == 1 and job.mapping == {"email": "email", "prénom": "first_name"}
    assert not Client.objects.exists()


def _applied(data, user, kind="people", **options):
    job = imports.import_create(data=data, filename="f.csv", kind=kind, user=user, options=options)
    imports.import_preview(job=job)
    imports.import_queue(job=job)
    return imports.import_apply(job_id=job.pk)


def test_invalid_emails_are_reported_with_line_and_reason_and_not_imported(admin_member):
    data = b"email,first name\nann@x.com,Ann\nann@,Bad\nbob at x.com,Worse\n"
    job = _applied(data, admin_member)
    assert job.status == ImportStatus.APPLIED
    assert [(error["line"], error["column"], error["reason"]) for error in job.errors] == [
        (3, "email", "expected an email address such as name@example.com, got “ann@”"),
        (4, "email", "expected an email address such as name@example.com, got “bob at x.com”"),
    ]
    assert list(Client.objects.values_list("email", flat=True)) == ["ann@x.com"]


def test_invalid_dates_and_amounts_are_reported_with_line_and_reason_and_not_imported(admin_member):
    ClientFactory(email="ann@x.com")
    data = (
        b"email,order date,reference,amount\n"
        b"ann@x.com,2024-05-01,A-1,10\n"
        b"ann@x.com,31/02/2024,A-2,10\n"
        b"ann@x.com,yesterday,A-3,10\n"
        b"ann@x.com,2024-05-04,A-4,ten euros\n"
        b"ann@x.com,2024-05-05,A-5,10.5555\n"
    )
    job = _applied(data, admin_member, kind="purchases")
    assert [(error["line"], error["column"], error["reason"]) for error in job.errors] == [
        (3, "order date", "“31/02/2024” is not a real date"),
        (4, "order date", "expected a date such as 31/12/2024 or 2024-12-31, got “yesterday”"),
        (5, "amount", "expected an amount such as 1 234,56 or 1234.56, got “ten euros”"),
        (6, "amount", "expected an amount with at most 2 decimals, got “10.5555”"),
    ]
    assert list(Purchase.objects.values_list("reference", flat=True)) == ["A-1"]


def test_a_waalaxy_row_with_an_unreadable_date_is_reported_and_not_imported(admin_member):
    data = (
        b"firstName,lastName,linkedinUrl,proEmail,connectedAt\n"
        b"Ann,Martin,https://www.linkedin.com/in/ann-martin,ann@x.com,2024-03-02\n"
        b"Bob,Stone,https://www.linkedin.com/in/bob-stone,bob@x.com,soon\n"
    )
    job = _applied(data, admin_member)
    assert [(error["line"], error["column"]) for error in job.errors] == [(3, "connectedAt")]
    assert "got “soon”" in job.errors[0]["reason"]
    assert list(Client.objects.values_list("email", flat=True)) == ["ann@x.com"]
    assert not Interaction.objects.exclude(client__email="ann@x.com").exists()
