"""Votes become a stored result on the clip's last label; staff can take votes back."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from annotation_site.errors import Forbidden
from labeling.loop import services
from labeling.models import Annotation, Assignment, Campaign, Clip, ClipLabel
from labeling.results import aggregation
from labeling.tasks import clip_aggregate_missing_task, clip_aggregate_task
from tests.conftest import make_clips, make_user


def label_clip(clip_count: int, users, labels: list[str]):
    """Every user labels the next clip with their label; returns the clips' ids."""
    for user, label in zip(users, labels, strict=True):
        for _ in range(clip_count):
            lease = services.assignment_next(user=user)
            services.annotation_submit(user=user, assignment_id=lease.pk, label_name=label)


TEN = ["happy"] * 7 + ["sad"] * 2 + ["fear"]


@pytest.mark.django_db
class ClipAggregateTests:
    def test_the_last_label_completes_the_clip_and_enqueues_its_aggregation_on_commit(
        self, campaign, annotators, django_capture_on_commit_callbacks, monkeypatch
    ):
        (clip,) = make_clips(campaign, 1)
        sent = []
        monkeypatch.setattr(clip_aggregate_task, "delay", lambda *a: sent.append(a))
        with django_capture_on_commit_callbacks(execute=True):
            label_clip(1, annotators[:9], TEN[:9])
        assert sent == []
        with django_capture_on_commit_callbacks(execute=True):
            label_clip(1, annotators[9:], TEN[9:])
        assert sent == [(clip.pk,)]
        clip.refresh_from_db()
        assert clip.status == Clip.Status.COMPLETE

    def test_it_stores_votes_distribution_single_label_share_and_entropy(
        self, campaign, annotators
    ):
        (clip,) = make_clips(campaign, 1)
        label_clip(1, annotators, TEN)
        assert clip_aggregate_task(clip.pk) == 1
        result = ClipLabel.objects.get(clip=clip)
        assert result.votes == {
            "happy": 7,
            "sad": 2,
            "neutral": 0,
            "angry": 0,
            "surprise": 0,
            "disgust": 0,
            "fear": 1,
        }
        assert result.distribution["happy"] == 0.7 and result.distribution["fear"] == 0.1
        assert result.single_label.name == "happy"
        assert result.top_share == 0.7 and result.n_annotations == 10
        assert result.entropy == pytest.approx(1.15678, abs=1e-5)  # -(.7lg.7 + .2lg.2 + .1lg.1)

    def test_six_of_ten_is_kept_with_its_distribution_only(self, campaign, annotators):
        (clip,) = make_clips(campaign, 1)
        label_clip(1, annotators, ["angry"] * 6 + ["sad"] * 4)
        clip_aggregate_task(clip.pk)
        result = ClipLabel.objects.get(clip=clip)
        assert result.single_label is None and result.votes["angry"] == 6

    def test_running_it_twice_stores_one_result_and_changes_nothing(self, campaign, annotators):
        (clip,) = make_clips(campaign, 1)
        label_clip(1, annotators, TEN)
        clip_aggregate_task(clip.pk)
        first = ClipLabel.objects.values().get(clip=clip)
        clip_aggregate_task(clip.pk)
        again = ClipLabel.objects.values().get(clip=clip)
        assert ClipLabel.objects.count() == 1
        assert {k: v for k, v in first.items() if k != "computed_at"} == {
            k: v for k, v in again.items() if k != "computed_at"
        }

    def test_it_leaves_a_clip_that_is_not_complete_alone(self, campaign, annotators):
        (clip,) = make_clips(campaign, 1)
        label_clip(1, annotators[:9], TEN[:9])
        assert clip_aggregate_task(clip.pk) == 0
        assert not ClipLabel.objects.exists()

    def test_the_beat_sweep_aggregates_complete_clips_without_a_result(self, campaign, annotators):
        clips = make_clips(campaign, 3)
        label_clip(3, annotators, TEN)  # the messages were never delivered (not committed)
        assert clip_aggregate_missing_task() == 3
        assert set(ClipLabel.objects.values_list("clip_id", flat=True)) == {c.pk for c in clips}
        assert clip_aggregate_missing_task() == 0


