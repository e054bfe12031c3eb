"""Client clustering for the persona builder: features, k-means, cluster descriptions and plain-language profiles.

Pure functions (DataFrame in, DataFrame out); a service loads the clients in bulk and stores what these return.

Features (``client_features``), one row per client, all numeric, column names prefixed by their variable:

- ``age:<band>``: one-hot age band (``<25``, ``25-34`` ... ``65+``), age = year of ``as_of`` minus birth year;
  ``age:unknown`` when the birth year is missing.
- ``gender:<value>``: one-hot ``female``/``male``/``other``/``unknown`` (a blank gender is kept as ``unknown``).
- ``city:<name>``, ``country:<name>``, ``sector:<name>``, ``job:<family>``: one-hot of the ``top_n`` most common
  values, ``other`` for the rest, ``unknown`` for blanks. Job titles are first reduced to a family
  (``job_family``) so that "Sales Director" and "Directeur commercial" count together.
- ``orders_per_year_log``: log1p(orders / years since the first purchase); the time is floored at
  ``MIN_TENURE_DAYS`` so that a client met last week does not look like a daily buyer; 0 without orders.
- ``basket_log``: log1p(revenue / orders), 0 without orders.
- ``category:<name>``: share of the client's purchases in each of the ``top_categories`` most bought categories,
  plus ``category:other``; all zero for a client with no category.
- ``rfm_sum`` and ``clv_log`` (log1p of the 12-month CLV, negative values floored at 0): missing values take the
  median of the known ones (0 when none is known), and ``rfm_missing``/``clv_missing`` flag them.

Clustering (``fit_clusters``): every column is standardised, then divided by the square root of the number of
columns of its variable, so that each variable weighs the same however many columns it expands into (ten
category shares do not outweigh the basket). K-means is fitted on a deterministic sample and assigns every client.
"""

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score

AGE_BANDS = ["<25", "25-34", "35-44", "45-54", "55-64", "65+"]
AGE_BAND_EDGES = [-np.inf, 25, 35, 45, 55, 65, np.inf]
GENDERS = ["female", "male", "other"]
UNKNOWN = "unknown"
OTHER = "other"
MIN_TENURE_DAYS = 90
N_INIT = 4
PREDICT_BATCH_SIZE = 200_000


def gettext_noop(message: str) -> str:
    """Mark a phrase for the message catalogs. Django's own ``gettext_noop`` reads the settings, and this module must
    import without them; ``makemessages`` finds the phrases by this name all the same."""
    return message


# Ordered: the first family whose pattern matches wins, so "Sales Director" is a director, not a salesperson.
JOB_FAMILIES: list[tuple[str, str]] = [
    (gettext_noop("retirees"), r"retired|retrait[ée]e?|retraite"),
    (gettext_noop("students"), r"student|[ée]tudiante?"),
    (
        gettext_noop("directors"),
        r"director|directeur|directrice|ceo|cfo|cto|coo|pr[ée]sidente?|president|g[ée]rante?|founder|"
        r"fondat(?:eur|rice)|owner|chief|head of|p?dg",
    ),
    (gettext_noop("managers"), r"manager|responsable|chef|lead"),
    (gettext_noop("engineers"), r"engineer|ing[ée]nieure?|developer|d[ée]veloppeu(?:r|se)"),
    (gettext_noop("sales"), r"sales|commerciale?|account|vendeu(?:r|se)"),
    (gettext_noop("consultants"), r"consultante?"),
    (gettext_noop("assistants"), r"assistante?|secretary|secr[ée]taire"),
    (gettext_noop("teachers"), r"teacher|enseignante?|professeure?"),
    (gettext_noop("health professionals"), r"doctor|m[ée]decin|nurse|infirmi[eè]re?|pharmacien(?:ne)?"),
]
_JOB_PATTERNS = [(family, re.compile(rf"\b(?:{pattern})\b")) for family, pattern in JOB_FAMILIES]
# The names shown for a family; a title no family matches is shown as it was written, untranslated.
JOB_FAMILY_NAMES = frozenset(family for family, _pattern in JOB_FAMILIES)

