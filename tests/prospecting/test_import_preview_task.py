"""Large files are previewed by a worker while the page polls; small ones within the request. A preview that fails
or whose worker dies says so and writes nothing."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from crm.models import Client
from prospecting import imports, tasks
from prospecting.models import ImportJob, ImportStatus

CONTACTS = b"email,first name\nann@x.com,Ann\nbob@x.com,Bob\nbad-email,Eve\n"
MAPPING = {"column_0": "email", "column_1": "first_name", "policy": "fill_empty", "match_key": "email_linkedin"}


@pytest.fixture
def queued(monkeypatch):
    """The preview tasks sent to the broker (not run)."""
    sent = []
    monkeypatch.setattr(tasks.import_preview_task, "apply_async", lambda args=None, **options: sent.append(args))
    return sent


def _upload(client, data=CONTACTS):
    client.post(reverse("prospecting:import-upload"), {"file": SimpleUploadedFile("list.csv", data), "kind": "people"})
    return ImportJob.objects.get()


def _configure(client, job):
    return client.post(reverse("prospecting:import-mapping", args=[job.pk]), MAPPING)


def test_a_file_up_to_the_threshold_is_previewed_in_the_request(client_as, admin_member, settings, queued):
    settings.PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS = 3
    client = client_as(admin_member)
    job = _upload(client)
    _configure(client, job)
    job.refresh_from_db()
    assert queued == []
    assert job.status == ImportStatus.PREVIEWED and (job.created_count, job.error_count) == (2, 1)


def test_a_file_over_the_threshold_is_previewed_by_a_worker_while_the_page_polls(
    client_as, admin_member, settings, queued, django_capture_on_commit_callbacks
):
    settings.PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS = 2
    client = client_as(admin_member)
    job = _upload(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = _configure(client, job)
    assert response.url == reverse("prospecting:import-detail", args=[job.pk])
    job.refresh_from_db()
    assert queued == [[job.pk]]
    assert job.status == ImportStatus.PREVIEWING and job.previewed_at is None and not job.can_apply
    page = client.get(response.url).content.decode()
    assert f'hx-get="{reverse("prospecting:import-progress", args=[job.pk])}"' in page
    assert "Previewing" in page and "The preview of 3 rows is being prepared; nothing is written." in page
    assert 'id="import-counts"' not in page and "apply-button" not in page
    # While it is previewed, the mapping cannot change and the import cannot be applied.
    assert client.get(reverse("prospecting:import-mapping", args=[job.pk])).url == response.url
    client.post(reverse("prospecting:import-apply", args=[job.pk]))
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.PREVIEWING

    assert tasks.import_preview_task(job.pk) == ImportStatus.PREVIEWED
    progress = client.get(reverse("prospecting:import-progress", args=[job.pk]), headers={"HX-Request": "true"})
    assert progress["HX-Refresh"] == "true"
    page = client.get(response.url).content.decode()
    assert 'id="count-created">2<' in page and 'id="count-errors">1<' in page and "apply-button" in page
    assert not Client.objects.exists()


def test_the_whole_flow_with_the_task_run_in_process(
    client_as, admin_member, settings, tasks_inline, django_capture_on_commit_callbacks
):
    settings.PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS = 1
    client = client_as(admin_member)
    job = _upload(client)
    with django_capture_on_commit_callbacks(execute=True):
        _configure(client, job)
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED and job.created_count == 2 and job.preview_seconds is not None
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("prospecting:import-apply", args=[job.pk]))
    assert ImportJob.objects.get(pk=job.pk).status == ImportStatus.APPLIED
    assert sorted(Client.objects.values_list("email", flat=True)) == ["ann@x.com", "bob@x.com"]


def test_a_preview_that_fails_shows_why_and_changes_nothing(client_as, admin_member, settings, queued, monkeypatch):
    settings.PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS = 2
    client = client_as(admin_member)
    job = _upload(client)
    _configure(client, job)

    def broken(job, table=None):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(imports, "import_plan", broken)
    assert tasks.import_preview_task(job.pk) == ImportStatus.UPLOADED
    job.refresh_from_db()
    assert job.error == "The preview failed; nothing was written: out of memory"
    assert job.previewed_at is None and not job.can_apply and not Client.objects.exists()
    page = client.get(reverse("prospecting:import-detail", args=[job.pk])).content.decode()
    assert "The preview failed; nothing was written: out of memory" in page
    assert "apply-button" not in page and reverse("prospecting:import-mapping", args=[job.pk]) in page
    # Previewed again once the cause is gone: the error goes away.
    monkeypatch.undo()
    settings.PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS = 10
    _configure(client, job)
    job.refresh_from_db()
    assert job.status == ImportStatus.PREVIEWED and job.error == ""


def test_a_file_that_cannot_be_read_any_more_fails_the_preview_with_the_readers_message(admin_member, settings):
    settings.PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS = 2
    job = imports.import_create(data=CONTACTS, filename="list.csv", kind="people", user=admin_member)
    imports.import_preview_start(job=job)
    ImportJob.objects.filter(pk=job.pk).update(data=b"email\n")
    tasks.import_preview_task(job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED
    assert job.error == (
        "The preview failed; nothing was written: The file has column names (line 1) but no data rows."
    )


def test_an_unreachable_broker_leaves_the_job_to_preview_again(
    client_as, admin_member, settings, monkeypatch, django_capture_on_commit_callbacks
):
    settings.PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS = 2

    def down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(tasks.import_preview_task, "apply_async", down)
    client = client_as(admin_member)
    job = _upload(client)
    with django_capture_on_commit_callbacks(execute=True):
        response = _configure(client, job)
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED
    assert job.error == "The background workers could not be reached; nothing was previewed. Try again later."


def test_a_preview_whose_worker_died_does_not_stay_previewing(admin_member, settings, queued):
    settings.PROSPECTING_IMPORT_INLINE_PREVIEW_ROWS = 2
    job = imports.import_create(data=CONTACTS, filename="list.csv", kind="people", user=admin_member)
    imports.import_preview_start(job=job)
    ImportJob.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(hours=2))
    assert imports.import_fail_stale() == 1
    job.refresh_from_db()
    assert job.status == ImportStatus.UPLOADED and not job.can_apply
    assert job.error == "The preview stopped before the end (the worker was stopped). Preview it again."
    # The message of the dead worker, delivered again, finds nothing to do.
    assert tasks.import_preview_task(job.pk) == ImportStatus.UPLOADED
    assert ImportJob.objects.get(pk=job.pk).previewed_at is None
