"""Input no field can hold is refused with a 400 that says why, never a 500 (issue 21, item 7).

A NUL byte (PostgreSQL's text cannot store one; the file system cannot open a path with one),
an unpaired surrogate in JSON (``"\\ud800"``: not a character, it cannot be encoded) and a
username longer than any account's. Found by a probe of the deployed app; each case here is one
of its reproductions. ``annotation_site.middleware.BadInputMiddleware`` refuses the first two
before any view runs; the login forms and the token endpoint refuse the third.
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from axes.models import AccessAttempt
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from labeling import campaigns
from labeling.models import Clip, RewardHold
from tests.conftest import PASSWORD, make_clips
from tests.labeling.test_api import client_for

TOKEN = "/api/v1/auth/token/"
NUL = "\x00"


def logged_in(user) -> Client:
    client = Client()
    assert client.login(username=user.username, password=PASSWORD)
    return client


def assert_refused_page(r, why: str) -> None:
    assert r.status_code == 400, r.content[:300]
    assert r["Content-Type"].startswith("text/")
    assert why in r.content.decode()


def assert_refused_json(r, why: str) -> None:
    assert r.status_code == 400, r.content[:300]
    assert r["Content-Type"] == "application/json"
    assert why in r.json()["detail"]
    assert "no-store" in r["Cache-Control"]


@pytest.mark.django_db
class NulByteTests:
    @pytest.mark.parametrize("who", ["rita", "admin_user", "alice"])
    def test_a_nul_in_a_media_path_is_refused(self, request, campaign, who):
        user = request.getfixturevalue(who)
        r = logged_in(user).get("/media/clips/%00.mp4")
        assert_refused_page(r, "NUL")

    def test_a_nul_in_a_media_path_is_refused_to_a_token_too(self, alice):
        r = client_for(alice).get("/media/clips/%00.mp4")
        assert_refused_page(r, "NUL")

    @pytest.mark.parametrize("field", ["reason", "verdict"])
    def test_a_nul_in_the_screening_form_changes_nothing(self, campaign, rita, field):
        clip = make_clips(campaign, 1, status=Clip.Status.SCREENING)[0]
        form = {"verdict": "no_face", "reason": "back of the head"}
        form[field] += NUL
        r = logged_in(rita).post(f"/review/{clip.pk}/", form)
        assert_refused_page(r, "NUL")
        clip.refresh_from_db()
        assert clip.status == Clip.Status.SCREENING

    @pytest.mark.parametrize("field", ["reason", "annotator"])
    def test_a_nul_in_the_invalidate_form_is_refused(self, campaign, alice, admin_user, field):
        form = {"annotator": "alice", "reason": "spam"}
        form[field] += NUL
        r = logged_in(admin_user).post(
            f"/staff/campaigns/{campaign.pk}/annotators/invalidate/", form
        )
        assert_refused_page(r, "NUL")

    @pytest.mark.parametrize("field", ["reason", "person"])
    def test_a_nul_in_the_hold_form_holds_nothing(self, campaign, alice, admin_user, field):
        form = {"person": "alice", "action": "hold", "reason": "checking"}
        form[field] += NUL
        r = logged_in(admin_user).post(f"/staff/campaigns/{campaign.pk}/rewards/holds/", form)
        assert_refused_page(r, "NUL")
        assert not RewardHold.objects.exists()

    def test_a_nul_in_a_query_string_is_refused(self, admin_user):
        r = logged_in(admin_user).get("/staff/overview/", {"q": "a" + NUL})
        assert_refused_page(r, "NUL")

    def test_a_nul_in_a_urlencoded_form_is_refused(self, campaign, alice, admin_user):
        # The test client posts multipart forms; a browser posts most forms url-encoded.
        r = logged_in(admin_user).post(
            f"/staff/campaigns/{campaign.pk}/rewards/holds/",
            urlencode({"person": "alice", "action": "hold", "reason": "x" + NUL}),
            content_type="application/x-www-form-urlencoded",
        )
        assert_refused_page(r, "NUL")
        assert not RewardHold.objects.exists()

    def test_a_nul_in_a_login_form_is_refused(self, alice):
        r = Client().post("/accounts/login/", {"username": "alice" + NUL, "password": "x"})
        assert_refused_page(r, "NUL")

    @pytest.mark.parametrize(
        "body",
        [
            '{"username": "a\\u0000", "password": "p"}',
            '{"username": "alice", "password": "p\\u0000"}',
            '{"a\\u0000": 1}',
            '[{"nested": ["\\u0000"]}]',
        ],
    )
    def test_a_nul_escaped_in_json_is_refused(self, alice, body):
        r = APIClient().post(TOKEN, body, content_type="application/json")
        assert_refused_json(r, "NUL")

    def test_a_nul_in_an_api_path_or_query_is_refused_in_json(self, alice):
        client = client_for(alice)
        assert_refused_json(client.get("/api/v1/campaigns/%00/"), "NUL")
        assert_refused_json(client.get("/api/v1/me/", {"q": NUL}), "NUL")

    def test_a_nul_in_an_api_form_body_is_refused_in_json(self, alice):
        body = urlencode({"username": "alice" + NUL, "password": "p"})
        r = APIClient().post(TOKEN, body, content_type="application/x-www-form-urlencoded")
        assert_refused_json(r, "NUL")


@pytest.mark.django_db
class SurrogateTests:
    @pytest.mark.parametrize(
        "body",
        [
            '{"username": "\\ud800x", "password": "p"}',
            '{"username": "alice", "password": "\\udfff"}',
            '{"username": "\\udc00\\ud800", "password": "p"}',
            '{"\\ud800": "key", "username": "alice", "password": "p"}',
        ],
    )
    def test_an_unpaired_surrogate_on_the_token_endpoint_is_refused(self, alice, body):
        r = APIClient().post(TOKEN, body, content_type="application/json")
        assert_refused_json(r, "surrogate")

    def test_a_surrogate_pair_is_a_character_and_passes(self, alice):
        # U+1F600 written as its UTF-16 pair: a valid name to look up (and not found).
        body = '{"username": "\\ud83d\\ude00", "password": "p"}'
        r = APIClient().post(TOKEN, body, content_type="application/json")
        assert r.status_code == 400
        assert "surrogate" not in r.json()["detail"]

    def test_an_escaped_backslash_before_u_d800_is_plain_text(self, alice):
        body = '{"username": "\\\\ud800", "password": "p"}'  # the six characters \ud800
        r = APIClient().post(TOKEN, body, content_type="application/json")
        assert r.status_code == 400 and "surrogate" not in r.json()["detail"]

    def test_a_surrogate_on_an_authenticated_endpoint_is_refused(self, campaign, alice):
        make_clips(campaign, 1)
        lease = client_for(alice).post("/api/v1/tasks/next/", format="json").json()
        r = client_for(alice).post(
            f"/api/v1/assignments/{lease['assignment']}/submit/",
            '{"label": "\\ud800"}',
            content_type="application/json",
        )
        assert_refused_json(r, "surrogate")

    def test_the_refusal_is_not_a_failed_login(self, alice):
        APIClient().post(TOKEN, '{"username": "\\ud800x"}', content_type="application/json")
        assert not AccessAttempt.objects.exists()
        r = APIClient().post(TOKEN, {"username": "alice", "password": PASSWORD}, format="json")
        assert r.status_code == 200


LONG = "u" * 300


@pytest.mark.django_db
class OverLongUsernameTests:
    """No account's name is over 150 characters, but django-axes records every failed login's
    username in a 255-character column: longer ones are recorded by their first 255."""

    @pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
    @pytest.mark.parametrize("length", [256, 300, 5000])
    def test_a_login_form_answers_an_over_long_username_as_a_wrong_one(
        self, path, length, admin_user
    ):
        r = Client().post(path, {"username": "u" * length, "password": "wrong"})
        assert r.status_code == 200  # the form again, with its error
        assert r.context["form"].errors  # the page says the username and password do not match
        assert AccessAttempt.objects.get().username == "u" * 255

    @pytest.mark.parametrize("length", [256, 300, 5000])
    def test_the_token_endpoint_answers_an_over_long_username_as_a_wrong_one(self, alice, length):
        r = APIClient().post(TOKEN, {"username": "u" * length, "password": "p"}, format="json")
        assert r.status_code == 400
        assert "Unable to log in" in r.json()["detail"]
        assert AccessAttempt.objects.get().username == "u" * 255

    def test_over_long_guesses_count_towards_the_lockouts(self, settings, alice):
        settings.AXES_FAILURE_LIMIT = 3
        for i in range(3):
            Client().post("/accounts/login/", {"username": LONG + str(i), "password": "x"})
        # the address is locked out now, the right password included
        r = Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        assert r.status_code == 429
        # and the over-long name too, from anywhere
        r = APIClient().post(
            TOKEN, {"username": LONG, "password": "x"}, format="json", REMOTE_ADDR="192.0.2.9"
        )
        assert r.status_code == 429

    def test_the_longest_username_still_logs_in(self, db):
        user = campaigns.user_create(username="n" * 150, password=PASSWORD, roles=())
        r = APIClient().post(
            TOKEN, {"username": user.username, "password": PASSWORD}, format="json"
        )
        assert r.status_code == 200
        r = Client().post("/accounts/login/", {"username": user.username, "password": PASSWORD})
        assert r.status_code == 302


# Any code point, surrogates and NUL included (hypothesis leaves surrogates out by default, and
# schemathesis' generation sends only what encodes as UTF-8), NUL and lone surrogates often,
# up to past axes' 255 characters.
CHAR = st.one_of(
    st.sampled_from([NUL, "\ud800", "\udfff"]),
    st.characters(codec=None, exclude_categories=()),
)
# (st.lists, not st.text: text() drops surrogates whatever its alphabet.)
ANY_TEXT = st.one_of(
    st.lists(CHAR, max_size=20).map("".join),
    st.builds(
        lambda head, n: "".join(head) * n,
        st.lists(CHAR, min_size=1, max_size=3),
        st.integers(min_value=90, max_value=400),
    ),
)
PROPERTY = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)


def as_json(data) -> str:
    return json.dumps(data)  # ensure_ascii: a lone surrogate goes as its \\udXXX escape


@pytest.mark.django_db
class AnyTextTests:
    """No text at all makes a login door answer 5xx (issue 21, item 7, as properties)."""

    @PROPERTY
    @given(username=ANY_TEXT, password=ANY_TEXT)
    def test_the_token_endpoint_never_fails(self, alice, username, password):
        body = as_json({"username": username, "password": password})
        r = APIClient().post(TOKEN, body, content_type="application/json")
        assert r.status_code in (400, 429), r.content[:300]
        assert r.json()["detail"]

    @PROPERTY
    @given(username=ANY_TEXT, password=ANY_TEXT)
    def test_the_login_pages_never_fail(self, alice, username, password):
        for path in ("/accounts/login/", "/admin/login/"):
            # a form's text goes as UTF-8; a lone surrogate cannot, so it goes as "?"
            form = {
                "username": username.encode("utf-8", "replace").decode(),
                "password": password.encode("utf-8", "replace").decode(),
            }
            r = Client().post(path, form)
            assert r.status_code in (200, 400, 429), (path, r.status_code)

    @PROPERTY
    @given(reason=ANY_TEXT, person=ANY_TEXT)
    def test_the_staff_forms_never_fail(self, campaign, alice, admin_user, reason, person):
        client = logged_in(admin_user)
        for path, form in (
            ("rewards/holds/", {"person": person, "action": "hold", "reason": reason}),
            ("annotators/invalidate/", {"annotator": person, "reason": reason}),
        ):
            form = {k: v.encode("utf-8", "replace").decode() for k, v in form.items()}
            r = client.post(f"/staff/campaigns/{campaign.pk}/{path}", form)
            assert r.status_code in (302, 400), (path, r.status_code)


@pytest.mark.django_db
class NulInHeaderTests:
    def test_a_nul_in_a_token_header_is_refused(self, alice):
        r = APIClient().get("/api/v1/me/", HTTP_AUTHORIZATION="Token abc\x00def")
        assert_refused_json(r, "Authorization")
        r = Client().get("/media/clips/a.mp4", HTTP_AUTHORIZATION="Token abc\x00def")
        assert_refused_page(r, "NUL")
