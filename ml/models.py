"""Benchmark run records: what was trained, on what, and how it scored."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class BenchmarkRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"

    # "dfew" (the authors' configs) or "modern"; runs recorded before the field were modern.
    # A run whose settings differ from its named protocol or recipe is stored as
    # "<protocol>, modified" with the differences in `modifications`, never as the name alone.
    protocol = models.CharField(max_length=20, default="dfew")
    recipe = models.CharField(max_length=40, blank=True)
    modifications = models.TextField(blank=True)
    ec_stfl_variant = models.CharField(max_length=20, blank=True)
    # Every weight of the loss as used: λ, the release EC-STFL's rescaled λ, center loss's α.
    loss_weights = models.JSONField(default=dict, blank=True)
    world_size = models.PositiveIntegerField(null=True, blank=True)
    per_process_batch = models.PositiveIntegerField(null=True, blank=True)
    accumulation = models.PositiveIntegerField(null=True, blank=True)
    global_batch = models.PositiveIntegerField(null=True, blank=True)
    model = models.CharField(max_length=40)
    loss = models.CharField(max_length=20)
    lam = models.FloatField("λ", default=0.0)
    target = models.CharField(max_length=20, default="single")
    data = models.CharField(max_length=500)
    out_dir = models.CharField(max_length=500)
    folds = models.CharField(max_length=40)
    epochs = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    error = models.TextField(blank=True)
    war_mean = models.FloatField(null=True, blank=True)
    war_std = models.FloatField(null=True, blank=True)
    uar_mean = models.FloatField(null=True, blank=True)
    uar_std = models.FloatField(null=True, blank=True)
    # The best epoch on the test fold (optimistic: the test fold chose it), per fold.
    best_war_mean = models.FloatField(null=True, blank=True)
    best_war_std = models.FloatField(null=True, blank=True)
    best_uar_mean = models.FloatField(null=True, blank=True)
    best_uar_std = models.FloatField(null=True, blank=True)
    best_epochs = models.CharField(max_length=100, blank=True)
    results = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.model} {self.loss}, protocol {self.protocol_label} ({self.status})"

    @property
    def protocol_label(self) -> str:
        """ "dfew", "ecstfl-release", or "dfew, modified: epochs 2 (not 100)"."""
        name = f"{self.protocol.removesuffix(', modified')}"
        if self.recipe:
            name = self.recipe
        return f"{name}, modified: {self.modifications}" if self.modifications else name
