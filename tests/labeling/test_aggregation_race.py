"""The tenth label of many clips, submitted at once, with the aggregation task and the beat
sweep running beside them: exactly one result per clip, matching its ten votes."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from labeling.loop import services
from labeling.models import Annotation, Clip, ClipLabel, Role
from labeling.tasks import clip_aggregate_missing_task, clip_aggregate_task
from tests.conftest import make_clips, make_user, need

CLIPS = 24


@pytest.mark.django_db(transaction=True)
class AggregationRaceTests:
    def test_concurrent_last_labels_aggregation_and_sweep_store_one_result_per_clip(self, campaign):
        need(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
        # given: every clip has nine labels, and each clip's tenth annotator holds its lease
        clips = make_clips(campaign, CLIPS)
        nine = [make_user(f"n{i}", Role.ANNOTATOR) for i in range(9)]
        last = [make_user(f"last{i:02d}", Role.ANNOTATOR) for i in range(CLIPS)]
        campaign.annotators.add(*nine)
        for user in nine:
            for _ in range(CLIPS):
                lease = services.assignment_next(user=user)
                services.annotation_submit(user=user, assignment_id=lease.pk, label_name="sad")
        campaign.annotators.add(*last)
        leases = [services.assignment_next(user=user) for user in last]
        assert len({lease.clip_id for lease in leases}) == CLIPS
        start = threading.Barrier(CLIPS + 4)
        errors: list[BaseException] = []

        def submit(user, lease) -> None:
            try:
                start.wait()
                services.annotation_submit(user=user, assignment_id=lease.pk, label_name="fear")
                clip_aggregate_task(lease.clip_id)  # what the worker does once it commits
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connection.close()  # each thread its own connection: close it

        def sweep() -> None:
            try:
                start.wait()
                for _ in range(6):
                    clip_aggregate_missing_task()
                    for clip in clips:
                        clip_aggregate_task(clip.pk)  # duplicate deliveries of every message
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connection.close()  # each thread its own connection: close it

        threads = [
            threading.Thread(target=submit, args=pair) for pair in zip(last, leases, strict=True)
        ]
        threads += [threading.Thread(target=sweep) for _ in range(4)]
        # when
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        # then
        assert not errors, errors
        assert Clip.objects.filter(status=Clip.Status.COMPLETE).count() == CLIPS
        assert ClipLabel.objects.count() == CLIPS
        for result in ClipLabel.objects.all():
            assert result.n_annotations == 10
            assert result.votes["sad"] == 9 and result.votes["fear"] == 1
            assert result.single_label.name == "sad"
        assert Annotation.objects.count() == CLIPS * 10
