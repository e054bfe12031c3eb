"""Personas built from data: cluster studies of the portfolio, personas made from a cluster, nearest-persona hints.

A study reads every client in bulk (demographics; purchases aggregated in SQL: orders, revenue, first and last
purchase, the categories of the lines bought; the RFM sum and 12-month CLV of the current scoring run when there is
one), hands them to the pure clustering core (``scoring.clustering``), and stores what it found: each cluster's
description, which variables mattered, the fitted model (feature columns, scaling, fill values, centres) and every
client's cluster in ``ClusterLabel`` (COPY on PostgreSQL; only the last ``STUDIES_WITH_LABELS`` studies keep them).

A persona made from a cluster gets that cluster's members and a ``PersonaProfile`` holding its centre; a client
without a persona is later placed in the same feature space and offered the persona whose centre is nearest.
The members of a large cluster are assigned by a worker; the profile follows that assignment (pending, running,
done, failed, members gone through) so that the persona page shows it and a manager can start it again.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, Sum
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.translation import gettext, ngettext

from crm.models import Client, Persona, Purchase, PurchaseLine
from crm.services import persona_assign_clients, persona_save
from portfolio.queueing import enqueue_on_commit
from scoring import io as scoring_io
from scoring.clustering import (
    assign_clusters,
    choose_k,
    client_features,
    describe_clusters,
    fit_clusters,
    profile_text,
    variable_importance,
)
from scoring.models import (
    ASSIGNMENT_STALE_SECONDS,
    AssignmentStatus,
    ClientScore,
    ClusterLabel,
    ClusterStudy,
    PersonaProfile,
    StudyStatus,
)
from scoring.recovery import IN_PROGRESS, cluster_studies_fail_stale
from scoring.selectors import current_run_id
from scoring.services import PhaseProgress

logger = logging.getLogger(__name__)

K_CHOICES = (2, 3, 4)
STUDY_SAMPLE_SIZE = 50_000  # clients k-means is fitted on; every client is then assigned
CHOOSE_K_SAMPLE_SIZE = 5_000  # clients the silhouette of each k is measured on
STUDIES_WITH_LABELS = 3  # the newest finished studies whose per-client clusters are kept
ASSIGN_BATCH_SIZE = 5_000  # members given their persona per step of an assignment, its progress saved after each
LABEL_BATCH_SIZE = 5_000  # rows per INSERT where COPY is not available
LABEL_TYPES = {"study_id": "int8", "client_id": "int8", "cluster": "int2"}
# Phases in order, with the progress (%) reached when each one ends.
PHASES = {
    "read": 30,
    "features": 40,
    "choose_k": 50,
    "fit": 60,
    "assign": 70,
    "describe": 80,
    "importance": 85,
    "write": 100,
}
INPUT_COLUMNS = [
    "client_id",
    "birth_year",
    "gender",
    "city",
    "country",
    "sector",
    "job_title",
    "orders",
    "revenue",
    "first_purchase",
    "last_purchase",
    "rfm_sum",
    "clv_12m",
]
IMPUTED = {"rfm_sum": "rfm_missing", "clv_log": "clv_missing"}


class StudyInProgress(Exception):
    """A study is already queued or running: a second one is refused."""

    def __init__(self, study: ClusterStudy):
        self.study = study
        super().__init__(gettext("A persona study is already under way; wait for it to finish."))


class StudyError(Exception):
    """A study cannot be run or used, with a message for the manager."""


# Reading the portfolio.


class ClusteringInputs(NamedTuple):
    clients: pd.DataFrame  # INPUT_COLUMNS, one row per client
    category_lines: pd.DataFrame  # client_id, category, lines


def clustering_inputs(*, as_of: date, run_id: int | None, client_ids: list[int] | None = None) -> ClusteringInputs:
    """What the clustering core needs about every client (or the given ones), read in bulk."""
    if scoring_io.is_postgresql() and client_ids is None:
        clients, purchases = _clients_postgresql(as_of)
    else:
        clients, purchases = _clients_orm(as_of, client_ids)
    frame = clustering_frame(clients=clients, purchases=purchases, scores=_scores(run_id, client_ids))
    return ClusteringInputs(frame, _category_lines(as_of, client_ids))


def inputs_features(inputs: ClusteringInputs, *, as_of: date) -> pd.DataFrame:
    return client_features(inputs.clients, as_of=as_of, category_lines=inputs.category_lines)


def _clients_postgresql(as_of: date) -> tuple[pd.DataFrame, pd.DataFrame]:
    client_sql = f"""
        SELECT id AS client_id, birth_year, gender, city, country, sector, job_title
        FROM {Client._meta.db_table} ORDER BY id
    """  # noqa: S608
    purchase_sql = f"""
        SELECT client_id, count(*) AS orders, sum(amount) AS revenue,
               min(purchased_on) AS first_purchase, max(purchased_on) AS last_purchase
        FROM {Purchase._meta.db_table} WHERE purchased_on <= %s GROUP BY client_id
    """  # noqa: S608
    text = dict.fromkeys(("gender", "city", "country", "sector", "job_title"), str)
    client_csv = scoring_io._copy_out(client_sql)
    with transaction.atomic():
        with connection.cursor() as cursor:
            # As for the scoring runs: a group aggregate streaming over the (client, date) index, where the hash
            # aggregate the planner prefers for a million groups spills to disk.
            cursor.execute("SET LOCAL enable_hashagg = off")
            cursor.execute("SET LOCAL jit = off")
        purchase_csv = scoring_io._copy_out(purchase_sql, [as_of])
    clients = pd.read_csv(client_csv, dtype=text, keep_default_na=False, na_values={"birth_year": [""]})
    purchases = pd.read_csv(purchase_csv, parse_dates=["first_purchase", "last_purchase"], date_format="%Y-%m-%d")
    return clients, purchases


def _clients_orm(as_of: date, client_ids: list[int] | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    clients = Client.objects.order_by("pk")
    purchases = Purchase.objects.filter(purchased_on__lte=as_of)
    if client_ids is not None:
        clients, purchases = clients.filter(pk__in=client_ids), purchases.filter(client_id__in=client_ids)
    rows = clients.values_list("pk", "birth_year", "gender", "city", "country", "sector", "job_title")
    client_frame = pd.DataFrame.from_records(list(rows), columns=INPUT_COLUMNS[:7])
    totals = (
        purchases.values("client_id")
        .annotate(orders=Count("id"), revenue=Sum("amount"), first=Min("purchased_on"), last=Max("purchased_on"))
        .order_by()
        .values_list("client_id", "orders", "revenue", "first", "last")
    )
    columns = ["client_id", "orders", "revenue", "first_purchase", "last_purchase"]
    return client_frame, pd.DataFrame.from_records(list(totals), columns=columns)


def _category_lines(as_of: date, client_ids: list[int] | None) -> pd.DataFrame:
    """``client_id, category, lines``: how many purchase lines of each category each client bought."""
    lines = PurchaseLine.objects.filter(purchase__purchased_on__lte=as_of)
    if client_ids is not None:
        lines = lines.filter(purchase__client_id__in=client_ids)
    grouped = lines.values("purchase__client_id", "product__category__name").annotate(lines=Count("id")).order_by()
    if scoring_io.is_postgresql() and client_ids is None:
        sql, params = grouped.values_list(
            "purchase__client_id", "product__category__name", "lines"
        ).query.sql_with_params()
        frame = pd.read_csv(scoring_io._copy_out(sql, params), keep_default_na=False)
        frame.columns = ["client_id", "category", "lines"]
        return frame
    rows = grouped.values_list("purchase__client_id", "product__category__name", "lines")
    return pd.DataFrame.from_records(list(rows), columns=["client_id", "category", "lines"])


def _scores(run_id: int | None, client_ids: list[int] | None) -> pd.DataFrame:
    columns = ["client_id", "rfm_sum", "clv_12m"]
    if run_id is None:
        return pd.DataFrame(columns=columns)
    if scoring_io.is_postgresql() and client_ids is None:
        sql = f"SELECT client_id, rfm_sum, clv_12m FROM {ClientScore._meta.db_table} WHERE run_id = %s"  # noqa: S608
        return pd.read_csv(scoring_io._copy_out(sql, [run_id]))
    scores = ClientScore.objects.filter(run_id=run_id)
    if client_ids is not None:
        scores = scores.filter(client_id__in=client_ids)
    return pd.DataFrame.from_records(list(scores.values_list(*columns).order_by()), columns=columns)


def clustering_frame(*, clients: pd.DataFrame, purchases: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """Join the per-client reads into the clustering core's input, one row per client, sorted by id (pure)."""
    frame = clients.merge(purchases, on="client_id", how="left").merge(scores, on="client_id", how="left")
    frame["orders"] = pd.to_numeric(frame["orders"]).fillna(0).astype(np.int64)
    frame["revenue"] = pd.to_numeric(frame["revenue"].astype(object)).astype(float).fillna(0.0)
    for column in ("first_purchase", "last_purchase"):
        frame[column] = pd.to_datetime(frame[column])
    for column in ("rfm_sum", "clv_12m"):
        frame[column] = pd.to_numeric(frame[column].astype(object)).astype(float)
    return frame.sort_values("client_id", ignore_index=True)[INPUT_COLUMNS]


