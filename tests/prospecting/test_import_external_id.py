"""The client's external id in imports: a column of contact lists, a way to recognise people, the key purchase
histories name their clients by; unique, so a line giving one another client holds is an error, not a crash."""

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Client, Purchase
from prospecting import imports
from prospecting.mapping import guess_mapping
from prospecting.models import ClientKey, ImportJob, ImportStatus, MatchKey, UpdatePolicy
from tests.factories import ClientFactory

PURCHASES = (
    b"code client,email,order date,reference,amount\n"
    b"C-1,,2024-05-01,A-1,20.00\n"
    b"C-1,,2024-05-01,A-1,5.50\n"
    b"C-9,nine@x.com,2024-05-02,B-7,30\n"
)


def _job(data, user, *, kind="people", **options):
    job = imports.import_create(data=data, filename="file.csv", kind=kind, user=user, options=options)
    imports.import_preview(job=job)
    return job


def _apply(job):
    imports.import_queue(job=job)
    return imports.import_apply(job_id=job.pk)


@pytest.mark.parametrize(
    "column",
    ["ID client", "Identifiant client", "Code client", "Numéro client", "Référence client", "Customer ID", "client_id"],
)
def test_a_client_number_column_is_guessed_as_the_external_id(column):
    assert guess_mapping([column, "E-mail"]) == {column: "external_id", "E-mail": "email"}


def test_people_are_recognised_by_external_id_when_the_admin_chooses_it(admin_member):
    ann = ClientFactory(email="ann@old.com", external_id="C-1", city="")
    data = b"customer id,email,city\nC-1,ann@new.com,Paris\nC-2,bob@x.com,Lyon\n"
    job = _job(data, admin_member, match_key=MatchKey.EXTERNAL_ID, policy=UpdatePolicy.OVERWRITE)
    assert [row["action"] for row in job.preview_rows] == ["update", "create"]
    assert _apply(job).status == ImportStatus.APPLIED
    ann.refresh_from_db()
    assert (ann.email, ann.city) == ("ann@new.com", "Paris")
    assert Client.objects.get(email="bob@x.com").external_id == "C-2"


def test_by_external_id_a_line_without_one_is_an_error(admin_member):
    job = _job(b"customer id,email\n,ann@x.com\n", admin_member, match_key=MatchKey.EXTERNAL_ID)
    assert job.errors[0]["reason"] == "an external id is needed to recognise this person"


def test_two_lines_with_the_same_external_id_are_reported_as_duplicates(admin_member):
    data = b"customer id,email\nC-1,ann@x.com\nC-1,bob@x.com\n"
    for match_key in (MatchKey.EMAIL_LINKEDIN, MatchKey.EXTERNAL_ID):
        job = _job(data, admin_member, match_key=match_key)
        assert (job.created_count, job.error_count) == (1, 1)
        assert (job.errors[0]["line"], job.errors[0]["reason"]) == (3, "duplicate of line 2")


def test_an_external_id_another_client_holds_is_an_error_for_that_line_only(admin_member):
    holder = ClientFactory(email="holder@x.com", external_id="C-1")
    ann = ClientFactory(email="ann@x.com", external_id="")
    data = b"customer id,email\nC-1,new@x.com\nC-1b,other@x.com\n"
    job = _job(data, admin_member)
    reason = f"the external id “C-1” already belongs to another client (#{holder.pk})"
    assert [(error["line"], error["reason"]) for error in job.errors] == [(2, reason)]
    # An update giving a matched client the holder's id is refused the same way, also under "overwrite".
    update = _job(b"customer id,email\nC-1,ann@x.com\n", admin_member, policy=UpdatePolicy.OVERWRITE)
    assert update.errors[0]["reason"] == reason
    job = _apply(job)
    assert job.status == ImportStatus.APPLIED, job.error
    assert (job.created_count, job.error_count) == (1, 1)
    assert Client.objects.get(email="other@x.com").external_id == "C-1b"
    ann.refresh_from_db()
    assert ann.external_id == "" and not Client.objects.filter(email="new@x.com").exists()


def test_the_client_keeping_its_own_external_id_is_not_an_error(admin_member):
    ClientFactory(email="ann@x.com", external_id="C-1")
    job = _job(b"customer id,email\nC-1,ann@x.com\n", admin_member, policy=UpdatePolicy.OVERWRITE)
    assert (job.unchanged_count, job.error_count) == (1, 0)


def test_undo_gives_back_the_previous_external_id(admin_member):
    ann = ClientFactory(email="ann@x.com", external_id="OLD-1")
    bob = ClientFactory(email="bob@x.com", external_id="")
    data = b"customer id,email\nNEW-1,ann@x.com\nB-1,bob@x.com\n"
    job = _apply(_job(data, admin_member, policy=UpdatePolicy.OVERWRITE))
    ann.refresh_from_db()
    bob.refresh_from_db()
    assert (ann.external_id, bob.external_id) == ("NEW-1", "B-1")
    assert imports.import_undo(job_id=job.pk, user=admin_member) == {}
    ann.refresh_from_db()
    bob.refresh_from_db()
    assert (ann.external_id, bob.external_id) == ("OLD-1", "")


def test_undo_keeps_an_external_id_given_since_to_another_client(admin_member):
    ann = ClientFactory(email="ann@x.com", external_id="OLD-1")
    job = _apply(_job(b"customer id,email\nNEW-1,ann@x.com\n", admin_member, policy=UpdatePolicy.OVERWRITE))
    other = ClientFactory(email="other@x.com", external_id="OLD-1")  # the freed id, given to someone else
    kept = imports.import_undo(job_id=job.pk, user=admin_member)
    assert kept == {ann.pk: {"external_id"}}
    ann.refresh_from_db()
    other.refresh_from_db()
    assert (ann.external_id, other.external_id) == ("NEW-1", "OLD-1")
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.UNDONE


