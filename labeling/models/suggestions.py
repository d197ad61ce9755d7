"""A trained model's suggestions of where in a movie the rare emotions are (issue 24).

The ``ml`` app scores a movie's windows and posts its best segments over the REST API; an
extractor accepts one (it becomes a proposed clip through the marking page's own service) or
dismisses it. Nothing here is ever shown to annotators or reviewers: the ten votes stay
independent of the model.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from labeling.models.campaigns import Label
from labeling.models.clips import Clip, Movie


class Suggestion(models.Model):
    """One segment a model suggests in a movie: from ``start_s`` to ``end_s``, with the
    model's probability per emotion (label name → probability), the emotion it suggests (the
    most probable rare one) and the rare-class score (the probabilities of the campaign's rare
    labels summed) that ranks it.

    open → accepted (``clip`` is the proposed clip it became) or dismissed, once, by
    ``decided_by`` at ``decided_at``. A suggestion left open is "ignored" in the counts. The
    same run posting the same span of a movie twice stores it once."""

    class Status(models.TextChoices):
        OPEN = "open", _("Open")
        ACCEPTED = "accepted", _("Accepted")
        DISMISSED = "dismissed", _("Dismissed")

    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="suggestions")
    # The ml run that scored the movie (a benchmark run's id, or a run folder's name).
    run = models.CharField(_("model run"), max_length=100)
    start_s = models.FloatField(_("start (s)"))
    end_s = models.FloatField(_("end (s)"))
    probabilities = models.JSONField(help_text=_("The model's probability per label name."))
    emotion = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="+")
    rare_score = models.FloatField(_("rare-class score"))
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # The clip an accepted suggestion became: one clip comes from at most one suggestion.
    clip = models.OneToOneField(
        Clip, on_delete=models.SET_NULL, null=True, blank=True, related_name="suggestion"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["movie", "-rare_score", "start_s"]
        constraints = [
            models.CheckConstraint(
                condition=Q(start_s__gte=0) & Q(end_s__gt=F("start_s")),
                name="suggestion_end_after_start",
            ),
            models.CheckConstraint(
                condition=Q(rare_score__gte=0) & Q(rare_score__lte=1),
                name="suggestion_rare_score_0_1",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "accepted", "dismissed"]),
                name="suggestion_status_valid",
            ),
            # Open means undecided; a decision is dated; only an accepted one has a clip.
            models.CheckConstraint(
                condition=(Q(status="open") & Q(decided_at__isnull=True) & Q(clip__isnull=True))
                | (~Q(status="open") & Q(decided_at__isnull=False)),
                name="suggestion_decided_dated",
            ),
            models.CheckConstraint(
                condition=Q(clip__isnull=True) | Q(status="accepted"),
                name="suggestion_clip_only_accepted",
            ),
            # A run posting a span again (a retry) stores it once.
            models.UniqueConstraint(
                fields=["movie", "run", "start_s", "end_s"], name="suggestion_unique_span"
            ),
        ]
        indexes = [models.Index(fields=["run", "status"], name="suggestion_run_status")]

    def __str__(self) -> str:
        return f"{self.emotion.name} {self.start_s:g}–{self.end_s:g} s of movie {self.movie_id}"
