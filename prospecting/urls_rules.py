"""URLs of the automation rules, included under ``prospecting/rules/`` in the ``prospecting:`` namespace."""

from django.urls import path

from prospecting.views import rules

urlpatterns = [
    path("", rules.rule_list, name="rule-list"),
    path("new/", rules.rule_create, name="rule-create"),
    path("preview/", rules.rule_preview, name="rule-preview"),
    path("<int:pk>/", rules.rule_edit, name="rule-edit"),
    path("<int:pk>/apply/", rules.rule_apply, name="rule-apply"),
    path("<int:pk>/delete/", rules.rule_delete, name="rule-delete"),
]