# Variable group of each column prefix; the groups are what the UI explains ("which variables mattered").
FEATURE_GROUPS = {
    "age": "age",
    "gender": "gender",
    "city": "location",
    "country": "location",
    "sector": "sector",
    "job": "job",
    "orders_per_year_log": "frequency",
    "basket_log": "basket",
    "category": "categories",
    "rfm_sum": "RFM",
    "rfm_missing": "RFM",
    "clv_log": "CLV",
    "clv_missing": "CLV",
}


# Fixed phrases of the profile, marked for translation; the caller passes gettext as ``translate``.
PHRASES = {
    "mostly": gettext_noop("mostly %(age_band)s"),
    "job_in_sector": gettext_noop("%(job)s in %(sector)s"),
    "in_sector": gettext_noop("in %(sector)s"),
    "buy_every": gettext_noop("buy every %(months)d months"),
    "buy_monthly": gettext_noop("buy every month or more often"),
    "no_purchase": gettext_noop("no purchase yet"),
    "basket": gettext_noop("%(basket)s %(currency)s basket"),
    "prefer": gettext_noop("prefer %(category)s"),
}


def feature_group(column: str) -> str:
    """The variable a feature column belongs to (``city:Paris`` -> ``location``)."""
    return FEATURE_GROUPS[column.split(":", 1)[0]]


def job_family(titles: pd.Series) -> pd.Series:
    """Reduce job titles to families; a title no family matches keeps its own (case-folded) name."""
    normalised = titles.fillna("").astype(str).str.strip().str.casefold()
    uniques = pd.unique(normalised)
    families = {}
    for title in uniques:
        if not title:
            families[title] = UNKNOWN
            continue
        families[title] = next((family for family, pattern in _JOB_PATTERNS if pattern.search(title)), title)
    return normalised.map(families)


def _labels(values: pd.Series) -> pd.Series:
    """Stripped strings, ``unknown`` for blanks."""
    labels = values.fillna("").astype(str).str.strip()
    return labels.mask(labels == "", UNKNOWN)


def _one_hot(labels: pd.Series, prefix: str, categories: list[str]) -> pd.DataFrame:
    codes = pd.Categorical(labels, categories=categories).codes
    matrix = np.zeros((len(labels), len(categories)), dtype=np.float32)
    known = codes >= 0
    matrix[np.flatnonzero(known), codes[known]] = 1.0
    return pd.DataFrame(matrix, index=labels.index, columns=[f"{prefix}:{name}" for name in categories])


def _top_n_one_hot(labels: pd.Series, prefix: str, top_n: int) -> pd.DataFrame:
    """One-hot of the ``top_n`` most common known values (ties broken by name), then ``other`` and ``unknown``."""
    counts = labels[labels != UNKNOWN].value_counts()
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    top = [value for value in counts.index[:top_n] if value not in (OTHER, UNKNOWN)]
    grouped = labels.where(labels.isin(top) | (labels == UNKNOWN), OTHER)
    return _one_hot(grouped, prefix, [*top, OTHER, UNKNOWN])


def _age_bands(birth_year: pd.Series, as_of: date) -> pd.Series:
    age = as_of.year - pd.to_numeric(birth_year, errors="coerce").astype("float64")
    bands = pd.cut(age, bins=AGE_BAND_EDGES, labels=AGE_BANDS, right=False)
    return bands.astype(object).where(bands.notna(), UNKNOWN)


