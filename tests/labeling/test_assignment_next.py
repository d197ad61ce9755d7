from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from annotation_site.errors import Forbidden, NotFound, TooManyOpen
from labeling.loop import services
from labeling.models import Assignment, Clip
from tests.conftest import make_clips, need


def _label_all(users, clip_count=1):
    for user in users:
        a = services.assignment_next(user=user)
        services.annotation_submit(user=user, assignment_id=a.pk, label_name="happy")


@pytest.mark.django_db
class AssignmentNextTests:
    def test_it_leases_the_lowest_free_slot_of_an_open_clip(self, campaign, alice):
        make_clips(campaign, 2)
        a = services.assignment_next(user=alice)
        assert a.status == Assignment.Status.LEASED
        assert a.slot == 1
        assert a.clip.number == 1
        assert a.expires_at - a.leased_at == timedelta(minutes=campaign.lease_minutes)

    def test_it_returns_the_same_live_lease_again(self, campaign, alice):
        make_clips(campaign, 3)
        first = services.assignment_next(user=alice)
        assert services.assignment_next(user=alice).pk == first.pk
        assert Assignment.objects.count() == 1

    def test_it_leases_another_clip_when_the_open_one_is_skipped(self, campaign, alice):
        make_clips(campaign, 3)
        first = services.assignment_next(user=alice)
        second = services.assignment_next(user=alice, skip=[first.pk])
        assert second.clip_id != first.clip_id

    def test_it_refuses_more_open_leases_than_the_cap(self, campaign, alice, settings):
        settings.LABELING_MAX_OPEN_LEASES = 2
        make_clips(campaign, 4)
        first = services.assignment_next(user=alice)
        second = services.assignment_next(user=alice, skip=[first.pk])
        with pytest.raises(TooManyOpen):
            services.assignment_next(user=alice, skip=[first.pk, second.pk])

    def test_it_prefers_the_clip_nearest_completion(self, campaign, alice, annotators):
        clips = make_clips(campaign, 3)
        # given: three annotators labelled clip 1, then clip 3 got five more labels
        for user in annotators[:3]:
            a = services.assignment_next(user=user)
            assert a.clip_id == clips[0].pk
            services.annotation_submit(user=user, assignment_id=a.pk, label_name="sad")
        Clip.objects.filter(pk=clips[0].pk).update(status=Clip.Status.SCREENING)
        for user in annotators[3:8]:
            a = services.assignment_next(user=user)
            services.annotation_submit(user=user, assignment_id=a.pk, label_name="sad")
        Clip.objects.filter(pk=clips[0].pk).update(status=Clip.Status.ANNOTATING)
        # when / then: clip 2 has 5 labels, clip 1 has 3, clip 3 none → alice gets clip 2
        assert services.assignment_next(user=alice).clip_id == clips[1].pk

    def test_it_never_gives_a_clip_an_eleventh_slot(self, campaign, alice, annotators):
        make_clips(campaign, 1)
        _label_all(annotators)
        assert Clip.objects.get().status == Clip.Status.COMPLETE
        assert services.assignment_next(user=alice) is None

    def test_it_counts_live_leases_as_taken(self, campaign, alice, annotators):
        make_clips(campaign, 1)
        for user in annotators:
            assert services.assignment_next(user=user) is not None
        assert services.assignment_next(user=alice) is None

    def test_it_reclaims_the_slot_of_an_expired_lease(self, campaign, alice, annotators):
        make_clips(campaign, 1)
        leases = [services.assignment_next(user=user) for user in annotators]
        Assignment.objects.filter(pk=leases[4].pk).update(expires_at=timezone.now())
        a = services.assignment_next(user=alice)
        assert a is not None and a.slot == leases[4].slot
        assert Assignment.objects.get(pk=leases[4].pk).status == Assignment.Status.EXPIRED

    def test_it_never_offers_a_clip_the_annotator_already_labelled(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        services.annotation_submit(user=alice, assignment_id=a.pk, label_name="fear")
        assert services.assignment_next(user=alice) is None

    def test_it_offers_only_open_clips_of_the_annotators_campaigns(self, campaign, alice, charlie):
        make_clips(campaign, 1, status=Clip.Status.SCREENING)
        make_clips(campaign, 1, start_number=2)
        assert services.assignment_next(user=charlie) is None
        assert services.assignment_next(user=alice).clip.number == 2
        campaign.is_active = False
        campaign.save()
        Assignment.objects.all().delete()
        assert services.assignment_next(user=alice) is None

    def test_it_hides_a_campaign_the_annotator_is_not_on(self, campaign, charlie):
        with pytest.raises(NotFound):
            services.assignment_next(user=charlie, campaign_id=campaign.pk)

    def test_it_refuses_users_without_the_annotator_role(self, campaign, dave):
        with pytest.raises(Forbidden):
            services.assignment_next(user=dave)

    def test_it_rejects_two_live_assignments_on_one_slot_in_the_database(
        self, campaign, alice, bob
    ):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        with pytest.raises(IntegrityError), transaction.atomic():
            Assignment.objects.create(
                clip=a.clip, annotator=bob, slot=a.slot, expires_at=a.expires_at
            )

    def test_it_rejects_two_live_assignments_of_one_annotator_on_a_clip(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        with pytest.raises(IntegrityError), transaction.atomic():
            Assignment.objects.create(
                clip=a.clip, annotator=alice, slot=a.slot + 1, expires_at=a.expires_at
            )

    def test_it_locks_with_skip_locked_on_postgres(self, campaign, alice):
        need(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
        make_clips(campaign, 1)
        with CaptureQueriesContext(connection) as ctx:
            services.assignment_next(user=alice)
        assert any("FOR UPDATE OF" in q["sql"] and "SKIP LOCKED" in q["sql"] for q in ctx)


@pytest.mark.django_db(transaction=True)
class AssignmentNextLockingTests:
    def test_a_clip_locked_for_a_moment_is_waited_for_not_reported_gone(self, campaign, alice):
        need(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
        import threading

        from django.db import connections

        clip = make_clips(campaign, 1)[0]
        locked, release = threading.Event(), threading.Event()

        def hold_lock():
            # another request's submit: holds the clip's row lock for a moment
            try:
                with transaction.atomic():
                    Clip.objects.select_for_update().get(pk=clip.pk)
                    locked.set()
                    release.wait(5)
            finally:
                connections.close_all()

        holder = threading.Thread(target=hold_lock)
        holder.start()
        assert locked.wait(5)
        threading.Timer(0.3, release.set).start()
        assignment = services.assignment_next(user=alice)
        holder.join()
        # SKIP LOCKED alone would have answered "nothing left" at once.
        assert assignment is not None and assignment.clip_id == clip.pk