# Purchases


def test_a_purchase_file_without_email_column_finds_clients_by_external_id(admin_member):
    by_number = _job(
        b"code client,order date,reference,amount\nC-1,2024-05-01,A-1,10\n", admin_member, kind="purchases"
    )
    assert by_number.options["client_key"] == ClientKey.EXTERNAL_ID
    by_email = _job(PURCHASES, admin_member, kind="purchases")
    assert by_email.options["client_key"] == ClientKey.EMAIL


def test_purchases_match_their_client_by_external_id_and_report_unknown_ones(admin_member):
    client = ClientFactory(email="", external_id="C-1")
    job = _apply(_job(PURCHASES, admin_member, kind="purchases", client_key=ClientKey.EXTERNAL_ID))
    assert job.status == ImportStatus.APPLIED, job.error
    assert (job.created_count, job.error_count) == (1, 1)
    assert (job.errors[0]["line"], job.errors[0]["reason"]) == (4, "no client has this external id")
    purchase = Purchase.objects.get()
    assert (purchase.client, purchase.reference, purchase.amount) == (client, "A-1", Decimal("25.50"))
    again = _apply(_job(PURCHASES, admin_member, kind="purchases", client_key=ClientKey.EXTERNAL_ID))
    assert (again.created_count, again.unchanged_count) == (0, 1) and Purchase.objects.count() == 1


def test_purchases_of_unknown_external_ids_create_clients_with_it_and_undo_removes_them(admin_member):
    ClientFactory(email="", external_id="C-1")
    job = _apply(
        _job(PURCHASES, admin_member, kind="purchases", client_key=ClientKey.EXTERNAL_ID, unknown_clients="create")
    )
    assert job.status == ImportStatus.APPLIED, job.error
    assert job.created_count == 2
    created = Client.objects.get(external_id="C-9")
    assert (created.email, created.lifecycle, created.purchases.get().reference) == ("nine@x.com", "client", "B-7")
    assert any(row["new_client"] for row in job.preview_rows)
    imports.import_undo(job_id=job.pk, user=admin_member)
    assert not Client.objects.filter(external_id="C-9").exists() and not Purchase.objects.exists()
    assert Client.objects.filter(external_id="C-1").exists()


def test_purchases_by_external_id_need_one_on_each_line(admin_member):
    data = b"code client,order date,reference,amount\n,2024-05-01,A-1,20\n"
    job = _job(data, admin_member, kind="purchases", client_key=ClientKey.EXTERNAL_ID)
    assert job.errors[0]["reason"] == "the client's external id is missing"


def test_purchases_by_email_ignore_the_external_id_column(admin_member):
    ann = ClientFactory(email="ann@x.com", external_id="")
    data = b"code client,email,order date,reference,amount\nC-5,ann@x.com,2024-05-01,A-1,20\n"
    job = _apply(_job(data, admin_member, kind="purchases", client_key=ClientKey.EMAIL))
    assert job.created_count == 1 and Purchase.objects.get().client == ann


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"match_key": "phone"}, "“phone” is not a way to recognise people"),
        ({"client_key": "phone"}, "“phone” is not a way to find clients"),
    ],
)
def test_the_service_refuses_an_unknown_key(admin_member, options, message):
    job = _job(b"email\nann@x.com\n", admin_member)
    with pytest.raises(ValueError, match=message):
        imports.import_configure(job=job, mapping=job.mapping, options=options)


# Pages


def _upload(client, data: bytes, kind: str) -> ImportJob:
    client.post(reverse("prospecting:import-upload"), {"file": _file(data), "kind": kind})
    return ImportJob.objects.latest("pk")


def _file(data: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile("file.csv", data, content_type="text/csv")


def test_the_purchase_mapping_page_asks_how_to_find_the_client(client_as, admin_member):
    client = client_as(admin_member)
    job = _upload(client, b"code client,order date,reference,amount\nC-1,2024-05-01,A-1,20\n", "purchases")
    page = client.get(reverse("prospecting:import-mapping", args=[job.pk])).content.decode()
    assert "Find the client by" in page and '<option value="external_id" selected>' in page
    data = {"column_0": "", "column_1": "order_date", "column_2": "reference", "column_3": "amount"}
    data |= {"client_key": "external_id", "unknown_clients": "report"}
    response = client.post(reverse("prospecting:import-mapping", args=[job.pk]), data)
    assert response.status_code == 200
    assert "Choose the column holding the client&#x27;s external id, or find by email." in response.content.decode()
    data["column_0"] = "client_ref"
    ClientFactory(external_id="C-1")
    response = client.post(reverse("prospecting:import-mapping", args=[job.pk]), data)
    job.refresh_from_db()
    assert response.status_code == 302 and job.options["client_key"] == "external_id" and job.created_count == 1


def test_the_people_mapping_page_offers_the_external_id(client_as, admin_member):
    client = client_as(admin_member)
    job = _upload(client, b"Code client,E-mail\nC-1,ann@x.com\n", "people")
    page = client.get(reverse("prospecting:import-mapping", args=[job.pk])).content.decode()
    assert '<option value="external_id" selected>' in page  # the column's field
    assert "External id (the shop" in page  # the match key
    data = {"column_0": "external_id", "column_1": "email", "policy": "fill_empty", "match_key": "external_id"}
    data |= {"column_policy_0": "overwrite"}
    client.post(reverse("prospecting:import-mapping", args=[job.pk]), data)
    job.refresh_from_db()
    assert job.options["match_key"] == "external_id" and job.options["field_policies"] == {"external_id": "overwrite"}
    assert job.created_count == 1
