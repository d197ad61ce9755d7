"""The background-job lifecycle (labeling/jobs.py) on the real database: claim, step, fail,
finish, stale takeover, for every job row; the stale thresholds as named settings, kept above
their tasks' hard time limits by a system check."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import checks
from django.db import connection
from django.utils import timezone

from labeling import jobs
from labeling.media import extraction
from labeling.models import AgreementReport, JobStatus, LabelExport
from labeling.release import dfew_export
from labeling.results import agreement
from labeling.tasks import agreement_report_task, clip_extract_task, label_export_task

ROOT = Path(__file__).resolve().parents[2]

# Every job row, with the setting that names its stale threshold.
JOBS = [
    pytest.param(AgreementReport, "AGREEMENT_REPORT_STALE_SECONDS", id="agreement-report"),
    pytest.param(LabelExport, "LABEL_EXPORT_STALE_SECONDS", id="label-export"),
]


def running(model, campaign, claimed_ago: timedelta):
    """A job row a worker claimed ``claimed_ago``, half done."""
    return model.objects.create(
        campaign=campaign,
        status=JobStatus.RUNNING,
        started_at=timezone.now() - claimed_ago,
        progress=0.5,
        stage="halfway",
    )


@pytest.mark.parametrize(("model", "stale"), JOBS)
class JobLifecycleTests:
    def test_a_queued_job_is_claimed_once_and_a_second_claim_is_refused(
        self, campaign, model, stale
    ):
        job = model.objects.create(campaign=campaign)
        before = timezone.now()
        assert jobs.claim(model, job.pk, stale=stale) is True
        assert jobs.claim(model, job.pk, stale=stale) is False  # another worker, meanwhile
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING
        assert job.started_at >= before
        assert (job.progress, job.stage) == (0.0, "starting")

    def test_a_running_job_is_taken_over_only_once_past_its_stale_threshold(
        self, campaign, model, stale
    ):
        threshold = jobs.stale_after(stale)
        fresh = running(model, campaign, threshold - timedelta(minutes=1))
        lost = running(model, campaign, threshold + timedelta(seconds=1))
        assert jobs.claim(model, fresh.pk, stale=stale) is False
        assert jobs.claim(model, lost.pk, stale=stale) is True
        lost.refresh_from_db()
        assert lost.status == JobStatus.RUNNING
        assert timezone.now() - lost.started_at < timedelta(minutes=1)  # claimed anew
        assert (lost.progress, lost.stage) == (0.0, "starting")
        # Taken over, it is this worker's: a third worker waits its turn.
        assert jobs.claim(model, lost.pk, stale=stale) is False

    def test_the_stale_threshold_is_the_setting(self, campaign, model, stale, settings):
        job = running(model, campaign, timedelta(minutes=5))
        setattr(settings, stale, 10 * 60)
        assert jobs.claim(model, job.pk, stale=stale) is False
        setattr(settings, stale, 4 * 60)
        assert jobs.claim(model, job.pk, stale=stale) is True

    @pytest.mark.parametrize("status", [JobStatus.DONE, JobStatus.FAILED])
    def test_an_ended_job_is_never_claimed_however_old(self, campaign, model, stale, status):
        job = model.objects.create(
            campaign=campaign, status=status, started_at=timezone.now() - timedelta(days=30)
        )
        assert jobs.claim(model, job.pk, stale=stale) is False
        job.refresh_from_db()
        assert job.status == status

    def test_a_missing_job_is_not_claimed(self, campaign, model, stale):
        assert jobs.claim(model, 10**9, stale=stale) is False

    def test_step_records_progress_below_done_and_the_stage(self, campaign, model, stale):
        job = model.objects.create(campaign=campaign)
        jobs.claim(model, job.pk, stale=stale)
        jobs.step(model, job.pk, 0.123456, "counting votes")
        job.refresh_from_db()
        assert (job.progress, job.stage) == (0.1235, "counting votes")
        # Only finish says done: a step at or past the end stays just below it.
        jobs.step(model, job.pk, 1.0, "x" * 300)
        job.refresh_from_db()
        assert (job.progress, job.stage) == (0.99, "x" * 100)
        assert job.status == JobStatus.RUNNING
        jobs.step(model, job.pk, -0.5, "rounding below zero")
        job.refresh_from_db()
        assert job.progress == 0.0

    def test_fail_ends_the_job_with_its_message(self, campaign, model, stale):
        job = model.objects.create(campaign=campaign)
        jobs.claim(model, job.pk, stale=stale)
        jobs.fail(model, job.pk, ValueError("no votes" + "!" * 6000))
        job.refresh_from_db()
        assert job.status == JobStatus.FAILED
        assert job.error.startswith("no votes") and len(job.error) == 5000
        assert job.finished_at is not None
        assert jobs.claim(model, job.pk, stale=stale) is False

    def test_failing_stores_an_error_raised_in_the_run_and_raises_it_again(
        self, campaign, model, stale
    ):
        job = model.objects.create(campaign=campaign)
        jobs.claim(model, job.pk, stale=stale)
        with pytest.raises(RuntimeError, match="disk full"):
            with jobs.failing(model, job.pk):
                jobs.step(model, job.pk, 0.3, "writing")
                raise RuntimeError("disk full")
        job.refresh_from_db()
        assert (job.status, job.error, job.stage) == (JobStatus.FAILED, "disk full", "writing")

    def test_failing_leaves_a_run_that_raises_nothing_running(self, campaign, model, stale):
        job = model.objects.create(campaign=campaign)
        jobs.claim(model, job.pk, stale=stale)
        with jobs.failing(model, job.pk):
            pass
        job.refresh_from_db()
        assert job.status == JobStatus.RUNNING and job.error == ""

    def test_finish_ends_the_job_done_with_its_results(self, campaign, model, stale):
        job = model.objects.create(campaign=campaign)
        jobs.claim(model, job.pk, stale=stale)
        jobs.step(model, job.pk, 0.5, "halfway")
        results = {"result": {"kappa": 0.43}} if model is AgreementReport else {"md5": "0" * 32}
        jobs.finish(model, job.pk, **results)
        job.refresh_from_db()
        assert (job.status, job.progress, job.stage) == (JobStatus.DONE, 1.0, "done")
        assert job.finished_at >= job.started_at
        for field, value in results.items():
            assert getattr(job, field) == value
        assert jobs.claim(model, job.pk, stale=stale) is False


@pytest.mark.django_db(transaction=True)
class JobClaimRaceTests:
    @pytest.mark.parametrize(("model", "stale"), JOBS)
    @pytest.mark.parametrize("lost", [False, True], ids=["queued", "stale"])
    def test_of_workers_claiming_at_once_exactly_one_wins(self, campaign, model, stale, lost):
        if lost:
            job = running(model, campaign, jobs.stale_after(stale) + timedelta(minutes=1))
        else:
            job = model.objects.create(campaign=campaign)
        workers = 6
        start = threading.Barrier(workers)
        won: list[bool] = []
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                start.wait()
                won.append(jobs.claim(model, job.pk, stale=stale))
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()  # each thread its own connection: close it

        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert sorted(won) == [False] * (workers - 1) + [True]


class StaleThresholdTests:
    def test_every_job_names_its_threshold_and_the_defaults_are_as_before(self, settings):
        assert agreement.STALE_SETTING == "AGREEMENT_REPORT_STALE_SECONDS"
        assert dfew_export.STALE_SETTING == "LABEL_EXPORT_STALE_SECONDS"
        assert set(jobs.STALE_SETTINGS) == {
            agreement.STALE_SETTING,
            dfew_export.STALE_SETTING,
            "EXTRACTION_STALE_SECONDS",
        }
        assert jobs.stale_after(agreement.STALE_SETTING) == timedelta(minutes=15)
        assert jobs.stale_after(dfew_export.STALE_SETTING) == timedelta(hours=2)
        assert jobs.stale_after("EXTRACTION_STALE_SECONDS") == timedelta(
            seconds=clip_extract_task.time_limit + 60
        )

    def test_each_setting_is_documented_in_the_example_environment(self):
        documented = (ROOT / ".env.example").read_text()
        for setting in jobs.STALE_SETTINGS:
            assert f"\n{setting}=" in documented

    def test_stale_before_is_now_less_the_threshold(self, settings):
        settings.LABEL_EXPORT_STALE_SECONDS = 7500
        now = timezone.now()
        assert jobs.stale_before("LABEL_EXPORT_STALE_SECONDS", now) == now - timedelta(seconds=7500)

    def test_a_name_that_is_no_threshold_is_refused(self):
        with pytest.raises(KeyError, match="MEDIA_STALE_CLAIM_SECONDS"):
            jobs.stale_after("MEDIA_STALE_CLAIM_SECONDS")

    def test_the_extraction_claim_takes_its_threshold_from_the_setting(self, settings):
        settings.EXTRACTION_STALE_SECONDS = 1500
        assert extraction.stale_claim() == timedelta(seconds=1500)


class StaleThresholdCheckTests:
    def test_the_defaults_pass(self):
        assert jobs.check_stale_thresholds() == []

    @pytest.mark.parametrize(
        ("setting", "task"),
        [
            ("AGREEMENT_REPORT_STALE_SECONDS", agreement_report_task),
            ("LABEL_EXPORT_STALE_SECONDS", label_export_task),
            ("EXTRACTION_STALE_SECONDS", clip_extract_task),
        ],
    )
    def test_a_threshold_at_or_below_its_tasks_time_limit_is_refused(self, settings, setting, task):
        for value in (task.time_limit, task.time_limit - 1, 0, -5, "900", None):
            setattr(settings, setting, value)
            errors = jobs.check_stale_thresholds()
            assert [(e.id, e.obj, e.level) for e in errors] == [
                ("labeling.E001", setting, checks.ERROR)
            ], value
            assert f"{setting} is {value!r}" in errors[0].msg
            assert f"({task.time_limit} s)" in errors[0].msg
        setattr(settings, setting, task.time_limit + 1)
        assert jobs.check_stale_thresholds() == []

    def test_the_check_is_registered(self, settings):
        settings.EXTRACTION_STALE_SECONDS = clip_extract_task.time_limit
        assert "labeling.E001" in [message.id for message in checks.run_checks()]

    def test_manage_py_check_refuses_a_threshold_at_the_time_limit(self, tmp_path):
        env = {k: v for k, v in os.environ.items() if not k.endswith("_STALE_SECONDS")}
        env.update(
            VAR_DIR=str(tmp_path),
            DJANGO_SETTINGS_MODULE="annotation_site.settings",
            LABEL_EXPORT_STALE_SECONDS=str(label_export_task.time_limit),
        )
        proc = subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        assert proc.returncode != 0
        assert "labeling.E001" in proc.stderr
        assert "LABEL_EXPORT_STALE_SECONDS is 7000" in proc.stderr
