"""Uploads and the files they become (issue 21, items 1, 4, 5 and 9's upload name).

A stored movie is only ever a probed video, stored under a name whose suffix the probe chose;
every media answer says what the bytes are (never guessed from a name an uploader picked),
``nosniff`` and a sandbox policy; a movie's file is seen by exactly those who see the movie in
the API; an import never follows a symbolic link.
"""

from __future__ import annotations

import os
import subprocess
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from django.core.files.storage import InMemoryStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from rest_framework.test import APIClient

from annotation_site.errors import ApplicationError
from labeling import campaigns
from labeling.media import movies
from labeling.models import Movie, Role
from pipeline.media import ffmpeg_binary, write_video
from pipeline.synthetic_movies import numbered_frames
from tests.conftest import PASSWORD, make_clips, make_user

HTML = b"<!doctype html><script>fetch('/api/v1/me/').then(r => r.text()).then(alert)</script>\n"
JS = b"fetch('/api/v1/me/').then(r => r.text()).then(alert);\n" * 3
SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="48">'
    b"<script>alert(document.domain)</script><rect width='64' height='48'/></svg>"
)


BUCKET = "https://media.example.org/"


class Bucket(InMemoryStorage):
    """A storage without local paths whose URLs carry the parameters they were asked with, as
    S3's presigned ones do."""

    def url(self, name, parameters=None):
        return f"{BUCKET}{name}?{urlencode(parameters or {})}"


def video_bytes(tmp_path, first=0) -> bytes:
    path = write_video(numbered_frames(50, 64, 48, first=first), tmp_path / f"v{first}.mp4", fps=25)
    return path.read_bytes()


def gif_bytes(tmp_path) -> bytes:
    """An animated GIF: ffmpeg reads it as a video stream, but it is no movie."""
    from PIL import Image

    frames = [Image.new("RGB", (64, 48), (i * 20, 0, 0)) for i in range(10)]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path.read_bytes()


@pytest.fixture
def eve(campaign):
    user = make_user("eve", Role.EXTRACTOR)
    campaign.annotators.add(user, through_defaults={"role": Role.EXTRACTOR})
    return user


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def upload(user, campaign, name: str, data: bytes):
    return api(user).post(
        f"/api/v1/campaigns/{campaign.pk}/movies/",
        {"file": SimpleUploadedFile(name, data, content_type="video/mp4")},
        format="multipart",
    )


def stored_files(settings) -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


