"""Killed processes lose nothing and double nothing.

- A Celery worker process is SIGKILLed after its task did its work and before the message was
  acknowledged (tasks are acked late): the message is delivered again, the task runs a second
  time, and its effect (the clip's one result row) exists once.
- gunicorn workers are SIGKILLed while annotators label over HTTP and retry what failed: every
  label the server confirmed is stored, none twice, no clip gets more than ten.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
import requests
from django.conf import settings
from django.db import connection

from labeling.models import Annotation, Assignment, Clip, ClipLabel
from tests.conftest import make_clips, need, redis_available
from tests.labeling.test_aggregation import TEN, label_clip

ROOT = Path(__file__).resolve().parents[2]


def database_url() -> str:
    """The URL of the test database this test writes, for a server or worker process."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


def app_env(tmp_path: Path, **extra) -> dict:
    var = tmp_path / "var"
    static = var / "static"
    static.mkdir(parents=True, exist_ok=True)
    # The API serves no static file; gunicorn only needs the manifest to exist (wsgi.py).
    (static / "staticfiles.json").write_text('{"paths": {}, "version": "1.1", "hash": ""}')
    return {
        **os.environ,
        "DATABASE_URL": database_url(),
        "VAR_DIR": str(var),
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "annotation_site.settings",
        **extra,
    }


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def start_worker(env: dict, queue: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "annotation_site", "worker",
         "--pool=prefork", "--concurrency=1", f"--queues={queue}",
         "--include=tests.labeling.reliability_probe", "--without-gossip",
         "--without-mingle", "--loglevel=WARNING"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGKILL)
    worker.wait(30)


