"""A real Celery worker on Redis runs the persona study a manager starts from the builder, and assigns the members of
a persona made from a cluster too large to be assigned within the request."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.models import Client, Purchase
from scoring import tasks
from scoring.models import AssignmentStatus, ClusterLabel, ClusterStudy, PersonaProfile, StudyStatus
from tests.integration.worker import celery_worker, wait_for

pytestmark = [pytest.mark.postgresql, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

# Two clearly separated groups: (count, birth year, city, job, orders, amount).
GROUPS = [(12, 1998, "Paris", "Store Manager", 8, "40.00"), (10, 1950, "Bordeaux", "Retired", 2, "500.00")]


def _portfolio() -> list[set[int]]:
    today = timezone.localdate()
    groups = []
    for count, birth_year, city, job, orders, amount in GROUPS:
        clients = Client.objects.bulk_create(
            Client(
                first_name=city,
                last_name=str(number),
                email=f"{city}{number}@example.com".lower(),
                birth_year=birth_year,
                city=city,
                country="France",
                job_title=job,
                lifecycle="client",
            )
            for number in range(count)
        )
        Purchase.objects.bulk_create(
            Purchase(client=client, purchased_on=today - timedelta(days=15 + 300 * order // orders), amount=amount)
            for client in clients
            for order in range(orders)
        )
        groups.append({client.pk for client in clients})
    return groups


def _route_to(queue: str, task, monkeypatch) -> None:
    """The services enqueue on commit; only the queue is the test worker's own."""
    send = task.apply_async
    monkeypatch.setattr(task, "apply_async", lambda args=None, **options: send(args, **{**options, "queue": queue}))


def test_worker_runs_the_builders_study_and_assigns_a_large_clusters_members(client_as, manager, settings, monkeypatch):
    groups = _portfolio()
    settings.SCORING_PERSONA_INLINE_ASSIGN_MAX = 5  # both clusters are "large": the worker assigns their members

    with celery_worker() as queue:
        _route_to(queue, tasks.cluster_study_task, monkeypatch)
        _route_to(queue, tasks.persona_assign_cluster_task, monkeypatch)
        response = client_as(manager).post(reverse("scoring:study-start"), {"k": "2"})
        assert response.status_code == 302
        started = ClusterStudy.objects.get()
        study = wait_for(
            lambda: ClusterStudy.objects.filter(
                pk=started.pk, status__in=[StudyStatus.DONE, StudyStatus.FAILED]
            ).first(),
            timeout=120,
        )
        assert study.status == StudyStatus.DONE, study.error

        labels = dict(ClusterLabel.objects.filter(study=study).values_list("client_id", "cluster"))
        assert set(labels) == groups[0] | groups[1]
        (retirees_cluster,) = {labels[pk] for pk in groups[1]}
        response = client_as(manager).post(
            reverse("scoring:study-persona-create", args=[study.pk]),
            {"cluster": retirees_cluster, "name": "Bernard", "bio": "Retired."},
        )
        profile = PersonaProfile.objects.get()
        assert response.status_code == 302 and profile.assign_total == 10
        finished = wait_for(
            lambda: PersonaProfile.objects.filter(
                pk=profile.pk, assign_status__in=[AssignmentStatus.DONE, AssignmentStatus.FAILED]
            ).first(),
            timeout=60,
        )

    assert (study.k, study.progress, study.created_by) == (2, 100, manager)
    assert [cluster["size"] for cluster in study.clusters] == [12, 10]
    assert "Bordeaux" in study.cluster(retirees_cluster)["profile"]
    assert finished.assign_status == AssignmentStatus.DONE, finished.assign_error
    assert (finished.assign_done, finished.assign_changed) == (10, 10)
    assert set(Client.objects.filter(persona_id=profile.pk).values_list("pk", flat=True)) == groups[1]
    page = client_as(manager).get(reverse("crm:persona-detail", args=[profile.pk])).content.decode()
    assert '<div class="fs-5 fw-semibold" id="persona-members">10</div>' in page
    assert "Assigning members" not in page
