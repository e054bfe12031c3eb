"""Persona builder: a study of a generated portfolio finds its known groups, a persona made from a cluster gets its
members, a new client is offered the nearest persona, and the pages are for managers only."""

from datetime import date, timedelta
from decimal import Decimal

import pandas as pd
import pytest
from django.db.models import Sum
from django.urls import reverse
from django.utils import timezone

from crm.models import Client, ClientChange, Persona, Purchase, PurchaseLine
from scoring import personas
from scoring.clustering import client_features
from scoring.models import ClusterLabel, ClusterStudy, PersonaProfile, RunStatus, StudyStatus
from tests.factories import ClientFactory, PersonaFactory, ProductFactory
from tests.scoring.factories import ClientScoreFactory, ScoringRunFactory

pytestmark = pytest.mark.django_db

# Three clearly separated groups: (size, birth years, gender, city, sector, job, orders, amount, category).
GROUPS = {
    "young_paris_retail": (30, (1996, 2000), "female", "Paris", "Retail", "Store Manager", 10, "40.00", "Beauty"),
    "lyon_industry": (24, (1973, 1977), "male", "Lyon", "Industry", "Plant Director", 2, "600.00", "Machines"),
    "bordeaux_retirees": (18, (1948, 1953), "", "Bordeaux", "", "Retired", 4, "120.00", "Books"),
}