def _category_shares(categories: pd.Series, top_categories: int) -> pd.DataFrame:
    """Share of each client's category list in each top category, the rest summed into ``other``."""
    exploded = categories.map(lambda names: names if isinstance(names, list | tuple) else []).explode().dropna()
    exploded = exploded.astype(str)
    counts = exploded.value_counts().sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    top = list(counts.index[:top_categories])
    grouped = exploded.where(exploded.isin(top), OTHER)
    columns = [*top, OTHER]
    positions = pd.Index(categories.index).get_indexer(grouped.index)
    codes = pd.Categorical(grouped, categories=list(dict.fromkeys(columns))).codes
    matrix = np.zeros((len(categories), len(columns)), dtype=np.float64)
    np.add.at(matrix, (positions, codes), 1.0)
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0).astype(np.float32)
    return pd.DataFrame(shares, index=categories.index, columns=[f"category:{name}" for name in columns])


def _category_shares_from_lines(lines: pd.DataFrame, index: pd.Index, top_categories: int) -> pd.DataFrame:
    """The same shares as ``_category_shares`` from ``client_id, category, lines`` rows (a category bought on n lines
    counts n times), without a Python list per client: a million clients in about a second."""
    lines = lines[lines["lines"] > 0]
    counts = lines.groupby("category")["lines"].sum()
    counts = counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")
    top = list(counts.index[:top_categories])
    columns = list(dict.fromkeys([*top, OTHER]))
    grouped = lines["category"].where(lines["category"].isin(top), OTHER)
    rows = index.get_indexer(lines["client_id"])
    known = rows >= 0
    codes = pd.Categorical(grouped, categories=columns).codes
    matrix = np.zeros((len(index), len(columns)), dtype=np.float64)
    np.add.at(matrix, (rows[known], codes[known]), lines["lines"].to_numpy(np.float64)[known])
    totals = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0).astype(np.float32)
    return pd.DataFrame(shares, index=index, columns=[f"category:{name}" for name in columns])


def _imputed(values: pd.Series, name: str, flag: str) -> pd.DataFrame:
    """Median imputation plus a missing-value flag."""
    missing = values.isna()
    median = values.median()
    filled = values.fillna(0.0 if pd.isna(median) else median)
    return pd.DataFrame({name: filled.astype(np.float32), flag: missing.astype(np.float32)})


