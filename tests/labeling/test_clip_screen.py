import pytest

from annotation_site.errors import Forbidden
from labeling.loop import services
from labeling.models import Assignment, Clip, Screening
from tests.conftest import make_clips


@pytest.mark.django_db
class ClipScreenTests:
    def test_a_clip_with_a_face_and_an_emotion_opens_for_labelling(self, campaign, rita):
        clip = make_clips(campaign, 1, status=Clip.Status.SCREENING)[0]
        services.clip_screen(reviewer=rita, clip_id=clip.pk, shows_face=True, shows_emotion=True)
        clip.refresh_from_db()
        assert clip.status == Clip.Status.ANNOTATING

    def test_a_rejected_clip_keeps_its_reason_and_frees_its_leases(self, campaign, alice, rita):
        clip = make_clips(campaign, 1)[0]
        lease = services.assignment_next(user=alice)
        Clip.objects.filter(pk=clip.pk).update(status=Clip.Status.SCREENING)
        services.clip_screen(reviewer=rita, clip_id=clip.pk, shows_face=False, shows_emotion=True)
        clip.refresh_from_db()
        assert (clip.status, clip.status_reason) == (Clip.Status.REJECTED, "no face")
        assert Assignment.objects.get(pk=lease.pk).status == Assignment.Status.RELEASED
        assert Screening.objects.get().decision == Screening.Decision.REJECT

    def test_a_reported_clip_that_already_has_all_its_labels_completes(
        self, campaign, annotators, rita
    ):
        clip = make_clips(campaign, 1)[0]
        for user in annotators[:9]:
            a = services.assignment_next(user=user)
            services.annotation_submit(user=user, assignment_id=a.pk, label_name="sad")
        last = services.assignment_next(user=annotators[9])
        Clip.objects.filter(pk=clip.pk).update(status=Clip.Status.SCREENING)  # reported meanwhile
        services.annotation_submit(user=annotators[9], assignment_id=last.pk, label_name="sad")
        services.clip_screen(reviewer=rita, clip_id=clip.pk, shows_face=True, shows_emotion=True)
        clip.refresh_from_db()
        assert clip.status == Clip.Status.COMPLETE

    def test_only_reviewers_screen(self, campaign, alice):
        clip = make_clips(campaign, 1, status=Clip.Status.SCREENING)[0]
        with pytest.raises(Forbidden):
            services.clip_screen(
                reviewer=alice, clip_id=clip.pk, shows_face=True, shows_emotion=True
            )
        clip.refresh_from_db()
        assert clip.status == Clip.Status.SCREENING
