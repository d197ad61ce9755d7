"""Who may call the API, and how often: tokens, their lifetime, login throttles and lockout.

- `token_user` reads a token's user and roles in one SQL statement, and refuses an expired
  token in that same statement (``created`` + ``API_TOKEN_TTL``). This is our equivalent of
  django-rest-knox's expiring tokens on DRF's own ``authtoken`` table: knox hashes keys and
  keeps several per user, but its lookup is a query per candidate key prefix plus the user
  and role queries; here the hot path of every annotator request stays one query.
- `token_issue` gives a token (a new one when the old has expired), `token_rotate` replaces
  it early (``TokenApi``, ``TokenRotateApi`` in labeling/api/account.py); a password change
  or deactivation deletes the user's tokens (`_revoke_tokens`, connected in apps.py).
- Password guessing: DRF throttles on the token endpoint per address and per username, and
  django-axes locks out a username or an address after ``LOGIN_FAILURE_LIMIT`` failures on
  the login page, the admin login and the token endpoint alike, answering 429 with
  ``Retry-After``.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.http import HttpResponse, JsonResponse
from django.utils import timezone
from rest_framework import authentication, exceptions, throttling
from rest_framework.authtoken.models import Token

from annotation_site.errors import API_PREFIX
from annotation_site.roles import Role

USER = get_user_model()._meta.db_table
USER_GROUPS = get_user_model().groups.through._meta.db_table
GROUP = Group._meta.db_table
TOKEN = Token._meta.db_table


def _oldest_live() -> datetime:
    return timezone.now() - settings.API_TOKEN_TTL


def token_user(key: str):
    """The user owning live API token `key`, with `.role_names` set, or None.

    None as well when the token has expired: the expiry is part of the one query.
    """
    flags = ", ".join(
        f"EXISTS (SELECT 1 FROM {USER_GROUPS} ug JOIN {GROUP} g ON g.id = ug.group_id "
        f"WHERE ug.user_id = u.id AND g.name = %s) AS has_{role.value}"
        for role in Role
    )
    found = get_user_model().objects.raw(
        f"SELECT u.*, {flags} FROM {USER} u JOIN {TOKEN} t ON t.user_id = u.id "
        "WHERE t.key = %s AND t.created > %s",
        [*Role.values, key, _oldest_live()],
    )
    user = next(iter(found), None)
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
            raise exceptions.AuthenticationFailed("Invalid or expired token.")
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return user, key


def token_issue(user) -> Token:
    """The user's live token; a new one when they have none or theirs has expired.

    Writes at most one delete and one insert; a re-run returns the same live token.
    """
    with transaction.atomic():
        Token.objects.filter(user=user, created__lte=_oldest_live()).delete()
        return Token.objects.get_or_create(user=user)[0]


def token_rotate(user) -> Token:
    """Replaces the user's token with a new one: the old key stops working at once."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


@receiver(pre_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="revoke-api-tokens")
def _revoke_tokens(sender, instance, update_fields=None, **kwargs) -> None:
    """A new password or a deactivation deletes the user's API tokens.

    A signal, not a service, because the password changes in places we do not own (the
    admin's forms, ``changepassword``, Django's password views). Saves that touch neither field
    (``last_login`` on every login) cost nothing; others read the old row once. A queryset
    ``update()`` bypasses this: deactivate users with ``save()``.
    """
    if instance.pk is None:
        return
    if update_fields is not None and not {"password", "is_active"} & set(update_fields):
        return
    old = sender.objects.filter(pk=instance.pk).values_list("password", "is_active").first()
    if old is None:
        return
    if old[0] != instance.password or (old[1] and not instance.is_active):
        Token.objects.filter(user_id=instance.pk).delete()


def client_address(request) -> str:
    """The caller's address, read as DRF's throttles read it (``NUM_PROXIES``), for axes."""
    return throttling.BaseThrottle().get_ident(request)


AXES_USERNAME_LENGTH = AccessAttempt._meta.get_field("username").max_length


def login_username(request, credentials=None):
    """The username axes counts a login under (``AXES_USERNAME_CALLABLE``): axes' own choice
    (the credentials', else the form's), cut to the 255 characters its tables hold.

    No account's name is that long (150 at most), so a longer one is a wrong username like any
    other: the form or the token endpoint says so, and the guess counts towards both lockouts,
    where axes' own reading would fail to record it (a 500; PostgreSQL enforces the length).
    """
    field = getattr(settings, "AXES_USERNAME_FORM_FIELD", "username")
    if credentials:
        username = credentials.get(field)
    else:
        username = getattr(request, "data", request.POST).get(field)
    if isinstance(username, str):
        return username[:AXES_USERNAME_LENGTH]
    return username


class LoginLockoutBackend(AxesStandaloneBackend):
    """django-axes' lockout check for logins that come with an HTTP request.

    Without a request (``createsuperuser``, a script, the test client's ``login``) there is
    no address to count and no one guessing over the network, so it defers to the next
    backend instead of raising as axes does.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username, password, **kwargs)


def cool_off_seconds(request) -> int:
    return int(get_cool_off(request).total_seconds())


def lockout_message(wait: int) -> str:
    return f"Too many failed logins. Try again in {max(1, -(-wait // 60))} minutes."


def lockout_response(request, original_response=None, credentials=None) -> HttpResponse:
    """axes' answer to a locked-out login: 429 with ``Retry-After`` (JSON under /api/)."""
    wait = cool_off_seconds(request)
    if request.path.startswith(API_PREFIX):
        response = JsonResponse({"detail": lockout_message(wait)}, status=429)
    else:
        response = HttpResponse(
            lockout_message(wait), status=429, content_type="text/plain; charset=utf-8"
        )
    response["Retry-After"] = str(wait)
    return response


class UsernameRateThrottle(throttling.SimpleRateThrottle):
    """Token requests per username, whichever address they come from."""

    scope = "auth-token-user"

    def get_cache_key(self, request, view):
        username = request.data.get("username") if hasattr(request.data, "get") else None
        if not isinstance(username, str) or not username:
            return None
        ident = hashlib.sha256(username.strip().lower().encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
