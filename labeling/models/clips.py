"""Movies, the clips cut from them, reviewers' screenings and annotators' reports."""

from __future__ import annotations

import math

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from labeling.models.campaigns import Campaign
from labeling.models.choices import MediaStatus
from pipeline.aggregation import duration_bucket


class Movie(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending probe")
        READY = "ready", _("Ready")
        FAILED = "failed", _("Failed")

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="movies")
    title = models.CharField(_("title"), max_length=300)
    source = models.FileField(_("source file"), upload_to="movies/", blank=True)
    # SHA-256 of the file's bytes; the same content twice in a campaign is refused.
    content_hash = models.CharField(max_length=64, blank=True)
    size_bytes = models.BigIntegerField(null=True, blank=True)
    duration_s = models.FloatField(_("duration (s)"), null=True, blank=True)
    fps = models.FloatField(_("frame rate"), null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    codec = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    # Why the probe refused the file (a reason a person reads), when status is failed.
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["campaign", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "content_hash"],
                condition=~Q(content_hash=""),
                name="movie_content_unique_per_campaign",
            ),
        ]

    def __str__(self) -> str:
        return self.title


# The face flags a reviewer filters the screening by: (name in URLs and the API, the clip's
# field, what the page calls it).
FACE_FLAGS = (
    ("few", "few_faces", _("few faces")),
    ("lost", "face_lost", _("face lost")),
    ("second", "face_second", _("second face")),
    ("small", "face_small", _("small face")),
)


def face_point_problem(point) -> str | None:
    """What is wrong with an extractor's face point (x, y), shares 0..1 of the movie frame's
    width and height; None when it is fine or absent. The one check of the API, the import
    and the proposal service (the DB constraint ``clip_face_point_0_1`` guards the same)."""
    if point is None:
        return None
    try:
        x, y = (float(v) for v in point)
    except (TypeError, ValueError):
        return "the face point must be two numbers, x and y"
    if not all(math.isfinite(v) and 0 <= v <= 1 for v in (x, y)):
        return (
            f"the face point ({x:g}, {y:g}) must lie in the frame: x and y are shares of its "
            "width and height, from 0 to 1"
        )
    return None


class ClipQuerySet(models.QuerySet):
    def open_for_annotation(self) -> ClipQuerySet:
        """Clips annotators may be offered: being annotated, in an open campaign. The hot
        path's SQL (`labeling.loop.sql.candidate_clip`) is `with_free_slot` for one annotator."""
        return self.filter(status=Clip.Status.ANNOTATING, campaign__is_active=True)

    def with_free_slot(self) -> ClipQuerySet:
        """Open clips with a slot no assignment holds: what `next` can still hand out."""
        return self.open_for_annotation().filter(slots_held__lt=F("campaign__annotations_per_clip"))

    def awaiting_screening(self) -> ClipQuerySet:
        return self.filter(status=Clip.Status.SCREENING)

    def in_pool(self) -> ClipQuerySet:
        """The labelling pool: clips being labelled or complete (`Clip.POOL_STATUSES`)."""
        return self.filter(status__in=Clip.POOL_STATUSES)


