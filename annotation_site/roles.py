"""Roles, site-wide: Django groups of these names, read once per request or token.

Every app asks ``user_has_role``; the base template gets ``roles`` from
``annotation_site.context_processors``. Staff users are the admins and hold every role.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """Roles are Django groups of these names; staff users are the admins."""

    ANNOTATOR = "annotator", _("Annotator")
    EXTRACTOR = "extractor", _("Extractor")
    REVIEWER = "reviewer", _("Reviewer")


def user_has_role(user, role: Role) -> bool:
    """Whether ``user`` holds ``role`` (a Django group of its name); staff hold every role.

    The groups are read once per user object: token authentication sets ``role_names`` with
    the user (``annotation_site.auth.token_user``, one query for both); a session's user
    queries them on the first call and keeps them."""
    if not user.is_authenticated:
        return False
    if user.is_staff:
        return True
    names = getattr(user, "role_names", None)
    if names is None:
        names = user.role_names = set(user.groups.values_list("name", flat=True))
    return role.value in names
