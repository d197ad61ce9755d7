"""Shared cast and helpers.

The cast, as in every API test: alice (annotator on the campaign), bob (another annotator on
it), charlie (an annotator who is not on it: the outsider), dave (no role at all), rita (a
reviewer) and admin (staff).
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from urllib.parse import urlparse

import pytest
from django.conf import settings

from labeling import campaigns
from labeling.media import movies
from labeling.models import Clip, Role

PASSWORD = "correct-horse-battery"


def need(available: bool, reason: str) -> None:
    """Skip a test whose service is missing, but fail it under CI=true: CI runs everything."""
    if available:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true runs every test, but {reason}")
    pytest.skip(reason)


def redis_available() -> bool:
    url = urlparse(settings.REDIS_URL or "redis://127.0.0.1:6379/0")
    try:
        with socket.create_connection((url.hostname, url.port or 6379), timeout=0.5):
            return True
    except OSError:
        return False


def chromium_paths() -> tuple[str | None, str | None]:
    return shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which(
        "chromedriver"
    )


@pytest.fixture(autouse=True)
def _fast_passwords_and_media(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.MEDIA_ROOT = tmp_path / "media"
    # A cache of each test's own: throttle counts and cached figures never carry over.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"test-{uuid.uuid4()}",
        }
    }
    # The hashed-manifest storage needs `collectstatic`; tests serve sources via the finders.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


def make_user(username: str, *roles: Role, staff: bool = False):
    return campaigns.user_create(username=username, password=PASSWORD, roles=roles, is_staff=staff)


def make_clips(campaign, n: int, status=Clip.Status.ANNOTATING, start_number: int = 1):
    """``n`` clips of 2 s of a new movie, numbered from ``start_number``, registered as
    already extracted (``movies.clips_register_extracted``: no ffmpeg, one INSERT)."""
    movie = movies.movie_register_extracted(campaign=campaign, title="Movie")
    return movies.clips_register_extracted(
        movie=movie,
        clips=[
            movies.ExtractedClip(
                end_s=2.0,
                video=f"clips/{start_number + i:05d}.mp4",
                poster=f"posters/{start_number + i:05d}.jpg",
            )
            for i in range(n)
        ],
        status=status,
        first_number=start_number,
    )


@pytest.fixture
def campaign(db):
    # Tests label the moment a clip is leased; the minimum viewing time has its own tests.
    return campaigns.campaign_create(name="Campaign", slug="campaign", min_view_seconds=0)


@pytest.fixture
def alice(campaign):
    user = make_user("alice", Role.ANNOTATOR)
    campaign.annotators.add(user)
    return user


@pytest.fixture
def bob(campaign):
    user = make_user("bob", Role.ANNOTATOR)
    campaign.annotators.add(user)
    return user


@pytest.fixture
def charlie(db):
    return make_user("charlie", Role.ANNOTATOR)


@pytest.fixture
def dave(db):
    return make_user("dave")


@pytest.fixture
def rita(db):
    return make_user("rita", Role.REVIEWER)


@pytest.fixture
def admin_user(db):
    return make_user("admin", staff=True)


@pytest.fixture
def annotators(campaign):
    """Ten more annotators on the campaign, a01…a10."""
    users = [make_user(f"a{i:02d}", Role.ANNOTATOR) for i in range(1, 11)]
    campaign.annotators.add(*users)
    return users
