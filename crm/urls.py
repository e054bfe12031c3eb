"""URLs of the CRM core, namespaced ``crm:``."""

from django.urls import path

from crm.views import bulk, card, clients, followups, home, personas, segments

app_name = "crm"

urlpatterns = [
    path("", home.home, name="home"),
    path("clients/", clients.client_list, name="client-list"),
    path("clients/export.csv", clients.client_export, name="client-export"),
    path("clients/new/", card.client_create, name="client-create"),
    path("clients/duplicates/", card.client_duplicates, name="client-duplicates"),
    path("clients/<int:pk>/", card.client_detail, name="client-detail"),
    path("clients/<int:pk>/edit/", card.client_edit, name="client-edit"),
    path("clients/<int:pk>/delete/", card.client_delete, name="client-delete"),
    path("clients/<int:pk>/interactions/new/", card.interaction_create, name="interaction-create"),
    path("clients/<int:pk>/follow-ups/new/", card.follow_up_create, name="follow-up-create"),
    path("follow-ups/<int:pk>/close/", card.follow_up_close, name="follow-up-close"),
    path("follow-ups/plan/", followups.follow_up_bulk, name="follow-up-bulk"),
    path("reminders/badge/", followups.reminder_badge, name="reminder-badge"),
    path("clients/bulk/", bulk.bulk_action, name="bulk-action"),
    path("bulk-actions/", bulk.bulk_action_list, name="bulk-action-list"),
    path("bulk-actions/<int:pk>/", bulk.bulk_action_detail, name="bulk-action-detail"),
    path("bulk-actions/<int:pk>/progress/", bulk.bulk_action_progress, name="bulk-action-progress"),
    path("bulk-actions/<int:pk>/undo/", bulk.bulk_action_undo, name="bulk-action-undo"),
    path("segments/", segments.segment_list, name="segment-list"),
    path("segments/new/", segments.segment_create, name="segment-create"),
    path("segments/<int:pk>/", segments.segment_detail, name="segment-detail"),
    path("segments/<int:pk>/delete/", segments.segment_delete, name="segment-delete"),
    path("personas/", personas.persona_list, name="persona-list"),
    path("personas/new/", personas.persona_create, name="persona-create"),
    path("personas/<int:pk>/", personas.persona_detail, name="persona-detail"),
    path("personas/<int:pk>/edit/", personas.persona_edit, name="persona-edit"),
    path("personas/<int:pk>/assign/", personas.persona_assign, name="persona-assign"),
]