def _create_group(name: str, *, count: int | None = None, suffix: str = "") -> list[Client]:
    size, (first_year, last_year), gender, city, sector, job, orders, amount, category = GROUPS[name]
    today = timezone.localdate()
    product = ProductFactory(category__name=category)
    clients = Client.objects.bulk_create(
        Client(
            first_name=f"{name}{suffix}",
            last_name=str(number),
            email=f"{name}{suffix}{number}@example.com",
            birth_year=first_year + number % (last_year - first_year + 1),
            gender=gender,
            city=city,
            country="France",
            sector=sector,
            job_title=job,
            lifecycle="client",
        )
        for number in range(count or size)
    )
    # Some spread inside each group: one order more or less, baskets within 20 % of the group's.
    purchases = Purchase.objects.bulk_create(
        Purchase(
            client=client,
            purchased_on=today - timedelta(days=20 + 330 * order // orders),
            amount=(Decimal(amount) * Decimal(90 + 5 * (number % 5)) / 100).quantize(Decimal("0.01")),
        )
        for number, client in enumerate(clients)
        for order in range(max(1, orders + number % 3 - 1))
    )
    PurchaseLine.objects.bulk_create(
        PurchaseLine(purchase=purchase, product=product, unit_price=purchase.amount) for purchase in purchases
    )
    return clients


@pytest.fixture
def portfolio() -> dict[str, set[int]]:
    return {name: {client.pk for client in _create_group(name)} for name in GROUPS}


def _study(k: int | None = 3) -> ClusterStudy:
    study = personas.cluster_study_create(k=k)
    return personas.cluster_study_run(study_id=study.pk)


def _labels(study: ClusterStudy) -> dict[int, int]:
    return dict(ClusterLabel.objects.filter(study=study).values_list("client_id", "cluster"))


def _cluster_of(study: ClusterStudy, members: set[int]) -> int:
    labels = _labels(study)
    (cluster,) = {labels[pk] for pk in members}
    return cluster


def test_study_finds_the_known_groups(portfolio):
    study = _study(k=3)

    assert study.status == StudyStatus.DONE, study.error
    labels = _labels(study)
    assert len(labels) == sum(len(members) for members in portfolio.values())
    clusters = {name: {labels[pk] for pk in members} for name, members in portfolio.items()}
    assert all(len(found) == 1 for found in clusters.values()), clusters
    assert len({found.pop() for found in clusters.values()}) == 3
    # Clusters are numbered by size, and described with their size, revenue and profile.
    sizes = [cluster["size"] for cluster in study.clusters]
    assert sizes == [30, 24, 18]
    industry = study.cluster(_cluster_of(study, portfolio["lyon_industry"]))
    revenue = Purchase.objects.filter(client__in=portfolio["lyon_industry"]).aggregate(total=Sum("amount"))["total"]
    assert industry["revenue"] == pytest.approx(float(revenue))
    assert industry["city"] == "Lyon" and industry["sector"] == "Industry"
    assert "Lyon" in industry["profile"] and "Machines" in industry["profile"]
    assert len(study.fitted["centers"]) == 3 and len(study.fitted["columns"]) == len(study.fitted["mean"])
    assert {group for group, _share in study.importance} >= {"location", "basket", "categories"}
    assert set(study.timings) >= {"read", "features", "fit", "assign", "describe", "write", "total"}


def test_study_uses_the_current_runs_rfm_and_clv(portfolio):
    run = ScoringRunFactory()
    for number, pk in enumerate(sorted(portfolio["lyon_industry"])):
        ClientScoreFactory(run=run, client_id=pk, r_score=1 + number % 2, f_score=2, m_score=5, clv_12m=Decimal("900"))
    ScoringRunFactory(status=RunStatus.FAILED, finished_at=None)

    study = _study(k=3)

    assert study.status == StudyStatus.DONE, study.error
    assert study.scoring_run == run
    industry = study.cluster(_cluster_of(study, portfolio["lyon_industry"]))
    assert industry["rfm_sum"] == pytest.approx(8.5) and industry["clv_12m"] == pytest.approx(900)
    assert study.cluster(_cluster_of(study, portfolio["bordeaux_retirees"]))["rfm_sum"] is None
    assert {"RFM", "CLV"} <= {group for group, _share in study.importance}


def test_automatic_k_finds_three_groups(portfolio):
    study = _study(k=None)

    assert study.status == StudyStatus.DONE, study.error
    assert study.k == 3
    assert set(study.k_scores) == {"2", "3", "4"}


def test_persona_from_cluster_gets_exactly_its_members(portfolio, manager):
    study = _study(k=3)
    cluster = _cluster_of(study, portfolio["bordeaux_retirees"])
    already = Client.objects.get(pk=min(portfolio["bordeaux_retirees"]))
    already.persona = PersonaFactory(name="Old")
    already.save()

    persona, assigned = personas.persona_from_cluster(
        study=study, cluster=cluster, data={"name": "Bernard", "bio": "Retired, reads a lot."}, user=manager
    )

    assert assigned == len(portfolio["bordeaux_retirees"])
    assert set(persona.clients.values_list("pk", flat=True)) == portfolio["bordeaux_retirees"]
    assert "Bordeaux" in persona.demographics and "Books" in persona.behaviour
    profile = PersonaProfile.objects.get(persona=persona)
    assert (profile.study, profile.cluster, profile.centroid) == (study, cluster, study.fitted["centers"][cluster])
    change = ClientChange.objects.get(client=already, field="persona")
    assert (change.old_value, change.new_value, change.user) == ("Old", "Bernard", manager)


def test_large_cluster_is_assigned_by_the_task(
    portfolio, manager, settings, tasks_inline, django_capture_on_commit_callbacks
):
    study = _study(k=3)
    settings.SCORING_PERSONA_INLINE_ASSIGN_MAX = 10
    cluster = _cluster_of(study, portfolio["young_paris_retail"])

    with django_capture_on_commit_callbacks(execute=True):
        persona, assigned = personas.persona_from_cluster(
            study=study, cluster=cluster, data={"name": "Chloé"}, user=manager
        )

    assert assigned is None
    assert set(persona.clients.values_list("pk", flat=True)) == portfolio["young_paris_retail"]


def test_new_client_resembling_a_group_is_offered_its_persona(portfolio, manager):
    study = _study(k=3)
    made = {}
    for name, members in portfolio.items():
        made[name], _assigned = personas.persona_from_cluster(
            study=study, cluster=_cluster_of(study, members), data={"name": name}, user=manager
        )
    (newcomer,) = _create_group("lyon_industry", count=1, suffix="new")

    assert personas.persona_suggestion(newcomer) == made["lyon_industry"]
    (retiree,) = _create_group("bordeaux_retirees", count=1, suffix="new")
    assert personas.persona_suggestion(retiree) == made["bordeaux_retirees"]
    retiree.persona = made["bordeaux_retirees"]
    assert personas.persona_suggestion(retiree) is None


def test_no_suggestion_without_personas_from_data(portfolio):
    (newcomer,) = _create_group("lyon_industry", count=1, suffix="new")
    PersonaFactory()

    assert personas.persona_suggestion(newcomer) is None


def test_study_through_the_task(portfolio, manager, tasks_inline, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        started = personas.cluster_study_start(k=2, user=manager)

    study = ClusterStudy.objects.get(pk=started.pk)
    assert study.status == StudyStatus.DONE, study.error
    assert (study.k, study.progress, study.created_by) == (2, 100, manager)
    assert ClusterLabel.objects.filter(study=study).count() == 72


def test_a_second_study_is_refused_while_one_is_going(manager):
    personas.cluster_study_create(k=2, user=manager)

    with pytest.raises(personas.StudyInProgress):
        personas.cluster_study_create(k=3, user=manager)


def test_a_failed_study_leaves_a_clear_error(manager):
    ClientFactory.create_batch(3)

    study = _study(k=3)

    assert study.status == StudyStatus.FAILED
    assert study.error == "The portfolio has 3 clients: at least 6 are needed to find 3 clusters."
    assert not ClusterLabel.objects.filter(study=study).exists()


def test_an_unexpected_error_is_recorded_with_its_type(portfolio, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("no convergence")

    monkeypatch.setattr(personas, "fit_clusters", broken)

    study = _study(k=3)

    assert study.status == StudyStatus.FAILED
    assert study.error == "ValueError: no convergence"
    assert study.phase == "fit"


def test_only_the_last_studies_keep_their_labels(portfolio):
    studies = [_study(k=2) for _ in range(personas.STUDIES_WITH_LABELS + 1)]

    kept = set(ClusterLabel.objects.values_list("study_id", flat=True).distinct())
    assert kept == {study.pk for study in studies[1:]}
    with pytest.raises(personas.StudyError):
        personas.persona_from_cluster(study=studies[0], cluster=0, data={"name": "Late"}, user=None)


# Pages.


def test_builder_shows_the_clusters_and_what_mattered(portfolio, client_as, manager):
    study = _study(k=3)

    response = client_as(manager).get(reverse("scoring:persona-builder"))

    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('class="card h-100" data-cluster=') == 3
    assert "Which variables mattered" in page and "Product categories bought" in page
    assert "Predicted CLV (12 months)" not in page  # no scoring run: RFM and CLV were not part of the study
    assert reverse("scoring:study-persona-create", args=[study.pk]) + "?cluster=0" in page


def test_builder_starts_a_study(client_as, manager, tasks_inline, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = client_as(manager).post(reverse("scoring:study-start"), {"k": "4"})

    assert response.status_code == 302
    study = ClusterStudy.objects.get()
    assert study.requested_k == 4 and study.created_by == manager
    assert study.status == StudyStatus.FAILED  # an empty portfolio
    page = client_as(manager).get(reverse("scoring:persona-builder")).content.decode()
    assert "The portfolio has 0 clients" in page


def test_builder_refuses_a_bad_number_of_clusters(client_as, manager):
    response = client_as(manager).post(reverse("scoring:study-start"), {"k": "9"}, headers={"HX-Request": "true"})

    assert response.status_code == 200
    assert "Choose a number of clusters" in response.content.decode()
    assert not ClusterStudy.objects.exists()


def test_manager_turns_a_cluster_into_a_persona(portfolio, client_as, manager):
    study = _study(k=3)
    cluster = _cluster_of(study, portfolio["lyon_industry"])
    url = reverse("scoring:study-persona-create", args=[study.pk])

    form_page = client_as(manager).get(f"{url}?cluster={cluster}").content.decode()
    assert "Lyon" in form_page
    response = client_as(manager).post(
        url, {"cluster": cluster, "name": "Gérard", "bio": "Runs a plant.", "goals": "Uptime", "obstacles": "Budget"}
    )

    persona = Persona.objects.get(name="Gérard")
    assert response.status_code == 302 and response.url == persona.get_absolute_url()
    assert set(persona.clients.values_list("pk", flat=True)) == portfolio["lyon_industry"]
    assert persona.goals == "Uptime" and "Lyon" in persona.demographics
    page = client_as(manager).get(persona.get_absolute_url()).content.decode()
    assert f"Built from data: cluster {cluster + 1} of the persona study" in page
    assert f'<div class="fs-5 fw-semibold" id="persona-members">{len(portfolio["lyon_industry"])}</div>' in page


def test_rep_cannot_use_the_builder(portfolio, client_as, rep):
    study = _study(k=2)

    for response in (
        client_as(rep).get(reverse("scoring:persona-builder")),
        client_as(rep).post(reverse("scoring:study-start"), {"k": "2"}),
        client_as(rep).post(reverse("scoring:study-persona-create", args=[study.pk]), {"cluster": 0, "name": "Nope"}),
    ):
        assert response.status_code == 403
    assert ClusterStudy.objects.count() == 1 and not Persona.objects.exists()


def test_persona_list_links_to_the_builder(client_as, manager, rep):
    builder = reverse("scoring:persona-builder")

    assert builder in client_as(manager).get(reverse("crm:persona-list")).content.decode()
    assert builder not in client_as(rep).get(reverse("crm:persona-list")).content.decode()


# The card's suggestion.


@pytest.fixture
def suggested(portfolio, manager):
    study = _study(k=3)
    persona, _assigned = personas.persona_from_cluster(
        study=study, cluster=_cluster_of(study, portfolio["lyon_industry"]), data={"name": "Gérard"}, user=manager
    )
    (newcomer,) = _create_group("lyon_industry", count=1, suffix="new")
    return newcomer, persona


def test_card_suggests_the_persona_and_manager_assigns_it(suggested, client_as, manager):
    newcomer, persona = suggested

    page = client_as(manager).get(newcomer.get_absolute_url()).content.decode()
    assert 'id="persona-suggestion"' in page and "Gérard" in page
    assert reverse("scoring:client-persona-assign", args=[newcomer.pk]) in page

    response = client_as(manager).post(
        reverse("scoring:client-persona-assign", args=[newcomer.pk]), {"persona": persona.pk}
    )
    assert response.status_code == 302
    newcomer.refresh_from_db()
    assert newcomer.persona == persona
    assert 'id="persona-suggestion"' not in client_as(manager).get(newcomer.get_absolute_url()).content.decode()


def test_rep_sees_the_suggestion_without_the_assign_button(suggested, client_as, rep):
    newcomer, persona = suggested
    newcomer.owner = rep
    newcomer.save()

    page = client_as(rep).get(newcomer.get_absolute_url()).content.decode()
    assert 'id="persona-suggestion"' in page
    assert reverse("scoring:client-persona-assign", args=[newcomer.pk]) not in page
    response = client_as(rep).post(
        reverse("scoring:client-persona-assign", args=[newcomer.pk]), {"persona": persona.pk}
    )
    assert response.status_code == 403
    newcomer.refresh_from_db()
    assert newcomer.persona is None


def test_assign_refuses_an_unknown_persona(suggested, client_as, manager):
    newcomer, _persona = suggested

    response = client_as(manager).post(
        reverse("scoring:client-persona-assign", args=[newcomer.pk]), {"persona": "nope"}, follow=True
    )

    assert "Choose a persona that exists." in response.content.decode()
    newcomer.refresh_from_db()
    assert newcomer.persona is None


# Pure helpers.


def test_features_in_space_counts_unseen_values_as_other():
    features = pd.DataFrame(
        {
            "city:Nantes": [1.0],
            "city:unknown": [0.0],
            "category:Garden": [0.25],
            "category:Books": [0.75],
            "rfm_sum": [0.0],
            "rfm_missing": [1.0],
            "basket_log": [2.0],
        },
        index=pd.Index([7], name="client_id"),
    )
    columns = ["city:Paris", "city:other", "city:unknown", "category:Books", "category:other"]
    columns += ["rfm_sum", "rfm_missing", "basket_log", "clv_log"]

    aligned = personas.features_in_space(features, columns=columns, fill={"rfm_sum": 9.0, "clv_log": 4.0})

    expected = pd.DataFrame(
        [[0.0, 1.0, 0.0, 0.75, 0.25, 9.0, 1.0, 2.0, 0.0]], columns=columns, index=pd.Index([7], name="client_id")
    )
    pd.testing.assert_frame_equal(aligned, expected)


def test_clustering_frame_keeps_clients_without_purchases_or_scores():
    clients = pd.DataFrame(
        {
            "client_id": [2, 1],
            "birth_year": [1980, None],
            "gender": ["female", ""],
            "city": ["Lyon", ""],
            "country": ["France", ""],
            "sector": ["Retail", ""],
            "job_title": ["Manager", ""],
        }
    )
    purchases = pd.DataFrame(
        {
            "client_id": [2],
            "orders": [3],
            "revenue": [Decimal("90.50")],
            "first_purchase": [date(2025, 1, 2)],
            "last_purchase": [date(2025, 6, 1)],
        }
    )
    scores = pd.DataFrame({"client_id": [2], "rfm_sum": [12], "clv_12m": [Decimal("40.00")]})

    frame = personas.clustering_frame(clients=clients, purchases=purchases, scores=scores)

    assert list(frame.columns) == personas.INPUT_COLUMNS
    assert frame["client_id"].tolist() == [1, 2]
    assert frame["orders"].tolist() == [0, 3] and frame["revenue"].tolist() == [0.0, 90.5]
    assert pd.isna(frame.loc[0, "rfm_sum"]) and frame.loc[1, "clv_12m"] == 40.0


def test_category_lines_give_the_same_features_as_category_lists():
    clients = pd.DataFrame(
        {
            "client_id": [3, 1, 2],
            "birth_year": [1980, 1990, None],
            "gender": ["female", "male", ""],
            "city": ["Lyon", "Paris", ""],
            "country": "France",
            "sector": "Retail",
            "job_title": "Manager",
            "orders": [2, 1, 0],
            "revenue": [50.0, 20.0, 0.0],
            "first_purchase": pd.to_datetime(["2025-01-01", "2025-03-01", None]),
            "rfm_sum": [9, 5, None],
            "clv_12m": [30.0, None, None],
        }
    )
    lists = clients.assign(categories=[["Books", "Books", "Garden"], ["Tools", "Garden"], None])
    lines = pd.DataFrame(
        {"client_id": [3, 3, 1, 1], "category": ["Books", "Garden", "Tools", "Garden"], "lines": [2, 1, 1, 1]}
    )

    from_lists = client_features(lists, as_of=date(2026, 1, 1), top_categories=2)
    from_lines = client_features(clients, as_of=date(2026, 1, 1), top_categories=2, category_lines=lines)

    pd.testing.assert_frame_equal(from_lines, from_lists)
    # Top two: Books and Garden (two lines each); Tools counts in "other".
    assert from_lines.loc[3, ["category:Books", "category:Garden"]].tolist() == pytest.approx([2 / 3, 1 / 3])
    assert from_lines.loc[1, ["category:Garden", "category:other"]].tolist() == [0.5, 0.5]
