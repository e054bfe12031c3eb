"""URLs of the imports, included under ``prospecting/imports/`` in the ``prospecting:`` namespace."""

from django.urls import path

from prospecting.views import imports

urlpatterns = [
    path("", imports.import_list, name="import-list"),
    path("new/", imports.import_upload, name="import-upload"),
    path("<int:pk>/", imports.import_detail, name="import-detail"),
    path("<int:pk>/mapping/", imports.import_mapping, name="import-mapping"),
    path("<int:pk>/progress/", imports.import_progress, name="import-progress"),
    path("<int:pk>/apply/", imports.import_apply, name="import-apply"),
    path("<int:pk>/undo/", imports.import_undo, name="import-undo"),
    path("<int:pk>/errors.csv", imports.import_errors, name="import-errors"),
]
