"""A real Celery worker applying a large import is killed (SIGKILL) in the middle: nothing of the import is left in
the database, the job is failed as soon as PostgreSQL has ended the dead worker's session (it does not stay
"applying"), and applying it again with a new worker imports every row once."""

import os
import signal

import pytest

from crm.models import Client, Interaction
from prospecting import imports, tasks
from prospecting.models import ImportChange, ImportJob, ImportStatus
from tests.integration.worker import WORKER_PROCESSES, celery_worker, wait_for

pytestmark = [
    pytest.mark.postgresql,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("role_groups_restored"),
]

ROWS = 20_000
HEADER = "firstName,lastName,linkedinUrl,proEmail,company_name,connectionRequestDate,connectedAt,prospectList\n"


def _waalaxy_file(rows: int) -> bytes:
    lines = [HEADER]
    for index in range(rows):
        lines.append(
            f"First{index},Last{index},https://www.linkedin.com/in/person-{index},person{index}@example.com,"
            f"Company {index % 97},2024-03-01,2024-03-02,Salon\n"
        )
    return "".join(lines).encode()


def _route_to(monkeypatch, queue):
    """Send the apply tasks to ``queue`` (the service enqueues on commit; only the queue is the worker's own)."""
    monkeypatch.undo()
    send = tasks.import_apply_task.apply_async
    monkeypatch.setattr(
        tasks.import_apply_task,
        "apply_async",
        lambda args=None, **options: send(args, **{**options, "queue": queue}),
    )


def _job_state(job_id):
    return ImportJob.objects.defer("data", "preview_rows", "errors").get(pk=job_id)


def test_a_worker_killed_mid_apply_leaves_nothing_and_the_job_failed_then_it_applies_again(admin_member, monkeypatch):
    job = imports.import_create(data=_waalaxy_file(ROWS), filename="big.csv", kind="people", user=admin_member)
    imports.import_preview(job=job)
    assert job.created_count == ROWS

    # Small batches: the progress figure moves early, long before the apply's transaction commits.
    with celery_worker(extra_env={"IMPORT_BATCH_SIZE": "250"}) as queue:
        _route_to(monkeypatch, queue)
        imports.import_queue(job=job)
        running = wait_for(
            lambda: (state := _job_state(job.pk)).status == ImportStatus.APPLYING and state.progress > 0 and state,
            timeout=180,
            interval=0.05,
        )
        os.kill(WORKER_PROCESSES[queue].pid, signal.SIGKILL)
        WORKER_PROCESSES[queue].wait(timeout=10)
    assert 0 < running.progress < ROWS

    # Nothing half-applied: the apply is one transaction, rolled back with the dead worker's session.
    assert not Client.objects.exists() and not Interaction.objects.exists()
    assert not ImportChange.objects.filter(job_id=job.pk).exists()
    # Not stuck "applying": once the session is gone its job lock is free, and the next look at the job fails it.
    wait_for(lambda: imports.import_fail_stale() or _job_state(job.pk).status != ImportStatus.APPLYING, timeout=60)
    failed = _job_state(job.pk)
    assert failed.status == ImportStatus.FAILED and failed.can_apply
    assert failed.error == (
        "The import stopped before the end (the worker was stopped); nothing was written. Try again."
    )
    assert not Client.objects.exists() and not ImportChange.objects.exists()

    with celery_worker() as queue:
        _route_to(monkeypatch, queue)
        imports.import_queue(job=failed)
        done = wait_for(
            lambda: (state := _job_state(job.pk)).status in (ImportStatus.APPLIED, ImportStatus.FAILED) and state,
            timeout=300,
        )
    assert done.status == ImportStatus.APPLIED, done.error
    assert done.created_count == ROWS and Client.objects.count() == ROWS
    assert Interaction.objects.count() == 2 * ROWS
    assert ImportChange.objects.filter(job_id=job.pk, entity="client").count() == ROWS
