"""A job whose worker died does not stay "applying" or "previewing": on PostgreSQL it is failed as soon as no live
session holds its job lock; elsewhere once it is older than any apply may take. Jobs still waiting for a worker, or
held by a live one, are left alone."""

from datetime import timedelta

import pytest
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

from prospecting import imports
from prospecting.models import ImportJob, ImportStatus

CONTACTS = b"email,first name\nann@x.com,Ann\n"


def _job(user, status, started_at):
    job = imports.import_create(data=CONTACTS, filename="list.csv", kind="people", user=user)
    ImportJob.objects.filter(pk=job.pk).update(status=status, started_at=started_at)
    return job


def _status(job):
    return ImportJob.objects.values_list("status", flat=True).get(pk=job.pk)


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("role_groups_restored")
def test_on_postgresql_a_job_is_failed_once_no_live_session_holds_its_lock(admin_member):
    assert connection.vendor == "postgresql"
    now = timezone.now()
    held = _job(admin_member, ImportStatus.APPLYING, now)
    orphan = _job(admin_member, ImportStatus.APPLYING, now)
    orphan_preview = _job(admin_member, ImportStatus.PREVIEWING, now)
    waiting_preview = _job(admin_member, ImportStatus.PREVIEWING, None)  # queued, no worker has taken it yet
    worker = connections.create_connection(DEFAULT_DB_ALIAS)
    try:
        with worker.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", [imports.IMPORT_JOB_LOCK_CLASS, held.pk])
        assert imports.import_fail_stale() == 2
        assert (_status(orphan), _status(orphan_preview)) == (ImportStatus.FAILED, ImportStatus.UPLOADED)
        assert (_status(held), _status(waiting_preview)) == (ImportStatus.APPLYING, ImportStatus.PREVIEWING)
    finally:
        worker.close()  # the worker's session ends: its lock goes with it
    assert imports.import_fail_stale() == 1
    assert _status(held) == ImportStatus.FAILED and _status(waiting_preview) == ImportStatus.PREVIEWING


def test_an_old_job_is_failed_and_a_recent_one_only_when_the_database_tells_its_worker_died(admin_member):
    recent = _job(admin_member, ImportStatus.APPLYING, timezone.now())
    old = _job(admin_member, ImportStatus.PREVIEWING, timezone.now() - timedelta(hours=1))
    # Without PostgreSQL's job lock, only the age tells: a recent job may still have a live worker.
    postgresql = connection.vendor == "postgresql"
    assert imports.import_fail_stale() == (2 if postgresql else 1)
    assert _status(old) == ImportStatus.UPLOADED
    assert _status(recent) == (ImportStatus.FAILED if postgresql else ImportStatus.APPLYING)
