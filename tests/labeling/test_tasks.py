"""Tasks as plain functions, then through a real Celery worker on each broker we ship."""

from __future__ import annotations

import time

import pytest
from celery import Celery
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.utils import timezone

from labeling.loop import services
from labeling.models import Assignment
from labeling.tasks import assignment_expire_task
from tests.conftest import make_clips, need, redis_available


def _expired_lease(campaign, user) -> Assignment:
    make_clips(campaign, 1)
    lease = services.assignment_next(user=user)
    Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now())
    return lease


def _app(broker_url: str, transport_options: dict, transport: str | None = None) -> Celery:
    app = Celery("dfer-test", set_as_current=False)
    app.config_from_object("django.conf:settings", namespace="CELERY")
    app.conf.broker_url = broker_url
    app.conf.broker_transport = transport
    app.conf.broker_transport_options = transport_options
    app.autodiscover_tasks(["labeling"], force=True)
    return app


# The app's own filesystem transport (atomic writes), as `make run` uses it.
FILESYSTEM = "annotation_site.broker:Transport"


def filesystem_app(tmp_path) -> Celery:
    """A Celery app on kombu's filesystem broker in a folder of the test's own."""
    folder = tmp_path / "broker"
    folder.mkdir()
    return _app(
        "filesystem://",
        {
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(tmp_path / "control"),
            "store_processed": False,
        },
        transport=FILESYSTEM,
    )


def _run_on_worker(app: Celery, lease: Assignment) -> None:
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
        app.send_task("labeling.tasks.assignment_expire_task")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lease.refresh_from_db()
            if lease.status == Assignment.Status.EXPIRED:
                return
            time.sleep(0.2)
    pytest.fail("the worker did not run the task within 60 s")


@pytest.mark.django_db
class AssignmentExpireTaskTests:
    def test_it_expires_lapsed_leases_and_a_second_run_changes_nothing(self, campaign, alice):
        lease = _expired_lease(campaign, alice)
        assert assignment_expire_task() == 1
        assert assignment_expire_task() == 0
        lease.refresh_from_db()
        assert lease.status == Assignment.Status.EXPIRED

    def test_beat_runs_it_every_minute(self):
        entry = settings.CELERY_BEAT_SCHEDULE["expire-leases"]
        assert entry["task"] == "labeling.tasks.assignment_expire_task"
        assert entry["schedule"].total_seconds() == 60


@pytest.mark.django_db(transaction=True)
class AssignmentExpireTaskWorkerTests:
    def test_a_worker_runs_it_over_the_serverless_filesystem_broker(
        self, campaign, alice, tmp_path
    ):
        lease = _expired_lease(campaign, alice)
        app = filesystem_app(tmp_path)
        _run_on_worker(app, lease)

    def test_a_worker_runs_it_over_redis(self, campaign, alice):
        need(redis_available(), "needs a Redis server (REDIS_URL or 127.0.0.1:6379)")
        lease = _expired_lease(campaign, alice)
        url = settings.REDIS_URL or "redis://127.0.0.1:6379/15"
        _run_on_worker(_app(url, {"visibility_timeout": 3600}), lease)


def _aggregated_by_worker(app: Celery, campaign, annotators) -> None:
    """The tenth label's on-commit message reaches a real worker, which stores the result."""
    from annotation_site.celery import app as default_app
    from labeling.models import ClipLabel

    (clip,) = make_clips(campaign, 1)
    # shared_task proxies send through the current app: make it the one under test.
    app.set_current()
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            for user in annotators:
                lease = services.assignment_next(user=user)
                services.annotation_submit(user=user, assignment_id=lease.pk, label_name="sad")
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                result = ClipLabel.objects.filter(clip=clip).first()
                if result is not None:
                    assert result.single_label.name == "sad" and result.n_annotations == 10
                    return
                time.sleep(0.2)
    finally:
        default_app.set_current()
    pytest.fail("the worker did not aggregate the clip within 60 s")


@pytest.mark.django_db(transaction=True)
class ClipAggregateWorkerTests:
    def test_a_worker_aggregates_the_clip_after_its_last_label_over_the_filesystem_broker(
        self, campaign, annotators, tmp_path
    ):
        app = filesystem_app(tmp_path)
        _aggregated_by_worker(app, campaign, annotators)

    def test_a_worker_aggregates_the_clip_after_its_last_label_over_redis(
        self, campaign, annotators
    ):
        need(redis_available(), "needs a Redis server (REDIS_URL or 127.0.0.1:6379)")
        url = settings.REDIS_URL or "redis://127.0.0.1:6379/15"
        _aggregated_by_worker(_app(url, {"visibility_timeout": 3600}), campaign, annotators)
