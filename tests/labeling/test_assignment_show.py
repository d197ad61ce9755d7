"""Showing a leased clip: its lease clock starts then (POST /api/v1/assignments/<id>/shown/)."""

import pytest

from annotation_site.errors import Conflict, NotFound
from labeling.loop import services
from labeling.models import Assignment
from tests.conftest import make_clips


@pytest.mark.django_db
class AssignmentShowTests:
    """A prefetched clip's lease clock starts when the page shows it (issue 8)."""

    def test_showing_a_prefetched_clip_restarts_its_lease(self, campaign, alice):
        from datetime import timedelta

        from django.utils import timezone

        make_clips(campaign, 2)
        current = services.assignment_next(user=alice)
        prefetched = services.assignment_next(user=alice, skip=[current.pk])
        # the annotator spent nine minutes on the current clip
        long_ago = timezone.now() - timedelta(minutes=9)
        Assignment.objects.filter(pk=prefetched.pk).update(
            leased_at=long_ago, expires_at=long_ago + timedelta(minutes=10)
        )
        shown = services.assignment_show(user=alice, assignment_id=prefetched.pk)
        left = shown.expires_at - timezone.now()
        assert timedelta(minutes=9, seconds=50) < left <= timedelta(minutes=10)
        assert shown.shown_at is not None
        first_shown = shown.shown_at
        again = services.assignment_show(user=alice, assignment_id=prefetched.pk)
        assert again.shown_at == first_shown  # the first time it was shown is kept

    def test_a_lapsed_lease_is_renewed_only_while_its_slot_is_free(self, campaign, alice, bob):
        from django.utils import timezone

        (clip,) = make_clips(campaign, 1)
        lease = services.assignment_next(user=alice)
        Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now())
        renewed = services.assignment_show(user=alice, assignment_id=lease.pk)
        assert renewed.expires_at > timezone.now()
        Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now())
        services.assignment_next(user=bob)  # takes the lapsed slot
        with pytest.raises(Conflict, match="its place went to another annotator"):
            services.assignment_show(user=alice, assignment_id=lease.pk)

    def test_it_is_only_for_the_leases_own_annotator_and_open_leases(self, campaign, alice, bob):
        make_clips(campaign, 1)
        lease = services.assignment_next(user=alice)
        with pytest.raises(NotFound):
            services.assignment_show(user=bob, assignment_id=lease.pk)
        services.annotation_submit(user=alice, assignment_id=lease.pk, label_name="sad")
        with pytest.raises(Conflict, match="no longer open"):
            services.assignment_show(user=alice, assignment_id=lease.pk)


@pytest.mark.django_db
class AssignmentShownApiTests:
    def test_it_answers_the_new_expiry_and_others_get_404(self, campaign, alice, bob):
        from tests.labeling.test_api import client_for

        make_clips(campaign, 1)
        lease = services.assignment_next(user=alice)
        r = client_for(alice).post(f"/api/v1/assignments/{lease.pk}/shown/")
        assert r.status_code == 200 and r.json()["assignment"] == lease.pk
        assert r.json()["expires_at"]
        assert client_for(bob).post(f"/api/v1/assignments/{lease.pk}/shown/").status_code == 404
        assert client_for(alice).get(f"/api/v1/assignments/{lease.pk}/shown/").status_code == 405


@pytest.mark.django_db
class AssignmentShowSweptTests:
    def test_a_lease_the_sweep_expired_comes_back_while_its_slot_is_free(self, campaign, alice):
        from django.utils import timezone

        make_clips(campaign, 1)
        lease = services.assignment_next(user=alice)
        Assignment.objects.filter(pk=lease.pk).update(expires_at=timezone.now())
        services.assignment_expire_stale()
        shown = services.assignment_show(user=alice, assignment_id=lease.pk)
        assert shown.status == Assignment.Status.LEASED and shown.expires_at > timezone.now()
