"""URLs of the scoring pages, namespaced ``scoring:``."""

from django.urls import path

from scoring import views, views_analysis, views_personas

app_name = "scoring"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("runs/", views.run_list, name="run-list"),
    path("runs/start/", views.run_start, name="run-start"),
    path("runs/progress/", views.run_progress, name="run-progress"),
    path("analysis/", views_analysis.analysis, name="analysis"),
    path("analysis/export.csv", views_analysis.analysis_export, name="analysis-export"),
    path("personas/", views_personas.persona_builder, name="persona-builder"),
    path("personas/studies/start/", views_personas.study_start, name="study-start"),
    path("personas/studies/progress/", views_personas.study_progress, name="study-progress"),
    path("personas/studies/<int:pk>/persona/", views_personas.study_persona_create, name="study-persona-create"),
    path("personas/clients/<int:pk>/assign/", views_personas.client_persona_assign, name="client-persona-assign"),
    path("personas/<int:pk>/assignment/", views_personas.persona_assignment, name="persona-assignment"),
    path(
        "personas/<int:pk>/assignment/retry/",
        views_personas.persona_assignment_retry,
        name="persona-assignment-retry",
    ),
]