@pytest.mark.django_db(transaction=True)
class CeleryWorkerKillTests:
    """A clip's aggregation, killed after it wrote its result and before its ack."""

    @pytest.fixture
    def clip(self, campaign, annotators):
        (clip,) = make_clips(campaign, 1)
        label_clip(1, annotators, TEN)
        ClipLabel.objects.all().delete()  # the result the worker writes is the one we count
        return clip

    def env(self, tmp_path, clip, **extra) -> tuple[dict, Path, str]:
        probe = tmp_path / "probe"
        probe.mkdir(exist_ok=True)
        env = app_env(
            tmp_path,
            PROBE_DIR=str(probe),
            PROBE_TASK="labeling.tasks.clip_aggregate_task",
            PROBE_ARG=str(clip.pk),
            **extra,
        )
        return env, probe, f"reliability-{uuid.uuid4().hex[:8]}"

    def send_and_wait_for_the_pause(self, env, probe, queue, clip) -> int:
        send = (
            "import django; django.setup(); from labeling.tasks import clip_aggregate_task; "
            f"clip_aggregate_task.apply_async([{clip.pk}], queue={queue!r})"
        )
        subprocess.run([sys.executable, "-c", send], cwd=ROOT, env=env, check=True)
        pid = int(wait_for(lambda: _read(probe / "paused"), 90, "the first run"))
        assert ClipLabel.objects.filter(clip=clip).count() == 1
        return pid

    def assert_ran_twice_with_one_effect(self, probe, clip) -> None:
        wait_for(lambda: len(_read(probe / "runs").split()) >= 2, 90, "the second run")
        time.sleep(1)
        runs = _read(probe / "runs").split()
        assert len(runs) == 2 and runs[0] != runs[1]  # a new process ran it, once more
        assert ClipLabel.objects.filter(clip=clip).count() == 1
        assert ClipLabel.objects.get(clip=clip).votes["happy"] == 7

    def test_a_killed_pool_process_gets_its_task_again_and_the_effect_happens_once(
        self, clip, tmp_path
    ):
        # given: a worker whose task pauses after its first run, before the ack
        env, probe, queue = self.env(tmp_path, clip)
        worker = start_worker(env, queue)
        try:
            pid = self.send_and_wait_for_the_pause(env, probe, queue, clip)
            # when: the process running it is SIGKILLed (the OOM killer's way)
            os.kill(pid, signal.SIGKILL)
            # then: the worker requeues the message (reject_on_worker_lost), it runs again
            self.assert_ran_twice_with_one_effect(probe, clip)
        finally:
            stop(worker)

    @pytest.mark.redis
    def test_a_killed_worker_leaves_its_message_to_the_next_after_the_visibility_timeout(
        self, clip, tmp_path
    ):
        need(redis_available(), "needs a Redis server (set REDIS_URL)")
        redis_url = settings.REDIS_URL or "redis://127.0.0.1:6379/5"
        env, probe, queue = self.env(
            tmp_path, clip, REDIS_URL=redis_url, CELERY_VISIBILITY_TIMEOUT="3"
        )
        first = start_worker(env, queue)
        try:
            self.send_and_wait_for_the_pause(env, probe, queue, clip)
            # when: the whole worker, parent and pool, is SIGKILLed: nobody acks or rejects
            stop(first)
            second = start_worker(env, queue)
            try:
                # then: Redis hands the unacked message to the new worker after the timeout
                self.assert_ran_twice_with_one_effect(probe, clip)
            finally:
                stop(second)
        finally:
            stop(first)


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
class GunicornWorkerKillTests:
    CLIPS = 8
    KILLS = 5
    # A kill after every this many confirmed labels: tied to progress, not to the clock, so a
    # fast machine cannot finish the labelling before the kills (80 labels, kills at 8…40).
    LABELS_PER_KILL = 8

    def test_killing_workers_during_concurrent_labelling_loses_and_doubles_nothing(
        self, campaign, annotators, tmp_path
    ):
        # given: ten annotators with tokens, eight clips, and gunicorn with three workers
        from rest_framework.authtoken.models import Token

        make_clips(campaign, self.CLIPS)
        tokens = [Token.objects.create(user=user).key for user in annotators]
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "annotation_site.wsgi", "--bind",
             f"127.0.0.1:{port}", "--workers", "3", "--timeout", "60",
             "--log-level", "warning"],
            cwd=ROOT, env=app_env(tmp_path),
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}/api/v1"
        try:
            wait_for(lambda: _answers(f"{base}/schema/"), 60, "gunicorn")
            confirmed: list[set[int]] = [set() for _ in tokens]
            errors: list[BaseException] = []

            def annotate(i: int) -> None:
                try:
                    _label_until_done(base, tokens[i], confirmed[i])
                except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                    errors.append(exc)

            threads = [threading.Thread(target=annotate, args=(i,)) for i in range(len(tokens))]
            for thread in threads:
                thread.start()
            # when: a random worker is SIGKILLed after every eighth confirmed label, five times
            killed = 0
            while killed < self.KILLS and any(t.is_alive() for t in threads):
                time.sleep(0.01)
                if sum(map(len, confirmed)) < (killed + 1) * self.LABELS_PER_KILL:
                    continue
                workers = psutil.Process(server.pid).children()
                if workers:
                    os.kill(random.choice(workers).pid, signal.SIGKILL)
                    killed += 1
            for thread in threads:
                thread.join(300)
            assert not errors, errors
        finally:
            server.terminate()
            server.wait(30)
        # then: every label the server confirmed is stored once, and every clip has ten
        assert killed == self.KILLS
        stored = set(Annotation.objects.values_list("assignment_id", flat=True))
        assert set().union(*confirmed) <= stored
        assert Annotation.objects.count() == self.CLIPS * 10
        for clip in Clip.objects.all():
            assert clip.annotations.valid().count() == 10
            assert clip.status == Clip.Status.COMPLETE
        pairs = list(Annotation.objects.values_list("clip_id", "annotator_id"))
        assert len(pairs) == len(set(pairs))
        assert not Assignment.objects.filter(status=Assignment.Status.LEASED).exists()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _post(url: str, token: str, body: dict | None = None) -> requests.Response:
    """POST, retrying a request whose worker was killed under it (the client cannot tell
    whether it ran: next and submit are safe to repeat)."""
    for _ in range(20):
        try:
            return requests.post(
                url, json=body or {}, headers={"Authorization": f"Token {token}"}, timeout=60
            )
        except (
            requests.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
            requests.Timeout,  # a slow (loaded) server: the repeat is just as safe
        ):
            time.sleep(0.1)
    raise AssertionError(f"{url}: no answer after 20 tries")


def _label_until_done(base: str, token: str, confirmed: set[int]) -> None:
    while True:
        lease = _post(f"{base}/tasks/next/", token)
        if lease.status_code == 204:
            return
        assert lease.status_code == 200, lease.text
        assignment = lease.json()["assignment"]
        done = _post(f"{base}/assignments/{assignment}/submit/", token, {"label": "happy"})
        assert done.status_code in (200, 201), done.text
        confirmed.add(assignment)