# The fitted model, stored as JSON, and placing clients in its feature space.


def fitted_model_json(model, features: pd.DataFrame) -> dict:
    """What placing a client later needs: columns, scaling, the values missing RFM and CLV took, the centres."""
    centers = np.empty_like(model.kmeans.cluster_centers_)
    centers[model.rank] = model.kmeans.cluster_centers_  # row = public cluster number
    fill = {}
    for name, flag in IMPUTED.items():
        known = features.loc[features[flag] == 0, name]
        fill[name] = float(known.median()) if len(known) else 0.0
    return {
        "columns": list(model.columns),
        "mean": [float(value) for value in model.mean],
        "scale": [float(value) for value in model.scale],
        "fill": fill,
        "centers": centers.astype(float).tolist(),
    }


def features_in_space(features: pd.DataFrame, *, columns: list[str], fill: Mapping[str, float]) -> pd.DataFrame:
    """Features computed on a few clients, expressed in a study's columns (pure).

    A value the study did not have a column for (a city outside its top cities, a category outside its top
    categories) counts in that variable's ``other`` column, as it would have in the study; missing RFM or CLV take
    the study's fill value rather than the few clients' own median.
    """
    aligned = features.reindex(columns=columns, fill_value=0.0).astype(np.float64)
    known = set(columns)
    for column in features.columns:
        other = f"{column.split(':', 1)[0]}:other"
        if column not in known and ":" in column and other in known:
            aligned[other] += features[column].astype(np.float64)
    for name, flag in IMPUTED.items():
        if name in aligned.columns and flag in aligned.columns:
            aligned.loc[aligned[flag] == 1, name] = fill.get(name, 0.0)
    return aligned


