"""Import pages: admins only, upload checks, mapping, preview, apply through the task, undo, error report."""

import csv
import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from crm.models import Client
from prospecting.models import ImportJob, ImportStatus, SavedMapping

WAALAXY = (
    b"firstName,lastName,linkedinUrl,proEmail,company_name,connectedAt\n"
    b"Ann,Martin,https://www.linkedin.com/in/ann-martin,ann@x.com,Acme,2024-03-02\n"
    b"=HYPERLINK(1),<b>Evil</b>,,bad-email,=cmd,\n"
)


def _upload(client, data, *, name="list.csv", kind="people"):
    return client.post(reverse("prospecting:import-upload"), {"file": SimpleUploadedFile(name, data), "kind": kind})


def test_rep_and_manager_cannot_open_or_post_imports(client_as, rep, manager):
    for user in (rep, manager):
        client = client_as(user)
        assert client.get(reverse("prospecting:import-upload")).status_code == 403
        assert _upload(client, WAALAXY).status_code == 403
    assert not ImportJob.objects.exists()


def test_upload_over_the_size_limit_is_refused_with_a_clear_message(client_as, admin_member, settings):
    settings.IMPORT_MAX_BYTES = 100
    response = _upload(client_as(admin_member), b"email\n" + b"a@x.com\n" * 50)
    assert response.status_code == 400
    assert "more than the 0.0 MB allowed. Split it into smaller files." in response.content.decode()
    assert not ImportJob.objects.exists()


def test_an_unreadable_file_shows_the_readers_message(client_as, admin_member):
    response = _upload(client_as(admin_member), b"a,b\n1,2,3\n")
    assert response.status_code == 400
    assert "line 2: expected 2 fields, got 3" in response.content.decode()
    assert not ImportJob.objects.exists()


def test_waalaxy_flow_preview_apply_and_undo(client_as, admin_member, tasks_inline, django_capture_on_commit_callbacks):
    client = client_as(admin_member)
    response = _upload(client, WAALAXY)
    job = ImportJob.objects.get()
    assert response.url == reverse("prospecting:import-mapping", args=[job.pk])
    page = client.get(response.url).content.decode()
    assert "Waalaxy export" in page
    response = client.post(response.url, {"policy": "fill_empty", "match_key": "email_linkedin"})
    assert response.status_code == 302
    page = client.get(reverse("prospecting:import-detail", args=[job.pk])).content.decode()
    assert 'id="count-created">1<' in page and 'id="count-errors">1<' in page
    assert "&lt;b&gt;Evil&lt;/b&gt;" in page and "<b>Evil" not in page
    assert not Client.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("prospecting:import-apply", args=[job.pk]))
    job.refresh_from_db()
    assert job.status == ImportStatus.APPLIED
    assert Client.objects.get().email == "ann@x.com"
    progress = client.get(reverse("prospecting:import-progress", args=[job.pk]), headers={"HX-Request": "true"})
    assert progress["HX-Refresh"] == "true"
    page = client.get(reverse("prospecting:import-undo", args=[job.pk])).content.decode()
    assert "Undo the import" in page
    client.post(reverse("prospecting:import-undo", args=[job.pk]))
    assert not Client.objects.exists()


def test_error_report_is_neutralised_against_formulas(client_as, admin_member):
    client = client_as(admin_member)
    _upload(client, WAALAXY)
    job = ImportJob.objects.get()
    client.post(
        reverse("prospecting:import-mapping", args=[job.pk]), {"policy": "fill_empty", "match_key": "email_linkedin"}
    )
    response = client.get(reverse("prospecting:import-errors", args=[job.pk]))
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:3] == ["line", "column", "reason"]
    assert rows[1][0] == "3" and rows[1][1] == "proEmail"
    assert "'=HYPERLINK(1)" in rows[1] and "'=cmd" in rows[1]


def test_mapping_screen_guesses_columns_and_saves_the_mapping(client_as, admin_member):
    client = client_as(admin_member)
    _upload(client, "Prénom;Nom;Courriel;Divers\nAnn;Martin;ann@x.com;x\n".encode())
    job = ImportJob.objects.get()
    page = client.get(reverse("prospecting:import-mapping", args=[job.pk])).content.decode()
    assert '<option value="first_name" selected>' in page
    data = {
        "column_0": "first_name",
        "column_1": "last_name",
        "column_2": "email",
        "column_3": "",
        "policy": "overwrite",
    }
    data |= {"match_key": "email_linkedin", "save_mapping_as": "CRM export", "tags": "salon, 2024"}
    client.post(reverse("prospecting:import-mapping", args=[job.pk]), data)
    job.refresh_from_db()
    assert job.mapping == {"Prénom": "first_name", "Nom": "last_name", "Courriel": "email", "Divers": None}
    assert job.options["tags"] == ["salon", "2024"] and job.created_count == 1
    assert SavedMapping.objects.get(name="CRM export").mapping == job.mapping


def test_two_columns_on_one_field_are_refused(client_as, admin_member):
    client = client_as(admin_member)
    _upload(client, b"a,b\nx@x.com,y@y.com\n")
    job = ImportJob.objects.get()
    data = {"column_0": "email", "column_1": "email", "policy": "overwrite", "match_key": "email_linkedin"}
    response = client.post(reverse("prospecting:import-mapping", args=[job.pk]), data)
    assert response.status_code == 200 and "same field" in response.content.decode()
