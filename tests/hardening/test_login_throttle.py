"""Password guessing: throttles on the token endpoint, lockout on every login, then recovery."""

import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.test import Client
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from tests.conftest import PASSWORD

TOKEN = "/api/v1/auth/token/"
COOLOFF = timedelta(minutes=15)


@pytest.fixture(autouse=True)
def low_failure_limit(settings):
    settings.AXES_FAILURE_LIMIT = 3
    settings.AXES_COOLOFF_TIME = COOLOFF


def token(username, password, addr="198.51.100.7"):
    return APIClient().post(
        TOKEN, {"username": username, "password": password}, format="json", REMOTE_ADDR=addr
    )


def form_login(path, username, password, addr="198.51.100.7"):
    return Client().post(path, {"username": username, "password": password}, REMOTE_ADDR=addr)


def cool_off_passes():
    AccessAttempt.objects.update(attempt_time=AccessAttempt.objects.get().attempt_time - COOLOFF)


@pytest.mark.django_db
class TokenThrottleTests:
    @pytest.fixture(autouse=True)
    def low_rates(self, monkeypatch, settings):
        settings.AXES_FAILURE_LIMIT = 100  # the throttles alone, here
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "auth-token", "4/min")
        monkeypatch.setitem(SimpleRateThrottle.THROTTLE_RATES, "auth-token-user", "3/min")

    def test_it_throttles_one_address_then_lets_it_in_after_the_window(
        self, monkeypatch, alice, bob
    ):
        for username in ("u1", "u2", "u3", "u4"):
            assert token(username, "wrong").status_code == 400
        r = token("alice", PASSWORD)
        assert r.status_code == 429
        assert 0 < int(r["Retry-After"]) <= 60
        assert "throttled" in r.json()["detail"].lower()
        assert token("bob", PASSWORD, addr="198.51.100.8").status_code == 200  # another address
        # when: the minute has passed
        later = time.time() + 61
        monkeypatch.setattr(SimpleRateThrottle, "timer", lambda self: later)
        assert token("alice", PASSWORD).status_code == 200

    def test_it_throttles_one_username_from_any_address(self, alice):
        for i in range(3):
            assert token("alice", "wrong", addr=f"203.0.113.{i}").status_code == 400
        r = token("alice", PASSWORD, addr="203.0.113.99")
        assert r.status_code == 429 and int(r["Retry-After"]) > 0


@pytest.mark.django_db
class LoginLockoutTests:
    @pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
    def test_a_login_form_locks_out_then_recovers_after_the_cool_off(self, path, admin_user):
        for _ in range(2):
            assert form_login(path, "admin", "wrong").status_code == 200  # the form again
        r = form_login(path, "admin", "wrong")
        assert r.status_code == 429
        assert r["Retry-After"] == str(int(COOLOFF.total_seconds()))
        # the right password is refused during the lockout, without being checked
        r = form_login(path, "admin", PASSWORD)
        assert r.status_code == 429 and "Too many failed logins" in r.content.decode()
        # when: the cool-off has passed
        cool_off_passes()
        assert form_login(path, "admin", PASSWORD).status_code == 302

    def test_the_token_endpoint_locks_out_then_recovers(self, alice):
        assert token("alice", "wrong").status_code == 400
        assert token("alice", "wrong").status_code == 400
        r = token("alice", "wrong")
        assert r.status_code == 429 and r["Retry-After"] == "900"
        assert "Too many failed logins" in r.json()["detail"]
        assert token("alice", PASSWORD).status_code == 429
        cool_off_passes()
        assert token("alice", PASSWORD).status_code == 200

    def test_a_lockout_on_one_form_holds_on_the_others(self, alice):
        for _ in range(3):
            form_login("/accounts/login/", "alice", "wrong")
        assert token("alice", PASSWORD).status_code == 429

    def test_one_address_guessing_many_usernames_is_locked_out(self, alice):
        for name in ("x1", "x2", "x3"):
            form_login("/accounts/login/", name, "wrong", addr="192.0.2.1")
        assert (
            form_login("/accounts/login/", "alice", PASSWORD, addr="192.0.2.1").status_code == 429
        )
        assert (
            form_login("/accounts/login/", "alice", PASSWORD, addr="192.0.2.2").status_code == 302
        )

    def test_one_username_guessed_from_many_addresses_is_locked_out(self, alice):
        for i in range(3):
            form_login("/accounts/login/", "alice", "wrong", addr=f"192.0.2.{10 + i}")
        r = form_login("/accounts/login/", "alice", PASSWORD, addr="192.0.2.50")
        assert r.status_code == 429

    def test_a_success_in_between_does_not_clear_the_failures(self, alice, bob):
        for _ in range(2):
            form_login("/accounts/login/", "bob", "wrong")
        assert form_login("/accounts/login/", "alice", PASSWORD).status_code == 302
        assert form_login("/accounts/login/", "bob", "wrong").status_code == 429

    def test_the_test_client_and_commands_log_in_without_a_request(self, client, alice):
        assert client.login(username="alice", password=PASSWORD)
