"""Extraction of proposed clips: claim once, cut frame-exactly, crop faces, record; failures,
retries, and a real worker."""

from __future__ import annotations

import subprocess
import time
from datetime import timedelta

import numpy as np
import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from labeling import movies
from labeling.errors import Forbidden
from labeling.models import Clip, MediaStatus, Movie, Role
from labeling.tasks import clip_extract_task
from pipeline.faces import read_face_frames
from pipeline.media import read_frames, write_video
from pipeline.synthetic_movies import drawn_face_movie, frame_numbers
from tests.conftest import make_user
from tests.labeling.test_movies import movie_file, ready_movie
from tests.labeling.test_tasks import filesystem_app


@pytest.fixture
def eve(campaign):
    """An extractor on the campaign (its member list)."""
    user = make_user("eve", Role.EXTRACTOR)
    campaign.annotators.add(user)
    return user


def clip_whose_extraction_raises(campaign, user, folder, monkeypatch, error):
    """A proposed clip of a fresh movie, with ffmpeg's work replaced by raising ``error``."""
    (clip,) = propose(user, ready_movie(campaign, folder), (0.0, 1.0))

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(movies.media, "extract_clip", fail)
    return clip


def propose(user, movie, *spans):
    segments = [movies.Segment(start, end) for start, end in spans]
    return movies.clip_propose(user=user, movie_id=movie.pk, segments=segments).clips


