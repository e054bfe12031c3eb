"""Django admin for every CRM model, open to the Admin role; client edits go through the services (history kept)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from crm import models, reminders, roles, services
from crm.pagination import CappedPaginator


class AdminRoleOnly:
    """Every admin action needs the Admin role, whatever Django permissions the account holds."""

    def _is_admin(self, request) -> bool:
        return roles.role_of(request.user) == roles.ADMIN

    def has_view_permission(self, request, obj=None) -> bool:
        return self._is_admin(request)

    def has_add_permission(self, request, *args) -> bool:
        return self._is_admin(request)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._is_admin(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._is_admin(request)

    def has_module_permission(self, request) -> bool:
        return self._is_admin(request)


User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class PortefeuilleUserAdmin(AdminRoleOnly, UserAdmin):
    pass


@admin.register(Group)
class PortefeuilleGroupAdmin(AdminRoleOnly, GroupAdmin):
    pass


@admin.register(models.Client)
class ClientAdmin(AdminRoleOnly, admin.ModelAdmin):
    list_display = ("__str__", "email", "company", "lifecycle", "stage", "tier", "owner", "last_interaction_at")
    list_filter = ("lifecycle", "stage", "tier", "source")
    search_fields = ("last_name", "first_name", "email", "company", "=external_id")
    list_select_related = ("owner",)
    raw_id_fields = ("owner", "referred_by", "persona")
    autocomplete_fields = ("tags",)
    readonly_fields = ("converted_at", "last_purchase_at", "last_interaction_at", "created_at", "updated_at")
    show_full_result_count = False
    list_per_page = 50

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        # An exact count of a million clients costs more than the page: count up to the list's cap.
        return CappedPaginator(
            queryset,
            per_page,
            cap=settings.CRM_LIST_COUNT_CAP,
            orphans=orphans,
            allow_empty_first_page=allow_empty_first_page,
        )

    def save_model(self, request, obj, form, change):
        data = {name: form.cleaned_data[name] for name in form.changed_data if name in form.cleaned_data}
        if change:
            original = models.Client.objects.get(pk=obj.pk)
            services.client_update(client=original, data=data, user=request.user)
            obj.pk = original.pk
        else:
            created = services.client_create(data=form.cleaned_data, user=request.user)
            obj.pk = created.pk

    def save_related(self, request, form, formsets, change):
        # Many-to-many fields were saved by the service in save_model.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


class PurchaseLineInline(admin.TabularInline):
    model = models.PurchaseLine
    raw_id_fields = ("product",)
    extra = 0


@admin.register(models.Purchase)
class PurchaseAdmin(AdminRoleOnly, admin.ModelAdmin):
    list_display = ("reference", "client", "purchased_on", "amount")
    raw_id_fields = ("client",)
    date_hierarchy = "purchased_on"
    inlines = [PurchaseLineInline]
    show_full_result_count = False


@admin.register(models.Interaction)
class InteractionAdmin(AdminRoleOnly, admin.ModelAdmin):
    list_display = ("client", "kind", "direction", "occurred_at", "subject", "user")
    list_filter = ("kind", "direction")
    raw_id_fields = ("client", "user")
    show_full_result_count = False


@admin.register(models.FollowUp)
class FollowUpAdmin(AdminRoleOnly, admin.ModelAdmin):
    list_display = ("title", "client", "assignee", "due_at", "status", "origin")
    list_filter = ("status", "origin")
    raw_id_fields = ("client", "assignee", "created_by")


@admin.register(models.ClientChange)
class ClientChangeAdmin(AdminRoleOnly, admin.ModelAdmin):
    list_display = ("client", "field", "old_value", "new_value", "user", "changed_at")
    raw_id_fields = ("client", "user")


@admin.register(models.Tag)
class TagAdmin(AdminRoleOnly, admin.ModelAdmin):
    search_fields = ("name",)


@admin.register(models.Category)
class CategoryAdmin(AdminRoleOnly, admin.ModelAdmin):
    search_fields = ("name",)


@admin.register(models.Product)
class ProductAdmin(AdminRoleOnly, admin.ModelAdmin):
    list_display = ("name", "sku", "category", "price")
    search_fields = ("name", "sku")


@admin.register(models.Persona)
class PersonaAdmin(AdminRoleOnly, admin.ModelAdmin):
    list_display = ("name", "created_at")


@admin.register(models.Segment)
class SegmentAdmin(AdminRoleOnly, admin.ModelAdmin):
    list_display = ("name", "created_by", "created_at")


@admin.register(models.Reminder)
class ReminderAdmin(AdminRoleOnly, admin.ModelAdmin):
    """Reminder emails and their delivery state; failed ones can be queued again after the cause is fixed."""

    list_display = ("follow_up", "due_at", "state", "attempts", "next_attempt_at", "sent_at", "last_error")
    list_filter = ("state",)
    list_select_related = ("follow_up",)
    raw_id_fields = ("follow_up",)
    readonly_fields = ("claimed_by", "claimed_at", "sent_at", "created_at")
    actions = ["send_again"]
    show_full_result_count = False

    @admin.action(description=_("Send the selected failed reminders again"))
    def send_again(self, request, queryset):
        count = reminders.reminders_retry(reminder_ids=list(queryset.values_list("pk", flat=True)))
        self.message_user(
            request,
            ngettext("%(count)d reminder queued again.", "%(count)d reminders queued again.", count) % {"count": count},
        )


@admin.register(models.Digest)
class DigestAdmin(AdminRoleOnly, admin.ModelAdmin):
    list_display = ("user", "day", "state", "attempts", "sent_at", "last_error")
    list_filter = ("state", "day")
    raw_id_fields = ("user",)
    readonly_fields = ("claimed_by", "claimed_at", "sent_at", "created_at")
    show_full_result_count = False


@admin.register(models.BulkAction)
class BulkActionAdmin(AdminRoleOnly, admin.ModelAdmin):
    """Read only: a bulk action is applied and undone from the client list, never edited here."""

    list_display = ("created_at", "kind", "description", "user", "status", "touched", "undone_at")
    list_filter = ("kind", "status")
    raw_id_fields = ("user", "undone_by")
    exclude = ("client_ids",)  # up to CRM_BULK_MAX_CLIENTS ids while queued

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
