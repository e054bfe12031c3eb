"""Import jobs end to end through the services: preview, apply (all or nothing), re-import, undo, purchases."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from crm import services as crm_services
from crm.models import Client, ClientChange, Interaction, Product, Purchase, Stage, Tag
from prospecting import imports
from prospecting.models import ImportChange, ImportJob, ImportStatus, UpdatePolicy
from tests.factories import ClientFactory

WAALAXY = (
    b"firstName,lastName,linkedinUrl,proEmail,company_name,connectionRequestDate,connectedAt,prospectList,tags\n"
    b"Ann,Martin,https://www.linkedin.com/in/ann-martin,Ann@X.com,Acme,2024-03-01,2024-03-02,Spring,vip\n"
    b"Bob,Stone,https://www.linkedin.com/in/bob-stone,,Beta,2024-03-01,,Spring,\n"
    b"Ann,M,,ann@x.com,Acme,,,Spring,\n"
    b"Eve,Bad,,not-an-email,Zeta,,,Spring,\n"
)
CONTACTS = (
    "Prénom;Nom;E-mail;Société;Ville\nAnn;Martin;ann@x.com;Acme;Paris\nNew;Person;new@x.com;Newco;Lyon\n".encode()
)
PURCHASES = (
    b"email,order date,reference,quantity,unit price,product,category\n"
    b"ann@x.com,2024-05-01,A-1,2,10.00,Mug,Kitchen\n"
    b"ann@x.com,2024-05-01,A-1,1,5.50,Spoon,Kitchen\n"
    b"stranger@x.com,2024-05-02,B-7,1,30,Lamp,Home\n"
)


def _job(data, user, *, kind="people", filename="file.csv", **options):
    job = imports.import_create(data=data, filename=filename, kind=kind, user=user, options=options)
    imports.import_preview(job=job)
    return job


def _apply(job):
    imports.import_queue(job=job)
    return imports.import_apply(job_id=job.pk)


def _counts():
    return (Client.objects.count(), Interaction.objects.count(), ClientChange.objects.count(), Tag.objects.count())


def _state(client):
    client.refresh_from_db()
    values = {f.name: getattr(client, f.name) for f in Client._meta.concrete_fields if f.name != "updated_at"}
    return values, sorted(client.tags.values_list("name", flat=True))


def test_preview_counts_rows_and_writes_nothing(admin_member):
    before = _counts()
    job = _job(WAALAXY, admin_member)
    assert _counts() == before
    assert job.is_waalaxy and job.status == ImportStatus.PREVIEWED
    assert (job.created_count, job.updated_count, job.unchanged_count, job.error_count) == (2, 0, 0, 2)
    reasons = {error["line"]: error["reason"] for error in job.errors}
    assert reasons[4] == "duplicate of line 2"
    assert "email address" in reasons[5]


def test_apply_creates_prospects_with_interactions_and_history(admin_member, rep):
    job = _job(WAALAXY, admin_member, owner_id=rep.pk)
    job = _apply(job)
    assert job.status == ImportStatus.APPLIED and job.applied_at is not None
    ann = Client.objects.get(email="ann@x.com")
    assert ann.owner == rep and ann.stage == Stage.CONNECTED and ann.source == "social_selling"
    assert ann.source_detail == "Spring" and list(ann.tags.values_list("name", flat=True)) == ["vip"]
    assert ann.interactions.count() == 2 and ann.last_interaction_at is not None
    assert ClientChange.objects.filter(client=ann, user=admin_member).exists()
    assert Client.objects.count() == 2


def test_the_same_file_twice_creates_nothing_the_second_time(admin_member):
    _apply(_job(WAALAXY, admin_member))
    before = _counts()
    second = _apply(_job(WAALAXY, admin_member))
    assert _counts() == before
    assert (second.created_count, second.updated_count, second.unchanged_count) == (0, 0, 2)


def test_email_matching_ignores_case(admin_member):
    existing = ClientFactory(email="ann@x.com", first_name="Ann", last_name="Martin", company="Acme")
    job = _job(b"email,first name\nANN@X.COM,Ann\n", admin_member)
    assert (job.created_count, job.unchanged_count) == (0, 1)
    _apply(job)
    assert Client.objects.filter(pk=existing.pk).count() == Client.objects.count() == 1


@pytest.mark.parametrize(
    ("policy", "expected_city", "expected_phone"),
    [
        (UpdatePolicy.OVERWRITE, "Paris", "0612345678"),
        (UpdatePolicy.FILL_EMPTY, "Lyon", "0612345678"),
        (UpdatePolicy.NEVER, "Lyon", ""),
    ],
)
def test_update_policies(admin_member, policy, expected_city, expected_phone):
    client = ClientFactory(email="ann@x.com", city="Lyon", phone="")
    job = _job(b"email,city,phone\nann@x.com,Paris,0612345678\n", admin_member, policy=policy)
    _apply(job)
    client.refresh_from_db()
    assert (client.city, client.phone) == (expected_city, expected_phone)
    if policy == UpdatePolicy.OVERWRITE:
        change = ClientChange.objects.get(client=client, field="city")
        assert (change.old_value, change.new_value, change.user) == ("Lyon", "Paris", admin_member)
        assert job.preview_rows[0]["changes"] == [["phone", "", "0612345678"], ["city", "Lyon", "Paris"]]


def test_mapping_is_guessed_from_french_names_and_name_company_key_matches(admin_member):
    ClientFactory(email="", first_name="ann", last_name="MARTIN", company="acme", city="")
    job = _job(CONTACTS.replace(b"ann@x.com", b""), admin_member, match_key="name_company")
    assert job.mapping == {
        "Prénom": "first_name",
        "Nom": "last_name",
        "E-mail": "email",
        "Société": "company",
        "Ville": "city",
    }
    assert (job.created_count, job.updated_count) == (1, 1)


def test_a_failure_halfway_leaves_nothing_and_fails_the_job(admin_member, monkeypatch):
    ClientFactory(email="bob@x.com", city="")
    before = _counts()
    job = _job(WAALAXY + b"Bob,Two,,bob@x.com,B,,,,\n", admin_member)

    def broken(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(crm_services, "interaction_bulk_insert", broken)
    job = _apply(job)
    assert job.status == ImportStatus.FAILED and "disk full" in job.error
    assert _counts() == before and not ImportChange.objects.exists()
    monkeypatch.undo()
    assert _apply(job).status == ImportStatus.APPLIED


def test_running_the_apply_again_does_nothing(admin_member):
    job = _apply(_job(WAALAXY, admin_member))
    before = _counts()
    assert imports.import_apply(job_id=job.pk).status == ImportStatus.APPLIED
    assert _counts() == before


def test_a_job_stuck_applying_is_failed_as_stale(admin_member, settings):
    job = _job(WAALAXY, admin_member)
    ImportJob.objects.filter(pk=job.pk).update(
        status=ImportStatus.APPLYING, started_at=timezone.now() - timedelta(hours=2)
    )
    assert imports.import_fail_stale() == 1
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED and job.can_apply


def test_undo_restores_the_exact_previous_state(admin_member, rep):
    client = ClientFactory(email="ann@x.com", city="Lyon", phone="", stage=Stage.NEW, company="Old")
    client.tags.add(Tag.objects.create(name="old"))
    before_state, before_counts = _state(client), _counts()
    job = _job(WAALAXY, admin_member, policy=UpdatePolicy.OVERWRITE, tags=["fair"])
    job = _apply(job)
    assert _state(client) != before_state
    imports.import_undo(job_id=job.pk, user=admin_member)
    assert _state(client) == before_state
    assert Client.objects.count() == before_counts[0] and Interaction.objects.count() == before_counts[1]
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.UNDONE


def test_undo_keeps_what_was_edited_since_and_lists_it(admin_member, manager):
    client = ClientFactory(email="ann@x.com", city="Lyon", company="Old")
    job = _apply(
        _job(b"email,company,city\nann@x.com,New,Paris\nzed@x.com,Zed,Nice\n", admin_member, policy="overwrite")
    )
    crm_services.client_update(client=client, data={"company": "Edited"}, user=manager)
    created = Client.objects.get(email="zed@x.com")
    crm_services.client_update(client=created, data={"city": "Nantes"}, user=manager)
    conflicts = imports.import_undo_conflicts(job=job)
    assert conflicts == {client.pk: {"company"}, created.pk: {"city"}}
    imports.import_undo(job_id=job.pk, user=admin_member)
    client.refresh_from_db()
    assert (client.company, client.city) == ("Edited", "Lyon")
    assert Client.objects.filter(pk=created.pk).exists()


def test_purchases_report_unknown_clients(admin_member):
    ann = ClientFactory(email="ann@x.com")
    job = _apply(_job(PURCHASES, admin_member, kind="purchases"))
    assert (job.created_count, job.error_count) == (1, 1)
    assert job.errors[0]["line"] == 4 and "no client" in job.errors[0]["reason"]
    purchase = Purchase.objects.get(client=ann)
    assert (purchase.reference, purchase.purchased_on, purchase.amount) == ("A-1", date(2024, 5, 1), Decimal("25.50"))
    assert purchase.lines.count() == 2 and Product.objects.filter(name="Mug", category__name="Kitchen").exists()
    ann.refresh_from_db()
    assert ann.lifecycle == "client" and ann.last_purchase_at == date(2024, 5, 1)
    again = _apply(_job(PURCHASES, admin_member, kind="purchases"))
    assert (again.created_count, again.unchanged_count) == (0, 1) and Purchase.objects.count() == 1


def test_purchases_create_unknown_clients_and_undo_removes_them(admin_member):
    ann = ClientFactory(email="ann@x.com", lifecycle="prospect")
    job = _apply(_job(PURCHASES, admin_member, kind="purchases", unknown_clients="create"))
    assert job.created_count == 2
    stranger = Client.objects.get(email="stranger@x.com")
    assert stranger.lifecycle == "client"
    imports.import_undo(job_id=job.pk, user=admin_member)
    ann.refresh_from_db()
    assert not Client.objects.filter(email="stranger@x.com").exists() and not Purchase.objects.exists()
    assert (ann.lifecycle, ann.last_purchase_at, ann.converted_at) == ("prospect", None, None)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("role_groups_restored")
def test_two_imports_at_once_create_no_duplicates(admin_member):
    import threading

    from django.db import connections

    jobs = [_job(WAALAXY, admin_member) for _ in range(2)]
    for job in jobs:
        ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED)
    barrier = threading.Barrier(2)

    def run(job_id):
        barrier.wait()
        try:
            imports.import_apply(job_id=job_id)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job.pk,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert connection.vendor == "postgresql"
    assert Client.objects.filter(email="ann@x.com").count() == 1
    assert Client.objects.count() == 2 and Interaction.objects.count() == 3
    statuses = sorted(ImportJob.objects.values_list("status", flat=True))
    assert statuses == [ImportStatus.APPLIED, ImportStatus.APPLIED]
    assert sorted(ImportJob.objects.values_list("created_count", flat=True)) == [0, 2]


def test_apply_and_undo_keep_special_characters_and_empty_values_exact(admin_member):
    notes = 'tab\there, line\nbreak, back\\slash, "quoted", \\N'
    client = ClientFactory(email="ann@x.com", notes="old\tnote", birth_year=None, city="")
    before = _state(client)
    data = f'email,notes,birth year,city\nann@x.com,"{notes.replace(chr(34), 2 * chr(34))}",1980,Paris\n'.encode()
    job = _apply(_job(data + b'zed@x.com,"a\\\\b\tc",,\n', admin_member, policy="overwrite"))
    assert job.status == ImportStatus.APPLIED, job.error
    client.refresh_from_db()
    assert (client.notes, client.birth_year, client.city) == (notes, 1980, "Paris")
    created = Client.objects.get(email="zed@x.com")
    assert (created.notes, created.birth_year) == ("a\\\\b\tc", None)
    imports.import_undo(job_id=job.pk, user=admin_member)
    assert _state(client) == before
    assert not Client.objects.filter(email="zed@x.com").exists()


def test_new_interactions_move_the_last_interaction_date_forward(admin_member):
    client = ClientFactory(email="ann@x.com", first_name="Ann", last_name="Martin")
    crm_services.interaction_bulk_create(
        interactions=[Interaction(client=client, kind="call", occurred_at=timezone.now() - timedelta(days=400))]
    )
    client.refresh_from_db()
    assert client.last_interaction_at.date() == (timezone.now() - timedelta(days=400)).date()
    job = _apply(_job(WAALAXY, admin_member))
    client.refresh_from_db()
    ann = Interaction.objects.filter(client=client).order_by("-occurred_at").first()
    assert job.status == ImportStatus.APPLIED and client.last_interaction_at == ann.occurred_at
    new = Client.objects.get(email="")
    assert new.last_interaction_at == new.interactions.order_by("-occurred_at").first().occurred_at
