import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.models import (
    AgreementReport,
    Annotation,
    Campaign,
    Clip,
    ClipLabel,
    Label,
    MediaStatus,
    Movie,
    RewardEntry,
)
from labeling.release.splits import split_create
from pipeline.media import probe


@pytest.mark.django_db
class SeedDemoCommandTests:
    def test_it_creates_a_playable_open_campaign_and_a_rerun_changes_nothing(
        self, settings, capsys
    ):
        call_command("seed_demo", clips=3, annotators=2, password="pw-for-test", extract_now=True)
        out = capsys.readouterr().out
        assert "annotator01…annotator02 / pw-for-test" in out
        campaign = Campaign.objects.get(slug="demo")
        assert list(Label.objects.filter(campaign=campaign).values_list("name", flat=True)) == [
            "happy",
            "sad",
            "neutral",
            "angry",
            "surprise",
            "disgust",
            "fear",
        ]
        clips = list(Clip.objects.all())
        assert [c.status for c in clips] == [Clip.Status.ANNOTATING] * 3
        # Through the media pipeline: one synthetic movie, a clip per emotion segment.
        assert [c.suspected_label.name for c in clips] == ["happy", "sad", "neutral"]
        assert {c.movie.status for c in clips} == {"ready"} and Movie.objects.count() == 1
        assert all(c.face_ratio >= 0.5 and c.n_frames >= 18 for c in clips)
        info = probe(settings.MEDIA_ROOT / clips[0].video.name)
        assert (info.codec, info.width, info.height) == ("h264", 160, 160)
        assert abs(info.duration_s - clips[0].duration_s) < 0.2
        users = set(get_user_model().objects.values_list("username", flat=True))
        assert users == {"admin", "reviewer", "extractor", "annotator01", "annotator02"}
        # the team by role: two annotators, the reviewer and the extractor, one row each
        roles = sorted(campaign.memberships.values_list("user__username", "role"))
        assert roles == [
            ("annotator01", "annotator"),
            ("annotator02", "annotator"),
            ("extractor", "extractor"),
            ("reviewer", "reviewer"),
        ]

        snapshot = (
            Clip.objects.count(),
            get_user_model().objects.count(),
            Campaign.objects.count(),
        )
        call_command("seed_demo", clips=3, annotators=2)
        assert "nothing changed" in capsys.readouterr().out
        assert snapshot == (
            Clip.objects.count(),
            get_user_model().objects.count(),
            Campaign.objects.count(),
        )

    def test_it_can_leave_the_clips_in_screening(self):
        call_command("seed_demo", clips=1, annotators=1, screening=True, extract_now=True)
        assert Clip.objects.get().status == Clip.Status.SCREENING

    def test_without_extract_now_the_worker_gets_the_clips(
        self, django_capture_on_commit_callbacks
    ):
        with django_capture_on_commit_callbacks() as queued:
            call_command("seed_demo", clips=8, annotators=1)
        assert Movie.objects.count() == 2
        assert set(Clip.objects.values_list("media_status", flat=True)) == {MediaStatus.PENDING}
        assert len(queued) == 8  # eight extractions (the movies were probed as they came in)

    def test_the_default_demo_has_six_clips_per_emotion(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks():
            call_command("seed_demo", annotators=1)
        per_label = {}
        for name in Clip.objects.values_list("suspected_label__name", flat=True):
            per_label[name] = per_label.get(name, 0) + 1
        assert per_label == dict.fromkeys(per_label, 6) and len(per_label) == 7

    def test_votes_fill_every_clip_and_a_5_fold_split_of_the_demo_succeeds(self, capsys):
        call_command("seed_demo", clips=35, annotators=12, votes=True)
        assert "350 labels added" in capsys.readouterr().out
        campaign = Campaign.objects.get(slug="demo")
        clips = Clip.objects.filter(campaign=campaign)
        assert set(clips.values_list("status", flat=True)) == {Clip.Status.COMPLETE}
        for clip in clips:
            assert Annotation.objects.valid().filter(clip=clip).count() == 10
        assert ClipLabel.objects.filter(clip__campaign=campaign).count() == 35
        # Realistic: mostly the segment's emotion, yet not unanimous everywhere.
        results = list(ClipLabel.objects.filter(clip__campaign=campaign).select_related("clip"))
        agree = sum(r.single_label_id == r.clip.suspected_label_id for r in results)
        assert agree >= 30 and any(r.top_share < 1 for r in results)
        report = AgreementReport.objects.get(campaign=campaign)
        assert report.status == "done"
        assert RewardEntry.objects.exists()  # the loop paid the labels

        made = split_create(campaign=campaign, k=5)
        assert made.warnings == []
        assert made.split.n_clips >= 35 - 7

        # A second run changes nothing: no one is offered a clip twice.
        snapshot = (Annotation.objects.count(), Clip.objects.count(), ClipLabel.objects.count())
        call_command("seed_demo", clips=35, annotators=12, votes=True)
        assert "0 labels added" in capsys.readouterr().out
        assert snapshot == (
            Annotation.objects.count(),
            Clip.objects.count(),
            ClipLabel.objects.count(),
        )

    def test_votes_on_a_demo_seeded_without_them_fill_it(self, django_capture_on_commit_callbacks):
        with django_capture_on_commit_callbacks():  # the worker never runs here
            call_command("seed_demo", clips=7, annotators=10)
        call_command("seed_demo", votes=True)
        assert set(Clip.objects.values_list("status", flat=True)) == {Clip.Status.COMPLETE}
        assert Annotation.objects.count() == 70

    def test_votes_need_ten_annotators_and_no_screening(self):
        with pytest.raises(CommandError, match="at least 10 annotators"):
            call_command("seed_demo", clips=1, annotators=3, votes=True)
        with pytest.raises(CommandError, match="screening"):
            call_command("seed_demo", clips=1, screening=True, votes=True)
        assert not Campaign.objects.exists()
