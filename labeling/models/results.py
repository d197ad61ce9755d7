"""Per-clip results (vote distribution, single label) and campaign agreement reports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from labeling.models.campaigns import Campaign, Label
from labeling.models.choices import JobStatus
from labeling.models.clips import Clip


class ClipLabel(models.Model):
    """The aggregate of a complete clip's valid votes; recomputed from the raw annotations.

    One row per clip (the primary key is the clip), so a repeated or concurrent aggregation
    upserts the same row and never stores two results.
    """

    clip = models.OneToOneField(
        Clip, on_delete=models.CASCADE, primary_key=True, related_name="result"
    )
    votes = models.JSONField(help_text=_("Votes per label name."))
    distribution = models.JSONField(help_text=_("Share of the votes per label name."))
    n_annotations = models.PositiveSmallIntegerField()
    single_label = models.ForeignKey(
        Label, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    top_share = models.FloatField()
    entropy = models.FloatField(help_text=_("Shannon entropy of the distribution, in bits."))
    computed_at = models.DateTimeField(default=timezone.now)
    # Per aggregation method (pipeline.crowd.METHODS): {"label": name or None, "confidence":
    # the label's posterior, "posterior": {label name: probability}}.
    quality = models.JSONField(default=dict, blank=True)
    # Closed by the adaptive-overlap rule before the campaign's annotations per clip: the
    # distribution comes from n_annotations votes.
    closed_early = models.BooleanField(default=False)

    class Meta:
        ordering = ["clip"]
        constraints = [
            models.CheckConstraint(
                condition=Q(top_share__gte=0) & Q(top_share__lte=1), name="cliplabel_share_0_1"
            ),
            models.CheckConstraint(condition=Q(n_annotations__gte=1), name="cliplabel_n_gte_1"),
        ]

    def __str__(self) -> str:
        return f"result of clip {self.clip_id}"


class QualityModel(models.Model):
    """A campaign's annotators as one aggregation method last fitted them (pipeline/crowd.py):
    what scores a clip from its votes alone, in the loop and in the per-clip aggregation.
    Refitted from all valid votes of complete clips; one row per campaign and method."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    method = models.CharField(max_length=16)
    labels = models.JSONField(help_text=_("Label names in code order."))
    priors = models.JSONField()
    # {annotator id: K×K confusion[true][given]}; "crowd": the confusion of an unknown one.
    confusion = models.JSONField()
    n_votes = models.PositiveIntegerField()
    fitted_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "method"], name="quality_model_one"),
        ]

    def __str__(self) -> str:
        return f"{self.method} model of {self.campaign_id}"


class AnnotatorExclusion(models.Model):
    """Staff's decision to leave an annotator's votes out of a campaign's aggregation. Their
    votes are invalidated (kept and marked, as any invalidation) and their clips re-open for
    replacement votes; revoking restores the votes whose slots are still free. Kept."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.TextField()
    excluded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    annotation_ids = models.JSONField(default=list, help_text=_("The votes it invalidated."))
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    restored = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "annotator"],
                condition=Q(revoked_at__isnull=True),
                name="exclusion_one_standing",
            ),
            models.CheckConstraint(
                condition=Q(revoked_at__isnull=True) | Q(revoked_by__isnull=False),
                name="exclusion_revoked_by_someone",
            ),
        ]

    def __str__(self) -> str:
        return f"exclusion of {self.annotator_id} from {self.campaign_id}"


class AgreementReport(models.Model):
    """One run of a campaign's agreement report; the history of runs is kept."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="agreement_reports"
    )
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=100, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True)
    plots = models.JSONField(default=dict, blank=True, help_text=_("SVG text per plot name."))
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="report_progress_0_1"
            ),
        ]
        indexes = [models.Index(fields=["campaign", "status"], name="report_campaign_status")]

    def __str__(self) -> str:
        return f"agreement report {self.pk} of {self.campaign_id} ({self.status})"