@pytest.mark.django_db
class CampaignRuleTests:
    def test_the_database_refuses_a_threshold_that_lets_two_labels_tie(self, campaign):
        with pytest.raises(IntegrityError), transaction.atomic():
            Campaign.objects.filter(pk=campaign.pk).update(single_label_min_votes=5)

    def test_the_form_error_says_why(self, campaign):
        campaign.single_label_min_votes = 5
        with pytest.raises(ValidationError, match="more than half of the annotations per clip"):
            campaign.full_clean()
        campaign.single_label_min_votes = 6
        campaign.full_clean()

    def test_the_admin_form_shows_the_message_and_saves_nothing(self, client, campaign):
        make_user("root", staff=True)
        client.login(username="root", password="correct-horse-battery")
        data = {
            "name": campaign.name,
            "slug": campaign.slug,
            "annotations_per_clip": 10,
            "single_label_min_votes": 4,
            "lease_minutes": 10,
            "clips_per_movie": 20,
            "created_at_0": "2026-01-01",
            "created_at_1": "00:00:00",
            "labels-TOTAL_FORMS": 0,
            "labels-INITIAL_FORMS": 0,
        }
        r = client.post(f"/admin/labeling/campaign/{campaign.pk}/change/", data)
        assert r.status_code == 200
        assert "more than half of the annotations per clip" in r.content.decode()
        campaign.refresh_from_db()
        assert campaign.single_label_min_votes == 7


@pytest.mark.django_db
class AnnotationsInvalidateTests:
    def test_it_marks_the_labels_reopens_the_slot_and_drops_the_result(
        self, campaign, annotators, admin_user
    ):
        # given a complete, aggregated clip
        (clip,) = make_clips(campaign, 1)
        label_clip(1, annotators, TEN)
        clip_aggregate_task(clip.pk)
        spammer = annotators[9]
        # when staff invalidate one annotator's labels
        n = aggregation.annotator_invalidate(
            staff=admin_user, campaign_id=campaign.pk, username=spammer.username, reason="spam"
        )
        # then the label is kept and marked, the clip is open again without a result
        assert n == 1
        annotation = Annotation.objects.get(annotator=spammer)
        assert annotation.invalidated_by == admin_user and annotation.invalidation_reason == "spam"
        assert Annotation.objects.valid().count() == 9
        clip.refresh_from_db()
        assert clip.status == Clip.Status.ANNOTATING
        assert not ClipLabel.objects.exists()
        assert Assignment.objects.get(annotator=spammer).status == Assignment.Status.INVALIDATED
        # the invalidated annotator is never offered the clip again; a new one gets slot 10
        assert services.assignment_next(user=spammer) is None
        newcomer = make_user("newcomer", *spammer.groups.values_list("name", flat=True))
        campaign.annotators.add(newcomer)
        lease = services.assignment_next(user=newcomer)
        assert (lease.clip_id, lease.slot) == (clip.pk, annotation.slot)
        services.annotation_submit(user=newcomer, assignment_id=lease.pk, label_name="fear")
        clip.refresh_from_db()
        assert clip.status == Clip.Status.COMPLETE
        clip_aggregate_task(clip.pk)
        assert ClipLabel.objects.get(clip=clip).votes["fear"] == 1
        assert Annotation.objects.count() == 11  # nothing deleted

    def test_only_staff_can_invalidate(self, campaign, annotators, alice):
        (clip,) = make_clips(campaign, 1)
        label_clip(1, annotators, TEN)
        with pytest.raises(Forbidden):
            aggregation.annotations_invalidate(
                staff=alice, annotation_ids=Annotation.objects.values_list("pk", flat=True)
            )
        assert Annotation.objects.valid().count() == 10

    def test_invalidating_twice_changes_nothing_more(self, campaign, annotators, admin_user):
        make_clips(campaign, 1)
        label_clip(1, annotators, TEN)
        first = Annotation.objects.filter(annotator=annotators[0]).values_list("pk", flat=True)
        aggregation.annotations_invalidate(staff=admin_user, annotation_ids=first, reason="a")
        stamp = Annotation.objects.get(annotator=annotators[0]).invalidated_at
        aggregation.annotations_invalidate(staff=admin_user, annotation_ids=first, reason="b")
        again = Annotation.objects.get(annotator=annotators[0])
        assert again.invalidated_at == stamp and again.invalidation_reason == "a"