@pytest.mark.django_db
class UploadSniffingTests:
    @pytest.mark.parametrize(
        ("name", "content"),
        [("evil.html", HTML), ("evil.js", JS), ("evil.svg", SVG), ("evil.mp4", HTML)],
    )
    def test_a_script_is_refused_with_a_reason_and_never_stored(
        self, campaign, eve, settings, name, content
    ):
        response = upload(eve, campaign, name, content)
        assert response.status_code == 400, response.content
        assert response.json()["detail"].startswith(f"Not accepted: {name}")
        assert not Movie.objects.exists()
        assert stored_files(settings) == []  # not even for a moment in the served tree

    def test_an_animated_gif_is_no_movie(self, campaign, eve, settings, tmp_path):
        response = upload(eve, campaign, "anim.mp4", gif_bytes(tmp_path))
        assert response.status_code == 400
        assert "is not a movie (ffmpeg reads it as “gif”)" in response.json()["detail"]
        assert stored_files(settings) == []

    def test_a_video_named_like_a_page_is_stored_under_its_probed_suffix(
        self, campaign, eve, settings, tmp_path
    ):
        response = upload(eve, campaign, "evil.html", video_bytes(tmp_path))
        assert response.status_code == 201, response.content
        movie = Movie.objects.get()
        assert (movie.title, movie.source.name, movie.status) == (
            "evil",
            "movies/campaign/evil.mp4",
            Movie.Status.READY,
        )
        assert stored_files(settings) == ["movies/campaign/evil.mp4"]

    def test_a_matroska_file_keeps_its_suffix_and_a_name_of_nothing_gets_one(
        self, campaign, eve, settings, tmp_path
    ):
        mkv = tmp_path / "m.mkv"
        subprocess.run(
            [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=25",
             "-t", "1.2", "-c:v", "mpeg4", str(mkv)],
            check=True,
        )  # fmt: skip
        mkv = mkv.read_bytes()
        assert upload(eve, campaign, "film.mkv", mkv).status_code == 201
        # a name that keeps nothing once made safe ("Bad request." with no reason, before)
        response = upload(eve, campaign, "!!!.mp4", video_bytes(tmp_path))
        assert response.status_code == 201, response.content
        names = sorted(Movie.objects.values_list("source", flat=True))
        assert names[0] == "movies/campaign/film.mkv"
        assert names[1].startswith("movies/campaign/movie-") and names[1].endswith(".mp4")

    def test_a_refusal_names_the_upload_and_no_server_path(self, campaign, eve):
        detail = upload(eve, campaign, "evil.html", HTML).json()["detail"]
        assert detail == "Not accepted: evil.html is not a video file (ffmpeg cannot read it)."

    def test_text_in_the_files_metadata_or_name_cannot_pose_as_its_description(
        self, campaign, eve, tmp_path
    ):
        """ffmpeg prints a file's metadata and the input's name before its streams; a title
        that reads like a stream line once faked the rate and size (the probe's finding)."""
        spoof = "Stream #0:0: Video: h264, 4000x3000, 3 fps"
        path = tmp_path / "s.mp4"
        subprocess.run(
            [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x48:rate=10",
             "-t", "1.5", "-pix_fmt", "yuv420p", "-metadata", f"title={spoof}",
             "-metadata", "comment=Duration: 00:00:00.50, start", str(path)],
            check=True,
        )  # fmt: skip
        response = upload(eve, campaign, f"x {spoof}.mp4", path.read_bytes())
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["fps"], body["width"], body["height"]) == (10.0, 64, 48)
        assert body["duration_s"] == pytest.approx(1.5)


@pytest.mark.django_db
class MediaHeadersTests:
    def login(self, client, user):
        assert client.login(username=user.username, password=PASSWORD)
        return client

    def test_a_movie_is_an_attachment_of_its_probed_type_never_a_page(
        self, client, campaign, eve, admin_user, tmp_path
    ):
        assert upload(eve, campaign, "evil.html", video_bytes(tmp_path)).status_code == 201
        name = Movie.objects.get().source.name
        r = self.login(client, admin_user).get(f"/media/{name}")
        assert r.status_code == 200
        assert r["Content-Type"] == "video/mp4"
        assert r["Content-Disposition"] == (
            "attachment; filename=\"evil.mp4\"; filename*=UTF-8''evil.mp4"
        )
        assert r["X-Content-Type-Options"] == "nosniff"
        assert r["Content-Security-Policy"].startswith("sandbox;")

    def test_a_stray_file_in_the_movie_folder_is_sent_as_bytes_to_download(
        self, client, campaign, admin_user, settings
    ):
        # a file stored before uploads were probed, under the name its uploader chose
        path = settings.MEDIA_ROOT / "movies/campaign/old.html"
        path.parent.mkdir(parents=True)
        path.write_bytes(HTML)
        Movie.objects.create(campaign=campaign, title="old", source="movies/campaign/old.html")
        r = self.login(client, admin_user).get("/media/movies/campaign/old.html")
        assert r.status_code == 200
        assert r["Content-Type"] == "application/octet-stream"
        assert r["Content-Disposition"].startswith("attachment;")
        assert r["X-Content-Type-Options"] == "nosniff"

    def test_clip_media_play_inline_with_the_type_the_pipeline_wrote(
        self, client, campaign, admin_user, settings
    ):
        clip = make_clips(campaign, 1)[0]
        for name in (clip.video.name, clip.poster.name, "exports/x.zip", "exports/y.html"):
            (settings.MEDIA_ROOT / name).parent.mkdir(parents=True, exist_ok=True)
            (settings.MEDIA_ROOT / name).write_bytes(b"data")
        self.login(client, admin_user)
        expected = {
            clip.video.name: ("video/mp4", "inline"),
            clip.poster.name: ("image/jpeg", "inline"),
            "exports/x.zip": ("application/zip", "attachment"),
            "exports/y.html": ("application/octet-stream", "attachment"),
        }
        for name, (content_type, disposition) in expected.items():
            r = client.get(f"/media/{name}")
            assert r.status_code == 200, name
            assert r["Content-Type"] == content_type, name
            assert r["Content-Disposition"].split(";")[0] == disposition, name
            assert r["X-Content-Type-Options"] == "nosniff", name

    def test_a_storage_on_its_own_origin_is_asked_for_the_same_type_and_disposition(
        self, client, campaign, eve, admin_user, settings, tmp_path
    ):
        """S3 answers a presigned URL with the ResponseContentType and -Disposition it was
        signed with; ``Bucket`` (no S3 here) writes what the view asked for into its URL."""
        settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": f"{__name__}.Bucket"}}
        assert upload(eve, campaign, "evil.html", video_bytes(tmp_path)).status_code == 201
        name = Movie.objects.get().source.name
        r = self.login(client, admin_user).get(f"/media/{name}")
        assert r.status_code == 302 and r["Location"].startswith(BUCKET + name)
        asked = parse_qs(urlparse(r["Location"]).query)
        assert asked["ResponseContentType"] == ["video/mp4"]
        assert asked["ResponseContentDisposition"][0].startswith("attachment;")
        assert r["X-Content-Type-Options"] == "nosniff"


