"""Django admin for scoring runs and scores, open to the Admin role: read-only, since only runs write them."""

from django.contrib import admin

from crm.admin import AdminRoleOnly
from scoring.models import ClientScore, ClusterStudy, ScoringRun


class ReadOnly(AdminRoleOnly):
    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ScoringRun)
class ScoringRunAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("as_of", "status", "phase", "progress", "started_by", "created_at", "started_at", "finished_at")
    list_filter = ("status",)
    list_select_related = ("started_by",)
    date_hierarchy = "created_at"


@admin.register(ClientScore)
class ClientScoreAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("client", "run", "rfm_code", "segment", "historical_clv", "clv_12m", "p_alive")
    list_select_related = ("client", "run")
    raw_id_fields = ("client", "run")
    search_fields = ("=client__id",)
    # Millions of rows: no exact count on each page.
    show_full_result_count = False


@admin.register(ClusterStudy)
class ClusterStudyAdmin(ReadOnly, admin.ModelAdmin):
    list_display = ("as_of", "status", "k", "clients_count", "created_by", "created_at", "finished_at")
    list_filter = ("status",)
    list_select_related = ("created_by",)
    exclude = ("fitted",)  # the feature scaling and centres: large and meaningless to read