@pytest.mark.django_db
class ClipExtractTests:
    def test_it_cuts_the_exact_frames_with_poster_faces_and_bucket(
        self, campaign, eve, tmp_path, settings
    ):
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.52, 1.73))
        assert movies.clip_extract(clip.pk) is True
        clip.refresh_from_db()
        assert clip.media_status == MediaStatus.READY and clip.media_error == ""
        root = settings.MEDIA_ROOT
        assert clip.video.name == f"clips/{clip.pk}.mp4"
        # 0.52 s is frame 13 exactly; frames 13…43 lie before 1.73 s (frame 43.25).
        assert frame_numbers(read_frames(root / clip.video.name)) == list(range(13, 44))
        assert (clip.first_frame, clip.n_frames) == (13, 31)
        assert (root / clip.poster.name).read_bytes()[:2] == b"\xff\xd8"
        assert clip.faces == f"faces/{clip.pk}.jpg"
        assert read_face_frames(root / clip.faces).shape == (31, 112, 112, 3)
        assert clip.duration_bucket == "0-2s"
        # The numbered source has no face: flagged for the reviewer, in screening.
        assert clip.face_ratio == 0.0 and clip.few_faces
        assert clip.status == Clip.Status.SCREENING and "few faces" in clip.status_reason

    def test_a_drawn_face_opens_for_labelling_when_the_campaign_skips_screening(
        self, campaign, eve, tmp_path
    ):
        campaign.screen_clips = False
        campaign.save()
        frames = drawn_face_movie(["happy", "fear"], 1.0, 12, 96, np.random.default_rng(5))
        path = write_video(frames, tmp_path / "faces.mp4", fps=12)
        movie = movies.movie_probe(movies.movie_register_path(campaign=campaign, path=path).pk)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        movies.clip_extract(clip.pk)
        clip.refresh_from_db()
        assert clip.face_ratio >= 0.8 and not clip.few_faces
        assert clip.status == Clip.Status.ANNOTATING

    def test_a_storage_without_local_paths_works_through_a_cached_copy(
        self, campaign, eve, tmp_path, settings
    ):
        # given: a storage with no local paths, as an S3-compatible store (in memory here)
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        }
        settings.MEDIA_CACHE_DIR = tmp_path / "cache"
        from django.core.files.storage import default_storage

        # when: a movie comes in, is probed, and a clip of it is extracted, twice
        movie = movies.movie_probe(
            movies.movie_register_path(campaign=campaign, path=movie_file(tmp_path)).pk
        )
        assert movie.status == Movie.Status.READY, movie.error
        (clip,) = propose(eve, movie, (0.52, 1.73))
        assert movies.clip_extract(clip.pk) is True
        Clip.objects.filter(pk=clip.pk).update(media_status=MediaStatus.PENDING)
        assert movies.clip_extract(clip.pk) is True

        # then: the clip, its poster and its face sheet are in the storage under their names
        clip.refresh_from_db()
        assert [clip.video.name, clip.poster.name, clip.faces] == [
            f"clips/{clip.pk}.mp4",
            f"posters/{clip.pk}.jpg",
            f"faces/{clip.pk}.jpg",
        ]
        copy = tmp_path / "clip.mp4"
        with default_storage.open(clip.video.name, "rb") as stored:
            copy.write_bytes(stored.read())
        assert frame_numbers(read_frames(copy)) == list(range(13, 44))
        sheet = tmp_path / "faces.jpg"
        with default_storage.open(clip.faces, "rb") as stored:
            sheet.write_bytes(stored.read())
        assert len(read_face_frames(sheet)) == 31
        # and the worker copied the movie once, named by its content
        assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"{movie.content_hash}.mp4"]

    def test_the_movie_cache_keeps_recent_copies_and_drops_old_ones_over_its_size(
        self, campaign, tmp_path, settings
    ):
        import os

        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        }
        settings.MEDIA_CACHE_DIR = cache = tmp_path / "cache"
        settings.MEDIA_CACHE_GB = 0  # every copy is over the limit
        old, recent, new = (
            movies.movie_register_path(
                campaign=campaign, path=movie_file(tmp_path, f"{n}.mp4", first=i)
            )
            for i, n in enumerate(["old", "recent", "new"])
        )
        for movie in (old, recent):
            movies.movie_local_source(movie)
        two_hours_ago = time.time() - 7200
        os.utime(movies.movie_local_source(old), (two_hours_ago, two_hours_ago))
        # when: a third movie is copied
        movies.movie_local_source(new)
        # then: the copy unused for two hours went; the one used a moment ago stays
        assert sorted(p.name for p in cache.iterdir()) == sorted(
            f"{m.content_hash}.mp4" for m in (recent, new)
        )

    def test_a_second_delivery_does_nothing(self, campaign, eve, tmp_path, settings):
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        assert movies.clip_extract(clip.pk) is True
        written = (settings.MEDIA_ROOT / f"clips/{clip.pk}.mp4").stat().st_mtime_ns
        assert movies.clip_extract(clip.pk) is False
        assert (settings.MEDIA_ROOT / f"clips/{clip.pk}.mp4").stat().st_mtime_ns == written
        clip.refresh_from_db()
        assert clip.media_attempts == 1

    def test_only_one_claim_wins_and_a_dead_workers_claim_is_taken_over(
        self, campaign, eve, tmp_path
    ):
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        assert movies.clip_claim(clip.pk) is True
        assert movies.clip_claim(clip.pk) is False  # another worker, meanwhile
        # The first worker died mid-way; its message comes back after the claim went stale.
        Clip.objects.filter(pk=clip.pk).update(
            media_claimed_at=timezone.now() - movies.stale_claim() - timedelta(seconds=1)
        )
        assert movies.clip_extract(clip.pk) is True
        clip.refresh_from_db()
        assert (clip.media_status, clip.media_attempts) == (MediaStatus.READY, 2)
        assert Clip.objects.count() == 1

    def test_a_permanent_error_fails_the_clip_with_ffmpegs_words_and_staff_can_retry(
        self, campaign, eve, tmp_path, settings, admin_user, django_capture_on_commit_callbacks
    ):
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        source = settings.MEDIA_ROOT / movie.source.name
        kept = source.read_bytes()
        source.write_bytes(b"garbage" * 100)
        assert movies.clip_extract(clip.pk) is False
        clip.refresh_from_db()
        assert (clip.status, clip.media_status) == (Clip.Status.FAILED, MediaStatus.FAILED)
        assert "Invalid data found" in clip.media_error
        assert not list((settings.MEDIA_ROOT / "clips").glob("*"))  # no half-written file

        with pytest.raises(Forbidden):
            movies.clips_extract_retry(user=eve, clip_ids=[clip.pk])
        source.write_bytes(kept)
        with django_capture_on_commit_callbacks() as queued:
            assert movies.clips_extract_retry(user=admin_user, clip_ids=[clip.pk]) == 1
        assert len(queued) == 1
        assert movies.clip_extract(clip.pk) is True
        clip.refresh_from_db()
        assert clip.status == Clip.Status.SCREENING and clip.media_error == ""

    def test_a_transient_error_releases_the_claim_for_the_retry(
        self, campaign, eve, tmp_path, monkeypatch
    ):
        clip = clip_whose_extraction_raises(
            campaign, eve, tmp_path, monkeypatch, subprocess.TimeoutExpired("ffmpeg", 1)
        )
        with pytest.raises(subprocess.TimeoutExpired):
            movies.clip_extract(clip.pk)
        clip.refresh_from_db()
        assert clip.media_status == MediaStatus.PENDING

    def test_the_task_retries_transient_errors_with_backoff_and_acks_late(self):
        assert clip_extract_task.acks_late
        assert clip_extract_task.autoretry_for == movies.TRANSIENT_ERRORS
        assert clip_extract_task.retry_backoff and clip_extract_task.max_retries == 5
        # A stale claim is only taken over once the task can no longer be running.
        assert movies.stale_claim().total_seconds() > clip_extract_task.time_limit

    def test_progress_counts_the_movies_clips_by_state(self, campaign, eve, tmp_path):
        movie = ready_movie(campaign, tmp_path)
        first, _ = propose(eve, movie, (0.0, 1.0), (1.0, 2.0))
        movies.clip_extract(first.pk)
        assert movies.movie_progress(movie) == {
            "pending": 1,
            "extracting": 0,
            "ready": 1,
            "failed": 0,
        }