def client_features(
    clients: pd.DataFrame,
    *,
    as_of: date,
    top_n: int = 8,
    top_categories: int = 10,
    category_lines: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The numeric feature matrix of the clients, indexed by ``client_id`` (see the module docstring).

    The categories bought come from the ``categories`` column (a list per client), or, for a large portfolio, from
    ``category_lines`` (``client_id, category, lines`` rows), which gives the same shares much faster.
    """
    clients = clients.set_index("client_id", drop=False)
    orders = pd.to_numeric(clients["orders"], errors="coerce").fillna(0).astype("float64").to_numpy()
    revenue = pd.to_numeric(clients["revenue"], errors="coerce").fillna(0).astype("float64").to_numpy()
    first_purchase = pd.to_datetime(clients["first_purchase"], errors="coerce")
    tenure_days = (pd.Timestamp(as_of) - first_purchase).dt.days.to_numpy(dtype="float64", na_value=np.nan)
    tenure_years = np.maximum(np.nan_to_num(tenure_days, nan=0.0), MIN_TENURE_DAYS) / 365.25
    has_orders = orders > 0
    orders_per_year = np.where(has_orders & ~np.isnan(tenure_days), orders / tenure_years, 0.0)
    basket = np.divide(revenue, orders, out=np.zeros_like(revenue), where=has_orders)
    behaviour = pd.DataFrame(
        {
            "orders_per_year_log": np.log1p(orders_per_year).astype(np.float32),
            "basket_log": np.log1p(np.maximum(basket, 0.0)).astype(np.float32),
        },
        index=clients.index,
    )
    gender = clients["gender"].fillna("").astype(str).str.strip().str.casefold()
    rfm = pd.to_numeric(clients["rfm_sum"], errors="coerce").astype("float64")
    clv = np.log1p(pd.to_numeric(clients["clv_12m"], errors="coerce").astype("float64").clip(lower=0))
    features = pd.concat(
        [
            _one_hot(_age_bands(clients["birth_year"], as_of), "age", [*AGE_BANDS, UNKNOWN]),
            _one_hot(gender.where(gender.isin(GENDERS), UNKNOWN), "gender", [*GENDERS, UNKNOWN]),
            _top_n_one_hot(_labels(clients["city"]), "city", top_n),
            _top_n_one_hot(_labels(clients["country"]), "country", top_n),
            _top_n_one_hot(_labels(clients["sector"]), "sector", top_n),
            _top_n_one_hot(job_family(clients["job_title"]), "job", top_n),
            behaviour,
            _category_shares(clients["categories"], top_categories)
            if category_lines is None
            else _category_shares_from_lines(category_lines, clients.index, top_categories),
            _imputed(rfm, "rfm_sum", "rfm_missing"),
            _imputed(clv, "clv_log", "clv_missing"),
        ],
        axis=1,
    )
    features.index.name = "client_id"
    return features


@dataclass(frozen=True)
class ClusterModel:
    """A fitted clustering: the scaling of each feature column and k-means, with clusters numbered by size."""

    columns: list[str]
    mean: np.ndarray
    scale: np.ndarray
    kmeans: KMeans
    # rank[kmeans label] = public cluster number (0 = largest cluster in the fitting sample).
    rank: np.ndarray

    @property
    def k(self) -> int:
        return len(self.rank)

    def transform(self, features: pd.DataFrame) -> np.ndarray:
        """Scaled matrix; a one-hot column unseen at fitting time is dropped, a missing one counts as 0."""
        matrix = features.reindex(columns=self.columns, fill_value=0.0).to_numpy(dtype=np.float32)
        return (matrix - self.mean) / self.scale


def _sample_positions(index: pd.Index, sample_size: int, seed: int) -> np.ndarray:
    """Row positions of a sample that depends only on the client ids and the seed, not on row order."""
    order = np.argsort(index.to_numpy(), kind="stable")
    if len(order) <= sample_size:
        return order
    chosen = np.random.default_rng(seed).choice(len(order), size=sample_size, replace=False)
    return np.sort(order[chosen])


def _column_scaling(columns: list[str], sample: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = sample.mean(axis=0, dtype=np.float64)
    std = sample.std(axis=0, dtype=np.float64)
    std[std == 0] = 1.0
    groups = pd.Series([feature_group(column) for column in columns])
    columns_per_group = groups.map(groups.value_counts()).to_numpy(dtype=np.float64)
    return mean.astype(np.float32), (std * np.sqrt(columns_per_group)).astype(np.float32)


def fit_clusters(features: pd.DataFrame, *, k: int, sample_size: int = 50_000, seed: int = 0) -> ClusterModel:
    """Fit k-means with ``k`` clusters on a deterministic sample of at most ``sample_size`` clients."""
    columns = list(features.columns)
    sample = features.to_numpy(dtype=np.float32)[_sample_positions(features.index, sample_size, seed)]
    mean, scale = _column_scaling(columns, sample)
    kmeans = KMeans(n_clusters=k, n_init=N_INIT, random_state=seed).fit((sample - mean) / scale)
    sizes = np.bincount(kmeans.labels_, minlength=k)
    rank = np.empty(k, dtype=np.int64)
    rank[np.argsort(-sizes, kind="stable")] = np.arange(k)
    return ClusterModel(columns=columns, mean=mean, scale=scale, kmeans=kmeans, rank=rank)


def assign_clusters(model: ClusterModel, features: pd.DataFrame) -> pd.Series:
    """The nearest cluster of every client, predicted in batches of ``PREDICT_BATCH_SIZE`` rows."""
    labels = np.empty(len(features), dtype=np.int64)
    for start in range(0, len(features), PREDICT_BATCH_SIZE):
        batch = features.iloc[start : start + PREDICT_BATCH_SIZE]
        labels[start : start + len(batch)] = model.rank[model.kmeans.predict(model.transform(batch))]
    return pd.Series(labels, index=features.index, name="cluster")


def choose_k(
    features: pd.DataFrame, ks: Iterable[int] = (2, 3, 4), *, sample_size: int = 5_000, seed: int = 0
) -> dict[int, float]:
    """Silhouette score of each k (higher is better), fitted and measured on one sample of ``sample_size`` clients."""
    sample = features.iloc[_sample_positions(features.index, sample_size, seed)]
    scores = {}
    for k in ks:
        model = fit_clusters(sample, k=k, sample_size=sample_size, seed=seed)
        scores[k] = float(silhouette_score(model.transform(sample), model.kmeans.labels_))
    return scores


def _dominant(values: pd.Series, labels: pd.Series) -> pd.DataFrame:
    """Most common value per cluster and its share of the cluster (ties broken by name)."""
    counts = pd.crosstab(labels, values)
    counts = counts.reindex(columns=sorted(counts.columns, key=str))
    return pd.DataFrame({"value": counts.idxmax(axis=1), "share": counts.max(axis=1) / counts.sum(axis=1)})


def _one_hot_value(features: pd.DataFrame, prefix: str) -> pd.Series:
    block = features.filter(regex=rf"^{prefix}:")
    return block.idxmax(axis=1).str.removeprefix(f"{prefix}:")


def _optional_mean(values: pd.Series) -> float | None:
    return None if values.isna().all() else float(values.mean())


def describe_clusters(clients: pd.DataFrame, features: pd.DataFrame, labels: pd.Series) -> list[dict]:
    """Size, revenue, dominant traits and behaviour medians of each cluster, largest cluster first.

    Dominant traits come from the raw values (city ``Paris`` even when it fell in ``other`` for the features), age
    band and gender from the features; frequency, basket and category shares from the features as well.
    """
    clients = clients.set_index("client_id", drop=False).reindex(labels.index)
    features = features.reindex(labels.index)
    traits = {
        "age_band": _one_hot_value(features, "age"),
        "gender": _one_hot_value(features, "gender"),
        "city": _labels(clients["city"]),
        "country": _labels(clients["country"]),
        "sector": _labels(clients["sector"]),
        "job": job_family(clients["job_title"]),
    }
    dominants = {name: _dominant(values, labels) for name, values in traits.items()}
    behaviour = pd.DataFrame(
        {
            "orders_per_year": np.expm1(features["orders_per_year_log"].astype("float64")),
            "basket": np.expm1(features["basket_log"].astype("float64")),
            "revenue": pd.to_numeric(clients["revenue"], errors="coerce").fillna(0).astype("float64"),
            "rfm_sum": pd.to_numeric(clients["rfm_sum"], errors="coerce").astype("float64"),
            "clv_12m": pd.to_numeric(clients["clv_12m"], errors="coerce").astype("float64"),
        },
        index=labels.index,
    )
    category_shares = features.filter(regex=r"^category:").drop(columns=f"category:{OTHER}", errors="ignore")
    category_means = category_shares.groupby(labels).mean()
    total = len(labels)
    descriptions = []
    for cluster, members in behaviour.groupby(labels):
        description = {"cluster": int(cluster), "size": len(members), "share": len(members) / total}
        description["revenue"] = float(members["revenue"].sum())
        for name, dominant in dominants.items():
            description[name] = str(dominant.loc[cluster, "value"])
            description[f"{name}_share"] = float(dominant.loc[cluster, "share"])
        orders_per_year = float(members["orders_per_year"].median())
        description["orders_per_year"] = orders_per_year
        description["months_between_orders"] = 12 / orders_per_year if orders_per_year > 0 else None
        description["basket"] = float(members["basket"].median())
        top = category_means.loc[cluster].sort_values(ascending=False, kind="stable").head(3)
        description["top_categories"] = [
            (column.removeprefix("category:"), float(share)) for column, share in top.items() if share > 0
        ]
        description["rfm_sum"] = _optional_mean(members["rfm_sum"])
        description["clv_12m"] = _optional_mean(members["clv_12m"])
        descriptions.append(description)
    return sorted(descriptions, key=lambda description: (-description["size"], description["cluster"]))


def _known(description: dict, name: str) -> str | None:
    value = description.get(name)
    return None if value in (None, "", UNKNOWN, OTHER) else str(value)


def job_family_label(job: str, *, translate: Callable[[str], str] = lambda phrase: phrase) -> str:
    """How a job family is shown: a family's name translated, a title no family matched as it is."""
    return translate(job) if job in JOB_FAMILY_NAMES else job


def profile_text(
    description: dict,
    *,
    translate: Callable[[str], str] = lambda phrase: phrase,
    currency: str = "EUR",
    amount: Callable[[float], str] = lambda value: str(round(value)),
) -> str:
    """Plain-language profile of one cluster description: who they mostly are; how they buy.

    ``translate`` is applied to each fixed phrase and job family (pass ``gettext`` in a request), ``amount`` writes
    the basket out (pass a localised number format); unknown traits are left out.
    """
    who = []
    if age_band := _known(description, "age_band"):
        who.append(translate(PHRASES["mostly"]) % {"age_band": age_band})
    if city := _known(description, "city"):
        who.append(city)
    job, sector = _known(description, "job"), _known(description, "sector")
    job = job and job_family_label(job, translate=translate)
    if job and sector:
        who.append(translate(PHRASES["job_in_sector"]) % {"job": job, "sector": sector})
    elif job:
        who.append(job)
    elif sector:
        who.append(translate(PHRASES["in_sector"]) % {"sector": sector})
    how = []
    months = description.get("months_between_orders")
    if months is None:
        how.append(translate(PHRASES["no_purchase"]))
    elif months < 1.5:
        how.append(translate(PHRASES["buy_monthly"]))
    else:
        how.append(translate(PHRASES["buy_every"]) % {"months": round(months)})
    if description.get("basket"):
        basket = {"basket": amount(description["basket"]), "currency": currency}
        how.append(translate(PHRASES["basket"]) % basket)
    if description.get("top_categories"):
        how.append(translate(PHRASES["prefer"]) % {"category": description["top_categories"][0][0]})
    return "; ".join(part for part in (", ".join(who), ", ".join(how)) if part)


def variable_importance(
    model: ClusterModel, features: pd.DataFrame, *, sample_size: int = 50_000, seed: int = 0
) -> list[tuple[str, float]]:
    """Share of each variable's (scaled) variance lying between clusters, from 0 (noise) to 1, largest first.

    Computed on a deterministic sample: sum over the variable's columns of the between-cluster sum of squares,
    divided by their total sum of squares.
    """
    sample = features.iloc[_sample_positions(features.index, sample_size, seed)]
    matrix = model.transform(sample).astype(np.float64)
    labels = model.kmeans.predict(matrix.astype(np.float32))
    centred = matrix - matrix.mean(axis=0)
    total = (centred**2).sum(axis=0)
    counts = np.bincount(labels, minlength=model.kmeans.n_clusters).astype(np.float64)
    sums = np.zeros((model.kmeans.n_clusters, matrix.shape[1]))
    np.add.at(sums, labels, centred)
    cluster_means = np.divide(sums, counts[:, None], out=np.zeros_like(sums), where=counts[:, None] > 0)
    between = (counts[:, None] * cluster_means**2).sum(axis=0)
    groups = [feature_group(column) for column in model.columns]
    by_group = pd.DataFrame({"group": groups, "between_ss": between, "total_ss": total}).groupby("group").sum()
    explained = by_group["between_ss"].div(by_group["total_ss"]).where(by_group["total_ss"] > 0, 0.0)
    scores = [(str(group), float(share)) for group, share in explained.items()]
    return sorted(scores, key=lambda item: (-item[1], item[0]))