def scaled_vectors(aligned: pd.DataFrame, fitted: Mapping[str, Any]) -> np.ndarray:
    return (aligned.to_numpy(np.float64) - np.asarray(fitted["mean"])) / np.asarray(fitted["scale"])


# Studies.


def cluster_study_create(*, k: int | None, user=None, sample_size: int = STUDY_SAMPLE_SIZE) -> ClusterStudy:
    """A queued study as of today with ``k`` clusters (None: chosen automatically); refused while one is going."""
    if k is not None and k not in K_CHOICES:
        raise StudyError(gettext("Choose between 2 and 4 clusters."))
    with transaction.atomic():
        scoring_io.lock_run_start()
        cluster_studies_fail_stale()
        under_way = ClusterStudy.objects.filter(status__in=IN_PROGRESS).first()
        if under_way is not None:
            raise StudyInProgress(under_way)
        return ClusterStudy.objects.create(
            as_of=timezone.localdate(), requested_k=k, sample_size=sample_size, created_by=user
        )


def cluster_study_start(*, k: int | None, user=None) -> ClusterStudy:
    """Create a queued study and have a worker run it once the transaction commits."""
    from scoring.tasks import cluster_study_task  # the task module imports this one

    study = cluster_study_create(k=k, user=user)
    enqueue_on_commit(cluster_study_task, study.pk, on_failure=lambda error: _fail_unqueued(study.pk))
    return study


def _fail_unqueued(study_id: int) -> None:
    ClusterStudy.objects.filter(pk=study_id, status=StudyStatus.QUEUED).update(
        status=StudyStatus.FAILED,
        error=gettext("The background workers could not be reached; start the study again in a moment."),
        finished_at=timezone.now(),
    )