@pytest.mark.django_db(transaction=True)
class ExtractionWorkerTests:
    def test_a_media_worker_probes_the_movie_and_extracts_proposed_clips(
        self, campaign, eve, tmp_path
    ):
        from annotation_site.celery import app as default_app

        app = filesystem_app(tmp_path)
        app.set_current()
        try:
            # A worker of the `media` queue only, as on a machine of its own: the probe and the
            # extractions are routed there (CELERY_TASK_ROUTES), nothing else is needed.
            with start_worker(
                app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=["media"]
            ):
                movie = movies.movie_register_path(campaign=campaign, path=movie_file(tmp_path))
                deadline = time.monotonic() + 60
                while movie.status == Movie.Status.PENDING and time.monotonic() < deadline:
                    time.sleep(0.2)
                    movie.refresh_from_db()
                assert movie.status == Movie.Status.READY, movie.error
                clips = propose(eve, movie, (0.0, 1.0), (1.5, 2.5))
                deadline = time.monotonic() + 90
                while time.monotonic() < deadline:
                    states = set(
                        Clip.objects.filter(pk__in=[c.pk for c in clips]).values_list(
                            "media_status", flat=True
                        )
                    )
                    if states == {MediaStatus.READY}:
                        break
                    time.sleep(0.3)
                else:
                    pytest.fail(f"the worker did not extract the clips within 90 s: {states}")
        finally:
            default_app.set_current()
        assert Movie.objects.get().status == Movie.Status.READY
        assert list(Clip.objects.values_list("media_attempts", flat=True)) == [1, 1]


