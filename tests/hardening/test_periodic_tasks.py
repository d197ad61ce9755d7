"""Every task beat schedules is safe to run twice (two beats, or a beat restarted mid-tick)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from labeling.loop import services
from labeling.models import AgreementReport, Assignment, ClipLabel
from labeling.tasks import (
    agreement_report_periodic_task,
    assignment_expire_task,
    clip_aggregate_missing_task,
)
from tests.conftest import make_clips
from tests.labeling.test_aggregation import TEN, label_clip


@pytest.mark.django_db
class PeriodicTaskTwiceTests:
    def test_beat_schedules_only_these_tasks(self):
        scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
        assert scheduled == {
            "labeling.tasks.assignment_expire_task",
            "labeling.tasks.clip_aggregate_missing_task",
            "labeling.tasks.agreement_report_periodic_task",
            # run twice in tests/labeling/test_extraction.py (the sweep of extraction claims)
            "labeling.tasks.clip_claims_sweep_task",
        }

    def test_expiring_leases_twice_expires_each_once(self, campaign, alice):
        make_clips(campaign, 1)
        lease = services.assignment_next(user=alice)
        Assignment.objects.filter(pk=lease.pk).update(
            expires_at=timezone.now() - timedelta(minutes=1)
        )
        assert assignment_expire_task() == 1
        assert assignment_expire_task() == 0
        lease.refresh_from_db()
        assert lease.status == Assignment.Status.EXPIRED

    def test_aggregating_missing_results_twice_writes_one_result(self, campaign, annotators):
        (clip,) = make_clips(campaign, 1)
        label_clip(1, annotators, TEN)
        assert clip_aggregate_missing_task() == 1
        assert clip_aggregate_missing_task() == 0
        assert ClipLabel.objects.filter(clip=clip).count() == 1

    def test_queueing_reports_twice_queues_one(self, campaign, annotators):
        make_clips(campaign, 1)
        label_clip(1, annotators, TEN)
        clip_aggregate_missing_task()
        assert agreement_report_periodic_task() == 1
        assert agreement_report_periodic_task() == 0
        assert AgreementReport.objects.filter(campaign=campaign).count() == 1