@pytest.mark.django_db
class MovieScopeTests:
    def test_a_movies_file_is_seen_by_exactly_those_who_see_the_movie_in_the_api(
        self, client, campaign, eve, alice, rita, admin_user, tmp_path
    ):
        # given: a movie of eve's campaign, and fay, an extractor of another campaign
        assert upload(eve, campaign, "film.mp4", video_bytes(tmp_path)).status_code == 201
        movie = Movie.objects.get()
        fay = make_user("fay", Role.EXTRACTOR)
        campaigns.campaign_create(name="Other", slug="other").annotators.add(
            fay, through_defaults={"role": Role.EXTRACTOR}
        )
        answers = {}
        for user in (eve, fay, alice, rita, admin_user):
            assert client.login(username=user.username, password=PASSWORD)
            answers[user.username] = (
                client.get(f"/media/{movie.source.name}").status_code,
                api(user).get(f"/api/v1/movies/{movie.pk}/").status_code,
            )
        # then: the file answers as the API does: fay (guessing the name) gets 404 from both
        assert answers == {
            "eve": (200, 200),
            "fay": (404, 404),
            "alice": (404, 403),  # an annotator: no movie API at all, and no file
            "rita": (404, 403),
            "admin": (200, 200),
        }


@pytest.mark.django_db
class ImportMoviesLinksTests:
    def test_links_and_anything_but_a_regular_file_are_refused_by_name(
        self, campaign, tmp_path, settings, capsys
    ):
        folder = tmp_path / "in"
        folder.mkdir()
        (folder / "good.mp4").write_bytes(video_bytes(tmp_path))
        secret = tmp_path / "secret.mp4"  # a server file outside the folder
        secret.write_bytes(video_bytes(tmp_path, first=100))
        (folder / "link.mp4").symlink_to(secret)
        (folder / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
        (folder / "folder.mp4").mkdir()
        os.mkfifo(folder / "pipe.mp4")
        call_command("import_movies", "campaign", str(folder))
        out, err = capsys.readouterr()
        assert "1 registered, 4 refused, of 5 videos." in out
        assert "link.mp4 is a symbolic link: not imported." in err
        assert "dangling.mp4 is a symbolic link: not imported." in err
        assert "folder.mp4 is not a regular file: not imported." in err
        assert "pipe.mp4 is not a regular file: not imported." in err
        assert list(Movie.objects.values_list("title", flat=True)) == ["good"]
        assert stored_files(settings) == ["movies/campaign/good.mp4"]

    def test_the_service_refuses_a_link_whoever_calls_it(self, campaign, tmp_path):
        target = tmp_path / "real.mp4"
        target.write_bytes(video_bytes(tmp_path))
        (tmp_path / "link.mp4").symlink_to(target)
        with pytest.raises(ApplicationError, match="is a symbolic link"):
            movies.movie_register_path(campaign=campaign, path=tmp_path / "link.mp4")
        assert not Movie.objects.exists()
