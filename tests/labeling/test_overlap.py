"""Adaptive overlap through every door: the loop's submit, an outstanding lease, the import,
the stored result and export, the simulator command and its staff page."""

from __future__ import annotations

import csv
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client

from labeling.loop import services
from labeling.models import Assignment, Campaign, Clip, ClipLabel, QualityModel
from labeling.results import aggregation
from labeling.results.imports import annotations_import
from labeling.tasks import clip_aggregate_task
from pipeline.emotions import EMOTION_NAMES
from pipeline.synthetic import simulate_campaign
from tests.conftest import PASSWORD, make_clips, make_user


def adaptive(campaign, **fields) -> Campaign:
    fields = {"adaptive_overlap": True, "adaptive_min_votes": 5, **fields}
    Campaign.objects.filter(pk=campaign.pk).update(**fields)
    campaign.refresh_from_db()
    return campaign


def vote(user, label: str):
    lease = services.assignment_next(user=user)
    assert lease is not None, f"{user} got no clip"
    return services.annotation_submit(user=user, assignment_id=lease.pk, label_name=label)


@pytest.mark.django_db
class LoopTests:
    def test_a_clip_stops_once_seven_of_ten_agree(self, campaign, annotators):
        # given: adaptive overlap, DFEW's rule (7 of 10)
        adaptive(campaign)
        (clip,) = make_clips(campaign, 1)
        for user in annotators[:6]:
            vote(user, "happy")
        clip.refresh_from_db()
        assert clip.status == Clip.Status.ANNOTATING
        # when: the seventh agrees, no remaining vote can change the outcome
        vote(annotators[6], "happy")
        # then: complete with seven votes, and nobody is asked for an eighth
        clip.refresh_from_db()
        assert clip.status == Clip.Status.COMPLETE
        assert services.assignment_next(user=annotators[7]) is None

    def test_without_adaptive_overlap_it_asks_all_ten(self, campaign, annotators):
        (clip,) = make_clips(campaign, 1)
        for user in annotators[:7]:
            vote(user, "happy")
        clip.refresh_from_db()
        assert clip.status == Clip.Status.ANNOTATING
        assert services.assignment_next(user=annotators[7]) is not None

    def test_a_clip_stops_when_no_single_label_is_possible(self, campaign, annotators):
        adaptive(campaign)
        (clip,) = make_clips(campaign, 1)
        for user, label in zip(annotators, ["happy", "sad", "angry"] * 2, strict=False):
            vote(user, label)
        # six votes, top 2: 2 + 4 remaining < 7
        clip.refresh_from_db()
        assert clip.status == Clip.Status.COMPLETE

    def test_it_waits_for_k_votes(self, campaign, annotators):
        adaptive(campaign, adaptive_min_votes=8)
        (clip,) = make_clips(campaign, 1)
        for user in annotators[:7]:
            vote(user, "happy")
        clip.refresh_from_db()
        assert clip.status == Clip.Status.ANNOTATING

    def test_a_lease_out_when_the_clip_closes_still_counts_and_reaggregates(
        self, campaign, annotators, django_capture_on_commit_callbacks, monkeypatch
    ):
        adaptive(campaign)
        (clip,) = make_clips(campaign, 1)
        sent = []
        monkeypatch.setattr(clip_aggregate_task, "delay", lambda *a: sent.append(a))
        for user in annotators[:6]:
            vote(user, "happy")
        late = services.assignment_next(user=annotators[9])  # holds a slot
        with django_capture_on_commit_callbacks(execute=True):
            vote(annotators[6], "happy")
        assert sent == [(clip.pk,)]
        # when: the late annotator submits on the closed clip
        with django_capture_on_commit_callbacks(execute=True):
            result = services.annotation_submit(
                user=annotators[9], assignment_id=late.pk, label_name="sad"
            )
        # then: their label is kept, the clip re-aggregated with eight votes, never an 11th
        assert result.created and sent == [(clip.pk,), (clip.pk,)]
        aggregation.clips_aggregate([clip.pk])
        stored = ClipLabel.objects.get(clip=clip)
        assert stored.n_annotations == 8 and stored.closed_early
        assert stored.single_label.name == "happy"
        assert Assignment.objects.filter(clip=clip, status="submitted").count() == 8

    def test_the_confidence_rule_uses_the_campaigns_stored_model(self, campaign, annotators):
        # given: a stored model of a crowd that is right 95 % of the time
        adaptive(campaign, adaptive_min_votes=3, adaptive_confidence=0.95)
        (clip,) = make_clips(campaign, 1)
        for user in annotators[:3]:
            vote(user, "happy")
        clip.refresh_from_db()
        assert clip.status == Clip.Status.ANNOTATING  # no model yet: the exact rule only
        k = len(EMOTION_NAMES)
        crowd = [[0.95 if t == g else 0.05 / (k - 1) for g in range(k)] for t in range(k)]
        QualityModel.objects.create(
            campaign=campaign, method="dawid_skene", labels=list(EMOTION_NAMES),
            priors=[1 / k] * k, confusion={"crowd": crowd}, n_votes=100,
        )  # fmt: skip
        # when: a fourth happy vote (3 more of the 6 remaining will do, P > 0.95)
        vote(annotators[3], "happy")
        clip.refresh_from_db()
        assert clip.status == Clip.Status.COMPLETE
        aggregation.clips_aggregate([clip.pk])
        stored = ClipLabel.objects.get(clip=clip)
        # 4 of 4 is no single label under "7 of 10" alone: the projected outcome is happy
        assert stored.n_annotations == 4 and stored.single_label.name == "happy"


