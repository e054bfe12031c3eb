"""The three roles of the product (Rep, Manager, Admin), held as Django groups, and the view decorators that check them.

A user without one of these groups, or a superuser, sees nothing but the login page.
"""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext_lazy as _

REP = "Rep"
MANAGER = "Manager"
ADMIN = "Admin"
ROLES = (REP, MANAGER, ADMIN)
_RANK = {REP: 1, MANAGER: 2, ADMIN: 3}

# What the interface calls each role (the group names stay as they are in the database).
ROLE_LABELS = {REP: _("Sales rep"), MANAGER: _("Manager"), ADMIN: _("Administrator")}

ALL_ROLES = ROLES
MANAGERS = (MANAGER, ADMIN)
ADMINS = (ADMIN,)


def role_of(user) -> str | None:
    """The highest role of a user, cached on the user object for the request."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if not hasattr(user, "_portefeuille_role"):
        if user.is_superuser:
            role = ADMIN
        else:
            names = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
            role = max(names, key=_RANK.__getitem__) if names else None
        user._portefeuille_role = role
    return user._portefeuille_role


def role_required(*allowed: str):
    """Allow the view only to logged-in users holding one of ``allowed`` roles (403 otherwise)."""
    allowed = allowed or ALL_ROLES

    def decorator(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if role_of(request.user) not in allowed:
                raise PermissionDenied
            return view(request, *args, **kwargs)

        wrapper.allowed_roles = allowed
        return wrapper

    return decorator
