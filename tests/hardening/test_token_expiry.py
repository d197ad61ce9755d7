"""API tokens expire, rotate, and die with a password change or a deactivation."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import RequestFactory
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation_site.auth import TokenAuthentication
from tests.conftest import PASSWORD

NEXT = "/api/v1/tasks/next/"


def with_token(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def age(token: Token, by: timedelta) -> None:
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - by)


def obtain(username="alice") -> dict:
    r = APIClient().post(
        "/api/v1/auth/token/", {"username": username, "password": PASSWORD}, format="json"
    )
    assert r.status_code == 200, r.content
    return r.json()


@pytest.mark.django_db
class TokenExpiryTests:
    def test_an_expired_token_is_refused(self, campaign, alice):
        token = Token.objects.create(user=alice)
        assert with_token(token.key).post(NEXT).status_code == 204
        age(token, settings.API_TOKEN_TTL + timedelta(seconds=1))
        r = with_token(token.key).post(NEXT)
        assert r.status_code == 401 and r.json()["detail"] == "Invalid or expired token."

    def test_a_token_just_inside_its_lifetime_works(self, campaign, alice):
        token = Token.objects.create(user=alice)
        age(token, settings.API_TOKEN_TTL - timedelta(minutes=1))
        assert with_token(token.key).post(NEXT).status_code == 204

    def test_it_reads_the_user_roles_and_expiry_in_one_query(
        self, alice, django_assert_num_queries
    ):
        key = Token.objects.create(user=alice).key
        request = RequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {key}")
        with django_assert_num_queries(1):
            user, _ = TokenAuthentication().authenticate(request)
        assert user == alice and user.role_names == {"annotator"}

    def test_the_token_endpoint_returns_the_live_token_and_when_it_expires(self, alice):
        first, again = obtain(), obtain()
        assert first["token"] == again["token"]
        token = Token.objects.get(user=alice)
        assert first["expires_at"].startswith(
            (token.created + settings.API_TOKEN_TTL).isoformat()[:16]
        )

    def test_the_token_endpoint_issues_a_new_token_once_the_old_has_expired(self, alice):
        old = obtain()["token"]
        age(Token.objects.get(key=old), settings.API_TOKEN_TTL + timedelta(seconds=1))
        new = obtain()["token"]
        assert new != old and not Token.objects.filter(key=old).exists()

    def test_rotate_replaces_the_token_at_once(self, campaign, alice):
        old = obtain()["token"]
        r = with_token(old).post("/api/v1/auth/token/rotate/")
        assert r.status_code == 200
        new = r.json()["token"]
        assert new != old
        assert with_token(old).post(NEXT).status_code == 401
        assert with_token(new).post(NEXT).status_code == 204

    def test_rotate_needs_credentials_and_a_post(self, alice):
        assert APIClient().post("/api/v1/auth/token/rotate/").status_code == 401
        key = obtain()["token"]
        assert with_token(key).get("/api/v1/auth/token/rotate/").status_code == 405

    def test_a_password_change_revokes_the_users_tokens(self, alice, bob):
        alice_key, bob_key = obtain("alice")["token"], obtain("bob")["token"]
        alice.set_password("another-long-password")
        alice.save()
        assert not Token.objects.filter(key=alice_key).exists()
        assert Token.objects.filter(key=bob_key).exists()

    def test_a_deactivation_revokes_the_users_tokens(self, alice):
        key = obtain()["token"]
        alice.is_active = False
        alice.save()
        assert not Token.objects.filter(key=key).exists()

    def test_other_saves_keep_the_token(self, alice):
        key = obtain()["token"]  # the login itself saves last_login
        alice.first_name = "Alice"
        alice.save()
        alice.save(update_fields=["last_login"])
        assert Token.objects.filter(key=key).exists()

    def test_the_admin_password_form_revokes_tokens(self, client, alice, admin_user):
        key = obtain()["token"]
        assert client.login(username="admin", password=PASSWORD)
        r = client.post(
            f"/admin/auth/user/{alice.pk}/password/",
            {"password1": "x-brand-new-pass-1", "password2": "x-brand-new-pass-1"},
        )
        assert r.status_code == 302
        assert not Token.objects.filter(key=key).exists()
