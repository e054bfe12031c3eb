"""The persona builder, for managers and admins: launch a study of the portfolio, read its clusters and which
variables mattered, turn a cluster into a persona; and the Assign button of the persona suggested on a card.

The members of a persona made from a large cluster are assigned by a worker: a partial shows how far it went (polled
while it goes), and managers may start a failed or stalled assignment again.

The builder shows the latest finished study; while a study is going the progress partial polls and reloads the page
once it has finished. The study itself (pandas, scikit-learn) runs in a worker (``scoring.personas``).
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from crm import roles
from crm.models import Client, Gender, Persona
from crm.services import persona_assign_clients
from scoring.forms import PersonaFromClusterForm, StudyStartForm
from scoring.models import AssignmentStatus, ClusterStudy, PersonaProfile, StudyStatus
from scoring.panels import assignment_context

IN_PROGRESS = frozenset({StudyStatus.QUEUED, StudyStatus.RUNNING})
# The variables of scoring.clustering.FEATURE_GROUPS, as the builder names them.
VARIABLE_LABELS = {
    "age": gettext_lazy("Age band"),
    "gender": gettext_lazy("Gender"),
    "location": gettext_lazy("Location (city, country)"),
    "sector": gettext_lazy("Sector"),
    "job": gettext_lazy("Job"),
    "frequency": gettext_lazy("Purchase frequency"),
    "basket": gettext_lazy("Average basket"),
    "categories": gettext_lazy("Product categories bought"),
    "RFM": gettext_lazy("RFM score"),
    "CLV": gettext_lazy("Predicted CLV (12 months)"),
}
SCORE_VARIABLES = ("RFM", "CLV")
# (lowest share, what it means), highest first.
IMPORTANCE_LEVELS = (
    (0.5, gettext_lazy("sets the clusters apart strongly")),
    (0.2, gettext_lazy("helps tell them apart")),
    (0.0, gettext_lazy("mattered little")),
)
PHASE_LABELS = {
    "read": gettext_lazy("reading the clients"),
    "features": gettext_lazy("computing the variables"),
    "choose_k": gettext_lazy("choosing the number of clusters"),
    "fit": gettext_lazy("finding the clusters"),
    "assign": gettext_lazy("placing every client"),
    "describe": gettext_lazy("describing the clusters"),
    "importance": gettext_lazy("measuring which variables mattered"),
    "write": gettext_lazy("saving"),
}
UNKNOWN_VALUES = {"unknown": gettext_lazy("unknown"), "other": gettext_lazy("other")}


def _number(text: object) -> int | None:
    """A whole number typed in a request (or a form's initial one), or None: ``str.isdigit`` also accepts "²", which
    ``int`` cannot read; and cluster 0 is a number, not a missing value."""
    text = "" if text is None else str(text)
    return int(text) if text.isascii() and text.isdigit() else None


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def _trait(value: str, share: float | None, labels: dict | None = None) -> dict:
    label = (labels or {}).get(value) or UNKNOWN_VALUES.get(value) or value
    return {"value": label, "percent": share * 100 if share is not None else None}


def _cluster_row(description: dict, persona_profile: PersonaProfile | None) -> dict:
    from scoring.clustering import job_family_label  # pandas: only on this page
    from scoring.personas import localised_profile_text

    genders = dict(Gender.choices)
    jobs = {description["job"]: job_family_label(description["job"], translate=_)}
    return {
        **description,
        "share_percent": description["share"] * 100,
        "profile": localised_profile_text(description),
        "traits": [
            (_("Age band"), _trait(description["age_band"], description["age_band_share"])),
            (_("Gender"), _trait(description["gender"], description["gender_share"], genders)),
            (_("City"), _trait(description["city"], description["city_share"])),
            (_("Sector"), _trait(description["sector"], description["sector_share"])),
            (_("Job"), _trait(description["job"], description["job_share"], jobs)),
        ],
        "top_categories": [(name, share * 100) for name, share in description.get("top_categories", [])],
        "persona": persona_profile.persona if persona_profile else None,
        "persona_profile": persona_profile,
    }


def _importance_rows(importance: list, *, scored: bool) -> list[dict]:
    """The variables by how much they mattered; RFM and CLV are left out of a study made without scores."""
    return [
        {
            "label": VARIABLE_LABELS.get(group, group),
            "percent": share * 100,
            "meaning": next(meaning for floor, meaning in IMPORTANCE_LEVELS if share >= floor),
        }
        for group, share in importance
        if scored or group not in SCORE_VARIABLES
    ]


def _progress_context(study: ClusterStudy | None) -> dict:
    return {
        "latest": study,
        "running": study is not None and study.status in IN_PROGRESS,
        "phase_label": PHASE_LABELS.get(study.phase, study.phase) if study else "",
    }


def _progress_response(request: HttpRequest, study: ClusterStudy | None, *, notice: str = "") -> HttpResponse:
    response = render(request, "scoring/_study_progress.html", {**_progress_context(study), "notice": notice})
    # A study that has finished reloads the page to show it; a notice (a study refused) stays on screen.
    if _is_htmx(request) and not notice and study is not None and study.status not in IN_PROGRESS:
        response["HX-Refresh"] = "true"
    return response


def _latest_study() -> ClusterStudy | None:
    return ClusterStudy.objects.defer("fitted").first()


@roles.role_required(*roles.MANAGERS)
@require_safe
def persona_builder(request: HttpRequest) -> HttpResponse:
    study = ClusterStudy.objects.defer("fitted").latest_done()
    context = {"form": StudyStartForm(), "study": study, **_progress_context(_latest_study())}
    if study is not None:
        personas = {
            profile.cluster: profile for profile in PersonaProfile.objects.filter(study=study).select_related("persona")
        }
        context["clusters"] = [_cluster_row(row, personas.get(row["cluster"])) for row in study.clusters]
        context["importance"] = _importance_rows(study.importance, scored=study.scoring_run_id is not None)
    return render(request, "scoring/persona_builder.html", context)


@roles.role_required(*roles.MANAGERS)
@require_POST
def study_start(request: HttpRequest) -> HttpResponse:
    from scoring import personas  # pandas and scikit-learn, which no other page of the web process needs

    form = StudyStartForm(request.POST)
    notice = ""
    if not form.is_valid():
        notice = _("Choose a number of clusters: automatic, 2, 3 or 4.")
    else:
        try:
            personas.cluster_study_start(k=form.cleaned_data["k"], user=request.user)
        except (personas.StudyInProgress, personas.StudyError) as exc:
            notice = str(exc)
    if _is_htmx(request):
        return _progress_response(request, _latest_study(), notice=notice)
    if notice:
        messages.warning(request, notice)
    else:
        messages.success(request, _("Persona study started."))
    return redirect("scoring:persona-builder")


@roles.role_required(*roles.MANAGERS)
@require_safe
def study_progress(request: HttpRequest) -> HttpResponse:
    """The latest study's status, phase and progress: polled every two seconds while it is going."""
    return _progress_response(request, _latest_study())


def _cluster_labels(study: ClusterStudy) -> dict[int, str]:
    return {
        row["cluster"]: ngettext(
            "Cluster %(number)d (%(size)d client)", "Cluster %(number)d (%(size)d clients)", row["size"]
        )
        % {"number": row["cluster"] + 1, "size": row["size"]}
        for row in study.clusters
    }


def _initial(study: ClusterStudy, cluster: str | None) -> dict:
    from scoring.personas import cluster_profile_texts

    number = _number(cluster)
    description = study.cluster(number) if number is not None else None
    if description is None:
        return {}
    demographics, behaviour = cluster_profile_texts(description)
    return {"cluster": description["cluster"], "demographics": demographics, "behaviour": behaviour}


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def study_persona_create(request: HttpRequest, pk: int) -> HttpResponse:
    """Turn a cluster of a finished study into a persona; its members are assigned to it."""
    from scoring import personas

    study = get_object_or_404(ClusterStudy, pk=pk)
    if study.status != StudyStatus.DONE:
        raise Http404("study not finished")
    form = PersonaFromClusterForm(
        request.POST or None,
        study=study,
        cluster_labels=_cluster_labels(study),
        initial=_initial(study, request.GET.get("cluster")),
    )
    if request.method == "POST" and form.is_valid():
        data = {name: value for name, value in form.cleaned_data.items() if name != "cluster"}
        try:
            persona, assigned = personas.persona_from_cluster(
                study=study, cluster=form.cleaned_data["cluster"], data=data, user=request.user
            )
        except personas.StudyError as exc:
            form.add_error(None, str(exc))
        else:
            profile = PersonaProfile.objects.get(persona=persona)
            if profile.assign_status == AssignmentStatus.FAILED:
                messages.warning(
                    request,
                    _("Persona created, but its members could not be assigned: %(error)s")
                    % {"error": profile.assign_error},
                )
            elif assigned is None:
                messages.success(request, _("Persona created; its members are being assigned in the background."))
            else:
                message = ngettext(
                    "Persona created and given to %(count)d client.",
                    "Persona created and given to %(count)d clients.",
                    assigned,
                )
                messages.success(request, message % {"count": assigned})
            return redirect(persona)
    selected = _number(form["cluster"].value())
    description = study.cluster(selected) if selected is not None else None
    context = {"form": form, "study": study, "cluster": _cluster_row(description, None) if description else None}
    return render(request, "scoring/persona_from_cluster.html", context)


@roles.role_required(*roles.MANAGERS)
@require_POST
def client_persona_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """The Assign button of the suggested persona on a client's card."""
    client = get_object_or_404(Client.objects.editable_by(request.user), pk=pk)
    persona_id = _number(request.POST.get("persona"))
    persona = Persona.objects.filter(pk=persona_id).first() if persona_id is not None else None
    if persona is None:
        messages.error(request, _("Choose a persona that exists."))
        return redirect(client)
    persona_assign_clients(persona=persona, clients=Client.objects.filter(pk=client.pk), user=request.user)
    messages.success(
        request, _("%(client)s now fits the persona %(persona)s.") % {"client": client, "persona": persona}
    )
    return redirect(client)


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def persona_assignment(request: HttpRequest, pk: int) -> HttpResponse:
    """How far the assignment of a persona's cluster members went: polled every two seconds while it goes, then the
    page reloads to show the members."""
    persona = get_object_or_404(Persona, pk=pk)
    profile = PersonaProfile.objects.filter(persona=persona).first()
    response = render(request, "scoring/_persona_assignment.html", assignment_context(request, persona, profile))
    if _is_htmx(request) and profile is not None and not profile.assignment_in_progress:
        response["HX-Refresh"] = "true"
    return response


@roles.role_required(*roles.MANAGERS)
@require_POST
def persona_assignment_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Queue again the assignment of a persona's cluster members that failed or stopped."""
    from scoring import personas

    persona = get_object_or_404(Persona, pk=pk)
    try:
        personas.persona_assignment_retry(persona=persona, user=request.user)
    except personas.StudyError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("The members of this persona are being assigned again."))
    return redirect(persona)
