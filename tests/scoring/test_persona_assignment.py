"""The members of a persona made from a large cluster are assigned by a worker, visibly: the persona page shows how
far it went, a broker outage or a dead worker leaves an assignment that a manager starts again, and running it twice
changes nothing. Also: profiles come out in the active language and the configured currency."""

from datetime import timedelta

import pytest
from django.test import Client as BrowserClient
from django.urls import reverse
from django.utils import timezone, translation
from kombu.exceptions import OperationalError

from crm.models import Client, ClientChange
from scoring import personas, tasks
from scoring.models import AssignmentStatus, ClusterLabel, ClusterStudy, PersonaProfile, StudyStatus
from tests.factories import ClientFactory

pytestmark = pytest.mark.django_db

DESCRIPTION = {
    "cluster": 0,
    "share": 1.0,
    "revenue": 5000.0,
    "age_band": "35-44",
    "age_band_share": 0.8,
    "gender": "female",
    "gender_share": 0.6,
    "city": "Lyon",
    "city_share": 0.9,
    "country": "France",
    "country_share": 1.0,
    "sector": "Retail",
    "sector_share": 0.7,
    "job": "managers",
    "job_share": 0.5,
    "orders_per_year": 4.0,
    "months_between_orders": 3.0,
    "basket": 1234.4,
    "top_categories": [["Books", 0.5]],
    "rfm_sum": None,
    "clv_12m": None,
}


@pytest.fixture
def members():
    return ClientFactory.create_batch(5)


@pytest.fixture
def study(members):
    """A finished study whose only cluster holds the five members (a large cluster once the threshold is 2)."""
    study = ClusterStudy.objects.create(
        as_of=timezone.localdate(),
        status=StudyStatus.DONE,
        k=1,
        sample_size=10,
        clients_count=len(members),
        finished_at=timezone.now(),
        fitted={"columns": ["basket_log"], "mean": [0.0], "scale": [1.0], "fill": {}, "centers": [[1.0]]},
        clusters=[{**DESCRIPTION, "size": len(members)}],
        importance=[["basket", 0.7], ["gender", 0.01]],
    )
    ClusterLabel.objects.bulk_create(ClusterLabel(study=study, client=client, cluster=0) for client in members)
    return study


@pytest.fixture
def large(settings):
    settings.SCORING_PERSONA_INLINE_ASSIGN_MAX = 2


def _create_persona(client_as, manager, study, name="Lea"):
    url = reverse("scoring:study-persona-create", args=[study.pk])
    return client_as(manager).post(url, {"cluster": 0, "name": name, "bio": "Runs a shop."})


