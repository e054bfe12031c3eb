"""The Django admin, open to the Admin role only."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig


class PortefeuilleAdminSite(admin.AdminSite):
    site_header = "Portefeuille"
    site_title = "Portefeuille"

    def has_permission(self, request) -> bool:
        from crm import roles

        return roles.role_of(request.user) == roles.ADMIN


class PortefeuilleAdminConfig(AdminConfig):
    default_site = "portfolio.admin.PortefeuilleAdminSite"
