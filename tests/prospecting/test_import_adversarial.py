"""Imports fed hostile cells and replayed, undone after later imports and hand edits: the COPY write paths keep every
character, bad cells are reported per line, nothing is written twice, undo gives back the exact previous state."""

import csv
import io
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from django.db import DEFAULT_DB_ALIAS, connections
from django.urls import reverse
from django.utils import timezone

from crm import services as crm_services
from crm.models import Client, ClientChange, Interaction, Lifecycle, Product, Purchase, Stage, Tag
from prospecting import imports
from prospecting.forms_imports import ImportOptionsForm
from prospecting.models import ImportJob, ImportStatus, UpdatePolicy
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db

HOSTILE = ["tab\there", "two\nlines", "back\\slash", "\\N", 'say "hi"', "emoji 😀🎉", "\\\\N\\t", "crlf\r\nend"]


def _csv(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode()


def _job(data, user, *, kind="people", **options):
    job = imports.import_create(data=data, filename="file.csv", kind=kind, user=user, options=options)
    imports.import_preview(job=job)
    return job


def _apply(job):
    imports.import_queue(job=job)
    return imports.import_apply(job_id=job.pk)


def _snapshot(client: Client):
    client.refresh_from_db()
    values = {f.attname: getattr(client, f.attname) for f in Client._meta.concrete_fields if f.name != "updated_at"}
    return values, sorted(client.tags.values_list("name", flat=True)), client.interactions.count()


def test_hostile_cells_are_stored_exactly_when_created(admin_member):
    header = ["email", "company", "notes", "city"]
    rows = [[f"p{index}@x.com", text, f"n:{text}", text[:100]] for index, text in enumerate(HOSTILE)]
    job = _apply(_job(_csv([header, *rows]), admin_member))
    assert job.status == ImportStatus.APPLIED, job.error
    stored = {c.email: (c.company, c.notes, c.city) for c in Client.objects.all()}
    # The reader strips the cells' outer blanks, as for any cell.
    for index, text in enumerate(HOSTILE):
        assert stored[f"p{index}@x.com"] == (text.strip(), f"n:{text}".strip(), text[:100].strip())


def test_hostile_cells_are_stored_exactly_when_updating_and_undo_gives_the_old_ones_back(admin_member):
    clients = [ClientFactory(email=f"p{index}@x.com", company="Old", notes="") for index in range(len(HOSTILE))]
    before = [_snapshot(client) for client in clients]
    rows = [[f"p{index}@x.com", text, text] for index, text in enumerate(HOSTILE)]
    job = _apply(_job(_csv([["email", "company", "notes"], *rows]), admin_member, policy=UpdatePolicy.OVERWRITE))
    assert (job.status, job.updated_count) == (ImportStatus.APPLIED, len(HOSTILE))
    for client, text in zip(clients, HOSTILE, strict=True):
        client.refresh_from_db()
        assert (client.company, client.notes) == (text.strip(), text.strip())
    assert imports.import_undo(job_id=job.pk, user=admin_member) == {}
    assert [_snapshot(client) for client in clients] == before


def test_a_leading_equals_sign_is_stored_as_text_and_neutralised_in_the_client_export(client_as, admin_member):
    formula = '=HYPERLINK("http://evil.example","click")'
    job = _apply(_job(_csv([["email", "company"], ["f@x.com", formula]]), admin_member))
    assert job.status == ImportStatus.APPLIED
    assert Client.objects.get(email="f@x.com").company == formula
    response = client_as(admin_member).get(reverse("crm:client-export"))
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert "'" + formula.replace('"', '""') in body
    assert "," + '"' + formula.replace('"', '""') not in body


def test_cells_longer_than_the_field_are_line_errors_and_the_rest_is_imported(admin_member):
    rows = [
        ["email", "company", "first_name", "external id", "phone"],
        ["ok@x.com", "Acme", "Ann", "E-1", ""],
        ["long1@x.com", "C" * 201, "Bob", "", ""],
        ["long2@x.com", "", "F" * 151, "", ""],
        ["long3@x.com", "", "", "X" * 65, ""],
        ["long4@x.com", "", "", "", "1" * 41],
    ]
    job = _job(_csv(rows), admin_member)
    assert (job.created_count, job.error_count) == (1, 4)
    assert all("at most" in error["reason"] or "phone" in error["reason"] for error in job.errors)
    assert _apply(job).status == ImportStatus.APPLIED
    assert list(Client.objects.values_list("email", flat=True)) == ["ok@x.com"]


def test_a_long_purchase_reference_or_product_is_a_line_error(admin_member):
    ClientFactory(email="ann@x.com")
    rows = [
        ["email", "order date", "reference", "amount", "product", "sku"],
        ["ann@x.com", "2024-05-01", "R" * 65, "10", "Mug", ""],
        ["ann@x.com", "2024-05-01", "A-2", "10", "P" * 201, ""],
        ["ann@x.com", "2024-05-01", "A-3", "10", "Mug", "S" * 65],
        ["ann@x.com", "2024-05-01", "A-4", "10", "Mug", ""],
    ]
    job = _job(_csv(rows), admin_member, kind="purchases")
    assert (job.created_count, job.error_count) == (1, 3)
    assert _apply(job).status == ImportStatus.APPLIED
    assert list(Purchase.objects.values_list("reference", flat=True)) == ["A-4"]


def test_a_waalaxy_row_with_a_very_long_identity_is_imported_without_a_database_error(admin_member):
    email = "a" * 60 + "@" + ("b" * 60 + ".") * 3 + "com"  # 247 characters, a valid address
    data = _csv(
        [
            ["firstName", "lastName", "linkedinUrl", "proEmail", "company_name", "connectedAt", "prospectList"],
            ["Ann", "Long", "", email, "Acme", "2024-03-02", "Spring"],
        ]
    )
    job = _job(data, admin_member)
    assert job.is_waalaxy and job.error_count == 0
    job = _apply(job)
    assert job.status == ImportStatus.APPLIED, job.error
    [interaction] = Interaction.objects.all()
    assert len(interaction.external_key) <= Interaction._meta.get_field("external_key").max_length
    # The same file again recognises the interaction it already holds.
    assert _apply(_job(data, admin_member)).status == ImportStatus.APPLIED
    assert Interaction.objects.count() == 1


def test_the_same_contact_file_twice_creates_and_changes_nothing_the_second_time(admin_member):
    rows = [["email", "company", "notes", "external id"]] + [
        [f"p{index}@x.com", text, text, f"E{index}"] for index, text in enumerate(HOSTILE)
    ]
    _apply(_job(_csv(rows), admin_member, tags=["fair"]))
    counts = (Client.objects.count(), ClientChange.objects.count())
    again = _apply(_job(_csv(rows), admin_member, tags=["fair"], policy=UpdatePolicy.OVERWRITE))
    assert (again.created_count, again.updated_count, again.unchanged_count) == (0, 0, len(HOSTILE))
    assert (Client.objects.count(), ClientChange.objects.count()) == counts


def test_the_same_purchase_file_by_external_id_with_costs_twice_records_each_order_once(admin_member):
    ClientFactory(external_id="C-1", email="ann@x.com")
    data = (
        b"client id,order date,reference,amount,cost,product\n"
        b"C-1,2024-05-01,A-1,100,40,Mug\n"
        b"C-1,2024-05-01,A-1,20,5,Spoon\n"
        b"C-9,2024-05-02,B-1,30,12,Lamp\n"
    )
    first = _apply(_job(data, admin_member, kind="purchases", unknown_clients="create"))
    assert (first.status, first.created_count) == (ImportStatus.APPLIED, 2)
    assert dict(Purchase.objects.values_list("reference", "cost")) == {"A-1": Decimal("45"), "B-1": Decimal("12")}
    again = _apply(_job(data, admin_member, kind="purchases", unknown_clients="create"))
    assert (again.created_count, again.unchanged_count) == (0, 2)
    assert (Purchase.objects.count(), Client.objects.count()) == (2, 2)
    imports.import_undo(job_id=first.pk, user=admin_member)
    assert list(Client.objects.values_list("external_id", flat=True)) == ["C-1"]
    assert not Purchase.objects.exists()


def test_undo_after_a_later_import_updated_the_same_clients_keeps_the_later_fields(admin_member):
    ann = ClientFactory(email="ann@x.com", city="", company="", phone="", stage=Stage.NEW, external_id="")
    first = _apply(
        _job(b"email,city,external id,tags\nann@x.com,Paris,A-1,vip\n", admin_member, policy=UpdatePolicy.OVERWRITE)
    )
    second = _apply(_job(b"email,city,company\nann@x.com,Lyon,Acme\n", admin_member, policy=UpdatePolicy.OVERWRITE))
    assert second.updated_count == 1
    kept = imports.import_undo(job_id=first.pk, user=admin_member)
    ann.refresh_from_db()
    assert kept == {ann.pk: {"city", "company"}}
    # The later import's city stays; what only the first import set goes back.
    assert (ann.city, ann.company, ann.external_id) == ("Lyon", "Acme", "")
    assert list(ann.tags.values_list("name", flat=True)) == []


def test_undo_after_a_client_was_deleted_by_hand_undoes_the_rest(admin_member):
    kept_client = ClientFactory(email="kept@x.com", city="")
    gone_client = ClientFactory(email="gone@x.com", city="")
    data = b"email,city\nkept@x.com,Paris\ngone@x.com,Lyon\nnew@x.com,Nice\nnew2@x.com,Metz\n"
    job = _apply(_job(data, admin_member))
    assert (job.created_count, job.updated_count) == (2, 2)
    gone_client.delete()
    Client.objects.filter(email="new2@x.com").delete()
    imports.import_undo(job_id=job.pk, user=admin_member)
    job.refresh_from_db()
    assert job.status == ImportStatus.UNDONE
    assert list(Client.objects.values_list("email", "city")) == [("kept@x.com", "")]
    assert kept_client.pk == Client.objects.get().pk


def test_undo_gives_back_stage_external_id_tags_and_removes_interactions(admin_member):
    ann = ClientFactory(email="ann@x.com", stage=Stage.CONTACTED, external_id="OLD", linkedin_url="")
    ann.tags.add(Tag.objects.create(name="kept"))
    before = _snapshot(ann)
    data = (
        b"firstName,lastName,linkedinUrl,proEmail,company_name,connectedAt,messageReplied,prospectList,tags\n"
        b"Ann,Martin,https://www.linkedin.com/in/ann-m,ann@x.com,Acme,2024-03-02,true,Spring,vip\n"
    )
    job = _apply(_job(data, admin_member, policy=UpdatePolicy.OVERWRITE))
    ann.refresh_from_db()
    assert ann.stage == Stage.ENGAGED and ann.interactions.exists() and "vip" in ann.tags.values_list("name", flat=True)
    assert imports.import_undo(job_id=job.pk, user=admin_member) == {}
    assert _snapshot(ann) == before


def test_preview_and_apply_count_the_same_with_field_policies(admin_member):
    ClientFactory(email="a@x.com", city="Paris", phone="", company="Old")
    ClientFactory(email="b@x.com", city="", phone="+33 1 00 00 00 00", company="")
    data = b"email,city,phone,company\na@x.com,Lyon,+33 6 00 00 00 01,New\nb@x.com,Nice,+33 6 00 00 00 02,Co\n"
    options = {
        "policy": UpdatePolicy.NEVER,
        "field_policies": {"city": UpdatePolicy.OVERWRITE, "phone": UpdatePolicy.FILL_EMPTY},
    }
    job = _job(data, admin_member, **options)
    preview = [(row["line"], row["changes"]) for row in job.preview_rows]
    applied = _apply(job)
    assert (applied.updated_count, applied.unchanged_count) == (job.updated_count, job.unchanged_count) == (2, 0)
    assert preview == [
        (2, [["phone", "", "+33 6 00 00 00 01"], ["city", "Paris", "Lyon"]]),
        (3, [["city", "", "Nice"]]),
    ]
    assert dict(Client.objects.values_list("email", "company")) == {"a@x.com": "Old", "b@x.com": ""}


def test_the_mapping_form_refuses_a_policy_that_does_not_exist(admin_member):
    job = imports.import_create(data=b"email,city\na@x.com,Lyon\n", filename="f.csv", kind="people", user=admin_member)
    data = {
        "column_0": "email",
        "column_1": "city",
        "column_policy_1": "sometimes",
        "policy": UpdatePolicy.FILL_EMPTY,
        "match_key": "email_linkedin",
    }
    form = ImportOptionsForm(data, job=job)
    assert not form.is_valid()
    assert "sometimes" in str(form.errors["column_policy_1"])
    data["column_policy_1"], data["policy"] = "", "bogus"
    assert "policy" in ImportOptionsForm(data, job=job).errors


@pytest.mark.parametrize(
    ("policy", "message"),
    [("shoe_size=overwrite", "shoe_size"), ("city=sometimes", "sometimes"), ("=never", "FIELD=POLICY")],
)
def test_the_command_refuses_bad_policies_and_writes_nothing(tmp_path, policy, message):
    path = tmp_path / "people.csv"
    path.write_bytes(b"email,city\na@x.com,Lyon\n")
    with pytest.raises(CommandError, match=message):
        call_command("import_file", str(path), "--kind", "people", "--policy", policy)
    assert not Client.objects.exists()


def test_the_command_applies_field_policies_as_the_pages_do(tmp_path, capsys):
    ClientFactory(email="a@x.com", city="Paris", company="Old")
    path = tmp_path / "people.csv"
    path.write_bytes(b"email,city,company\na@x.com,Lyon,New\n")
    call_command("import_file", str(path), "--kind", "people", "--policy", "never", "--policy", "city=overwrite")
    assert '"updated": 1' in capsys.readouterr().out
    assert Client.objects.values_list("city", "company").get() == ("Lyon", "Old")


def test_undoing_a_purchase_import_writes_no_history_for_dates_it_leaves_as_they_were(admin_member):
    converted = timezone.now().replace(microsecond=0) - timedelta(days=400)
    ann = ClientFactory(email="ann@x.com", lifecycle=Lifecycle.CLIENT, stage=Stage.WON, converted_at=converted)
    Purchase.objects.create(client=ann, reference="OLD", purchased_on=date(2023, 1, 5), amount=Decimal("10"))
    crm_services.client_refresh_activity(client_ids=[ann.pk])
    before = _snapshot(ann)
    job = _apply(
        _job(b"email,order date,reference,amount\nann@x.com,2024-05-01,A-1,50\n", admin_member, kind="purchases")
    )
    assert job.created_count == 1
    history = ClientChange.objects.count()
    imports.import_undo(job_id=job.pk, user=admin_member)
    assert _snapshot(ann) == before
    # Only the last purchase date went back; the conversion date, stage and lifecycle were never changed.
    undo_rows = list(ClientChange.objects.order_by("pk").values_list("field", flat=True)[history:])
    assert undo_rows == ["last_purchase_at"]


def test_amounts_and_quantities_beyond_what_the_database_holds_are_line_errors(admin_member):
    ClientFactory(email="ann@x.com")
    rows = [
        ["email", "order date", "reference", "amount", "cost", "quantity", "unit price", "product"],
        ["ann@x.com", "2024-05-01", "BIG-AMOUNT", "12345678901", "", "", "", ""],
        ["ann@x.com", "2024-05-01", "BIG-COST", "10", "12345678901", "", "", ""],
        ["ann@x.com", "2024-05-01", "BIG-QTY", "", "", "3000000000", "1", "Mug"],
        ["ann@x.com", "2024-05-01", "BIG-PRICE", "", "", "1", "12345678901", "Mug"],
        ["ann@x.com", "2024-05-01", "BIG-TOTAL", "", "", "10000", "9999999", "Mug"],
        ["ann@x.com", "2024-05-01", "BIG-SUM", "9000000000", "", "", "", ""],
        ["ann@x.com", "2024-05-01", "BIG-SUM", "9000000000", "", "", "", ""],
        ["ann@x.com", "2024-05-01", "FINE", "9999999999.99", "", "", "", ""],
    ]
    job = _job(_csv(rows), admin_member, kind="purchases")
    assert (job.created_count, job.error_count) == (1, 7)
    applied = _apply(job)
    assert applied.status == ImportStatus.APPLIED, applied.error
    assert list(Purchase.objects.values_list("reference", flat=True)) == ["FINE"]


def test_a_product_created_by_an_import_then_renamed_is_found_again_by_the_next_import(admin_member):
    ClientFactory(email="ann@x.com")
    first = _apply(
        _job(
            b"email,order date,reference,amount,product\nann@x.com,2024-05-01,A-1,10,Mug\n",
            admin_member,
            kind="purchases",
        )
    )
    assert first.status == ImportStatus.APPLIED
    mug = Product.objects.get()
    Product.objects.filter(pk=mug.pk).update(name="Blue mug")  # renamed by hand in the catalogue
    data = b"email,order date,reference,amount,product\nann@x.com,2024-06-01,A-2,12,Mug\n"
    second = _apply(_job(data, admin_member, kind="purchases"))
    assert second.status == ImportStatus.APPLIED, second.error
    assert Product.objects.count() == 1
    assert Purchase.objects.get(reference="A-2").lines.get().product_id == mug.pk


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("role_groups_restored")
def test_on_postgresql_an_old_job_whose_worker_still_holds_its_lock_is_left_running(admin_member):
    # The command import_file has no time limit: a long apply is still alive after IMPORT_STALE_SECONDS.
    job = imports.import_create(data=b"email\na@x.com\n", filename="f.csv", kind="people", user=admin_member)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.APPLYING, started_at=timezone.now() - timedelta(hours=3)
    )
    worker = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with worker.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [imports.IMPORT_JOB_LOCK_CLASS, job.pk])
        assert imports.import_fail_stale() == 0
        assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.APPLYING
    finally:
        worker.close()
    assert imports.import_fail_stale() == 1
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.FAILED


def test_a_recovery_pass_while_the_command_applies_a_file_long_previewed_leaves_it_to_the_command(
    tmp_path, capsys, monkeypatch
):
    """The command queues its job just before applying it: a recovery pass in between must not take the job for one
    that no worker picked up since its upload (a large file may have been read and previewed for a long time)."""
    from prospecting.management.commands import import_file
    from prospecting.recovery import import_recover

    real_apply = imports.import_apply

    def apply_after_a_recovery_pass(*, job_id):
        ImportJob.objects.filter(pk=job_id).update(created_at=timezone.now() - timedelta(hours=3))
        import_recover()
        return real_apply(job_id=job_id)

    monkeypatch.setattr(import_file.imports, "import_apply", apply_after_a_recovery_pass)
    path = tmp_path / "people.csv"
    path.write_bytes(b"email\na@x.com\n")
    call_command("import_file", str(path), "--kind", "people")
    assert '"created": 1' in capsys.readouterr().out
    assert Client.objects.filter(email="a@x.com").exists()
