"""Clustering a generated portfolio finds its known groups, describes them and explains which variables mattered."""

import os
import subprocess
import sys
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from scoring.clustering import (
    assign_clusters,
    choose_k,
    client_features,
    describe_clusters,
    fit_clusters,
    job_family,
    profile_text,
    variable_importance,
)

AS_OF = date(2025, 6, 30)

# Three known groups: (size, age range, city, sector, job titles, orders per year, basket, categories).
GROUPS = {
    "young_paris_retail": (
        1500,
        (25, 34),
        "Paris",
        "Retail",
        ["Store Manager", "Responsable de magasin"],
        12,
        40,
        ["Accessories", "Beauty"],
    ),
    "lyon_industry": (
        900,
        (45, 54),
        "Lyon",
        "Industry",
        ["Plant Director", "Directeur d'usine"],
        1.5,
        600,
        ["Machines", "Tools"],
    ),
    "bordeaux_retirees": (600, (66, 80), "Bordeaux", "", ["Retired", "Retraité"], 4, 120, ["Books", "Garden"]),
}
NOISE_CITIES = ["Paris", "Lyon", "Bordeaux", "Lille", "Nantes"]


def _portfolio(seed: int = 1) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frames, truth = [], []
    for number, (size, (age_low, age_high), city, sector, jobs, per_year, basket, categories) in enumerate(
        GROUPS.values()
    ):
        tenure_days = rng.integers(400, 1500, size)
        orders = np.maximum(1, rng.poisson(per_year * tenure_days / 365.25))
        cities = np.where(rng.random(size) < 0.9, city, rng.choice(NOISE_CITIES, size))
        frames.append(
            pd.DataFrame(
                {
                    "birth_year": AS_OF.year - rng.integers(age_low, age_high + 1, size),
                    "gender": rng.choice(["", "female", "male", "other"], size),
                    "city": cities,
                    "country": "France",
                    "sector": sector,
                    "job_title": rng.choice(jobs, size),
                    "orders": orders,
                    "revenue": orders * basket * rng.lognormal(0, 0.2, size),
                    "first_purchase": [AS_OF - timedelta(days=int(days)) for days in tenure_days],
                    "categories": [list(rng.choice(categories, rng.integers(1, 4))) for _ in range(size)],
                    "rfm_sum": np.where(rng.random(size) < 0.1, np.nan, rng.integers(3, 16, size)),
                    "clv_12m": np.where(
                        rng.random(size) < 0.2, np.nan, per_year * basket * rng.lognormal(0, 0.3, size)
                    ),
                }
            )
        )
        truth.append(np.full(size, number))
    clients = pd.concat(frames, ignore_index=True)
    clients.insert(0, "client_id", np.arange(1, len(clients) + 1) * 7)
    return clients, np.concatenate(truth)


@pytest.fixture(scope="module")
def portfolio():
    clients, truth = _portfolio()
    features = client_features(clients, as_of=AS_OF)
    model = fit_clusters(features, k=3, seed=0)
    labels = assign_clusters(model, features)
    return clients, truth, features, model, labels


def test_features_encode_each_variable():
    clients = pd.DataFrame(
        {
            "client_id": [1, 2, 3],
            "birth_year": [1995, None, 1955],
            "gender": ["female", "", "male"],
            "city": ["Paris", "Lyon", ""],
            "country": ["France", "France", "France"],
            "sector": ["Retail", "Retail", "Industry"],
            "job_title": ["Sales Director", "", "Comptable"],
            "orders": [4, 0, 1],
            "revenue": [400.0, 0.0, 50.0],
            "first_purchase": [pd.Timestamp(AS_OF - timedelta(days=730)), pd.NaT, pd.Timestamp(AS_OF)],
            "categories": [["Books", "Books", "Toys", "Garden"], [], ["Toys"]],
            "rfm_sum": [12, None, 6],
            "clv_12m": [None, 0.0, 99.0],
        }
    )

    features = client_features(clients, as_of=AS_OF, top_n=1, top_categories=2)

    assert list(features.index) == [1, 2, 3]
    age = features.filter(like="age:")
    assert age.idxmax(axis=1).tolist() == ["age:25-34", "age:unknown", "age:65+"]
    assert features.filter(like="gender:").idxmax(axis=1).tolist() == ["gender:female", "gender:unknown", "gender:male"]
    # top_n=1: Paris and Lyon tie on one client each, the tie goes to the first name; a blank city stays unknown.
    assert features.filter(like="city:").idxmax(axis=1).tolist() == ["city:other", "city:Lyon", "city:unknown"]
    assert features.filter(like="sector:").idxmax(axis=1).tolist() == ["sector:Retail", "sector:Retail", "sector:other"]
    assert list(features.filter(like="job:").columns) == ["job:comptable", "job:other", "job:unknown"]
    expected = pd.DataFrame(
        {
            "orders_per_year_log": np.log1p([4 / (730 / 365.25), 0.0, 1 / (90 / 365.25)]),
            "basket_log": np.log1p([100.0, 0.0, 50.0]),
            "category:Books": [0.5, 0.0, 0.0],
            "category:Toys": [0.25, 0.0, 1.0],
            "category:other": [0.25, 0.0, 0.0],
            "rfm_sum": [12.0, 9.0, 6.0],
            "rfm_missing": [0.0, 1.0, 0.0],
            "clv_log": [np.log1p(99.0) / 2, 0.0, np.log1p(99.0)],
            "clv_missing": [1.0, 0.0, 0.0],
        },
        index=pd.Index([1, 2, 3], name="client_id"),
    ).astype(np.float32)
    pd.testing.assert_frame_equal(features[expected.columns], expected, rtol=1e-5)


