"""The synthetic portfolios have structure: on the demo portfolio, a scoring run then a persona study with one
cluster per archetype finds the archetypes the clients were drawn from and describes them as they were written; a
generated (benchmark) portfolio is clustered into its archetypes as well."""

from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from crm.archetypes import ARCHETYPES
from crm.demo import demo_client_archetypes, demo_portfolio_seed, demo_users_ensure
from crm.generate import ARCHETYPE_NAMES, plan_clients, portfolio_generate
from crm.models import Client
from scoring import personas
from scoring.models import ClusterLabel, RunStatus, StudyStatus
from scoring.services import scoring_run_create, scoring_run_execute

pytestmark = pytest.mark.django_db

CLIENTS = 600
SEED = 3


@pytest.fixture
def studied_demo():
    demo_users_ensure(password="demo-password-42")
    demo_portfolio_seed(clients=CLIENTS, seed=SEED)
    run = scoring_run_execute(run_id=scoring_run_create().pk)
    assert run.status == RunStatus.COMPLETED, run.error
    study = personas.cluster_study_run(study_id=personas.cluster_study_create(k=len(ARCHETYPES)).pk)
    assert study.status == StudyStatus.DONE, study.error
    archetypes = dict(
        zip(
            Client.objects.order_by("pk").values_list("pk", flat=True),
            demo_client_archetypes(clients=CLIENTS, seed=SEED),
            strict=True,
        )
    )
    labels = dict(ClusterLabel.objects.filter(study=study).values_list("client_id", "cluster"))
    return study, archetypes, labels


def test_a_study_of_the_demo_finds_its_archetypes_again(studied_demo):
    study, archetypes, labels = studied_demo

    clients = sorted(archetypes)
    score = adjusted_rand_score([archetypes[pk] for pk in clients], [labels[pk] for pk in clients])
    assert score >= 0.8, score


def test_the_demo_clusters_read_like_their_archetypes(studied_demo):
    study, archetypes, labels = studied_demo

    for cluster in study.clusters:
        members = [archetypes[pk] for pk, label in labels.items() if label == cluster["cluster"]]
        archetype = ARCHETYPES[Counter(members).most_common(1)[0][0]]
        assert cluster["sector"] == archetype.sector, cluster
        assert cluster["city"] in archetype.cities, cluster
        if archetype.days_between_orders:
            assert cluster["top_categories"][0][0] == archetype.category, cluster
            assert archetype.category in cluster["profile"]


def test_a_study_of_a_generated_portfolio_finds_its_archetypes(db):
    portfolio_generate(clients=1500, orders=12_000, seed=4, lines=True)
    # The plan is the first draw of the seed: drawn again, it gives each client's archetype in the order written.
    plan = plan_clients(np.random.default_rng(4), count=1500, orders=12_000)
    archetypes = dict(zip(Client.objects.order_by("pk").values_list("pk", flat=True), plan["archetype"], strict=True))

    study = personas.cluster_study_run(study_id=personas.cluster_study_create(k=len(ARCHETYPES)).pk)

    assert study.status == StudyStatus.DONE, study.error
    labels = dict(ClusterLabel.objects.filter(study=study).values_list("client_id", "cluster"))
    clients = sorted(archetypes)
    score = adjusted_rand_score([archetypes[pk] for pk in clients], [labels[pk] for pk in clients])
    assert score >= 0.8, score
    lyon = ARCHETYPE_NAMES.index("lyon_industry_directors")
    members = [pk for pk, code in archetypes.items() if code == lyon]
    cluster = study.cluster(Counter(labels[pk] for pk in members).most_common(1)[0][0])
    assert cluster["city"] == "Lyon" and cluster["top_categories"][0][0] == "Formation", cluster
