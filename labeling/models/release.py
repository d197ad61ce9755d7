"""Dataset release: fold splits and DFEW-format exports."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from labeling.models.campaigns import Campaign, Label
from labeling.models.choices import JobStatus
from labeling.models.clips import Clip


class Split(models.Model):
    """A stored k-fold split of a campaign's single-labelled clips. Immutable: a new split
    never replaces an old one, and clips labelled later are never added to it."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="splits")
    k = models.PositiveSmallIntegerField(_("folds"), default=5)
    seed = models.IntegerField(default=0)
    group_by_movie = models.BooleanField(
        default=False, help_text=_("Every movie's clips in one fold (no face in train and test).")
    )
    n_clips = models.PositiveIntegerField(default=0)
    fold_counts = models.JSONField(
        default=dict, help_text=_("Clips per fold and label: {fold: {label: n}}.")
    )
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )

    class Meta:
        ordering = ["campaign", "-created_at", "-pk"]
        constraints = [models.CheckConstraint(condition=Q(k__gte=2), name="split_k_gte_2")]

    def __str__(self) -> str:
        grouped = ", by movie" if self.group_by_movie else ""
        return f"split {self.pk} ({self.k} folds, seed {self.seed}{grouped})"


class SplitClip(models.Model):
    """One clip's fold in a split, with the single label it had when the split was made."""

    split = models.ForeignKey(Split, on_delete=models.CASCADE, related_name="members")
    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="split_memberships")
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="+")
    fold = models.PositiveSmallIntegerField()

    class Meta:
        ordering = ["split", "clip"]
        constraints = [
            models.UniqueConstraint(fields=["split", "clip"], name="splitclip_one_fold_per_clip"),
            models.CheckConstraint(condition=Q(fold__gte=1), name="splitclip_fold_gte_1"),
        ]

    def __str__(self) -> str:
        return f"clip {self.clip_id} in fold {self.fold} of split {self.split_id}"


class LabelExport(models.Model):
    """A DFEW-format export of a campaign's split, written by a worker, downloaded when done."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="exports")
    split = models.ForeignKey(
        Split, on_delete=models.PROTECT, null=True, blank=True, related_name="exports"
    )
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    stage = models.CharField(max_length=100, blank=True)
    file = models.FileField(upload_to="exports/", blank=True)
    md5 = models.CharField(max_length=32, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(progress__gte=0) & Q(progress__lte=1), name="export_progress_0_1"
            ),
        ]

    def __str__(self) -> str:
        return f"export {self.pk} of {self.campaign_id} ({self.status})"
