"""The loop's contracts: one writer of assignments' statuses (which recounts the clip's held
slots), "clip full" as one rule, the locked clip as a typed value, the pool named once, and a
clip's stored duration bucket kept in step with its start and end."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from labeling.loop import services, slots, sql
from labeling.loop.sql import LockedClip
from labeling.models import LIVE_ASSIGNMENT_STATUSES, Assignment, Clip
from tests.conftest import make_clips
from tests.labeling.test_api import client_for


def _stored(clip: Clip) -> int:
    return Clip.objects.get(pk=clip.pk).slots_held


def _counted(clip: Clip) -> int:
    return Assignment.objects.filter(clip=clip, status__in=LIVE_ASSIGNMENT_STATUSES).count()


@pytest.mark.django_db
class StatusWriterTests:
    def test_a_change_that_frees_or_takes_slots_is_recounted_in_the_same_call(
        self, campaign, annotators
    ):
        # given: one clip, three of its slots leased
        (clip,) = make_clips(campaign, 1)
        leases = [services.assignment_next(user=user) for user in annotators[:3]]
        assert _stored(clip) == 3
        # when: two leases are released, then one of them is leased again
        with transaction.atomic():
            changed = slots.assignments_set_status(
                clip_ids=[clip.pk],
                rows=Assignment.objects.filter(pk__in=[leases[0].pk, leases[1].pk]),
                from_=[Assignment.Status.LEASED],
                to=Assignment.Status.RELEASED,
                finished_at=timezone.now(),
            )
        # then: the count follows the rows at once
        assert changed == 2
        assert _stored(clip) == _counted(clip) == 1
        with transaction.atomic():
            back = Assignment.objects.get(pk=leases[0].pk)
            slots.assignment_set_status(back, Assignment.Status.LEASED)
        assert back.status == Assignment.Status.LEASED
        assert _stored(clip) == _counted(clip) == 2

    def test_it_changes_only_the_given_clips_rows_in_the_given_statuses(self, campaign, alice, bob):
        # given: two clips, alice's lease on one and her submitted label on the other
        first, second = make_clips(campaign, 2)
        held = services.assignment_next(user=alice)
        done = services.assignment_next(user=alice, skip=[held.pk])
        services.annotation_submit(user=alice, assignment_id=done.pk, label_name="sad")
        # when: her rows of the first clip that are leased are expired
        with transaction.atomic():
            changed = slots.assignments_set_status(
                clip_ids=[held.clip_id],
                rows=Assignment.objects.filter(annotator=alice),
                from_=[Assignment.Status.LEASED],
                to=Assignment.Status.EXPIRED,
            )
        # then: the submitted label on the other clip is untouched, both counts are right
        assert changed == 1
        assert Assignment.objects.get(pk=done.pk).status == Assignment.Status.SUBMITTED
        for clip in (first, second):
            assert _stored(clip) == _counted(clip)

    def test_a_status_written_anywhere_else_is_refused_and_nothing_changes(self, campaign, alice):
        (clip,) = make_clips(campaign, 1)
        lease = services.assignment_next(user=alice)
        rows = Assignment.objects.filter(pk=lease.pk)
        with pytest.raises(TypeError, match="assignments_set_status"):
            rows.update(status=Assignment.Status.RELEASED)
        with pytest.raises(TypeError, match="assignments_set_status"), transaction.atomic():
            Assignment.objects.bulk_update([lease], ["status"])
        row = Assignment.objects.get(pk=lease.pk)
        row.status = Assignment.Status.RELEASED
        with pytest.raises(TypeError, match="assignments_set_status"):
            row.save(update_fields=["status", "finished_at"])
        with pytest.raises(TypeError, match="assignments_set_status"):
            row.save()  # a full save writes the status too
        assert Assignment.objects.get(pk=lease.pk).status == Assignment.Status.LEASED
        assert _stored(clip) == _counted(clip) == 1
        # other fields are written as ever, and a new row is created as ever
        later = timezone.now() + timedelta(minutes=5)
        assert rows.update(expires_at=later) == 1
        row = Assignment.objects.get(pk=lease.pk)
        row.shown_at = timezone.now()
        row.save(update_fields=["shown_at"])
        assert Assignment.objects.get(pk=lease.pk).shown_at == row.shown_at

    def test_every_writer_leaves_the_stored_count_equal_to_the_rows(
        self, campaign, alice, bob, annotators, admin_user, rita
    ):
        from labeling.results import aggregation

        clips = make_clips(campaign, 3)

        def check(step):
            for clip in clips:
                assert _stored(clip) == _counted(clip), step

        a = services.assignment_next(user=alice)
        services.annotation_submit(user=alice, assignment_id=a.pk, label_name="happy")
        check("lease, submit")
        lapsed = services.assignment_next(user=bob)
        Assignment.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now())
        assert services.assignment_expire_stale() == 1
        check("expiry sweep")
        services.assignment_show(user=bob, assignment_id=lapsed.pk)  # its slot was still free
        check("a swept lease shown again")
        services.assignment_release(user=bob, assignment_id=lapsed.pk)
        check("release")
        c = services.assignment_next(user=annotators[0])
        services.clip_report_problem(user=annotators[0], assignment_id=c.pk, kind="broken")
        check("report")
        d = services.assignment_next(user=annotators[1])
        Clip.objects.filter(pk=d.clip_id).update(status=Clip.Status.SCREENING)
        services.clip_screen(reviewer=rita, clip_id=d.clip_id, shows_face=False, shows_emotion=True)
        check("rejection")
        aggregation.annotations_invalidate(staff=admin_user, annotation_ids=[a.annotation.pk])
        check("invalidation")
        assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.INVALIDATED


class ClipFullTests:
    @pytest.mark.parametrize(
        ("labels", "target", "full"), [(0, 10, False), (9, 10, False), (10, 10, True), (3, 3, True)]
    )
    def test_a_clip_is_full_at_its_target(self, labels, target, full):
        assert slots.clip_is_full(labels, target) is full


@pytest.mark.django_db
class LockedClipTests:
    def test_the_hot_path_hands_back_a_typed_value_and_a_plain_clip_row(self, campaign, alice):
        campaign.min_view_seconds = 1.5
        campaign.save()
        (clip,) = make_clips(campaign, 1)
        with transaction.atomic():
            locked = sql.candidate_clip(alice.pk, campaign.pk, [])
        assert isinstance(locked, LockedClip)
        assert (locked.pk, locked.target, locked.lease_minutes, locked.min_view_seconds) == (
            clip.pk,
            campaign.annotations_per_clip,
            campaign.lease_minutes,
            1.5,
        )
        assert not hasattr(locked.clip, "target")
        assert not hasattr(locked.clip, "min_view_seconds")

    def test_next_answers_the_viewing_time_on_a_new_and_a_resumed_lease(self, campaign, alice):
        campaign.min_view_seconds = 1.5
        campaign.save()
        make_clips(campaign, 1)
        client = client_for(alice)
        leased = client.post("/api/v1/tasks/next/", {}, format="json").json()
        resumed = client.post("/api/v1/tasks/next/", {}, format="json").json()
        assert resumed["assignment"] == leased["assignment"]
        assert leased["min_view_seconds"] == resumed["min_view_seconds"] == 1.5
        lease = services.lease_next(user=alice)
        assert lease.min_view_seconds == 1.5
        assert not hasattr(lease.assignment.clip, "min_view_seconds")


@pytest.mark.django_db
class PoolTests:
    def test_the_pool_is_the_clips_being_labelled_or_complete(self, campaign):
        for status in Clip.Status.values:
            make_clips(campaign, 1, status=status, start_number=len(Clip.objects.all()) + 1)
        pool = set(Clip.objects.in_pool().values_list("status", flat=True))
        assert pool == {Clip.Status.ANNOTATING, Clip.Status.COMPLETE} == set(Clip.POOL_STATUSES)


@pytest.mark.django_db
class DurationBucketTests:
    def test_the_stored_bucket_follows_an_edit_of_start_or_end(self, campaign):
        (clip,) = make_clips(campaign, 1)  # 2 s
        assert Clip.objects.get(pk=clip.pk).duration_bucket == "2-5s"
        clip.end_s = clip.start_s + 6
        clip.save(update_fields=["end_s"])
        assert Clip.objects.get(pk=clip.pk).duration_bucket == "5s+"
        clip.start_s = clip.end_s - 1
        clip.save()
        assert Clip.objects.get(pk=clip.pk).duration_bucket == "0-2s"

    def test_the_bucket_is_the_exports_rule(self):
        assert [Clip.bucket_of(0, end) for end in (1.99951, 2, 4.5, 5, None)] == [
            "0-2s",
            "2-5s",
            "2-5s",
            "5s+",
            "",
        ]
