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
    protocol = models.CharField(max_length=20, default="dfew")
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
    results = models.JSONField(null=True, blank=True)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.model} {self.loss}, protocol {self.protocol} ({self.status})"
