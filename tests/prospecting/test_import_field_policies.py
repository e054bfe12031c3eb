"""Existing records are updated field by field: overwrite, fill only when empty, or never, each field its own."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Client
from prospecting import imports
from prospecting.models import ImportJob, ImportStatus, SavedMapping, UpdatePolicy
from tests.factories import ClientFactory

CONTACTS = b"email,city,phone,company,job title\nann@x.com,Paris,0612345678,Acme,CEO\n"
WAALAXY = (
    b"firstName,lastName,linkedinUrl,proEmail,company_name,location\n"
    b'Ann,Martin,https://www.linkedin.com/in/ann-martin,ann@x.com,Acme,"Paris, France"\n'
)


def _job(data, user, **options):
    job = imports.import_create(data=data, filename="file.csv", kind="people", user=user, options=options)
    imports.import_preview(job=job)
    return job


def _apply(job):
    imports.import_queue(job=job)
    return imports.import_apply(job_id=job.pk)


def _ann(**fields):
    values = {"email": "ann@x.com", "city": "Lyon", "phone": "0600000000", "company": "", "job_title": "Intern"}
    return ClientFactory(**{**values, **fields})


def test_a_field_set_to_never_is_kept_while_one_set_to_overwrite_is_changed(admin_member):
    client = _ann()
    policies = {"city": UpdatePolicy.NEVER, "phone": UpdatePolicy.OVERWRITE}
    job = _job(CONTACTS, admin_member, policy=UpdatePolicy.FILL_EMPTY, field_policies=policies)
    assert job.preview_rows[0]["action"] == "update"
    assert job.preview_rows[0]["changes"] == [["phone", "0600000000", "0612345678"], ["company", "", "Acme"]]
    job = _apply(job)
    assert job.status == ImportStatus.APPLIED, job.error
    client.refresh_from_db()
    # city: never; phone: overwrite; company and job title: the file-wide "fill only when empty".
    assert (client.city, client.phone, client.company, client.job_title) == ("Lyon", "0612345678", "Acme", "Intern")


def test_fill_only_when_empty_fills_a_blank_and_keeps_a_set_value(admin_member):
    client = _ann()
    policies = {"city": UpdatePolicy.FILL_EMPTY, "company": UpdatePolicy.FILL_EMPTY}
    _apply(_job(CONTACTS, admin_member, policy=UpdatePolicy.OVERWRITE, field_policies=policies))
    client.refresh_from_db()
    # city was set: kept; company was blank: filled; phone and job title: the file-wide "overwrite".
    assert (client.city, client.company, client.phone, client.job_title) == ("Lyon", "Acme", "0612345678", "CEO")


def test_a_row_whose_fields_are_all_never_is_unchanged(admin_member):
    client = _ann(city="Paris", phone="0612345678", company="Acme", job_title="Boss")
    job = _job(CONTACTS, admin_member, policy=UpdatePolicy.OVERWRITE, field_policies={"job_title": "never"})
    assert (job.updated_count, job.unchanged_count) == (0, 1)
    _apply(job)
    client.refresh_from_db()
    assert client.job_title == "Boss"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"field_policies": {"city": "sometimes"}}, "“sometimes” is not an update policy"),
        ({"policy": "always"}, "“always” is not an update policy: choose overwrite, fill_empty or never."),
        ({"field_policies": {"owner": "overwrite"}}, "“owner” is not a field an import can update."),
    ],
)
def test_the_service_refuses_an_unknown_policy_or_field(admin_member, options, message):
    job = _job(CONTACTS, admin_member)
    before = dict(job.options)
    with pytest.raises(ValueError, match=message):
        imports.import_configure(job=job, mapping=job.mapping, options=options)
    job.refresh_from_db()
    assert job.options == before
    with pytest.raises(ValueError, match=message):
        imports.import_create(data=CONTACTS, filename="f.csv", kind="people", user=admin_member, options=options)
    assert ImportJob.objects.count() == 1


# The mapping page


def _upload(client, data, name="list.csv"):
    response = client.post(
        reverse("prospecting:import-upload"), {"file": SimpleUploadedFile(name, data), "kind": "people"}
    )
    return ImportJob.objects.get(pk=int(response.url.rstrip("/").split("/")[-2]))


def _form(**extra):
    data = {"column_0": "email", "column_1": "city", "column_2": "phone", "column_3": "company", "column_4": ""}
    return {**data, "policy": "overwrite", "match_key": "email_linkedin", **extra}


def test_each_mapped_column_has_a_policy_select_defaulting_to_the_whole_file(client_as, admin_member):
    client = client_as(admin_member)
    job = _upload(client, CONTACTS)
    page = client.get(reverse("prospecting:import-mapping", args=[job.pk])).content.decode()
    assert page.count('name="column_policy_') == 5
    assert '<option value="" selected>as for the whole file</option>' in page
    assert '<option value="never">Never change</option>' in page


def test_policies_chosen_on_the_page_are_saved_previewed_and_applied(client_as, admin_member):
    existing = _ann()
    client = client_as(admin_member)
    job = _upload(client, CONTACTS)
    data = _form(column_policy_1="never", column_policy_3="fill_empty", column_policy_2="")
    response = client.post(reverse("prospecting:import-mapping", args=[job.pk]), data)
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.options["field_policies"] == {"city": "never", "company": "fill_empty"}
    page = client.get(reverse("prospecting:import-detail", args=[job.pk])).content.decode()
    assert "Existing records, each field: Overwrite with the file&#x27;s value; city: Never change; " in page
    assert "company: Fill only when empty." in page
    assert job.preview_rows[0]["changes"] == [["phone", "0600000000", "0612345678"], ["company", "", "Acme"]]
    assert "city: <del>" not in page and "phone: <del>0600000000</del> → 0612345678" in page
    _apply(job)
    existing.refresh_from_db()
    assert (existing.city, existing.phone, existing.company) == ("Lyon", "0612345678", "Acme")


def test_an_invalid_policy_on_the_page_is_refused_with_a_clear_message(client_as, admin_member):
    client = client_as(admin_member)
    job = _upload(client, CONTACTS)
    response = client.post(reverse("prospecting:import-mapping", args=[job.pk]), _form(column_policy_1="sometimes"))
    assert response.status_code == 200
    assert (
        "“sometimes” is not an update policy: choose overwrite, fill only when empty, or never."
        in response.content.decode()
    )
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED and job.options["field_policies"] == {}
    assert not Client.objects.exists()


def test_a_waalaxy_export_gets_a_policy_for_each_field_it_fills(client_as, admin_member):
    existing = _ann(first_name="Ann", last_name="Martin", company="Old", city="Lyon")
    client = client_as(admin_member)
    job = _upload(client, WAALAXY)
    page = client.get(reverse("prospecting:import-mapping", args=[job.pk])).content.decode()
    assert (
        'id="field-policies"' in page and 'name="field_policy_company"' in page and 'name="field_policy_stage"' in page
    )
    data = {"policy": "overwrite", "match_key": "email_linkedin", "field_policy_company": "never"}
    client.post(reverse("prospecting:import-mapping", args=[job.pk]), data)
    job.refresh_from_db()
    assert job.options["field_policies"] == {"company": "never"}
    _apply(job)
    existing.refresh_from_db()
    assert (existing.company, existing.city) == ("Old", "Paris")


def test_a_saved_mapping_keeps_its_field_policies_for_the_next_file(client_as, admin_member):
    client = client_as(admin_member)
    job = _upload(client, CONTACTS)
    data = _form(column_policy_1="never", save_mapping_as="Shop export")
    client.post(reverse("prospecting:import-mapping", args=[job.pk]), data)
    saved = SavedMapping.objects.get(name="Shop export")
    assert saved.field_policies == {"city": "never"}
    second = _upload(client, CONTACTS.replace(b"Paris", b"Nice"), name="next.csv")
    url = reverse("prospecting:import-mapping", args=[second.pk])
    page = client.get(url, {"saved": saved.pk}).content.decode()
    select = page.split('name="column_policy_1"')[1].split("</select>")[0]
    assert '<option value="never" selected>' in select