def cluster_study_run(*, study_id: int) -> ClusterStudy:
    """Run a queued study to the end. Safe to call twice: a study already claimed is left as it is.

    Any error marks the study failed with a message saying what went wrong; it is not raised again.
    """
    claimed = ClusterStudy.objects.filter(pk=study_id, status=StudyStatus.QUEUED).update(
        status=StudyStatus.RUNNING, started_at=timezone.now(), phase="", progress=0, error=""
    )
    study = ClusterStudy.objects.get(pk=study_id)
    if not claimed:
        return study
    progress = PhaseProgress(study, PHASES)
    try:
        _study_phases(study, progress)
    except Exception as exc:
        logger.exception("persona study %s failed in phase %r", study.pk, study.phase)
        message = str(exc) if isinstance(exc, StudyError) else f"{type(exc).__name__}: {exc}"
        study.status, study.error, study.finished_at = StudyStatus.FAILED, message[:2000], timezone.now()
        ClusterStudy.objects.filter(pk=study.pk).update(
            status=study.status, error=study.error, finished_at=study.finished_at, timings=progress.timings
        )
        _labels_delete(study_ids=[study.pk])
        return study
    _labels_prune()
    return study


def _study_phases(study: ClusterStudy, progress: PhaseProgress) -> None:
    with progress.phase("read"):
        run_id = current_run_id()
        inputs = clustering_inputs(as_of=study.as_of, run_id=run_id)
        clients = inputs.clients
    smallest = max(study.requested_k or min(K_CHOICES), 2)
    if len(clients) < 2 * smallest:
        raise StudyError(
            ngettext(
                "The portfolio has %(count)d client: at least %(needed)d are needed to find %(k)d clusters.",
                "The portfolio has %(count)d clients: at least %(needed)d are needed to find %(k)d clusters.",
                len(clients),
            )
            % {"count": len(clients), "needed": 2 * smallest, "k": smallest}
        )
    with progress.phase("features"):
        features = inputs_features(inputs, as_of=study.as_of)
    k, k_scores = study.requested_k, {}
    if k is None:
        with progress.phase("choose_k"):
            k_scores = choose_k(features, K_CHOICES, sample_size=CHOOSE_K_SAMPLE_SIZE)
            k = max(k_scores, key=lambda candidate: (k_scores[candidate], -candidate))
    with progress.phase("fit"):
        model = fit_clusters(features, k=k, sample_size=study.sample_size)
    with progress.phase("assign"):
        labels = assign_clusters(model, features)
    with progress.phase("describe"):
        descriptions = describe_clusters(clients, features, labels)
        for description in descriptions:
            description["profile"] = profile_text(description, currency=settings.CRM_CURRENCY)
    with progress.phase("importance"):
        importance = variable_importance(model, features, sample_size=study.sample_size)
    with progress.phase("write"):
        labels_write(study_id=study.pk, labels=labels)
        study.scoring_run_id = run_id
        study.k, study.k_scores = k, {str(key): value for key, value in k_scores.items()}
        study.clients_count = len(clients)
        study.fitted = fitted_model_json(model, features)
        study.clusters = descriptions
        study.importance = [[group, share] for group, share in importance]
        study.status, study.phase, study.finished_at = StudyStatus.DONE, "", timezone.now()
        study.save()


def labels_write(*, study_id: int, labels: pd.Series) -> int:
    """Store every client's cluster (``labels``: cluster by client id) for the study, replacing earlier ones."""
    frame = pd.DataFrame(
        {"study_id": study_id, "client_id": labels.index.to_numpy(np.int64), "cluster": labels.to_numpy(np.int64)}
    )
    _labels_delete(study_ids=[study_id])
    if scoring_io.is_postgresql():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.copy_expert(
                f"COPY {ClusterLabel._meta.db_table} (study_id, client_id, cluster) FROM STDIN WITH (FORMAT binary)",
                io.BytesIO(scoring_io.binary_copy_rows(frame, LABEL_TYPES)),
            )
    else:
        records = frame.to_dict("records")
        for start in range(0, len(records), LABEL_BATCH_SIZE):
            ClusterLabel.objects.bulk_create(
                ClusterLabel(**record) for record in records[start : start + LABEL_BATCH_SIZE]
            )
    return len(frame)


def _labels_delete(*, study_ids: list[int]) -> None:
    if study_ids:
        ClusterLabel.objects.filter(study_id__in=study_ids).delete()  # one DELETE: nothing refers to labels


def _labels_prune() -> None:
    """Keep the labels of the newest ``STUDIES_WITH_LABELS`` finished studies, of studies under way, and of studies
    a persona's members are still to be assigned from (pending, running, or failed and to be started again)."""
    kept = list(
        ClusterStudy.objects.done().order_by("-finished_at", "-id").values_list("pk", flat=True)[:STUDIES_WITH_LABELS]
    )
    kept += list(ClusterStudy.objects.filter(status__in=IN_PROGRESS).values_list("pk", flat=True))
    unassigned = PersonaProfile.objects.exclude(assign_status=AssignmentStatus.DONE)
    kept += list(unassigned.values_list("study_id", flat=True).distinct())
    _labels_delete(study_ids=list(ClusterStudy.objects.exclude(pk__in=kept).values_list("pk", flat=True)))


