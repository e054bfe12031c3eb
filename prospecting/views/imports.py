"""Import pages, for admins: upload, mapping and options, preview (dry run), apply with a progress bar, undo, and
the error report as CSV. Reading, planning and writing live in ``prospecting.imports``; the apply runs in a worker.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from crm import roles
from crm.exports import csv_stream
from crm.models import Client
from prospecting import imports as services
from prospecting.forms_imports import ImportOptionsForm, ImportUploadForm
from prospecting.models import ImportJob, ImportKind, ImportStatus, SavedMapping, UpdatePolicy
from prospecting.readers import ImportFileError

PREVIEW_PAGE_SIZE = 50
CONFLICTS_SHOWN = 200


def _get_job(pk: int, *, with_file: bool = False) -> ImportJob:
    jobs = ImportJob.objects.select_related("uploaded_by")
    return get_object_or_404(jobs if with_file else jobs.defer("data"), pk=pk)


def _file_error_text(error: ImportFileError) -> str:
    return "\n".join([error.message, *error.details])


@roles.role_required(roles.ADMIN)
@require_safe
def import_list(request: HttpRequest) -> HttpResponse:
    jobs = ImportJob.objects.defer("data", "preview_rows", "errors").select_related("uploaded_by")[:100]
    return render(request, "prospecting/import_list.html", {"jobs": jobs})


@roles.role_required(roles.ADMIN)
@require_http_methods(["GET", "POST"])
def import_upload(request: HttpRequest) -> HttpResponse:
    form = ImportUploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = services.import_create(
                data=upload.read(), filename=upload.name, kind=form.cleaned_data["kind"], user=request.user
            )
        except ImportFileError as exc:
            form.add_error("file", _file_error_text(exc))
        else:
            for note in job.notes:
                messages.info(request, note)
            return redirect("prospecting:import-mapping", job.pk)
    return render(request, "prospecting/import_upload.html", {"form": form}, status=400 if form.errors else 200)


@roles.role_required(roles.ADMIN)
@require_http_methods(["GET", "POST"])
def import_mapping(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_job(pk, with_file=True)
    if job.status not in (ImportStatus.UPLOADED, ImportStatus.PREVIEWED, ImportStatus.FAILED):
        return redirect(job)
    saved = SavedMapping.objects.filter(kind=job.kind)
    chosen = saved.filter(pk=request.GET.get("saved") or 0).first()
    if chosen is not None:
        job.mapping = services.saved_mapping_apply(chosen.mapping, job.header)
        job.options = {**job.options, "field_policies": chosen.field_policies}
    form = ImportOptionsForm(request.POST or None, job=job)
    if request.method == "POST" and form.is_valid():
        services.import_configure(job=job, mapping=form.mapping(), options=form.options())
        if form.cleaned_data.get("save_mapping_as"):
            SavedMapping.objects.create(
                name=form.cleaned_data["save_mapping_as"],
                kind=job.kind,
                mapping=job.mapping,
                field_policies=job.options["field_policies"],
                created_by=request.user,
            )
        try:
            services.import_preview_start(job=job)
        except ImportFileError as exc:
            messages.error(request, _file_error_text(exc))
        return redirect(job)
    context = {"job": job, "form": form, "saved_mappings": saved, "chosen": chosen}
    return render(request, "prospecting/import_mapping.html", context)


def _detail_context(request: HttpRequest, job: ImportJob) -> dict:
    page = Paginator(job.preview_rows, PREVIEW_PAGE_SIZE).get_page(request.GET.get("page"))
    return {"job": job, "page": page, "errors": job.errors[:PREVIEW_PAGE_SIZE], "policies": _policies_shown(job)}


def _policies_shown(job: ImportJob) -> dict | None:
    """The file-wide update policy and the fields given another one, as the admin reads them; None for purchases."""
    if job.kind != ImportKind.PEOPLE:
        return None
    labels = dict(UpdatePolicy.choices)
    default = job.options.get("policy") or UpdatePolicy.FILL_EMPTY
    fields = [
        (Client._meta.get_field(name).verbose_name, labels.get(policy, policy))
        for name, policy in (job.options.get("field_policies") or {}).items()
        if policy != default and name in services.UPDATABLE_FIELDS
    ]
    return {"default": labels.get(default, default), "fields": fields}


@roles.role_required(roles.ADMIN)
@require_safe
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    services.import_fail_stale()
    job = _get_job(pk)
    return render(request, "prospecting/import_detail.html", _detail_context(request, job))


@roles.role_required(roles.ADMIN)
@require_safe
def import_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The status and progress bar, polled while the job is queued or applying."""
    services.import_fail_stale()
    job = _get_job(pk)
    response = render(request, "prospecting/_import_progress.html", {"job": job})
    if request.headers.get("HX-Request") and not job.is_running:
        response["HX-Refresh"] = "true"  # finished: the whole page shows the final counts and actions
    return response


@roles.role_required(roles.ADMIN)
@require_POST
def import_apply(request: HttpRequest, pk: int) -> HttpResponse:
    with transaction.atomic():
        job = get_object_or_404(ImportJob.objects.defer("data").select_for_update(), pk=pk)
        if not job.can_apply:
            messages.warning(request, gettext("This import cannot be applied now."))
        else:
            services.import_queue(job=job)
    return redirect(job)


@roles.role_required(roles.ADMIN)
@require_http_methods(["GET", "POST"])
def import_undo(request: HttpRequest, pk: int) -> HttpResponse:
    job = _get_job(pk)
    if not job.can_undo:
        messages.warning(request, gettext("Only an applied import can be undone."))
        return redirect(job)
    if request.method == "POST":
        kept = services.import_undo(job_id=job.pk, user=request.user)
        messages.success(request, gettext("The import was undone."))
        if kept:
            messages.warning(
                request,
                ngettext(
                    "%(count)d record edited since the import was kept as edited.",
                    "%(count)d records edited since the import were kept as edited.",
                    len(kept),
                )
                % {"count": len(kept)},
            )
        return redirect(job)
    conflicts = services.import_undo_conflicts(job=job)
    clients = services.Client.objects.in_bulk(list(conflicts)[:CONFLICTS_SHOWN])
    rows = [(clients[pk], sorted(fields)) for pk, fields in conflicts.items() if pk in clients]
    return render(request, "prospecting/import_undo.html", {"job": job, "conflicts": rows, "total": len(conflicts)})


@roles.role_required(roles.ADMIN)
@require_safe
def import_errors(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """Every error line with its reason and the original cells; each cell neutralised against formulas."""
    job = _get_job(pk)
    header = [gettext("line"), gettext("column"), gettext("reason"), gettext("original cells")]
    rows = ([error["line"], error["column"], error["reason"], *error["cells"]] for error in job.errors)
    response = StreamingHttpResponse(csv_stream(header, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