class Clip(models.Model):
    class Status(models.TextChoices):
        """proposed → screening → annotating → complete, or rejected / failed with a reason;
        a complete clip whose labels are invalidated goes back to annotating, a reported one
        back to screening. Whether the media is ready is ``media_status``."""

        PROPOSED = "proposed", _("Proposed")
        # Never set: media readiness is `media_status`. Kept because the migrations' choices
        # name it (removing it is a migration).
        READY = "ready", _("Media ready")
        SCREENING = "screening", _("Screening")
        ANNOTATING = "annotating", _("Annotating")
        COMPLETE = "complete", _("Complete")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

    # The labelling pool: clips being labelled or complete (the M of an annotator's "N of M",
    # and the clips whose labels the overview counts as needed).
    POOL_STATUSES = (Status.ANNOTATING, Status.COMPLETE)

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="clips")
    movie = models.ForeignKey(Movie, on_delete=models.CASCADE, related_name="clips")
    number = models.PositiveIntegerField(_("clip number"), help_text=_("DFEW-style clip id"))
    start_s = models.FloatField(_("start (s)"), default=0)
    # Unknown for clips imported without media (their votes were collected elsewhere).
    end_s = models.FloatField(_("end (s)"), null=True, blank=True)
    video = models.FileField(upload_to="clips/", blank=True)
    poster = models.FileField(upload_to="posters/", blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PROPOSED)
    status_reason = models.TextField(blank=True)
    # The media pipeline (labeling/movies.py): the extraction job, its result and its error.
    suspected_label = models.ForeignKey(
        "Label", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    proposed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    media_status = models.CharField(
        max_length=16, choices=MediaStatus.choices, default=MediaStatus.NONE, blank=True
    )
    media_claimed_at = models.DateTimeField(null=True, blank=True)
    # Who holds the extraction claim: the Celery task id and the process (`host:pid:start`,
    # `labeling.media.extraction.claimant`). The same task delivered again while its process is gone
    # (a killed worker's message, requeued) takes the claim over at once.
    media_claim_task = models.CharField(max_length=255, blank=True)
    media_claim_worker = models.CharField(max_length=255, blank=True)
    media_attempts = models.PositiveSmallIntegerField(default=0)
    # Extractions of this clip whose worker died (taken over or swept); at
    # `movies.LOST_CLAIMS_LIMIT` the clip fails instead of killing another worker.
    media_lost_claims = models.PositiveSmallIntegerField(default=0)
    media_error = models.TextField(blank=True)
    first_frame = models.PositiveIntegerField(null=True, blank=True)
    n_frames = models.PositiveIntegerField(null=True, blank=True)
    # Storage-relative name of the clip's face crops: one JPEG sheet, a 112-px tile per frame
    # in order (faces/<clip id>.jpg; pipeline.face_sheets.read_face_frames reads it back).
    faces = models.CharField(max_length=200, blank=True)
    face_ratio = models.FloatField(null=True, blank=True)
    few_faces = models.BooleanField(default=False, help_text=_("Flagged for the reviewer."))
    # Where the extractor clicked on the face to follow, as a share (0..1) of the movie
    # frame's width and height; both or neither (None: the tracker picks the target).
    face_x = models.FloatField(_("face point x (0..1)"), null=True, blank=True)
    face_y = models.FloatField(_("face point y (0..1)"), null=True, blank=True)
    # The target face per frame (faces/<clip id>.csv, `pipeline.face_track_file`), "" when the
    # clip was extracted before tracks were stored; and the flags the screening filters by,
    # set by the extraction from it (`pipeline.face_flags.face_flags`, the one rule).
    face_track = models.CharField(max_length=200, blank=True)
    face_lost = models.BooleanField(
        _("face lost"),
        default=False,
        help_text=_("No face in more frames than the campaign allows."),
    )
    face_second = models.BooleanField(
        _("second face"), default=False, help_text=_("Another face as large as the target.")
    )
    face_small = models.BooleanField(
        _("small face"), default=False, help_text=_("The face is smaller than the campaign's size.")
    )
    # DFEW's Table 2 bucket of the clip's length, `Clip.bucket_of(start_s, end_s)` ("" when the
    # end is unknown): a copy for the media API, written by that one function only (at creation,
    # after an extraction, and by `save` whenever start or end is saved). Exports compute it
    # from start and end with the same rule (`pipeline.aggregation.BUCKETS`).
    duration_bucket = models.CharField(max_length=8, blank=True)
    # How many of the clip's assignments hold a slot (leased or submitted): recounted from
    # the assignment rows, under the clip's lock, with every change to them, which goes
    # through `labeling.loop.slots` (the one writer of an assignment's status). It lets `next`
    # find the open clip nearest completion through an index instead of counting every
    # clip's assignments.
    slots_held = models.PositiveSmallIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ClipQuerySet.as_manager()

    class Meta:
        ordering = ["campaign", "number"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="clip_number_unique"),
            models.CheckConstraint(
                condition=Q(end_s__gt=F("start_s")), name="clip_end_after_start"
            ),
            models.CheckConstraint(
                condition=Q(face_ratio__isnull=True)
                | (Q(face_ratio__gte=0) & Q(face_ratio__lte=1)),
                name="clip_face_ratio_0_1",
            ),
            models.CheckConstraint(
                # NULL >= 0 is NULL, which a CHECK lets pass: "both present" is said outright.
                condition=Q(face_x__isnull=True, face_y__isnull=True)
                | (
                    Q(face_x__isnull=False, face_y__isnull=False)
                    & Q(face_x__gte=0)
                    & Q(face_x__lte=1)
                    & Q(face_y__gte=0)
                    & Q(face_y__lte=1)
                ),
                name="clip_face_point_0_1",
                violation_error_message=_(
                    "A face point has both coordinates, each a share of the frame from 0 to 1."
                ),
            ),
        ]
        indexes = [
            models.Index(fields=["status", "campaign"], name="clip_status_campaign"),
            models.Index(fields=["movie", "media_status"], name="clip_movie_media_status"),
            # The beat sweep's look for claims older than the extraction's time limit.
            models.Index(
                fields=["media_claimed_at"],
                condition=Q(media_status="extracting"),
                name="clip_extracting_claimed_at",
            ),
            # The order `next` offers clips in: nearest completion first, then by number.
            models.Index(
                "campaign", "status", F("slots_held").desc(), "number", name="clip_lease_order"
            ),
            # The screening queue's order (oldest first), a page at a time.
            models.Index(
                fields=["updated_at", "id"],
                condition=Q(status="screening"),
                name="clip_screening_order",
            ),
        ]

    def __str__(self) -> str:
        return f"clip {self.number:05d}"

    def save(self, *args, **kwargs):
        """Keeps ``duration_bucket`` in step with start and end (an edit in the admin)."""
        fields = kwargs.get("update_fields")
        if fields is None or {"start_s", "end_s"} & set(fields):
            self.duration_bucket = self.bucket_of(self.start_s, self.end_s)
            if fields is not None:
                kwargs["update_fields"] = {*fields, "duration_bucket"}
        super().save(*args, **kwargs)

    @property
    def face_point(self) -> tuple[float, float] | None:
        return None if self.face_x is None else (self.face_x, self.face_y)

    @property
    def face_flags(self) -> list[str]:
        """The screening's face flags the clip has, by name (`FACE_FLAGS`)."""
        return [name for name, field, _ in FACE_FLAGS if getattr(self, field)]

    @property
    def duration_s(self) -> float | None:
        return None if self.end_s is None else self.end_s - self.start_s

    @staticmethod
    def bucket_of(start_s: float, end_s: float | None) -> str:
        """The stored ``duration_bucket`` of a clip from ``start_s`` to ``end_s``: its Table 2
        bucket (`pipeline.aggregation.duration_bucket`), "" when the end is unknown."""
        return duration_bucket(None if end_s is None else end_s - start_s) or ""


class Screening(models.Model):
    """A reviewer's decision on a clip before it reaches the annotators."""

    class Decision(models.TextChoices):
        ACCEPT = "accept", _("Accept")
        REJECT = "reject", _("Reject")

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="screenings")
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    shows_face = models.BooleanField(_("shows a face"))
    shows_emotion = models.BooleanField(_("shows one of the emotions"))
    decision = models.CharField(max_length=8, choices=Decision.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # An accepted clip must have been seen to show a face and an emotion.
            models.CheckConstraint(
                condition=~Q(decision="accept") | (Q(shows_face=True) & Q(shows_emotion=True)),
                name="screening_accept_needs_face_and_emotion",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} {self.clip} by {self.reviewer}"


class ClipReport(models.Model):
    """An annotator's "problem with this clip"; it sends the clip back to screening."""

    class Kind(models.TextChoices):
        NO_FACE = "no_face", _("No face")
        BROKEN = "broken", _("Broken video")
        NO_EMOTION = "no_emotion", _("None of the emotions")

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="reports")
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    note = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.kind} on {self.clip}"
