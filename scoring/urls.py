"""URLs of the scoring pages, namespaced ``scoring:``."""

from django.urls import path

from scoring import views

app_name = "scoring"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("runs/", views.run_list, name="run-list"),
    path("runs/start/", views.run_start, name="run-start"),
    path("runs/progress/", views.run_progress, name="run-progress"),
]
