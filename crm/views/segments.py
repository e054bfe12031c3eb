"""Segments: client-list filters saved under a name, listed with their live counts, opened as a filtered list.

Everyone sees segments; managers and admins create and delete them.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import roles
from crm.filters import client_filter_class
from crm.models import Client, Segment
from crm.services import segment_save
from crm.views.clients import client_table_context, render_client_table

DUPLICATE_NAME = _("A segment with this name already exists. Choose another name.")


class SegmentForm(forms.ModelForm):
    """Name and description of a new segment; ``filters`` carries the client-list query string to save."""

    filters = forms.CharField(required=False, widget=forms.HiddenInput, max_length=4000)

    class Meta:
        model = Segment
        fields = ["name", "description"]
        widgets = {
            "name": forms.TextInput(attrs={"class": "form-control"}),
            "description": forms.Textarea(attrs={"class": "form-control", "rows": 3}),
        }
        error_messages = {"name": {"unique": DUPLICATE_NAME}}

    def clean_filters(self) -> dict[str, str]:
        filterset = client_filter_class()(QueryDict(self.cleaned_data["filters"]), queryset=Client.objects.none())
        if not filterset.is_valid():
            raise forms.ValidationError(_("Some filters are invalid; correct them in the client list first."))
        return filterset.params()


@roles.role_required(*roles.ALL_ROLES)
@require_GET
def segment_list(request: HttpRequest) -> HttpResponse:
    rows = []
    for segment in Segment.objects.select_related("created_by"):
        filterset = client_filter_class()(segment.filters, request=request)
        # One count per segment, of the clients this user may see; a segment whose filters no longer validate
        # (a deleted tag) shows no count rather than a wrong one.
        count = filterset.qs.count() if filterset.is_valid() else None
        rows.append({"segment": segment, "count": count, "filters": filterset.describe()})
    return render(request, "crm/segment_list.html", {"rows": rows})


@roles.role_required(*roles.MANAGERS)
@require_POST
def segment_create(request: HttpRequest) -> HttpResponse:
    """Save the filters posted from the client list; on an error, show the form again with the message."""
    form = SegmentForm(request.POST)
    if form.is_valid():
        try:
            with transaction.atomic():
                segment = segment_save(
                    name=form.cleaned_data["name"],
                    description=form.cleaned_data["description"],
                    filters=form.cleaned_data["filters"],
                    user=request.user,
                )
        except IntegrityError:
            # Someone saved the same name between validation and insert.
            form.add_error("name", DUPLICATE_NAME)
        else:
            messages.success(request, gettext("Segment “%(name)s” saved.") % {"name": segment.name})
            return redirect(segment)
    filterset = client_filter_class()(QueryDict(form["filters"].value() or ""), request=request)
    return render(request, "crm/segment_form.html", {"form": form, "filters": filterset.describe()})


@roles.role_required(*roles.ALL_ROLES)
@require_GET
def segment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_object_or_404(Segment.objects.select_related("created_by"), pk=pk)
    filterset = client_filter_class()(segment.filters, request=request)
    context = {**client_table_context(request, filterset), "segment": segment, "filters": filterset.describe()}
    return render_client_table(request, "crm/segment_detail.html", context)


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "POST"])
def segment_delete(request: HttpRequest, pk: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=pk)
    if request.method == "POST":
        segment.delete()
        messages.success(request, gettext("Segment “%(name)s” deleted.") % {"name": segment.name})
        return redirect("crm:segment-list")
    return render(request, "crm/segment_confirm_delete.html", {"segment": segment})
