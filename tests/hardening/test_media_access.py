"""Clip media goes only to those allowed to see the clip, with HTTP ranges."""

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token

from labeling import campaigns
from labeling.models import Assignment, Movie, Role
from tests.conftest import PASSWORD, make_clips, make_user

VIDEO = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def clip(campaign):
    clip = make_clips(campaign, 1)[0]
    for name, data in ((clip.video.name, VIDEO), (clip.poster.name, b"JPEG")):
        path = django_settings.MEDIA_ROOT / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return clip


def lease(clip, user, status=Assignment.Status.LEASED):
    return Assignment.objects.create(
        clip=clip, annotator=user, slot=1, status=status, expires_at=timezone.now()
    )


def login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


@pytest.mark.django_db
class MediaAccessTests:
    def test_anonymous_callers_get_404_for_every_clip_file(self, client, clip):
        assert client.get("/media/clips/00001.mp4").status_code == 404
        assert client.get("/media/posters/00001.jpg").status_code == 404

    def test_the_annotator_who_holds_the_clip_gets_it(self, client, clip, alice):
        lease(clip, alice)
        r = login(client, alice).get("/media/clips/00001.mp4")
        assert r.status_code == 200
        assert b"".join(r.streaming_content) == VIDEO
        assert r["Content-Type"] == "video/mp4" and r["Accept-Ranges"] == "bytes"
        assert r["Content-Length"] == str(len(VIDEO))
        assert "private" in r["Cache-Control"]
        assert login(client, alice).get("/media/posters/00001.jpg").status_code == 200

    def test_an_annotator_who_held_it_still_gets_it(self, client, clip, alice):
        lease(clip, alice, status=Assignment.Status.SUBMITTED)
        assert login(client, alice).get("/media/clips/00001.mp4").status_code == 200

    def test_another_annotator_gets_404(self, client, clip, alice, bob, charlie, dave):
        lease(clip, alice)
        for user in (bob, charlie, dave):
            assert login(client, user).get("/media/clips/00001.mp4").status_code == 404

    def test_reviewers_and_staff_get_it(self, client, clip, rita, admin_user):
        for user in (rita, admin_user):
            assert login(client, user).get("/media/clips/00001.mp4").status_code == 200

    def test_an_extractor_of_its_campaign_gets_it_as_the_api_shows_it_no_other(
        self, client, clip, campaign
    ):
        # ed brought its movie in, eve is on the campaign's list, fay on another campaign's
        ed, eve, fay = (make_user(name, Role.EXTRACTOR) for name in ("ed", "eve", "fay"))
        Movie.objects.filter(pk=clip.movie_id).update(created_by=ed)
        campaign.annotators.add(eve, through_defaults={"role": Role.EXTRACTOR})
        campaigns.campaign_create(name="Other", slug="other").annotators.add(
            fay, through_defaults={"role": Role.EXTRACTOR}
        )
        for user, status in ((ed, 200), (eve, 200), (fay, 404)):
            assert login(client, user).get("/media/clips/00001.mp4").status_code == status
            assert client.get(f"/api/v1/clips/{clip.pk}/").status_code == status

    def test_a_script_with_the_annotators_token_gets_it(self, client, clip, alice, bob):
        lease(clip, alice)
        key = Token.objects.create(user=alice).key
        r = client.get("/media/clips/00001.mp4", HTTP_AUTHORIZATION=f"Token {key}")
        assert r.status_code == 200
        other = Token.objects.create(user=bob).key
        r = client.get("/media/clips/00001.mp4", HTTP_AUTHORIZATION=f"Token {other}")
        assert r.status_code == 404

    def test_other_media_is_for_staff_only(self, client, alice, rita, admin_user):
        path = django_settings.MEDIA_ROOT / "exports/x.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"data")
        extractor = make_user("ed", Role.EXTRACTOR)
        assert login(client, admin_user).get("/media/exports/x.zip").status_code == 200
        for user in (extractor, alice, rita):
            assert login(client, user).get("/media/exports/x.zip").status_code == 404

    def test_a_path_outside_media_root_is_404(self, client, admin_user):
        login(client, admin_user)
        assert client.get("/media/../annotation_site/settings.py").status_code == 404
        assert client.get("/media/%2e%2e/manage.py").status_code == 404

    def test_a_missing_file_is_404(self, client, campaign, admin_user):
        make_clips(campaign, 1)
        assert login(client, admin_user).get("/media/clips/00001.mp4").status_code == 404

    def test_it_writes_nothing(self, client, clip, admin_user):
        r = login(client, admin_user).post("/media/clips/00001.mp4")
        assert r.status_code == 405