def cluster_study_delete(*, study: ClusterStudy) -> None:
    """Delete a study, its labels and the profiles of the personas made from it (the personas stay)."""
    with transaction.atomic():
        _labels_delete(study_ids=[study.pk])
        study.delete()


# Personas made from a cluster.


def _amount(value: float) -> str:
    return number_format(round(value), force_grouping=True)


def localised_profile_text(description: Mapping[str, Any]) -> str:
    """A cluster's profile in the active language, its basket in ``CRM_CURRENCY`` grouped the language's way."""
    return profile_text(dict(description), translate=gettext, currency=settings.CRM_CURRENCY, amount=_amount)


def cluster_profile_texts(description: Mapping[str, Any]) -> tuple[str, str]:
    """The demographic and the behaviour halves of a cluster's plain-language profile, in the active language."""
    who, separator, how = localised_profile_text(description).partition("; ")
    return (who, how) if separator else ("", who)


def persona_from_cluster(
    *, study: ClusterStudy, cluster: int, data: Mapping[str, Any], user
) -> tuple[Persona, int | None]:
    """Create a persona from a cluster of a finished study, with its profile, and give it the cluster's members.

    ``data`` holds the persona's fields (name, bio, goals, obstacles, expectations...); blank demographics and
    behaviour are filled from the cluster's profile. Returns the persona and how many clients were assigned, or
    None when the cluster is larger than ``SCORING_PERSONA_INLINE_ASSIGN_MAX`` and a worker assigns them (or the
    assignment failed): the profile says how far it went.
    """
    description = study.cluster(cluster) if study.status == StudyStatus.DONE else None
    if description is None:
        raise StudyError(gettext("This cluster is not part of a finished study."))
    if not ClusterLabel.objects.filter(study=study).exists():
        raise StudyError(gettext("The members of this study are no longer kept; run a new study."))
    demographics, behaviour = cluster_profile_texts(description)
    fields = {**data}
    fields["demographics"] = fields.get("demographics") or demographics
    fields["behaviour"] = fields.get("behaviour") or behaviour
    in_background = description["size"] > settings.SCORING_PERSONA_INLINE_ASSIGN_MAX
    with transaction.atomic():
        # One persona per cluster: a form sent twice would otherwise make a second one that takes the members away
        # from the first. The study's row is locked so that two requests at once are told apart.
        list(ClusterStudy.objects.select_for_update().filter(pk=study.pk).values_list("pk"))
        made = PersonaProfile.objects.filter(study=study, cluster=cluster).select_related("persona").first()
        if made is not None:
            raise StudyError(
                gettext("A persona was already made from this cluster: %(name)s.") % {"name": made.persona.name}
            )
        persona = persona_save(data=fields)
        PersonaProfile.objects.create(
            persona=persona,
            study=study,
            cluster=cluster,
            centroid=study.fitted["centers"][cluster],
            assign_status=AssignmentStatus.PENDING,
            assign_total=description["size"],
        )
        if in_background:
            _assignment_enqueue(persona.pk, user)
            return persona, None
    profile = persona_assignment_run(persona_id=persona.pk, user=user)
    return persona, profile.assign_changed if profile.assign_status == AssignmentStatus.DONE else None


def _assignment_enqueue(persona_id: int, user) -> None:
    from scoring.tasks import persona_assign_cluster_task  # the task module imports this one

    enqueue_on_commit(
        persona_assign_cluster_task,
        persona_id,
        getattr(user, "pk", None),
        on_failure=lambda error: _assignment_unqueued(persona_id),
    )


def _assignment_unqueued(persona_id: int) -> None:
    PersonaProfile.objects.filter(pk=persona_id, assign_status=AssignmentStatus.PENDING).update(
        assign_status=AssignmentStatus.FAILED,
        assign_error=gettext("The background workers could not be reached; assign the members again in a moment."),
        assign_updated_at=timezone.now(),
    )