def test_job_titles_are_reduced_to_families():
    titles = pd.Series(["Sales Director", "Directeur commercial", "Store manager", "Retraitée", "Comptable", ""])

    assert job_family(titles).tolist() == ["directors", "directors", "managers", "retirees", "comptable", "unknown"]


def test_fit_finds_the_known_groups(portfolio):
    _, truth, _, _, labels = portfolio

    assert adjusted_rand_score(truth, labels) >= 0.9


def test_clusters_are_numbered_by_size(portfolio):
    *_, labels = portfolio

    assert labels.value_counts().sort_index().is_monotonic_decreasing


def test_assignments_are_deterministic_for_a_seed_and_row_order(portfolio):
    clients, _, features, _, _ = portfolio
    first = assign_clusters(fit_clusters(features, k=3, sample_size=1000, seed=3), features)
    shuffled = features.sample(frac=1, random_state=5)

    second = assign_clusters(fit_clusters(shuffled, k=3, sample_size=1000, seed=3), shuffled)

    pd.testing.assert_series_equal(first, second.loc[first.index])


def test_description_gives_sizes_and_dominant_traits(portfolio):
    clients, truth, features, _, labels = portfolio

    descriptions = describe_clusters(clients, features, labels)

    assert [d["size"] for d in descriptions] == pytest.approx([1500, 900, 600], abs=30)
    assert sum(d["share"] for d in descriptions) == pytest.approx(1.0)
    young, industry, retirees = descriptions
    assert (young["age_band"], young["city"], young["sector"], young["job"]) == ("25-34", "Paris", "Retail", "managers")
    assert young["city_share"] == pytest.approx(0.9, abs=0.05)
    assert young["months_between_orders"] == pytest.approx(1, abs=0.3)
    assert young["basket"] == pytest.approx(40, rel=0.15)
    assert {name for name, _ in young["top_categories"][:2]} == {"Accessories", "Beauty"}
    assert (industry["age_band"], industry["city"], industry["job"]) == ("45-54", "Lyon", "directors")
    assert industry["basket"] == pytest.approx(600, rel=0.15)
    assert (retirees["age_band"], retirees["city"], retirees["job"], retirees["sector"]) == (
        "65+",
        "Bordeaux",
        "retirees",
        "unknown",
    )
    assert retirees["revenue"] == pytest.approx(clients.loc[truth == 2, "revenue"].sum(), rel=0.05)


def test_profile_mentions_the_dominant_city_and_age_band(portfolio):
    clients, _, features, _, labels = portfolio
    industry = describe_clusters(clients, features, labels)[1]

    text = profile_text(industry)

    assert text.startswith("mostly 45-54, Lyon, directors in Industry; buy every 8 months, ")
    assert "EUR basket, prefer " in text


def test_profile_phrases_go_through_translate():
    description = {
        "age_band": "65+",
        "city": "Bordeaux",
        "job": "retirees",
        "sector": "unknown",
        "months_between_orders": 3.2,
        "basket": 118.6,
        "top_categories": [("Books", 0.6)],
    }

    catalog = {
        "mostly %(age_band)s": "surtout %(age_band)s",
        "retirees": "retraités",
        "buy every %(months)d months": "achètent tous les %(months)d mois",
        "%(basket)s %(currency)s basket": "panier de %(basket)s %(currency)s",
        "prefer %(category)s": "préfèrent %(category)s",
    }

    text = profile_text(
        description, translate=catalog.__getitem__, currency="CHF", amount=lambda value: f"{value:,.0f}"
    )

    assert text == "surtout 65+, Bordeaux, retraités; achètent tous les 3 mois, panier de 119 CHF, préfèrent Books"
    # A title no family matched is shown as written, not looked up in the catalog.
    assert profile_text({"job": "beekeeper"}, translate=str.upper).startswith("beekeeper; ")
    assert profile_text({"job": "managers"}, translate=str.upper).startswith("MANAGERS; ")
    assert "1,235 CHF basket" in profile_text({"basket": 1234.6}, currency="CHF", amount=lambda value: f"{value:,.0f}")


def test_separating_variables_rank_above_noise(portfolio):
    _, _, features, model, _ = portfolio

    importance = dict(variable_importance(model, features))

    assert importance["age"] > 0.8
    assert importance["location"] > importance["gender"]
    assert importance["basket"] > importance["RFM"]
    assert importance["gender"] < 0.05


def test_choose_k_prefers_the_true_number_of_groups(portfolio):
    _, _, features, _, _ = portfolio

    scores = choose_k(features, ks=(2, 3, 4), sample_size=2000)

    assert max(scores, key=scores.get) == 3


def test_module_works_without_django_settings():
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    script = "from scoring.clustering import profile_text; print(profile_text({'city': 'Lyon', 'basket': 85.2}))"

    result = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Lyon; no purchase yet, 85 EUR basket"
