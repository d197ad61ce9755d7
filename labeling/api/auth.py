"""Token authentication that reads the user and their roles in one cheap query."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework import authentication, exceptions
from rest_framework.authtoken.models import Token

from labeling.models import Role
from labeling.sql import USER, _first

USER_GROUPS = get_user_model().groups.through._meta.db_table
GROUP = Group._meta.db_table
TOKEN = Token._meta.db_table


def token_user(key: str):
    """The active user owning API token `key`, with `.role_names` set, or None."""
    flags = ", ".join(
        f"EXISTS (SELECT 1 FROM {USER_GROUPS} ug JOIN {GROUP} g ON g.id = ug.group_id "
        f"WHERE ug.user_id = u.id AND g.name = %s) AS has_{role.value}"
        for role in Role
    )
    user = _first(
        get_user_model().objects.raw(
            f"SELECT u.*, {flags} FROM {USER} u JOIN {TOKEN} t ON t.user_id = u.id "
            "WHERE t.key = %s",
            [*Role.values, key],
        )
    )
    if user is not None:
        user.role_names = {role for role in Role.values if getattr(user, f"has_{role}")}
    return user


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token scheme (``Authorization: Token <key>``) over `token_user`.

    DRF's own class reads the token and user through the ORM, and the role check every
    annotator endpoint makes would add a query; this is one SQL statement for both.
    """

    def authenticate_credentials(self, key):
        user = token_user(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, key
