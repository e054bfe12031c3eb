"""Template context: the current user's role, so menus show only the doors they may open."""

from crm import roles


def user_role(request) -> dict:
    role = roles.role_of(getattr(request, "user", None))
    return {
        "user_role": role,
        "user_role_label": roles.ROLE_LABELS.get(role, ""),
        "is_manager": role in roles.MANAGERS,
        "is_admin": role in roles.ADMINS,
    }