def _assignment_claim(persona_id: int) -> bool:
    """Take a pending assignment, or a running one whose worker stopped moving it; False for anything else."""
    now = timezone.now()
    stale = Q(
        assign_status=AssignmentStatus.RUNNING, assign_updated_at__lt=now - timedelta(seconds=ASSIGNMENT_STALE_SECONDS)
    )
    claimable = PersonaProfile.objects.filter(Q(assign_status=AssignmentStatus.PENDING) | stale, pk=persona_id)
    fields = {"assign_done": 0, "assign_changed": 0, "assign_error": "", "assign_updated_at": now}
    return claimable.update(assign_status=AssignmentStatus.RUNNING, **fields) == 1


def persona_assignment_run(*, persona_id: int, user=None) -> PersonaProfile | None:
    """Give a persona made from a cluster to the cluster's members, in batches, saving the progress after each.

    Safe to run twice or to resume: only a pending assignment (or a running one left stale) is taken, and clients
    who already have the persona are skipped. An error marks the assignment failed with its message (not raised).
    Returns the profile as it ends, or None if the persona no longer exists.
    """
    claimed = _assignment_claim(persona_id)
    profile = PersonaProfile.objects.select_related("persona").filter(pk=persona_id).first()
    if profile is None or not claimed:
        return profile
    try:
        _assign_members(profile, user)
    except Exception as exc:
        logger.exception("assigning the members of persona %s failed", persona_id)
        message = str(exc) if isinstance(exc, StudyError) else f"{type(exc).__name__}: {exc}"
        _assignment_save(profile, assign_status=AssignmentStatus.FAILED, assign_error=message[:2000])
        return profile
    _assignment_save(profile, assign_status=AssignmentStatus.DONE)
    return profile


def _assignment_save(profile: PersonaProfile, **fields) -> None:
    fields["assign_updated_at"] = timezone.now()
    for name, value in fields.items():
        setattr(profile, name, value)
    PersonaProfile.objects.filter(pk=profile.pk).update(**fields)


def _assign_members(profile: PersonaProfile, user) -> None:
    labels = ClusterLabel.objects.filter(study_id=profile.study_id)
    if not labels.exists():
        raise StudyError(gettext("The members of this study are no longer kept; run a new study."))
    members = labels.filter(cluster=profile.cluster).order_by("client_id").values_list("client_id", flat=True)
    done, changed, last_id = 0, 0, None
    while True:
        batch = list((members if last_id is None else members.filter(client_id__gt=last_id))[:ASSIGN_BATCH_SIZE])
        if not batch:
            return
        clients = Client.objects.filter(pk__in=batch)
        changed += persona_assign_clients(persona=profile.persona, clients=clients, user=user)
        done, last_id = done + len(batch), batch[-1]
        _assignment_save(profile, assign_done=done, assign_changed=changed)


def persona_assignment_retry(*, persona: Persona, user) -> PersonaProfile:
    """Queue again the assignment of a persona's cluster members that failed or stalled."""
    with transaction.atomic():
        profile = PersonaProfile.objects.select_for_update().filter(persona=persona).first()
        if profile is None:
            raise StudyError(gettext("This persona was not made from a cluster."))
        if not profile.assignment_retryable:
            raise StudyError(gettext("The members of this persona are being assigned already, or have been."))
        if not ClusterLabel.objects.filter(study_id=profile.study_id).exists():
            raise StudyError(gettext("The members of this study are no longer kept; run a new study."))
        _assignment_save(profile, assign_status=AssignmentStatus.PENDING, assign_error="")
        _assignment_enqueue(persona.pk, user)
    return profile


def persona_suggestion(client: Client) -> Persona | None:
    """The persona whose centre is nearest to the client, for a client without one (None: no persona from data).

    The client's features are computed as of today with each study's stored columns and fill values; personas from
    several studies are compared by their distance in their own study's space.
    """
    if client.persona_id is not None:
        return None
    profiles = list(PersonaProfile.objects.select_related("persona", "study").order_by("persona_id"))
    if not profiles:
        return None
    today = timezone.localdate()
    inputs = clustering_inputs(as_of=today, run_id=current_run_id(), client_ids=[client.pk])
    if inputs.clients.empty:
        return None
    features = inputs_features(inputs, as_of=today)
    best, best_distance = None, np.inf
    for study_id in dict.fromkeys(profile.study_id for profile in profiles):
        studied = [profile for profile in profiles if profile.study_id == study_id]
        fitted = studied[0].study.fitted
        vector = scaled_vectors(features_in_space(features, columns=fitted["columns"], fill=fitted["fill"]), fitted)[0]
        for profile in studied:
            distance = float(np.linalg.norm(vector - np.asarray(profile.centroid)))
            if distance < best_distance:
                best, best_distance = profile.persona, distance
    return best
