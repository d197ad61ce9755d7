"""Token authentication that reads the user and their roles in one cheap query."""

from __future__ import annotations

from rest_framework import authentication, exceptions

from labeling import sql


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token scheme (``Authorization: Token <key>``) over `labeling.sql.token_user`.

    DRF's own class reads the token and user through the ORM, and the role check every
    annotator endpoint makes would add a query; this is one SQL statement for both.
    """

    def authenticate_credentials(self, key):
        user = sql.token_user(key)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, key
