import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotation_site.errors import ApplicationError, Conflict, NotFound
from labeling.loop import services
from labeling.models import Annotation, Assignment, Clip
from tests.conftest import make_clips


@pytest.mark.django_db
class AnnotationSubmitTests:
    def test_it_records_the_label(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        result = services.annotation_submit(user=alice, assignment_id=a.pk, label_name="angry")
        assert result.created
        annotation = Annotation.objects.get()
        assert (annotation.annotator, annotation.label.name, annotation.slot) == (alice, "angry", 1)
        assert Assignment.objects.get().status == Assignment.Status.SUBMITTED

    def test_it_returns_the_same_annotation_for_an_identical_repeat(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        first = services.annotation_submit(user=alice, assignment_id=a.pk, label_name="sad")
        again = services.annotation_submit(user=alice, assignment_id=a.pk, label_name="sad")
        assert not again.created and again.annotation.pk == first.annotation.pk
        assert Annotation.objects.count() == 1

    def test_it_refuses_a_different_label_after_submission(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        services.annotation_submit(user=alice, assignment_id=a.pk, label_name="sad")
        with pytest.raises(Conflict, match="already labelled this clip 'sad'"):
            services.annotation_submit(user=alice, assignment_id=a.pk, label_name="happy")
        assert Annotation.objects.get().label.name == "sad"

    def test_it_lists_the_valid_labels_for_an_unknown_one(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        with pytest.raises(ApplicationError) as exc:
            services.annotation_submit(user=alice, assignment_id=a.pk, label_name="joy")
        assert "happy, sad, neutral, angry, surprise, disgust, fear" in exc.value.message
        assert not Annotation.objects.exists()

    def test_it_hides_another_annotators_assignment(self, campaign, alice, bob):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        with pytest.raises(NotFound):
            services.annotation_submit(user=bob, assignment_id=a.pk, label_name="sad")
        assert not Annotation.objects.exists()

    def test_it_accepts_an_expired_lease_whose_slot_is_still_free(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        Assignment.objects.filter(pk=a.pk).update(expires_at=timezone.now())
        services.assignment_expire_stale()
        result = services.annotation_submit(user=alice, assignment_id=a.pk, label_name="fear")
        assert result.created
        assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.SUBMITTED

    def test_it_refuses_an_expired_lease_whose_slot_went_to_someone_else(
        self, campaign, alice, bob, annotators
    ):
        make_clips(campaign, 1)
        leases = {u.pk: services.assignment_next(user=u) for u in [alice, *annotators[:9]]}
        Assignment.objects.filter(pk=leases[alice.pk].pk).update(expires_at=timezone.now())
        taken = services.assignment_next(user=bob)
        assert taken.slot == leases[alice.pk].slot
        with pytest.raises(Conflict, match="went to another annotator"):
            services.annotation_submit(
                user=alice, assignment_id=leases[alice.pk].pk, label_name="fear"
            )
        assert not Annotation.objects.filter(annotator=alice).exists()

    def test_it_completes_the_clip_at_its_tenth_label(self, campaign, annotators):
        make_clips(campaign, 1)
        for i, user in enumerate(annotators, start=1):
            a = services.assignment_next(user=user)
            services.annotation_submit(user=user, assignment_id=a.pk, label_name="neutral")
            expected = Clip.Status.COMPLETE if i == 10 else Clip.Status.ANNOTATING
            assert Clip.objects.get().status == expected
        assert sorted(Annotation.objects.values_list("slot", flat=True)) == list(range(1, 11))

    def test_it_refuses_a_released_assignment(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        services.assignment_release(user=alice, assignment_id=a.pk)
        with pytest.raises(Conflict, match="released"):
            services.annotation_submit(user=alice, assignment_id=a.pk, label_name="sad")

    def test_the_database_rejects_a_second_annotation_by_one_annotator(self, campaign, alice):
        make_clips(campaign, 1)
        a = services.assignment_next(user=alice)
        first = services.annotation_submit(user=alice, assignment_id=a.pk, label_name="sad")
        other = Assignment.objects.create(
            clip=a.clip, annotator=alice, slot=2, status="released", expires_at=a.expires_at
        )
        with pytest.raises(IntegrityError), transaction.atomic():
            Annotation.objects.create(
                assignment=other, clip=a.clip, annotator=alice, label=first.annotation.label, slot=2
            )
