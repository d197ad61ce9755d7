"""Movies in (upload, import, probe, duplicates) and clips proposed (limits, bounds, overlaps)."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from rest_framework.test import APIClient

from annotation_site.errors import ApplicationError, Conflict, Forbidden, NotFound
from labeling import campaigns
from labeling.media import extraction, movies
from labeling.models import Clip, MediaStatus, Movie, Role
from pipeline.media import write_video
from pipeline.synthetic_movies import numbered_frames
from tests.conftest import make_clips, make_user, need


def movie_file(folder, name="film.mp4", n=75, first=0):
    """A tiny 3 s movie at 25 fps whose frames carry their numbers (``first`` changes bytes)."""
    return write_video(numbered_frames(n, 64, 48, first=first), folder / name, fps=25, gop=10)


def ready_movie(campaign, folder, name="film.mp4", **kwargs) -> Movie:
    movie = movies.movie_register_path(campaign=campaign, path=movie_file(folder, name, **kwargs))
    return movies.movie_probe(movie.pk)


@pytest.fixture
def eve(campaign):
    """An extractor on the campaign (its member list)."""
    user = make_user("eve", Role.EXTRACTOR)
    campaign.annotators.add(user, through_defaults={"role": Role.EXTRACTOR})
    return user


@pytest.mark.django_db
class MovieRegisterTests:
    def test_it_probes_the_file_then_stores_it_ready_for_clips(
        self, campaign, tmp_path, settings, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks() as queued:
            movie = movies.movie_register_path(campaign=campaign, path=movie_file(tmp_path))
        assert queued == []  # probed here: nothing waits for a worker
        assert movie.status == Movie.Status.READY and len(movie.content_hash) == 64
        assert movie.source.name == "movies/campaign/film.mp4"
        assert (settings.MEDIA_ROOT / movie.source.name).read_bytes()[4:8] == b"ftyp"
        assert (movie.duration_s, movie.fps, movie.width, movie.height, movie.codec) == (
            3.0,
            25.0,
            64,
            48,
            "h264",
        )
        assert movies.movie_probe(movie.pk).status == Movie.Status.READY  # a re-probe agrees

    def test_the_same_content_again_is_refused_naming_the_movie(self, campaign, tmp_path):
        first = ready_movie(campaign, tmp_path)
        copy = tmp_path / "other-name.mp4"
        copy.write_bytes((tmp_path / "film.mp4").read_bytes())
        with pytest.raises(Conflict, match=f"already movie {first.pk} “film”"):
            movies.movie_register_path(campaign=campaign, path=copy)
        assert Movie.objects.count() == 1

    def test_the_same_content_in_another_campaign_is_fine(self, campaign, tmp_path):

        other = campaigns.campaign_create(name="Other", slug="other")
        ready_movie(campaign, tmp_path)
        assert movies.movie_register_path(campaign=other, path=tmp_path / "film.mp4").pk

    @pytest.mark.parametrize(
        ("content", "reason"),
        [
            (b"", "is empty (0 bytes)"),
            (b"just some text\n" * 40, "is not a video file"),
        ],
    )
    def test_a_file_that_does_not_play_is_refused_with_a_reason_and_not_stored(
        self, campaign, tmp_path, settings, content, reason
    ):
        path = tmp_path / "bad.mp4"
        path.write_bytes(content)
        with pytest.raises(ApplicationError, match=re.escape(reason)):
            movies.movie_register_path(campaign=campaign, path=path)
        assert not Movie.objects.exists()
        assert not (settings.MEDIA_ROOT / "movies").exists()

    def test_a_truncated_file_is_refused_and_other_movies_are_untouched(self, campaign, tmp_path):
        good = ready_movie(campaign, tmp_path)
        data = movie_file(tmp_path, "long.mp4", first=100).read_bytes()
        (tmp_path / "cut.mp4").write_bytes(data[: len(data) * 6 // 10])
        with pytest.raises(ApplicationError, match="truncated"):
            movies.movie_register_path(campaign=campaign, path=tmp_path / "cut.mp4")
        assert list(Movie.objects.values_list("pk", "status")) == [(good.pk, Movie.Status.READY)]

    def test_annotators_may_not_register_movies(self, campaign, alice, tmp_path):
        with pytest.raises(Forbidden):
            movies.movie_register_path(campaign=campaign, path=movie_file(tmp_path), user=alice)


@pytest.mark.django_db
class ClipProposeTests:
    def test_it_creates_numbered_pending_clips_and_queues_their_extraction(
        self, campaign, eve, tmp_path, django_capture_on_commit_callbacks
    ):
        movie = ready_movie(campaign, tmp_path)
        with django_capture_on_commit_callbacks() as queued:
            proposed = movies.clip_propose(
                user=eve,
                movie_id=movie.pk,
                segments=[movies.Segment(0.0, 1.0, "fear"), movies.Segment(1.2, 2.8)],
            )
        assert len(queued) == 2 and proposed.warnings == []
        clips = list(Clip.objects.order_by("number"))
        assert [(c.number, c.status, c.media_status) for c in clips] == [
            (1, Clip.Status.PROPOSED, MediaStatus.PENDING),
            (2, Clip.Status.PROPOSED, MediaStatus.PENDING),
        ]
        assert clips[0].suspected_label.name == "fear" and clips[1].suspected_label is None
        assert [c.duration_bucket for c in clips] == ["0-2s", "0-2s"]

    def test_the_clips_per_movie_limit_counts_the_movies_clips(self, campaign, eve, tmp_path):
        campaign.clips_per_movie = 3
        campaign.save()
        movie = ready_movie(campaign, tmp_path)
        movies.clip_propose(
            user=eve, movie_id=movie.pk, segments=[movies.Segment(0, 0.6), movies.Segment(1, 1.6)]
        )
        with pytest.raises(ApplicationError, match="has 2 clips .* allows 3 per movie"):
            movies.clip_propose(
                user=eve,
                movie_id=movie.pk,
                segments=[movies.Segment(2.0, 2.6), movies.Segment(2.3, 2.9)],
            )
        assert Clip.objects.count() == 2

    @pytest.mark.parametrize(
        ("start", "end", "message"),
        [
            (0.0, 0.2, "lasts 0.2 s; clips of this campaign last 0.5–15 s"),
            (2.0, 3.5, "ends after the movie"),
            (1.0, 1.0, "the end must come after the start"),
        ],
    )
    def test_length_and_movie_bounds_are_enforced(
        self, campaign, eve, tmp_path, start, end, message
    ):
        movie = ready_movie(campaign, tmp_path)
        with pytest.raises(ApplicationError, match=message):
            movies.clip_propose(
                user=eve,
                movie_id=movie.pk,
                segments=[movies.Segment(0.0, 1.0), movies.Segment(start, end)],
            )
        assert not Clip.objects.exists()  # all or nothing

    def test_overlaps_are_allowed_with_a_warning(self, campaign, eve, tmp_path):
        movie = ready_movie(campaign, tmp_path)
        movies.clip_propose(user=eve, movie_id=movie.pk, segments=[movies.Segment(0.0, 1.0)])
        proposed = movies.clip_propose(
            user=eve, movie_id=movie.pk, segments=[movies.Segment(0.5, 1.5)]
        )
        assert proposed.warnings == ["clip 00001 (0–1 s) overlaps segment 1 (0.5–1.5 s)."]

    def test_an_unknown_emotion_and_a_movie_not_ready_are_refused(self, campaign, eve, tmp_path):
        movie = ready_movie(campaign, tmp_path)
        with pytest.raises(ApplicationError, match="unknown emotion 'joy'"):
            movies.clip_propose(user=eve, movie_id=movie.pk, segments=[movies.Segment(0, 1, "joy")])
        Movie.objects.filter(pk=movie.pk).update(status=Movie.Status.FAILED)
        with pytest.raises(Conflict, match="failed"):
            movies.clip_propose(user=eve, movie_id=movie.pk, segments=[movies.Segment(0, 1)])

    def test_annotators_may_not_propose(self, campaign, alice, tmp_path):
        movie = ready_movie(campaign, tmp_path)
        with pytest.raises(Forbidden):
            movies.clip_propose(user=alice, movie_id=movie.pk, segments=[movies.Segment(0, 1)])


@pytest.mark.django_db
class MovieApiTests:
    def client_for(self, user) -> APIClient:
        client = APIClient()
        client.force_authenticate(user)
        return client

    def test_upload_then_propose_then_follow_a_clip(self, campaign, eve, tmp_path):
        client = self.client_for(eve)
        data = movie_file(tmp_path).read_bytes()
        upload = SimpleUploadedFile("film.mp4", data, content_type="video/mp4")
        response = client.post(
            f"/api/v1/campaigns/{campaign.pk}/movies/", {"file": upload}, format="multipart"
        )
        assert response.status_code == 201, response.json()
        movie_id = response.json()["id"]
        again = client.post(
            f"/api/v1/campaigns/{campaign.pk}/movies/",
            {"file": SimpleUploadedFile("copy.mp4", data)},
            format="multipart",
        )
        assert again.status_code == 409 and again.json()["movie"] == movie_id
        assert response.json()["status"] == "ready"  # probed on the way in

        response = client.post(
            f"/api/v1/movies/{movie_id}/clips/",
            {"segments": [{"start_s": 0.5, "end_s": 1.5, "suspected_label": "disgust"}]},
            format="json",
        )
        assert response.status_code == 201, response.json()
        clip = response.json()["clips"][0]
        assert clip["media_status"] == "pending" and clip["suspected_label"] == "disgust"

        detail = client.get(f"/api/v1/clips/{clip['id']}/").json()
        assert detail["status"] == "proposed" and detail["video_url"] is None
        movie = client.get(f"/api/v1/movies/{movie_id}/").json()
        assert movie["status"] == "ready" and movie["progress"]["pending"] == 1
        assert (movie["fps"], movie["frame_rate"], movie["duration_s"]) == (25.0, "25", 3.0)
        assert [c["id"] for c in movie["clips"]] == [clip["id"]]

    def test_a_server_side_refusal_is_a_400_with_the_reason(self, campaign, eve, tmp_path):
        movie = ready_movie(campaign, tmp_path)
        response = self.client_for(eve).post(
            f"/api/v1/movies/{movie.pk}/clips/",
            {"segments": [{"start_s": 0, "end_s": 30}]},
            format="json",
        )
        assert response.status_code == 400
        assert "ends after the movie" in response.json()["detail"]

    def test_an_extractor_reaches_only_the_campaigns_they_belong_to(
        self, campaign, eve, rita, admin_user, tmp_path
    ):
        # given: a movie and a clip of eve's campaign, and ed, an extractor of another one
        movie = ready_movie(campaign, tmp_path)
        (clip,) = movies.clip_propose(
            user=eve, movie_id=movie.pk, segments=[movies.Segment(0, 1)]
        ).clips
        other = campaigns.campaign_create(name="Other", slug="other")
        ed = make_user("ed", Role.EXTRACTOR)
        other.annotators.add(ed, through_defaults={"role": Role.EXTRACTOR})
        segments = {"segments": [{"start_s": 1, "end_s": 2}]}
        upload = SimpleUploadedFile("x.mp4", movie_file(tmp_path, "x.mp4", first=9).read_bytes())

        def answers(user) -> list[int]:
            client = self.client_for(user)
            return [
                client.get(f"/api/v1/campaigns/{campaign.pk}/movies/").status_code,
                client.get(f"/api/v1/movies/{movie.pk}/").status_code,
                client.get(f"/api/v1/clips/{clip.pk}/").status_code,
                client.post(
                    f"/api/v1/movies/{movie.pk}/clips/", segments, format="json"
                ).status_code,
            ]

        # then: to ed the campaign, its movie and its clip do not exist, as unknown ids
        assert answers(ed) == [404, 404, 404, 404]
        assert (
            self.client_for(ed)
            .post(f"/api/v1/campaigns/{campaign.pk}/movies/", {"file": upload}, format="multipart")
            .status_code
            == 404
        )
        assert self.client_for(ed).get(f"/api/v1/campaigns/{other.pk}/movies/").json() == []
        with pytest.raises(NotFound):
            movies.clip_propose(user=ed, movie_id=movie.pk, segments=[movies.Segment(2, 3)])
        with pytest.raises(NotFound):
            movies.movie_register_path(campaign=campaign, path=tmp_path / "x.mp4", user=ed)
        assert Movie.objects.count() == 1 and Clip.objects.count() == 1
        # while eve and staff reach all of it, and a reviewer (who screens every campaign's
        # clips) follows the clip
        assert answers(eve) == [200, 200, 200, 201]
        assert answers(admin_user)[:3] == [200, 200, 200]
        assert self.client_for(rita).get(f"/api/v1/clips/{clip.pk}/").status_code == 200

    def test_annotators_get_403(self, campaign, alice, tmp_path):
        movie = ready_movie(campaign, tmp_path)
        client = self.client_for(alice)
        assert client.get(f"/api/v1/movies/{movie.pk}/").status_code == 403
        response = client.post(
            f"/api/v1/movies/{movie.pk}/clips/",
            {"segments": [{"start_s": 0, "end_s": 1}]},
            format="json",
        )
        assert response.status_code == 403


@pytest.mark.django_db
class ClipsRegisterExtractedTests:
    def test_it_numbers_on_from_the_campaign_and_queues_nothing(
        self, campaign, eve, tmp_path, django_capture_on_commit_callbacks
    ):
        # given: a clip proposed the usual way (number 1)
        movies.clip_propose(
            user=eve, movie_id=ready_movie(campaign, tmp_path).pk, segments=[movies.Segment(0, 1)]
        )
        # when: three clips cut elsewhere are registered with their media names
        movie = movies.movie_register_extracted(campaign=campaign, title="Elsewhere")
        with django_capture_on_commit_callbacks() as queued:
            clips = movies.clips_register_extracted(
                movie=movie,
                clips=[
                    movies.ExtractedClip(end_s=1.5, video="clips/a.mp4", poster="posters/a.jpg"),
                    movies.ExtractedClip(start_s=2, end_s=5, video="clips/b.mp4"),
                    movies.ExtractedClip(start_s=5, end_s=11, video="clips/c.mp4"),
                ],
            )
        # then
        assert queued == [] and movie.status == Movie.Status.READY
        rows = Clip.objects.filter(pk__in=[c.pk for c in clips]).order_by("number")
        assert [
            (c.number, c.status, c.media_status, c.duration_bucket, c.video.name) for c in rows
        ] == [
            (2, Clip.Status.ANNOTATING, MediaStatus.NONE, "0-2s", "clips/a.mp4"),
            (3, Clip.Status.ANNOTATING, MediaStatus.NONE, "2-5s", "clips/b.mp4"),
            (4, Clip.Status.ANNOTATING, MediaStatus.NONE, "5s+", "clips/c.mp4"),
        ]

    def test_a_bulk_registration_refreshes_the_planners_statistics(self, campaign):
        # A DFEW-size campaign registered at once must not be planned as the empty table it
        # was: `next`'s candidate query then scans the whole campaign per window clip
        # (labeling/loop/sql.py, analyze_after_bulk_load). ANALYZE samples a table this small whole,
        # and counts this transaction's own rows, so its estimate is exact.
        need(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
        make_clips(campaign, 777)

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT reltuples FROM pg_class WHERE relname = %s", [Clip._meta.db_table]
            )
            assert cursor.fetchone()[0] == 777

    def test_a_bad_span_or_status_registers_nothing(self, campaign):
        movie = movies.movie_register_extracted(campaign=campaign, title="Elsewhere")
        good = movies.ExtractedClip(end_s=1.0, video="clips/a.mp4")
        with pytest.raises(ApplicationError, match="Clip 2: 3–2 s is no span"):
            movies.clips_register_extracted(
                movie=movie, clips=[good, movies.ExtractedClip(start_s=3, end_s=2)]
            )
        with pytest.raises(ApplicationError, match="Unknown clip status"):
            movies.clips_register_extracted(movie=movie, clips=[good], status="done")
        assert not Clip.objects.exists()


@pytest.mark.django_db
class ImportCommandsTests:
    def test_import_movies_registers_the_folders_videos_and_skips_duplicates(
        self, campaign, tmp_path, capsys
    ):
        folder = tmp_path / "in"
        folder.mkdir()
        movie_file(folder, "a.mp4")
        movie_file(folder, "b.mp4", first=200)
        (folder / "c.mp4").write_bytes((folder / "a.mp4").read_bytes())
        (folder / "notes.txt").write_text("not a movie")
        call_command("import_movies", "campaign", str(folder))
        out, err = capsys.readouterr()
        assert "2 registered, 1 refused" in out and "c.mp4: The same file is already movie" in err
        assert sorted(Movie.objects.values_list("title", "status")) == [
            ("a", "ready"),
            ("b", "ready"),
        ]

    def test_import_segments_proposes_all_rows_or_none(self, campaign, tmp_path, capsys):
        movie = ready_movie(campaign, tmp_path)
        good = tmp_path / "segments.csv"
        good.write_text(f"movie,start_s,end_s\nfilm,0,1\n{movie.pk},1.5,2.5\n")
        call_command("import_segments", "campaign", str(good))
        assert "2 clips proposed" in capsys.readouterr().out
        bad = tmp_path / "bad.csv"
        bad.write_text("movie,start_s,end_s\nfilm,0,1\nnope,0,1\n")
        with pytest.raises(CommandError, match="line 3: no movie 'nope'"):
            call_command("import_segments", "campaign", str(bad))
        assert Clip.objects.count() == 2


@pytest.mark.django_db
class AdminRetryTests:
    def test_the_admin_action_requeues_failed_clips_only(
        self, client, campaign, eve, admin_user, tmp_path, django_capture_on_commit_callbacks
    ):
        from tests.conftest import PASSWORD

        movie = ready_movie(campaign, tmp_path)
        failed, fine = movies.clip_propose(
            user=eve, movie_id=movie.pk, segments=[movies.Segment(0, 1), movies.Segment(1, 2)]
        ).clips
        extraction.clip_extract_fail(failed.pk, "ffmpeg said: broken")
        client.login(username="admin", password=PASSWORD)
        with django_capture_on_commit_callbacks(execute=False) as queued:
            response = client.post(
                "/admin/labeling/clip/",
                {"action": "retry_extraction", "_selected_action": [failed.pk, fine.pk]},
            )
        assert response.status_code == 302 and len(queued) == 1
        failed.refresh_from_db()
        assert (failed.media_status, failed.status, failed.media_error) == (
            MediaStatus.PENDING,
            Clip.Status.PROPOSED,
            "",
        )