# The worker of the death test: a real `celery worker` process on the test database. The
# first one detects faces slowly, so that it can be killed in the middle of an extraction.
WORKER = """
import os, sys, time
import django
django.setup()
from django.conf import settings
settings.MEDIA_STALE_CLAIM_SECONDS = 2
if sys.argv[1] == "slow":
    from pipeline import faces
    detect = faces.HaarFaceDetector.detect
    def slow(self, frame, near=None):
        time.sleep(0.5)
        return detect(self, frame, near)
    faces.HaarFaceDetector.detect = slow
from annotation_site.celery import app
app.conf.broker_transport_options = {**app.conf.broker_transport_options, "visibility_timeout": 3}
app.worker_main(["worker", "--pool=solo", "--loglevel=INFO", "--without-gossip",
                 "--without-mingle", "--queues=celery,media", "--hostname", sys.argv[1] + "@%h"])
"""


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
class WorkerDeathTests:
    def test_a_worker_killed_mid_extraction_and_the_clip_still_completes_once(
        self, campaign, eve, tmp_path, settings
    ):
        import os
        import signal
        import sys

        import redis
        from django.db import connection

        from tests.conftest import need, redis_available
        from tests.labeling.test_tasks import _app

        need(redis_available(), "needs a Redis server (REDIS_URL or 127.0.0.1:6379)")
        url = settings.REDIS_URL or "redis://127.0.0.1:6379/6"
        # No message of an earlier run may reach these workers.
        redis.Redis.from_url(url).delete("celery", "media", "unacked", "unacked_index")
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 2.0))
        script = tmp_path / "worker.py"
        script.write_text(WORKER)
        db = connection.settings_dict  # the test database, which the workers must use
        if connection.vendor == "sqlite":
            database_url = f"sqlite:///{db['NAME']}"
        else:
            database_url = (
                f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
            )
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "REDIS_URL": url,
            "DJANGO_SETTINGS_MODULE": "annotation_site.settings",
        }

        def worker(kind):
            log = open(tmp_path / f"{kind}.log", "wb")  # noqa: SIM115
            return subprocess.Popen(
                [sys.executable, str(script), kind], env=env, stdout=log, stderr=log
            )

        def wait_for(state, seconds):
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                clip.refresh_from_db()
                if clip.media_status == state:
                    return True
                time.sleep(0.1)
            return False

        _app(url, {"visibility_timeout": 3}).send_task(
            "labeling.tasks.clip_extract_task", args=[clip.pk]
        )
        first = worker("slow")
        try:
            assert wait_for(MediaStatus.EXTRACTING, 60), (tmp_path / "slow.log").read_text()
            time.sleep(0.5)
            os.kill(first.pid, signal.SIGKILL)  # dies holding the claim and the message
            first.wait(10)
            clip.refresh_from_db()
            assert clip.media_status == MediaStatus.EXTRACTING
            second = worker("fast")
            try:
                assert wait_for(MediaStatus.READY, 90), (tmp_path / "fast.log").read_text()
            finally:
                second.send_signal(signal.SIGTERM)
                second.wait(30)
        finally:
            if first.poll() is None:
                first.kill()
        clip.refresh_from_db()
        assert clip.media_attempts == 2 and Clip.objects.count() == 1
        assert frame_numbers(read_frames(settings.MEDIA_ROOT / clip.video.name)) == list(
            range(0, 50)
        )
        assert len(read_face_frames(settings.MEDIA_ROOT / clip.faces)) == 50


@pytest.mark.django_db
class ClipExtractTaskTests:
    def test_an_overlong_extraction_fails_the_clip_instead_of_leaving_it_claimed(
        self, campaign, eve, tmp_path, monkeypatch
    ):
        from celery.exceptions import SoftTimeLimitExceeded

        clip = clip_whose_extraction_raises(
            campaign, eve, tmp_path, monkeypatch, SoftTimeLimitExceeded()
        )
        assert clip_extract_task.apply(args=[clip.pk]).get() is False
        clip.refresh_from_db()
        assert clip.media_status == MediaStatus.FAILED and "longer than 900 s" in clip.media_error

    def test_the_last_retry_of_a_transient_error_fails_the_clip(
        self, campaign, eve, tmp_path, monkeypatch
    ):
        clip = clip_whose_extraction_raises(
            campaign, eve, tmp_path, monkeypatch, subprocess.TimeoutExpired("ffmpeg", 60)
        )
        result = clip_extract_task.apply(args=[clip.pk], retries=5)
        assert result.get() is False
        clip.refresh_from_db()
        assert clip.media_status == MediaStatus.FAILED and "gave up after 5" in clip.media_error
