import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from labeling.models import Campaign, Clip, Label, MediaStatus, Movie
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
        assert users == {"admin", "reviewer", "annotator01", "annotator02"}
        assert campaign.annotators.count() == 2

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
