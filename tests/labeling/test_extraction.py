"""Extraction of proposed clips: claim once, cut frame-exactly, crop faces, record; failures,
retries, and a real worker."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from annotation_site.errors import Forbidden
from labeling.media import extraction, movies, storage
from labeling.models import Clip, MediaStatus, Movie, Role
from labeling.tasks import clip_extract_task
from pipeline.face_sheets import read_face_frames
from pipeline.media import read_frames, write_video
from pipeline.synthetic_movies import drawn_face_movie, frame_numbers
from tests.conftest import make_user
from tests.labeling.test_movies import movie_file, ready_movie
from tests.labeling.test_tasks import filesystem_app


@pytest.fixture
def eve(campaign):
    """An extractor on the campaign (its member list)."""
    user = make_user("eve", Role.EXTRACTOR)
    campaign.annotators.add(user, through_defaults={"role": Role.EXTRACTOR})
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


MEDIA_FOLDERS = ("clips", "posters", "faces")


def partial_outputs(root) -> list[str]:
    """The partial outputs under the media folders: `.<clip id>.<pid>.tmp.<ext>`, what an
    extraction writes before it moves each file into place."""
    return sorted(
        f"{folder}/{path.name}"
        for folder in MEDIA_FOLDERS
        if (root / folder).is_dir()
        for path in (root / folder).glob(".*")
    )


def leave_partial_outputs(root, clip_id: int, pid: int = 4242) -> list[str]:
    """What a run of process ``pid`` killed mid-extraction leaves: its three staged files."""
    names = [f"clips/.{clip_id}.{pid}.tmp.mp4", f"posters/.{clip_id}.{pid}.tmp.jpg"]
    names.append(f"faces/.{clip_id}.{pid}.tmp.jpg")
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"half a file")
    return names


@contextmanager
def a_process():
    """A live process of this machine, killed (and reaped) when the block ends."""
    proc = subprocess.Popen(["sleep", "120"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.django_db
class ClipExtractTests:
    def test_it_cuts_the_exact_frames_with_poster_faces_and_bucket(
        self, campaign, eve, tmp_path, settings
    ):
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.52, 1.73))
        assert extraction.clip_extract(clip.pk) is True
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
        extraction.clip_extract(clip.pk)
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
        assert extraction.clip_extract(clip.pk) is True
        Clip.objects.filter(pk=clip.pk).update(media_status=MediaStatus.PENDING)
        assert extraction.clip_extract(clip.pk) is True

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
            storage.movie_local_source(movie)
        two_hours_ago = time.time() - 7200
        os.utime(storage.movie_local_source(old), (two_hours_ago, two_hours_ago))
        # when: a third movie is copied
        storage.movie_local_source(new)
        # then: the copy unused for two hours went; the one used a moment ago stays
        assert sorted(p.name for p in cache.iterdir()) == sorted(
            f"{m.content_hash}.mp4" for m in (recent, new)
        )

    def test_a_second_delivery_does_nothing(self, campaign, eve, tmp_path, settings):
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        assert extraction.clip_extract(clip.pk) is True
        written = (settings.MEDIA_ROOT / f"clips/{clip.pk}.mp4").stat().st_mtime_ns
        assert extraction.clip_extract(clip.pk) is False
        assert (settings.MEDIA_ROOT / f"clips/{clip.pk}.mp4").stat().st_mtime_ns == written
        clip.refresh_from_db()
        assert clip.media_attempts == 1

    def test_only_one_claim_wins_and_a_dead_workers_claim_is_taken_over(
        self, campaign, eve, tmp_path
    ):
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        assert extraction.clip_claim(clip.pk) is True
        assert extraction.clip_claim(clip.pk) is False  # another worker, meanwhile
        # The first worker died mid-way; its message comes back after the claim went stale.
        Clip.objects.filter(pk=clip.pk).update(
            media_claimed_at=timezone.now() - extraction.stale_claim() - timedelta(seconds=1)
        )
        assert extraction.clip_extract(clip.pk) is True
        clip.refresh_from_db()
        assert (clip.media_status, clip.media_attempts) == (MediaStatus.READY, 2)
        assert Clip.objects.count() == 1

    def test_the_same_task_delivered_again_takes_its_clip_over_once_its_process_is_gone(
        self, campaign, eve, tmp_path, settings
    ):
        # given: task t1's process claimed the clip and began writing (a pool child)
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        with a_process() as worker:
            assert extraction.clip_claim(clip.pk, "t1") is True
            Clip.objects.filter(pk=clip.pk).update(
                media_claim_worker=extraction.claimant(worker.pid)
            )
            partial = leave_partial_outputs(settings.MEDIA_ROOT, clip.pk, worker.pid)
            # while it lives, neither its own message delivered twice nor another task
            # takes the clip, and its files stay
            assert extraction.clip_extract(clip.pk, task_id="t1") is False
            assert extraction.clip_extract(clip.pk, task_id="t2") is False
            assert partial_outputs(settings.MEDIA_ROOT) == sorted(partial)
        # when: it was killed (the OOM killer) and the worker requeued its message at once
        assert extraction.clip_extract(clip.pk, task_id="t2") is False  # a stranger still waits
        assert extraction.clip_extract(clip.pk, task_id="t1") is True
        # then: extracted by the redelivery, once, and the dead run's files are gone
        clip.refresh_from_db()
        assert (clip.media_status, clip.media_attempts, clip.media_lost_claims) == (
            MediaStatus.READY,
            2,
            1,
        )
        assert partial_outputs(settings.MEDIA_ROOT) == []
        assert frame_numbers(read_frames(settings.MEDIA_ROOT / clip.video.name)) == list(
            range(0, 25)
        )
        assert extraction.clip_extract(clip.pk, task_id="t1") is False

    @pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads Linux's /proc")
    def test_a_claimant_is_gone_when_no_process_of_its_pid_and_start_lives_here(self):
        host = socket.gethostname()
        assert not extraction.claimant_gone(extraction.claimant())
        with a_process() as proc:
            recorded = extraction.claimant(proc.pid)
            assert not extraction.claimant_gone(recorded)
        assert extraction.claimant_gone(recorded)
        # its pid given to another process later (a restarted container): another start time
        assert extraction.claimant_gone(f"{host}:{os.getpid()}:1")
        # a zombie, killed but not yet reaped by its parent, is gone
        zombie = subprocess.Popen(["sleep", "120"])
        recorded = extraction.claimant(zombie.pid)
        zombie.kill()
        deadline = time.monotonic() + 10
        while extraction.claimant_gone(recorded) is False and time.monotonic() < deadline:
            time.sleep(0.05)
        assert extraction.claimant_gone(recorded)
        zombie.wait(10)
        # another machine's process cannot be looked at: its redelivered task means it died
        assert extraction.claimant_gone(f"not-{host}:1:1")
        # a claim that records no process (made before claims did) only goes stale
        assert not extraction.claimant_gone("")

    def test_a_clip_whose_worker_died_three_times_fails_and_staff_can_retry_it(
        self, campaign, eve, tmp_path, settings, admin_user, django_capture_on_commit_callbacks
    ):
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        with a_process() as worker:
            dead = extraction.claimant(worker.pid)
        for n in range(1, extraction.LOST_CLAIMS_LIMIT + 1):
            # the extraction kills its worker (always the OOM killer); the message comes back
            Clip.objects.filter(pk=clip.pk).update(
                media_status=MediaStatus.EXTRACTING, media_claim_task="t1", media_claim_worker=dead
            )
            leave_partial_outputs(settings.MEDIA_ROOT, clip.pk)
            if n < extraction.LOST_CLAIMS_LIMIT:
                assert extraction.clip_claim(clip.pk, "t1") is True
                assert partial_outputs(settings.MEDIA_ROOT) == []
        assert extraction.clip_claim(clip.pk, "t1") is False
        clip.refresh_from_db()
        assert (clip.status, clip.media_status) == (Clip.Status.FAILED, MediaStatus.FAILED)
        assert "worker died during 3 extractions" in clip.media_error
        assert clip.media_lost_claims == 3
        assert partial_outputs(settings.MEDIA_ROOT) == []
        # staff's retry starts again: a dead worker no longer counts against it
        with django_capture_on_commit_callbacks():
            assert extraction.clips_extract_retry(user=admin_user, clip_ids=[clip.pk]) == 1
        assert extraction.clip_extract(clip.pk, task_id="t2") is True
        clip.refresh_from_db()
        assert (clip.media_status, clip.media_lost_claims) == (MediaStatus.READY, 0)

    def test_a_failure_removes_the_partial_outputs_of_the_clip(
        self, campaign, eve, tmp_path, settings
    ):
        # given: a run killed mid-way left its files; the retry meets a broken movie
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        leave_partial_outputs(settings.MEDIA_ROOT, clip.pk)
        (settings.MEDIA_ROOT / movie.source.name).write_bytes(b"garbage" * 100)
        # when: the extraction fails for good
        assert extraction.clip_extract(clip.pk) is False
        # then: no partial output of the clip is left
        clip.refresh_from_db()
        assert clip.media_status == MediaStatus.FAILED
        assert partial_outputs(settings.MEDIA_ROOT) == []

    def test_the_sweep_queues_stale_claims_again_and_removes_partial_outputs(
        self, campaign, eve, tmp_path, settings, django_capture_on_commit_callbacks
    ):
        from labeling.tasks import clip_claims_sweep_task

        root = settings.MEDIA_ROOT
        movie = ready_movie(campaign, tmp_path)
        stale, running, poisoned = propose(eve, movie, (0.0, 1.0), (1.0, 2.0), (2.0, 3.0))
        # given: a whole worker killed on another machine (its message will come back only
        # after the visibility timeout), a live extraction, and a clip on its third death
        for clip in (stale, running, poisoned):
            assert extraction.clip_claim(clip.pk, f"t{clip.pk}") is True
        long_ago = timezone.now() - extraction.stale_claim() - timedelta(seconds=1)
        Clip.objects.filter(pk__in=[stale.pk, poisoned.pk]).update(
            media_claimed_at=long_ago, media_claim_worker="elsewhere:7:1"
        )
        Clip.objects.filter(pk=poisoned.pk).update(
            media_lost_claims=extraction.LOST_CLAIMS_LIMIT - 1
        )
        leave_partial_outputs(root, stale.pk)
        leave_partial_outputs(root, poisoned.pk)
        live = leave_partial_outputs(root, running.pk)
        # and a partial output older than any extraction can run, of a clip deleted since
        orphan = root / "clips/.999999.4242.tmp.mp4"
        orphan.write_bytes(b"half a file")
        os.utime(orphan, (long_ago.timestamp(), long_ago.timestamp()))

        # when: beat sweeps, twice
        with django_capture_on_commit_callbacks(execute=False) as queued:
            assert clip_claims_sweep_task() == 2
        assert clip_claims_sweep_task() == 0

        # then: the stale claim is queued again, the third death fails its clip, the live
        # extraction keeps its claim and its files; the rest of the partial outputs are gone
        assert len(queued) == 1
        stale.refresh_from_db()
        assert (stale.media_status, stale.media_claim_task, stale.media_lost_claims) == (
            MediaStatus.PENDING,
            "",
            1,
        )
        poisoned.refresh_from_db()
        assert poisoned.media_status == MediaStatus.FAILED
        assert "worker died during 3 extractions" in poisoned.media_error
        running.refresh_from_db()
        assert running.media_status == MediaStatus.EXTRACTING
        assert partial_outputs(root) == sorted(live)
        # and the queued task extracts the clip
        assert extraction.clip_extract(stale.pk, task_id="t-sweep") is True

    def test_a_permanent_error_fails_the_clip_with_ffmpegs_words_and_staff_can_retry(
        self, campaign, eve, tmp_path, settings, admin_user, django_capture_on_commit_callbacks
    ):
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        source = settings.MEDIA_ROOT / movie.source.name
        kept = source.read_bytes()
        source.write_bytes(b"garbage" * 100)
        assert extraction.clip_extract(clip.pk) is False
        clip.refresh_from_db()
        assert (clip.status, clip.media_status) == (Clip.Status.FAILED, MediaStatus.FAILED)
        assert "Invalid data found" in clip.media_error
        assert not list((settings.MEDIA_ROOT / "clips").glob("*"))  # no half-written file

        with pytest.raises(Forbidden):
            extraction.clips_extract_retry(user=eve, clip_ids=[clip.pk])
        source.write_bytes(kept)
        with django_capture_on_commit_callbacks() as queued:
            assert extraction.clips_extract_retry(user=admin_user, clip_ids=[clip.pk]) == 1
        assert len(queued) == 1
        assert extraction.clip_extract(clip.pk) is True
        clip.refresh_from_db()
        assert clip.status == Clip.Status.SCREENING and clip.media_error == ""

    def test_a_transient_error_releases_the_claim_for_the_retry(
        self, campaign, eve, tmp_path, monkeypatch
    ):
        clip = clip_whose_extraction_raises(
            campaign, eve, tmp_path, monkeypatch, subprocess.TimeoutExpired("ffmpeg", 1)
        )
        with pytest.raises(subprocess.TimeoutExpired):
            extraction.clip_extract(clip.pk)
        clip.refresh_from_db()
        assert clip.media_status == MediaStatus.PENDING

    def test_the_task_retries_transient_errors_with_backoff_and_acks_late(self):
        assert clip_extract_task.acks_late
        assert clip_extract_task.autoretry_for == extraction.TRANSIENT_ERRORS
        assert clip_extract_task.retry_backoff and clip_extract_task.max_retries == 5
        # A stale claim is only taken over once the task can no longer be running: a minute
        # past its hard time limit, itself below the Redis visibility timeout (a task still
        # running is never delivered again).
        assert extraction.stale_claim() == timedelta(seconds=clip_extract_task.time_limit + 60)
        assert clip_extract_task.time_limit < 7200

    def test_beat_sweeps_the_extraction_claims_every_five_minutes(self, settings):
        entry = settings.CELERY_BEAT_SCHEDULE["extraction-claims"]
        assert entry["task"] == "labeling.tasks.clip_claims_sweep_task"
        assert entry["schedule"] == timedelta(minutes=5)

    def test_progress_counts_the_movies_clips_by_state(self, campaign, eve, tmp_path):
        movie = ready_movie(campaign, tmp_path)
        first, _ = propose(eve, movie, (0.0, 1.0), (1.0, 2.0))
        extraction.clip_extract(first.pk)
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


# The worker of the death tests: a real `celery worker` (prefork, one pool process, as
# deployed) on the test database and the Redis broker, with the settings' stale-claim time (the
# task's time limit): only the redelivered message may take its clip over. The first worker
# detects faces slowly, so that it can be killed in the middle of an extraction.
WORKER = """
import sys, time, uuid
import django
django.setup()
if sys.argv[1] == "slow":
    from django.conf import settings
    from pipeline import faces
    detector = faces.DETECTORS[settings.FACE_DETECTOR]
    detect = detector.detect
    def slow(self, frame, near=None):
        time.sleep(0.5)
        return detect(self, frame, near)
    detector.detect = slow
    if hasattr(detector, "detect_all"):  # the tracker looks through detect_all
        detect_all = detector.detect_all
        def slow_all(self, frame, *args, **kwargs):
            time.sleep(0.5)
            return detect_all(self, frame, *args, **kwargs)
        detector.detect_all = slow_all