@pytest.mark.django_db
class MediaRangeTests:
    @pytest.fixture
    def staff(self, client, admin_user):
        return login(client, admin_user)

    @pytest.mark.parametrize(
        "header, first, last",
        [
            ("bytes=0-99", 0, 99),
            ("bytes=10000-", 10000, 10239),
            ("bytes=-40", 10200, 10239),
            ("bytes=10200-99999", 10200, 10239),
        ],
    )
    def test_it_answers_206_with_the_range(self, staff, clip, header, first, last):
        r = staff.get("/media/clips/00001.mp4", HTTP_RANGE=header)
        assert r.status_code == 206
        assert r["Content-Range"] == f"bytes {first}-{last}/{len(VIDEO)}"
        assert r["Content-Length"] == str(last - first + 1)
        assert b"".join(r.streaming_content) == VIDEO[first : last + 1]

    @pytest.mark.parametrize("header", ["bytes=10240-", "bytes=99999-100000", "bytes=-0"])
    def test_it_answers_416_past_the_end(self, staff, clip, header):
        r = staff.get("/media/clips/00001.mp4", HTTP_RANGE=header)
        assert r.status_code == 416
        assert r["Content-Range"] == f"bytes */{len(VIDEO)}"

    @pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-1", "bytes=5-2", "nonsense"])
    def test_it_sends_the_whole_file_for_a_range_it_does_not_serve(self, staff, clip, header):
        r = staff.get("/media/clips/00001.mp4", HTTP_RANGE=header)
        if header == "bytes=5-2":  # last before first: unsatisfiable
            assert r.status_code == 416
            return
        assert r.status_code == 200 and b"".join(r.streaming_content) == VIDEO

    def test_head_answers_the_length_without_a_body(self, staff, clip):
        r = staff.head("/media/clips/00001.mp4")
        assert r.status_code == 200 and r["Content-Length"] == str(len(VIDEO))
        assert b"".join(r.streaming_content) == b""

    def test_behind_nginx_it_hands_the_file_over_with_x_accel_redirect(self, staff, clip, settings):
        settings.MEDIA_ACCEL_REDIRECT_PREFIX = "/protected-media/"
        r = staff.get("/media/clips/00001.mp4")
        assert r.status_code == 200 and r.content == b""
        assert r["X-Accel-Redirect"] == "/protected-media/clips/00001.mp4"
        # nginx keeps these of the answer it was handed (and fills in length and ranges)
        assert r["Content-Type"] == "video/mp4" and r["X-Content-Type-Options"] == "nosniff"
        assert r["Content-Disposition"].startswith("inline;")


BUCKET = "https://media.example.org/bucket/"


@pytest.mark.django_db
class MediaFromStorageTests:
    """A storage without local paths (MEDIA_STORAGE=s3; Django's in-memory storage here):
    the same check, then a redirect to the storage's own URL for the file."""

    @pytest.fixture
    def stored(self, campaign, settings):
        from django.core.files.base import ContentFile
        from django.core.files.storage import default_storage

        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "django.core.files.storage.InMemoryStorage",
                "OPTIONS": {"base_url": BUCKET},
            },
        }
        clip = make_clips(campaign, 1)[0]
        default_storage.save(clip.video.name, ContentFile(VIDEO))
        default_storage.save(clip.poster.name, ContentFile(b"JPEG"))
        return clip

    def test_a_caller_who_may_see_the_clip_is_redirected_to_the_storage(
        self, client, stored, alice
    ):
        lease(stored, alice)
        for name in ("clips/00001.mp4", "posters/00001.jpg"):
            r = login(client, alice).get(f"/media/{name}")
            assert r.status_code == 302 and r["Location"] == BUCKET + name
            # the storage's URL is short-lived: nobody keeps the redirect
            assert "no-store" in r["Cache-Control"] and "private" in r["Cache-Control"]
        assert not (django_settings.MEDIA_ROOT / "clips").exists()

    def test_the_storage_serves_the_bytes_even_behind_nginx(
        self, client, stored, admin_user, settings
    ):
        settings.MEDIA_ACCEL_REDIRECT_PREFIX = "/protected-media/"
        r = login(client, admin_user).get("/media/clips/00001.mp4", HTTP_RANGE="bytes=0-99")
        assert r.status_code == 302 and r["Location"] == BUCKET + "clips/00001.mp4"
        assert "X-Accel-Redirect" not in r

    def test_callers_who_may_not_see_it_get_404_not_a_redirect(self, client, stored, alice, bob):
        lease(stored, alice)
        assert client.get("/media/clips/00001.mp4").status_code == 404
        assert login(client, bob).get("/media/clips/00001.mp4").status_code == 404
        assert login(client, alice).get("/media/exports/x.zip").status_code == 404

    def test_a_path_climbing_out_is_404(self, client, stored, admin_user):
        login(client, admin_user)
        assert client.get("/media/exports/../../settings.py").status_code == 404
        assert client.get("/media/%2e%2e/manage.py").status_code == 404
