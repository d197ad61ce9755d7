import pytest

from annotation_site.errors import Conflict, NotFound
from labeling.loop import services
from labeling.models import Assignment, Clip, ClipReport
from tests.conftest import make_clips


@pytest.mark.django_db
class AssignmentReleaseTests:
    def test_it_frees_the_slot(self, campaign, alice, bob):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        services.assignment_release(user=alice, assignment_id=a.pk)
        assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.RELEASED
        assert services.assignment_next(user=bob).slot == a.slot

    def test_it_is_a_no_op_the_second_time(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        services.assignment_release(user=alice, assignment_id=a.pk)
        services.assignment_release(user=alice, assignment_id=a.pk)
        assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.RELEASED

    def test_it_refuses_a_submitted_assignment(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        services.annotation_submit(user=alice, assignment_id=a.pk, label_name="sad")
        with pytest.raises(Conflict):
            services.assignment_release(user=alice, assignment_id=a.pk)

    def test_it_hides_another_annotators_assignment(self, campaign, alice, bob):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        with pytest.raises(NotFound):
            services.assignment_release(user=bob, assignment_id=a.pk)
        assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.LEASED


@pytest.mark.django_db
class ClipReportProblemTests:
    def test_it_sends_the_clip_back_to_screening_and_keeps_labels(self, campaign, alice, bob):
        make_clips(campaign, 1)
        b = services.assignment_next(user=bob)
        services.annotation_submit(user=bob, assignment_id=b.pk, label_name="sad")
        a = services.assignment_next(user=alice)
        report = services.clip_report_problem(
            user=alice, assignment_id=a.pk, kind="no_face", note="only a hand"
        )
        clip = Clip.objects.get()
        assert clip.status == Clip.Status.SCREENING
        assert "No face" in clip.status_reason
        assert report.reporter == alice and ClipReport.objects.count() == 1
        assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.RELEASED
        assert clip.annotations.count() == 1

    def test_it_refuses_an_unknown_problem(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        with pytest.raises(Exception, match="Unknown problem"):
            services.clip_report_problem(user=alice, assignment_id=a.pk, kind="boring")
        assert Clip.objects.get().status == Clip.Status.ANNOTATING


@pytest.mark.django_db
class AssignmentExpireStaleTests:
    def test_it_expires_only_lapsed_leases_and_a_rerun_changes_nothing(self, campaign, alice, bob):
        from django.utils import timezone

        make_clips(campaign, 2)
        a = services.assignment_next(user=alice)
        b = services.assignment_next(user=bob)
        Assignment.objects.filter(pk=a.pk).update(expires_at=timezone.now())
        assert services.assignment_expire_stale() == 1
        assert services.assignment_expire_stale() == 0
        assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.EXPIRED
        assert Assignment.objects.get(pk=b.pk).status == Assignment.Status.LEASED