def _broker_down(monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(tasks.persona_assign_cluster_task, "apply_async", unreachable)


def _member_personas(members) -> set:
    return set(Client.objects.filter(pk__in=[client.pk for client in members]).values_list("persona_id", flat=True))


def test_broker_down_leaves_a_failed_assignment_a_manager_starts_again(
    study, members, large, client_as, manager, monkeypatch, tasks_inline, django_capture_on_commit_callbacks
):
    _broker_down(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        response = _create_persona(client_as, manager, study)

    profile = PersonaProfile.objects.get()
    assert response.status_code == 302 and response.url == profile.persona.get_absolute_url()
    assert profile.assign_status == AssignmentStatus.FAILED
    assert profile.assign_error.startswith("The background workers could not be reached")
    assert _member_personas(members) == {None}
    page = client_as(manager).get(profile.persona.get_absolute_url()).content.decode()
    retry_url = reverse("scoring:persona-assignment-retry", args=[profile.pk])
    assert "The members of this persona could not all be assigned." in page
    assert "0 of 5 members were gone through." in page
    assert f'action="{retry_url}"' in page and "Assign members again" in page

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(manager).post(retry_url)

    assert response.status_code == 302 and response.url == profile.persona.get_absolute_url()
    profile.refresh_from_db()
    assert (profile.assign_status, profile.assign_done, profile.assign_changed) == (AssignmentStatus.DONE, 5, 5)
    assert _member_personas(members) == {profile.pk}
    page = client_as(manager).get(profile.persona.get_absolute_url()).content.decode()
    assert "Assign members again" not in page
    assert '<div class="fs-5 fw-semibold" id="persona-members">5</div>' in page


def test_large_cluster_shows_its_progress_until_the_worker_is_done(
    study, members, large, client_as, manager, rep, django_capture_on_commit_callbacks, monkeypatch
):
    queued = []
    monkeypatch.setattr(tasks.persona_assign_cluster_task, "apply_async", lambda **options: queued.append(options))
    with django_capture_on_commit_callbacks(execute=True):
        _create_persona(client_as, manager, study)

    profile = PersonaProfile.objects.get()
    assert profile.assign_status == AssignmentStatus.PENDING and profile.assign_total == 5
    assert [options["args"] for options in queued] == [[profile.pk, manager.pk]]
    partial_url = reverse("scoring:persona-assignment", args=[profile.pk])
    for user in (manager, rep):
        page = client_as(user).get(profile.persona.get_absolute_url()).content.decode()
        assert "Assigning members: 0 of 5" in page
        assert f'hx-get="{partial_url}" hx-trigger="every 2s"' in page
        assert "Assign members again" not in page
    builder = client_as(manager).get(reverse("scoring:persona-builder")).content.decode()
    assert "Assigning members: 0 of 5" in builder

    polled = client_as(manager).get(partial_url, headers={"HX-Request": "true"})
    assert "Assigning members: 0 of 5" in polled.content.decode() and "HX-Refresh" not in polled

    tasks.persona_assign_cluster_task.apply(args=[profile.pk, manager.pk])

    finished = client_as(manager).get(partial_url, headers={"HX-Request": "true"})
    assert finished["HX-Refresh"] == "true" and "hx-get" not in finished.content.decode()
    assert _member_personas(members) == {profile.pk}
    change = ClientChange.objects.filter(field="persona").first()
    assert change.user == manager and change.new_value == "Lea"


def test_running_twice_or_resuming_changes_nothing_more(study, members, large, manager, monkeypatch):
    monkeypatch.setattr(tasks.persona_assign_cluster_task, "apply_async", lambda **options: None)
    monkeypatch.setattr(personas, "ASSIGN_BATCH_SIZE", 2)
    persona, assigned = personas.persona_from_cluster(study=study, cluster=0, data={"name": "Lea"}, user=manager)
    assert assigned is None

    first = personas.persona_assignment_run(persona_id=persona.pk, user=manager)
    duplicate = personas.persona_assignment_run(persona_id=persona.pk, user=manager)

    assert (first.assign_status, first.assign_done, first.assign_changed) == (AssignmentStatus.DONE, 5, 5)
    assert duplicate.assign_status == AssignmentStatus.DONE and duplicate.assign_changed == 5
    assert ClientChange.objects.filter(field="persona").count() == 5
    # A retried message delivered twice: the second run goes through the members again and skips them all.
    PersonaProfile.objects.filter(pk=persona.pk).update(assign_status=AssignmentStatus.PENDING)
    again = personas.persona_assignment_run(persona_id=persona.pk, user=manager)
    assert (again.assign_status, again.assign_done, again.assign_changed) == (AssignmentStatus.DONE, 5, 0)
    assert ClientChange.objects.filter(field="persona").count() == 5


def test_a_dead_workers_assignment_is_resumable_once_stale(
    study, members, large, client_as, manager, monkeypatch, tasks_inline, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(tasks.persona_assign_cluster_task, "apply_async", lambda **options: None)
    persona, _assigned = personas.persona_from_cluster(study=study, cluster=0, data={"name": "Lea"}, user=manager)
    # A worker took it, assigned two members, and died.
    Client.objects.filter(pk__in=[client.pk for client in members[:2]]).update(persona=persona)
    PersonaProfile.objects.filter(pk=persona.pk).update(assign_status=AssignmentStatus.RUNNING, assign_done=2)
    retry_url = reverse("scoring:persona-assignment-retry", args=[persona.pk])

    # While it looks alive, neither a duplicate delivery nor a manager may start it again.
    assert personas.persona_assignment_run(persona_id=persona.pk).assign_status == AssignmentStatus.RUNNING
    response = client_as(manager).post(retry_url, follow=True)
    assert "being assigned already, or have been" in response.content.decode()
    assert "Assigning members: 2 of 5" in response.content.decode()

    stopped_at = timezone.now() - timedelta(minutes=15)
    PersonaProfile.objects.filter(pk=persona.pk).update(assign_updated_at=stopped_at)
    page = client_as(manager).get(persona.get_absolute_url()).content.decode()
    assert "stopped without finishing" in page and "2 of 5 members were gone through." in page
    assert "Assign members again" in page
    assert f'hx-get="{reverse("scoring:persona-assignment", args=[persona.pk])}"' not in page  # no more polling

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        client_as(manager).post(retry_url)

    profile = PersonaProfile.objects.get(pk=persona.pk)
    assert (profile.assign_status, profile.assign_done, profile.assign_changed) == (AssignmentStatus.DONE, 5, 3)
    assert _member_personas(members) == {persona.pk}


def test_rep_cannot_start_an_assignment_again(study, members, large, client_as, manager, rep, monkeypatch):
    _broker_down(monkeypatch)
    persona, _assigned = personas.persona_from_cluster(study=study, cluster=0, data={"name": "Lea"}, user=manager)
    PersonaProfile.objects.filter(pk=persona.pk).update(
        assign_status=AssignmentStatus.FAILED, assign_error="ValueError: boom"
    )

    page = client_as(rep).get(persona.get_absolute_url()).content.decode()
    response = client_as(rep).post(reverse("scoring:persona-assignment-retry", args=[persona.pk]))

    assert "ValueError: boom" in page and "Assign members again" not in page
    assert response.status_code == 403
    assert PersonaProfile.objects.get(pk=persona.pk).assign_status == AssignmentStatus.FAILED


def test_starting_again_needs_the_csrf_token(
    study, members, large, manager, monkeypatch, django_capture_on_commit_callbacks
):
    _broker_down(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        persona, _assigned = personas.persona_from_cluster(study=study, cluster=0, data={"name": "Lea"}, user=manager)
    browser = BrowserClient(enforce_csrf_checks=True)
    browser.force_login(manager)

    response = browser.post(reverse("scoring:persona-assignment-retry", args=[persona.pk]))

    assert response.status_code == 403
    assert PersonaProfile.objects.get(pk=persona.pk).assign_status == AssignmentStatus.FAILED
    assert "csrfmiddlewaretoken" in browser.get(persona.get_absolute_url()).content.decode()


def test_assignment_of_a_study_no_longer_kept_fails_clearly(study, members, large, manager, monkeypatch):
    monkeypatch.setattr(tasks.persona_assign_cluster_task, "apply_async", lambda **options: None)
    persona, _assigned = personas.persona_from_cluster(study=study, cluster=0, data={"name": "Lea"}, user=manager)
    ClusterLabel.objects.all().delete()

    profile = personas.persona_assignment_run(persona_id=persona.pk)

    assert profile.assign_status == AssignmentStatus.FAILED
    assert profile.assign_error == "The members of this study are no longer kept; run a new study."
    with pytest.raises(personas.StudyError):
        personas.persona_assignment_retry(persona=persona, user=manager)


def test_labels_of_a_pending_assignment_are_kept(study, members, large, manager, monkeypatch):
    monkeypatch.setattr(tasks.persona_assign_cluster_task, "apply_async", lambda **options: None)
    personas.persona_from_cluster(study=study, cluster=0, data={"name": "Lea"}, user=manager)
    for _ in range(personas.STUDIES_WITH_LABELS):
        ClusterStudy.objects.create(
            as_of=timezone.localdate(), status=StudyStatus.DONE, sample_size=1, finished_at=timezone.now()
        )

    personas._labels_prune()

    assert ClusterLabel.objects.filter(study=study).count() == 5


# Language and currency of the profiles.


def test_profile_comes_out_in_french_with_french_digit_grouping(settings):
    settings.CRM_CURRENCY = "CHF"
    description = {**DESCRIPTION, "size": 5}

    with translation.override("fr"):
        french = personas.localised_profile_text(description)
    with translation.override("en"):
        english = personas.localised_profile_text(description)

    assert french.startswith("surtout 35-44, Lyon")
    assert "achètent tous les 3 mois" in french and "1\xa0234 CHF" in french
    assert english == "mostly 35-44, Lyon, managers in Retail; buy every 3 months, 1,234 CHF basket, prefer Books"


def test_builder_shows_the_profile_in_the_users_language(study, client_as, manager):
    page = client_as(manager).get(reverse("scoring:persona-builder"), headers={"Accept-Language": "fr"})

    assert page.status_code == 200
    assert "surtout 35-44, Lyon" in page.content.decode()