@pytest.mark.django_db
class ImportTests:
    def _rows(self, votes: dict[int, list[str]]):
        line = 1
        for clip, labels in votes.items():
            for n, label in enumerate(labels):
                line += 1
                yield line, {"clip": str(clip), "annotator": f"u{n}", "label": label}

    def test_the_import_completes_clips_by_the_same_rule(self, campaign):
        adaptive(campaign)
        summary = annotations_import(
            campaign=campaign,
            header=["clip", "annotator", "label"],
            rows=self._rows({1: ["happy"] * 7, 2: ["happy"] * 6}),
        )
        assert len(summary.complete_clip_ids) == 1 and summary.incomplete_clips == 1
        assert Clip.objects.get(campaign=campaign, number=1).status == Clip.Status.COMPLETE


def write_campaign_csv(path, n_clips=300, seed=0):
    c = simulate_campaign(n_clips, annotators=20, careless=2, seed=seed)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["clip", "annotator", "label"])
        for i, r, lab in zip(c.item, c.rater, c.label, strict=True):
            writer.writerow([i + 1, f"r{r:02d}", EMOTION_NAMES[lab]])
    return c


@pytest.mark.django_db
class SimulateOverlapCommandTests:
    def test_it_replays_an_imported_campaign_and_prints_the_figures(self, tmp_path):
        # given: a campaign kept elsewhere, imported with import_annotations
        path = tmp_path / "votes.csv"
        write_campaign_csv(path)
        call_command("import_annotations", str(path), "--campaign", "elsewhere", "--create",
                     stdout=StringIO(), stderr=StringIO())  # fmt: skip
        # when
        out = StringIO()
        call_command("simulate_overlap", "elsewhere", "--min", "5", "--orders", "2",
                     "--seed", "3", "--json", stdout=out)  # fmt: skip
        result = json.loads(out.getvalue())
        # then: the exact rule keeps every single label and saves labels
        assert result["n_clips"] == 300 and result["labels_full"] == 3000
        assert result["single_label_agreement"] == 1.0
        assert 0 < result["saved_fraction"] == round(1 - result["labels_used"] / 3000, 6)
        assert result["decided_early"] > 0 and len(result["orders"]) == 3
        # and with the confidence rule it saves more
        out = StringIO()
        call_command("simulate_overlap", "elsewhere", "--min", "5", "--confidence", "0.985",
                     "--json", stdout=out)  # fmt: skip
        assert json.loads(out.getvalue())["saved_fraction"] > result["saved_fraction"]

    def test_bad_arguments_are_refused(self, campaign):
        from django.core.management.base import CommandError

        with pytest.raises(CommandError, match="--min"):
            call_command("simulate_overlap", campaign.slug, "--min", "11", "--json")
        with pytest.raises(CommandError, match="no campaign"):
            call_command("simulate_overlap", "nope", "--min", "5")


@pytest.mark.django_db
class OverlapPageTests:
    def test_staff_see_labels_saved_against_agreement_for_k_3_to_10(self, tmp_path):
        path = tmp_path / "votes.csv"
        write_campaign_csv(path, n_clips=100)
        call_command("import_annotations", str(path), "--campaign", "elsewhere", "--create",
                     stdout=StringIO(), stderr=StringIO())  # fmt: skip
        campaign = Campaign.objects.get(slug="elsewhere")
        make_user("boss", staff=True)
        client = Client()
        client.login(username="boss", password=PASSWORD)
        page = client.get(f"/staff/campaigns/{campaign.pk}/overlap/?confidence=0.985")
        assert page.status_code == 200
        text = page.content.decode()
        assert "<svg" in text and text.count("K=") >= 8
        bad = client.get(f"/staff/campaigns/{campaign.pk}/overlap/?confidence=7")
        assert bad.status_code == 400 and "between 0.5 and 1" in bad.content.decode()


@pytest.mark.django_db
class OneRuleTests:
    def test_the_loop_closes_each_clip_where_the_simulator_stops_it(self, campaign, annotators):
        # One stop rule: the same votes, given one by one through the loop's submit, close
        # each clip after exactly as many votes as the simulator's replay says.
        from pipeline.aggregation import StopRule
        from pipeline.overlap import replay

        adaptive(campaign, adaptive_min_votes=5)
        c = simulate_campaign(12, annotators=10, careless=1, seed=11)
        expected = replay(c.item, c.rater, c.label, 12, 7, StopRule(10, 7, True, 5)).used
        closed_after = []
        for clip_index in range(12):
            (clip,) = make_clips(campaign, 1, start_number=clip_index + 1)
            votes = c.label[c.item == clip_index]
            given = 0
            for user, label in zip(annotators, votes, strict=True):
                clip.refresh_from_db()
                if clip.status == Clip.Status.COMPLETE:
                    break
                vote(user, EMOTION_NAMES[label])
                given += 1
            clip.refresh_from_db()
            assert clip.status == Clip.Status.COMPLETE
            closed_after.append(given)
        assert closed_after == expected.tolist()
        assert min(closed_after) < 10  # some closed early


@pytest.mark.django_db
class SettingsTests:
    @pytest.mark.parametrize(
        "fields, message",
        [
            ({"adaptive_min_votes": 11}, "between 1 and the annotations per clip"),
            ({"adaptive_confidence": 0.3}, "between 0.5 and 1"),
        ],
    )
    def test_bad_settings_are_refused_with_their_reason(self, campaign, fields, message):
        from django.core.exceptions import ValidationError

        for name, value in fields.items():
            setattr(campaign, name, value)
        with pytest.raises(ValidationError, match=message):
            campaign.full_clean()

    def test_adaptive_overlap_is_off_by_default(self, campaign):
        assert campaign.adaptive_overlap is False and campaign.aggregation_method == "majority"
