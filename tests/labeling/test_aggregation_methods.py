"""Quality-aware aggregation stored with each clip's result, exported by ``?method=``, and set
beside the majority in the agreement report; staff excluding an annotator's votes."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from django.db.models import Sum
from rest_framework.authtoken.models import Token

from annotation_site.errors import ApplicationError, Conflict, Forbidden
from labeling.loop import services
from labeling.models import (
    Annotation,
    AnnotatorExclusion,
    Assignment,
    Campaign,
    Clip,
    ClipLabel,
    RewardEntry,
    Role,
)
from labeling.results import aggregation, agreement, exclusion
from labeling.results.imports import annotations_import
from pipeline import crowd
from pipeline.emotions import EMOTION_NAMES
from pipeline.synthetic import simulate_campaign
from tests.conftest import make_clips, make_user


def headers(user) -> dict:
    token, _ = Token.objects.get_or_create(user=user)
    return {"HTTP_AUTHORIZATION": f"Token {token.key}"}


@pytest.fixture
def scored(campaign):
    """A generated campaign of 200 clips (20 annotators, 2 careless), imported and aggregated."""
    c = simulate_campaign(200, annotators=20, careless=2, seed=7)
    rows = (
        (n + 2, {"clip": str(i + 1), "annotator": f"r{r:02d}", "label": EMOTION_NAMES[lab]})
        for n, (i, r, lab) in enumerate(zip(c.item, c.rater, c.label, strict=True))
    )
    summary = annotations_import(
        campaign=campaign, header=["clip", "annotator", "label"], rows=rows
    )
    aggregation.clips_aggregate(summary.complete_clip_ids)
    return campaign, c


@pytest.mark.django_db
class StoredResultTests:
    def test_every_method_stores_a_label_confidence_and_posterior(self, scored):
        campaign, _ = scored
        results = list(ClipLabel.objects.filter(clip__campaign=campaign))
        assert len(results) == 200
        for result in results:
            assert set(result.quality) == {"majority", *crowd.QUALITY_METHODS}
            for method, row in result.quality.items():
                assert sum(row["posterior"].values()) == pytest.approx(1.0, abs=1e-4), method
                assert row["confidence"] == pytest.approx(max(row["posterior"].values()), abs=1e-6)
            single = result.single_label.name if result.single_label else None
            assert result.quality["majority"]["label"] == single
            assert result.n_annotations == 10 and not result.closed_early

    def test_the_stored_labels_are_the_models_fitted_on_the_campaign(self, scored):
        campaign, c = scored
        order = np.argsort(c.item, kind="stable")
        fit = crowd.fit("dawid_skene", c.item[order], c.rater[order], c.label[order],
                        c.n_items, c.n_raters, 7)  # fmt: skip
        stored = {
            number: quality["dawid_skene"]["label"]
            for number, quality in ClipLabel.objects.filter(clip__campaign=campaign).values_list(
                "clip__number", "quality"
            )
        }
        expected = {i + 1: EMOTION_NAMES[k] for i, k in enumerate(fit.posteriors.argmax(axis=1))}
        assert stored == expected


@pytest.mark.django_db
class MethodExportTests:
    def test_the_clip_list_gives_single_label_and_confidence_by_method(
        self, client, scored, admin_user
    ):
        campaign, _ = scored
        url = f"/api/v1/campaigns/{campaign.pk}/clips/?page_size=1000"
        plain = client.get(url, **headers(admin_user)).json()["results"]
        by_mace = client.get(url + "&method=mace", **headers(admin_user)).json()["results"]
        stored = dict(
            ClipLabel.objects.filter(clip__campaign=campaign).values_list("clip__number", "quality")
        )
        assert [r["single_label"] for r in by_mace] == [
            stored[r["clip"]]["mace"]["label"] for r in by_mace
        ]
        assert all(r["method"] == "mace" and 0 < r["confidence"] <= 1 for r in by_mace)
        assert plain[0].get("confidence") is None and plain[0]["n_votes"] == 10
        # single labels (7 of 10) are none for some clips; a model's label never is
        assert any(r["single_label"] is None for r in plain)
        assert all(r["single_label"] is not None for r in by_mace)

    def test_the_campaigns_method_is_the_default(self, client, scored, admin_user):
        campaign, _ = scored
        Campaign.objects.filter(pk=campaign.pk).update(aggregation_method="one_coin")
        rows = client.get(f"/api/v1/campaigns/{campaign.pk}/clips/", **headers(admin_user))
        assert rows.json()["results"][0]["method"] == "one_coin"

    def test_the_csv_export_has_every_method_and_a_confidence_column(
        self, client, scored, admin_user
    ):
        campaign, _ = scored
        r = client.get(
            f"/api/v1/campaigns/{campaign.pk}/export/?format=csv&method=dawid_skene",
            **headers(admin_user),
        )
        rows = list(csv.DictReader(io.StringIO(b"".join(r.streaming_content).decode())))
        assert len(rows) == 200
        assert rows[0]["method"] == "dawid_skene" and float(rows[0]["confidence"]) > 0
        assert all(row["single_label"] == row["dawid_skene_label"] for row in rows)
        assert {row["n_votes"] for row in rows} == {"10"}

    @pytest.mark.parametrize("path", ["clips/", "export/"])
    def test_an_unknown_method_is_a_400_naming_the_valid_ones(
        self, client, scored, admin_user, path
    ):
        campaign, _ = scored
        r = client.get(f"/api/v1/campaigns/{campaign.pk}/{path}?method=glad", **headers(admin_user))
        assert r.status_code == 400
        assert "Unknown method 'glad'" in r.content.decode()
        assert "dawid_skene" in r.content.decode()


@pytest.mark.django_db
class ReportTests:
    def test_the_report_sets_each_method_beside_the_majority(self, scored):
        campaign, _ = scored
        report = agreement.campaign_agreement(campaign)
        methods = report["aggregation_methods"]
        assert set(methods) == set(crowd.QUALITY_METHODS)
        for row in methods.values():
            assert sum(row["differ_per_label"].values()) == row["differ_from_plurality"]
        assert report["votes_per_clip"] == {"10": 200}


def label(user, name: str) -> int:
    lease = services.assignment_next(user=user)
    services.annotation_submit(user=user, assignment_id=lease.pk, label_name=name)
    return lease.clip_id


@pytest.mark.django_db
class ExclusionTests:
    @pytest.fixture
    def world(self, campaign, annotators, admin_user):
        # two clips with ten votes each; a10 is careless and also holds a lease on a third
        clips = make_clips(campaign, 3)
        for user in annotators:
            for _ in range(2):
                label(user, "fear" if user.username == "a10" else "happy")
        lease = services.assignment_next(user=annotators[9])
        return clips, annotators, admin_user, lease

    def test_excluding_invalidates_their_votes_reopens_clips_and_holds_rewards(self, world):
        clips, users, admin, lease = world
        careless = users[9]
        earned = RewardEntry.objects.filter(person=careless).aggregate(s=Sum("amount_cents"))["s"]
        assert earned > 0
        # when
        x = exclusion.annotator_exclude(
            staff=admin, campaign_id=clips[0].campaign_id, username="a10", reason="random labels"
        )
        # then: kept and marked, the clips open for a replacement, the lease released
        assert len(x.annotation_ids) == 2
        gone = Annotation.objects.filter(pk__in=x.annotation_ids)
        assert all(a.invalidated_at and "random labels" in a.invalidation_reason for a in gone)
        assert set(Clip.objects.filter(pk__in=[c.pk for c in clips[:2]]).values_list(
            "status", flat=True)) == {"annotating"}  # fmt: skip
        assert Assignment.objects.get(pk=lease.pk).status == "released"
        assert not Campaign.objects.filter(pk=clips[0].campaign_id, annotators=careless).exists()
        assert RewardEntry.objects.filter(person=careless).aggregate(s=Sum("amount_cents"))[
            "s"
        ] == 0  # fmt: skip
        # and a second exclusion is refused
        with pytest.raises(Conflict):
            exclusion.annotator_exclude(
                staff=admin, campaign_id=clips[0].campaign_id, username="a10", reason="again"
            )

    def test_revoking_restores_the_votes_whose_slot_is_still_free(self, world, campaign):
        clips, users, admin, _ = world
        x = exclusion.annotator_exclude(
            staff=admin, campaign_id=campaign.pk, username="a10", reason="random labels"
        )
        # a replacement vote fills the first re-opened clip
        replacement = make_user("replacement", Role.ANNOTATOR)
        campaign.annotators.add(replacement)
        filled = label(replacement, "happy")
        # when
        revoked = exclusion.exclusion_revoke(staff=admin, exclusion_id=x.pk)
        # then: the other clip gets its vote back and is complete again; never 11 votes
        assert revoked.restored == 1 and revoked.revoked_at is not None
        other = next(c for c in clips[:2] if c.pk != filled)
        assert Clip.objects.get(pk=other.pk).status == "complete"
        for clip in clips[:2]:
            assert Annotation.objects.valid().filter(clip=clip).count() == 10
        assert Campaign.objects.filter(pk=campaign.pk, annotators=users[9]).exists()
        assert AnnotatorExclusion.objects.get(pk=x.pk).restored == 1
        with pytest.raises(Conflict):
            exclusion.exclusion_revoke(staff=admin, exclusion_id=x.pk)

    def test_only_staff_exclude_and_a_reason_is_needed(self, world, campaign):
        _, users, admin, _ = world
        with pytest.raises(Forbidden):
            exclusion.annotator_exclude(
                staff=users[0], campaign_id=campaign.pk, username="a10", reason="x"
            )
        with pytest.raises(ApplicationError, match="reason"):
            exclusion.annotator_exclude(
                staff=admin, campaign_id=campaign.pk, username="a10", reason=" "
            )
        assert not AnnotatorExclusion.objects.exists()
