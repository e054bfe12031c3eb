"""The segment dashboard's aggregates, computed once at the end of a run and stored in ``ScoringRun.dashboard``.

Pure functions: the run's scores, every client's lifecycle and pipeline facts (after the run's lifecycle changes)
and the previous run's segments in; plain dicts of ints, floats and strings out (JSON-ready), so the dashboard reads
one row whatever the size of the portfolio.

Definitions:

- **conversion rate**: of the people who were ever in the pipeline (current prospects, plus anyone with a
  conversion date), the share converted (with a conversion date). By source: the same within each source. By
  month: the same among the people created (card created) in each of the 12 months up to the run's as-of month.
- **average value per client**: revenue per scored client over the analysis window.
- **average days since last interaction**: from the local day of each client's last interaction to the as-of date
  (0 for an interaction after it), over the clients with at least one interaction.
- **composition**: clients per lifecycle over the whole portfolio.
- **movements**: per (segment in the previous completed run, segment now) pair, the clients scored now; ``from``
  is null for a client the previous run did not score. Staying in a segment is a movement too.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

from crm.models import Lifecycle, Source
from scoring.rfm import SEGMENTS

LIFECYCLES = tuple(Lifecycle.values)
SOURCES = tuple(Source.values)
KPI_MONTHS = 12
NO_OWNER = -1  # grouping key of the clients without an owner


def _mean(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.mean()) if len(values) else None


def _rate(converted: int, people: int) -> float | None:
    return converted / people if people else None


def _grid(scores: pd.DataFrame) -> list[dict]:
    cells = scores.groupby(["r_score", "f_score"]).agg(clients=("client_id", "size"), revenue=("monetary", "sum"))
    cells = cells.to_dict("index")
    return [
        {
            "r": r,
            "f": f,
            "clients": int(cells.get((r, f), {}).get("clients", 0)),
            "revenue": float(cells.get((r, f), {}).get("revenue", 0.0)),
        }
        for r in range(1, 6)
        for f in range(1, 6)
    ]


def _segments(scores: pd.DataFrame) -> list[dict]:
    total_revenue = float(scores["monetary"].sum())
    table = (
        scores.groupby(scores["segment"].astype(str))
        .agg(
            clients=("client_id", "size"),
            revenue=("monetary", "sum"),
            avg_clv_12m=("clv_12m", "mean"),
            avg_historical_clv=("historical_clv", "mean"),
            avg_recency_days=("recency_days", "mean"),
        )
        .to_dict("index")
    )
    return [
        {
            "key": key,
            "clients": int(row["clients"]),
            "revenue": float(row["revenue"]),
            "revenue_share": float(row["revenue"]) / total_revenue if total_revenue else 0.0,
            "avg_clv_12m": _float_or_none(row["avg_clv_12m"]),
            "avg_historical_clv": float(row["avg_historical_clv"]),
            "avg_recency_days": float(row["avg_recency_days"]),
        }
        for key in SEGMENTS
        if (row := table.get(key))
    ]


def _movements(scores: pd.DataFrame, previous: pd.DataFrame | None) -> list[dict]:
    if previous is None:
        return []
    before = previous.set_index("client_id")["segment"].astype(str)
    pairs = pd.DataFrame(
        {
            "from": scores["client_id"].map(before).astype(object).fillna(""),
            "to": scores["segment"].astype(str),
        }
    )
    counts = pairs.value_counts().rename("clients").reset_index()
    counts = counts.sort_values(["clients", "from", "to"], ascending=[False, True, True], kind="stable")
    return [
        {"from": row["from"] or None, "to": row["to"], "clients": int(row["clients"])}
        for row in counts.to_dict("records")
    ]


def _float_or_none(value) -> float | None:
    return None if pd.isna(value) else float(value)


def _composition(lifecycles: pd.Series) -> dict:
    counts = lifecycles.astype(str).value_counts()
    return {key: int(counts.get(key, 0)) for key in LIFECYCLES}


def _pipeline(clients: pd.DataFrame) -> pd.DataFrame:
    """Per client: whether they were ever in the pipeline and whether they converted."""
    converted = clients["converted_at"].notna()
    return pd.DataFrame(
        {"people": (clients["lifecycle"].astype(str) == Lifecycle.PROSPECT) | converted, "converted": converted},
        index=clients.index,
    )


def _conversion_counts(pipeline: pd.DataFrame, by: pd.Series) -> dict:
    """``{key: (people, converted)}`` over the people of the pipeline, grouped by ``by``."""
    people = pipeline[pipeline["people"]]
    table = people["converted"].groupby(by[pipeline["people"]]).agg(["size", "sum"])
    return {key: (int(size), int(total)) for key, size, total in table.itertuples()}


def _conversion_rows(pipeline: pd.DataFrame, by: pd.Series, keys, key_name: str) -> list[dict]:
    counts = _conversion_counts(pipeline, by)
    rows = []
    for key in keys:
        people, converted = counts.get(key, (0, 0))
        rows.append({key_name: key, "people": people, "converted": converted, "rate": _rate(converted, people)})
    return rows


def _months_up_to(as_of: date, count: int) -> list[str]:
    end = pd.Period(as_of, freq="M")
    return [str(end - offset) for offset in range(count - 1, -1, -1)]


def _days_since_interaction(clients: pd.DataFrame, as_of: date) -> pd.Series:
    days = (pd.Timestamp(as_of) - clients["last_interaction_on"]).dt.days
    return days.clip(lower=0)


def _kpis(scores: pd.DataFrame, clients: pd.DataFrame, pipeline: pd.DataFrame, as_of: date) -> dict:
    people = int(pipeline["people"].sum())
    converted = int((pipeline["people"] & pipeline["converted"]).sum())
    months = clients["created_on"].dt.to_period("M").astype(str)
    return {
        "conversion_rate": _rate(converted, people),
        "conversion_by_source": _conversion_rows(pipeline, clients["source"].astype(str), SOURCES, "source"),
        "conversion_by_month": _conversion_rows(pipeline, months, _months_up_to(as_of, KPI_MONTHS), "month"),
        "average_value_per_client": _mean(scores["monetary"]),
        "average_days_since_last_interaction": _mean(_days_since_interaction(clients, as_of)),
        # None when no client has a prediction (no usable model): "no figure", not zero.
        "total_clv_12m": float(scores["clv_12m"].sum()) if scores["clv_12m"].notna().any() else None,
        "total_clv_36m": float(scores["clv_36m"].sum()) if scores["clv_36m"].notna().any() else None,
        "clients_scored": len(scores),
    }


def _per_rep(
    scores: pd.DataFrame, clients: pd.DataFrame, pipeline: pd.DataFrame, owners: dict[int, str], as_of: date
) -> list[dict]:
    """The dashboard's figures for each owner's clients, owners by name, the clients without an owner last."""
    client_owner = clients["owner_id"].fillna(NO_OWNER).astype(np.int64)
    owner_of = pd.Series(client_owner.to_numpy(), index=clients["client_id"].to_numpy())
    score_owner = scores["client_id"].map(owner_of).fillna(NO_OWNER).astype(np.int64)
    scored = (
        scores.groupby(score_owner)
        .agg(clients=("client_id", "size"), revenue=("monetary", "sum"), avg_clv_12m=("clv_12m", "mean"))
        .to_dict("index")
    )
    segments = scores.groupby([score_owner, scores["segment"].astype(str)]).size().to_dict()
    lifecycles = clients["lifecycle"].astype(str).groupby(client_owner).value_counts().to_dict()
    interaction = _days_since_interaction(clients, as_of).groupby(client_owner).mean().to_dict()
    conversion = _conversion_counts(pipeline, client_owner)

    def figures(owner: int) -> dict:
        own = scored.get(owner, {"clients": 0, "revenue": 0.0, "avg_clv_12m": np.nan})
        people, converted = conversion.get(owner, (0, 0))
        return {
            "owner_id": None if owner == NO_OWNER else int(owner),
            "owner": owners.get(owner, ""),
            "clients": int(own["clients"]),
            "revenue": float(own["revenue"]),
            "avg_clv_12m": _float_or_none(own["avg_clv_12m"]),
            "composition": {key: int(lifecycles.get((owner, key), 0)) for key in LIFECYCLES},
            "segments": {key: int(segments[owner, key]) for key in SEGMENTS if (owner, key) in segments},
            "average_days_since_last_interaction": _float_or_none(interaction.get(owner, np.nan)),
            "conversion_rate": _rate(converted, people),
        }

    present = set(client_owner.unique().tolist()) | set(score_owner.unique().tolist())
    ordered = sorted(present - {NO_OWNER}, key=lambda owner: (owners.get(owner, "").lower(), owner))
    return [figures(owner) for owner in ordered + ([NO_OWNER] if NO_OWNER in present else [])]


def dashboard_aggregates(
    *,
    scores: pd.DataFrame,
    clients: pd.DataFrame,
    previous: pd.DataFrame | None,
    owners: dict[int, str],
    as_of: date,
) -> dict:
    """The dashboard's figures for one run.

    ``scores``: one row per scored client, ``client_id, r_score, f_score, segment, monetary, recency_days,
    historical_clv, clv_12m, clv_36m`` (CLVs NaN without a predictive model). ``clients``: every client,
    ``client_id, owner_id`` (NaN: none), ``lifecycle, source, created_on, converted_at, last_interaction_on``
    (datetime64 days, NaT when none). ``previous``: ``client_id, segment`` of the previous completed run, or None
    for a first run. ``owners``: user id -> display name.
    """
    pipeline = _pipeline(clients)
    return {
        "grid": _grid(scores),
        "segments": _segments(scores),
        "movements": _movements(scores, previous),
        "composition": _composition(clients["lifecycle"]),
        "kpis": _kpis(scores, clients, pipeline, as_of),
        "per_rep": _per_rep(scores, clients, pipeline, owners, as_of),
    }