from annotation_site.celery import app
app.worker_main(["worker", "--pool=prefork", "--concurrency=1", "--loglevel=INFO",
                 "--without-gossip", "--without-mingle", "--queues=" + sys.argv[2],
                 "--hostname", f"{sys.argv[1]}-{uuid.uuid4().hex[:8]}@%h"])
"""


@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
class WorkerDeathTests:
    """`kill -9` mid-extraction, of the pool process and of the whole worker: the clip is
    extracted once, by the same task delivered again, and no partial output stays."""

    @pytest.fixture
    def death(self, campaign, eve, tmp_path, settings):
        from tests.conftest import need, redis_available

        need(redis_available(), "needs a Redis server (REDIS_URL or 127.0.0.1:6379)")
        return Death(campaign, eve, tmp_path, settings)

    def test_a_pool_process_killed_mid_extraction_is_replaced_and_its_task_finishes_the_clip(
        self, death
    ):
        import signal

        import psutil

        # given: one worker, Redis's visibility timeout as deployed (2 h: only the worker's
        # own requeue can bring the message back in time)
        first = death.worker("slow")
        try:
            death.send()
            pool = death.wait_until_mid_extraction(first)
            # when: the pool process is SIGKILLed (the OOM killer) holding the claim
            os.kill(pool.pid, signal.SIGKILL)
            # then: the worker requeues the message, a new pool process takes it, and the
            # clip is extracted once
            death.wait_until_ready("slow")
            assert pool.pid not in [p.pid for p in psutil.Process(first.pid).children()]
        finally:
            death.stop(first)
        death.assert_extracted_once()

    def test_a_whole_worker_killed_mid_extraction_leaves_its_clip_to_the_next_worker(self, death):
        # given: Redis hands on a dead worker's unacknowledged message after 3 s
        first = death.worker("slow", CELERY_VISIBILITY_TIMEOUT="3")
        try:
            death.send()
            death.wait_until_mid_extraction(first)
            # when: the whole worker, parent, pool and ffmpeg, is SIGKILLed: nobody acks,
            # rejects or cleans up
            death.kill(first)
            death.clip.refresh_from_db()
            assert death.clip.media_status == MediaStatus.EXTRACTING
            assert partial_outputs(death.media)  # its half-written files
            # then: the next worker gets the same task again and extracts the clip once
            second = death.worker("fast", CELERY_VISIBILITY_TIMEOUT="3")
            try:
                death.wait_until_ready("fast")
            finally:
                death.stop(second)
        finally:
            death.kill(first)
        death.assert_extracted_once()


class Death:
    """One clip of 2 s (50 frames) and the worker processes that extract it."""

    def __init__(self, campaign, eve, tmp_path, settings):
        import sys

        from django.db import connection

        self.python = sys.executable
        self.tmp_path = tmp_path
        self.media = settings.MEDIA_ROOT
        self.url = settings.REDIS_URL or "redis://127.0.0.1:6379/6"
        # A queue of this test's own: no message of another run or test reaches its workers.
        self.queue = f"media-death-{os.getpid()}-{time.monotonic_ns()}"
        (self.clip,) = propose(eve, ready_movie(campaign, tmp_path), (0.0, 2.0))
        self.script = tmp_path / "worker.py"
        self.script.write_text(WORKER)
        db = connection.settings_dict  # the test database, which the workers must use
        if connection.vendor == "sqlite":
            database_url = f"sqlite:///{db['NAME']}"
        else:
            auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
            host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
            database_url = f"postgres://{auth}@{host}/{db['NAME']}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "MEDIA_ROOT": str(self.media),
            "REDIS_URL": self.url,
            "VAR_DIR": str(tmp_path / "var"),
            "DJANGO_SETTINGS_MODULE": "annotation_site.settings",
        }
        self.env.pop("CELERY_VISIBILITY_TIMEOUT", None)

    def worker(self, kind: str, **env) -> subprocess.Popen:
        log = open(self.tmp_path / f"{kind}.log", "ab")  # noqa: SIM115
        return subprocess.Popen(
            [self.python, str(self.script), kind, self.queue],
            env={**self.env, **env},
            stdout=log,
            stderr=log,
            start_new_session=True,  # its own process group: `kill` reaches pool and ffmpeg
        )

    def log(self, kind: str) -> str:
        return (self.tmp_path / f"{kind}.log").read_text(errors="replace")[-6000:]

    def send(self) -> None:
        from tests.labeling.test_tasks import _app

        _app(self.url, {}).send_task(
            "labeling.tasks.clip_extract_task", args=[self.clip.pk], queue=self.queue
        )

    def wait_until_mid_extraction(self, worker: subprocess.Popen):
        """The worker's pool process, once it has claimed the clip and is writing its video."""
        import psutil

        deadline = time.monotonic() + 90
        video = self.media / "clips"
        while time.monotonic() < deadline:
            self.clip.refresh_from_db()
            writing = video.is_dir() and list(video.glob(f".{self.clip.pk}.*.tmp.mp4"))
            if self.clip.media_status == MediaStatus.EXTRACTING and writing:
                (pool,) = psutil.Process(worker.pid).children()
                return pool
            assert self.clip.media_status != MediaStatus.READY, "finished before the kill"
            time.sleep(0.05)
        pytest.fail(f"no extraction began within 90 s:\n{self.log('slow')}")

    def wait_until_ready(self, kind: str) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            self.clip.refresh_from_db()
            if self.clip.media_status == MediaStatus.READY:
                return
            time.sleep(0.1)
        pytest.fail(
            f"the clip is still {self.clip.media_status} after 90 s "
            f"({self.clip.media_error}):\n{self.log(kind)}"
        )

    def stop(self, worker: subprocess.Popen) -> None:
        """A warm shutdown (the task in hand is acknowledged), else a kill."""
        import signal

        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self.kill(worker)

    def kill(self, worker: subprocess.Popen) -> None:
        import signal

        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        worker.wait(30)

    def assert_extracted_once(self) -> None:
        clip = self.clip
        clip.refresh_from_db()
        # one claim killed, one that finished; one clip, its files whole, nothing half-written
        assert (clip.media_status, clip.media_attempts, clip.media_lost_claims) == (
            MediaStatus.READY,
            2,
            1,
        )
        assert Clip.objects.count() == 1
        assert frame_numbers(read_frames(self.media / clip.video.name)) == list(range(0, 50))
        assert len(read_face_frames(self.media / clip.faces)) == 50
        assert (self.media / clip.poster.name).read_bytes()[:2] == b"\xff\xd8"
        assert partial_outputs(self.media) == []


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
