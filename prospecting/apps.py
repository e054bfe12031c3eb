"""App configuration for prospecting."""

from django.apps import AppConfig


class ProspectingConfig(AppConfig):
    name = "prospecting"
