"""Campaigns, movies, clips, the people who work on them, and their leases and labels.

The invariants that protect annotators' work are database constraints, not only checks in
Python: one live assignment per slot, one live assignment and one annotation per annotator per
clip, slots numbered from 1. Services in ``labeling/services.py`` are the only writers.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import GreaterThan
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    """Roles are Django groups of these names; staff users are the admins."""

    ANNOTATOR = "annotator", _("Annotator")
    EXTRACTOR = "extractor", _("Extractor")
    REVIEWER = "reviewer", _("Reviewer")


class Campaign(models.Model):
    name = models.CharField(_("name"), max_length=200)
    slug = models.SlugField(_("slug"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    annotations_per_clip = models.PositiveSmallIntegerField(_("annotations per clip"), default=10)
    single_label_min_votes = models.PositiveSmallIntegerField(
        _("votes for a single label"),
        default=7,
        help_text=_("A clip gets a single label when one emotion has at least this many votes."),
    )
    lease_minutes = models.PositiveSmallIntegerField(_("lease length (minutes)"), default=10)
    clips_per_movie = models.PositiveSmallIntegerField(_("clips per movie"), default=20)
    # The media pipeline's settings (labeling/movies.py): clip length bounds, output format,
    # and the face-found share below which a clip is flagged for the reviewer.
    clip_min_seconds = models.FloatField(_("shortest clip (s)"), default=0.5)
    clip_max_seconds = models.FloatField(_("longest clip (s)"), default=15.0)
    clip_fps = models.FloatField(
        _("clip frame rate"), null=True, blank=True, help_text=_("Empty: the movie's own rate.")
    )
    clip_max_height = models.PositiveSmallIntegerField(_("clip height at most (px)"), default=720)
    min_face_ratio = models.FloatField(
        _("faces needed"),
        default=0.5,
        help_text=_("Share of a clip's frames with a face found; fewer flags it for review."),
    )
    screen_clips = models.BooleanField(
        _("reviewers screen new clips"),
        default=True,
        help_text=_("Off: extracted clips open for labelling without screening (the demo)."),
    )
    min_view_seconds = models.FloatField(
        _("minimum viewing time (s)"),
        default=0.5,
        help_text=_(
            "A label is accepted only after the clip has been on screen this long (counted "
            "from when the page showed it); 0 turns the check off."
        ),
    )
    # Rewards (labeling/rewards.py), in settings.REWARD_CURRENCY. Each ledger entry records the
    # amount in force when it was earned; changing these never re-prices past entries.
    reward_annotation = models.DecimalField(
        _("reward per label"), max_digits=10, decimal_places=2, default=Decimal("0.20")
    )
    reward_clip = models.DecimalField(
        _("reward per extracted clip"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("1.00"),
        help_text=_("Paid to the extractor of a clip that passes screening."),
    )
    reward_rare_clip = models.DecimalField(
        _("rare-class bonus to the extractor"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("5.00"),
        help_text=_("Paid to the extractor of a clip whose final label is a rare one."),
    )
    reward_rare_vote = models.DecimalField(
        _("rare-class bonus per matching vote"),
        max_digits=10,
        decimal_places=2,
        default=Decimal("0.00"),
        help_text=_("Paid to each annotator who voted a clip's rare final label; 0 turns it off."),
    )
    rare_label_rule = models.CharField(
        _("final label for the rare-class bonus"),
        max_length=8,
        choices=[("single", _("the single label")), ("top", _("the top vote"))],
        default="single",
        help_text=_(
            "The single label needs the campaign's majority; the top vote is the most voted "
            "label when no other label has as many votes."
        ),
    )
    is_active = models.BooleanField(_("open for labelling"), default=True)
    annotators = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="annotation_campaigns", blank=True
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "pk"]
        permissions = [("export_campaign", "Can export a campaign's labels, votes and folds")]
        constraints = [
            models.CheckConstraint(
                condition=Q(annotations_per_clip__gte=1), name="campaign_annotations_per_clip_gte_1"
            ),
            # The single-label rule (pipeline.aggregation.single_labels) must never give two
            # labels: the threshold is more than half of the votes. full_clean() checks this
            # constraint too, so every form shows its message.
            models.CheckConstraint(
                condition=Q(single_label_min_votes__lte=F("annotations_per_clip"))
                & GreaterThan(F("single_label_min_votes") * 2, F("annotations_per_clip")),
                name="campaign_single_label_votes_majority",
                violation_error_message=_(
                    "Votes for a single label must be more than half of the annotations per "
                    "clip (and no more than all of them), so that two labels can never both "
                    "qualify."
                ),
            ),
            models.CheckConstraint(condition=Q(lease_minutes__gte=1), name="campaign_lease_gte_1"),
            models.CheckConstraint(
                condition=Q(clips_per_movie__gte=1), name="campaign_clips_per_movie_gte_1"
            ),
            models.CheckConstraint(
                condition=Q(clip_min_seconds__gt=0)
                & Q(clip_max_seconds__gte=F("clip_min_seconds")),
                name="campaign_clip_length_bounds",
                violation_error_message=_(
                    "The shortest clip must be longer than 0 s and no longer than the longest."
                ),
            ),
            models.CheckConstraint(
                condition=Q(clip_fps__isnull=True) | Q(clip_fps__gt=0),
                name="campaign_clip_fps_gt_0",
            ),
            models.CheckConstraint(
                condition=Q(clip_max_height__gte=16), name="campaign_clip_height_gte_16"
            ),
            models.CheckConstraint(
                condition=Q(min_face_ratio__gte=0) & Q(min_face_ratio__lte=1),
                name="campaign_min_face_ratio_0_1",
            ),
            models.CheckConstraint(
                condition=Q(min_view_seconds__gte=0), name="campaign_min_view_gte_0"
            ),
            models.CheckConstraint(
                condition=Q(reward_annotation__gte=0)
                & Q(reward_clip__gte=0)
                & Q(reward_rare_clip__gte=0)
                & Q(reward_rare_vote__gte=0),
                name="campaign_rewards_gte_0",
                violation_error_message=_("Reward amounts cannot be negative."),
            ),
            models.CheckConstraint(
                condition=Q(rare_label_rule__in=["single", "top"]),
                name="campaign_rare_label_rule_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Label(models.Model):
    """One class of a campaign's label set; DFEW's seven emotions by default."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="labels")
    code = models.PositiveSmallIntegerField(_("code"))
    name = models.SlugField(_("name"), max_length=40)
    display_name = models.CharField(_("display name"), max_length=80)
    is_rare = models.BooleanField(_("rare (extra reward)"), default=False)

    class Meta:
        ordering = ["campaign", "code"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "code"], name="label_code_unique"),
            models.UniqueConstraint(fields=["campaign", "name"], name="label_name_unique"),
            models.CheckConstraint(condition=Q(code__gte=1), name="label_code_gte_1"),
        ]

    def __str__(self) -> str:
        return f"{self.code} {self.name}"


class AnnotatorProfile(models.Model):
    """Who an annotator is: DFEW chose annotators of one cultural background."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="annotator_profile"
    )
    region = models.CharField(_("region"), max_length=100, blank=True)
    cultural_background = models.CharField(_("cultural background"), max_length=100, blank=True)
    languages = models.CharField(
        _("languages"), max_length=200, blank=True, help_text=_("Comma-separated, e.g. zh, en")
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"profile of {self.user}"


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


class JobStatus(models.TextChoices):
    """The lifecycle of a background job row (agreement reports, exports)."""

    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class MediaStatus(models.TextChoices):
    """A clip's extraction job (labeling/movies.py); empty for clips that came with no job
    (imported votes, rows made before the media pipeline)."""

    NONE = "", _("No extraction")
    PENDING = "pending", _("Pending")
    EXTRACTING = "extracting", _("Extracting")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


class ClipQuerySet(models.QuerySet):
    def open_for_annotation(self) -> ClipQuerySet:
        """Clips annotators may be offered: being annotated, in an open campaign. The hot
        path's SQL (`labeling.sql.candidate_clip`) is `with_free_slot` for one annotator."""
        return self.filter(status=Clip.Status.ANNOTATING, campaign__is_active=True)

    def with_free_slot(self) -> ClipQuerySet:
        """Open clips with a slot no assignment holds: what `next` can still hand out."""
        return self.open_for_annotation().filter(slots_held__lt=F("campaign__annotations_per_clip"))

    def awaiting_screening(self) -> ClipQuerySet:
        return self.filter(status=Clip.Status.SCREENING)


class Clip(models.Model):
    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposed")
        READY = "ready", _("Media ready")
        SCREENING = "screening", _("Screening")
        ANNOTATING = "annotating", _("Annotating")
        COMPLETE = "complete", _("Complete")
        REJECTED = "rejected", _("Rejected")
        FAILED = "failed", _("Failed")

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
    # `labeling.movies.claimant`). The same task delivered again while its process is gone
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
    # in order (faces/<clip id>.jpg; pipeline.faces.read_face_frames reads it back).
    faces = models.CharField(max_length=200, blank=True)
    face_ratio = models.FloatField(null=True, blank=True)
    few_faces = models.BooleanField(default=False, help_text=_("Flagged for the reviewer."))
    duration_bucket = models.CharField(max_length=8, blank=True)
    # How many of the clip's assignments hold a slot (leased or submitted): recounted from
    # the assignment rows, under the clip's lock, by every service that changes them
    # (`labeling.services.clip_slots_recount`). It lets `next` find the open clip nearest
    # completion through an index instead of counting every clip's assignments.
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
        ]

    def __str__(self) -> str:
        return f"clip {self.number:05d}"

    @property
    def duration_s(self) -> float | None:
        return None if self.end_s is None else self.end_s - self.start_s


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


# Assignment statuses that hold one of a clip's slots. A leased row holds its slot until it is
# marked expired, released or submitted, even after its lease has lapsed: a lapsed lease is
# freed by the beat sweep or by the next `next` on its clip (`AssignmentQuerySet.lapsed`).
LIVE_ASSIGNMENT_STATUSES = ("leased", "submitted")


class AssignmentQuerySet(models.QuerySet):
    def holding_slots(self) -> AssignmentQuerySet:
        return self.filter(status__in=LIVE_ASSIGNMENT_STATUSES)

    def live_leases(self, now) -> AssignmentQuerySet:
        """Leases the annotator may still submit on (see `Assignment.is_live_lease`)."""
        return self.filter(status="leased", expires_at__gt=now)

    def lapsed(self, now) -> AssignmentQuerySet:
        """Leases whose time is up but whose slot is still held: to be marked expired."""
        return self.filter(status="leased", expires_at__lte=now)


class Assignment(models.Model):
    """A lease of one slot of a clip to one annotator.

    A clip with ``annotations_per_clip = n`` has slots 1..n. A slot is held by at most one live
    assignment (leased or submitted); the allocator only hands out free slots up to n while
    holding the clip's row lock, so an (n+1)th label can never be asked for.
    """

    class Status(models.TextChoices):
        LEASED = "leased", _("Leased")
        SUBMITTED = "submitted", _("Submitted")
        RELEASED = "released", _("Released")
        EXPIRED = "expired", _("Expired")
        # Its annotation was invalidated by staff: the slot is free again, but the annotator
        # has labelled the clip and is never offered it again.
        INVALIDATED = "invalidated", _("Invalidated")

    clip = models.ForeignKey(Clip, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    slot = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.LEASED)
    leased_at = models.DateTimeField(default=timezone.now)
    # When the page first showed the clip (a prefetched lease's clock starts then).
    shown_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["leased_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "slot"],
                condition=Q(status__in=LIVE_ASSIGNMENT_STATUSES),
                name="assignment_one_live_per_slot",
            ),
            models.UniqueConstraint(
                fields=["clip", "annotator"],
                condition=Q(status__in=LIVE_ASSIGNMENT_STATUSES),
                name="assignment_one_live_per_annotator",
            ),
            models.CheckConstraint(condition=Q(slot__gte=1), name="assignment_slot_gte_1"),
            # What an annotation's composite foreign key points at (migration 0007): an
            # annotation carries its own assignment's clip, slot and annotator.
            models.UniqueConstraint(
                fields=["id", "clip", "slot", "annotator"], name="assignment_identity"
            ),
        ]
        indexes = [
            models.Index(fields=["clip", "status"], name="assignment_clip_status"),
            models.Index(fields=["clip", "annotator"], name="assignment_clip_annotator"),
            models.Index(fields=["annotator", "status"], name="assignment_annotator_status"),
            models.Index(fields=["status", "expires_at"], name="assignment_status_expiry"),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} ({self.status})"

    def is_live_lease(self, now=None) -> bool:
        """The one definition of a live lease, for a row in hand (`AssignmentQuerySet.live_leases`
        is the same for a query)."""
        return self.status == self.Status.LEASED and self.expires_at > (now or timezone.now())

    def visible_since(self):
        """When the annotator could first see the clip: when the page showed it, else when
        it was leased (API clients that never report showing it)."""
        return self.shown_at or self.leased_at


# Assignment statuses that mean "this annotator has this clip": they are never offered it again.
HELD_OR_DONE_STATUSES = (*LIVE_ASSIGNMENT_STATUSES, "invalidated")


class AnnotationQuerySet(models.QuerySet):
    def valid(self) -> AnnotationQuerySet:
        """Annotations that count: not invalidated by staff."""
        return self.filter(invalidated_at__isnull=True)


class Annotation(models.Model):
    """One annotator's label for one clip. Never edited, never deleted by the app.

    Staff may invalidate one (after a quality review): it is kept, marked, no longer counts, and
    its slot opens for another annotator.
    """

    assignment = models.OneToOneField(
        Assignment, on_delete=models.PROTECT, related_name="annotation"
    )
    clip = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="annotations")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="annotations"
    )
    label = models.ForeignKey(Label, on_delete=models.PROTECT, related_name="annotations")
    slot = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    invalidated_at = models.DateTimeField(null=True, blank=True)
    invalidated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    invalidation_reason = models.TextField(blank=True, default="", db_default="")

    objects = AnnotationQuerySet.as_manager()

    class Meta:
        ordering = ["clip", "slot"]
        constraints = [
            models.UniqueConstraint(
                fields=["clip", "annotator"], name="annotation_one_per_annotator_per_clip"
            ),
            models.UniqueConstraint(
                fields=["clip", "slot"],
                condition=Q(invalidated_at__isnull=True),
                name="annotation_one_valid_per_slot",
            ),
            models.CheckConstraint(
                condition=Q(invalidated_at__isnull=True) | Q(invalidated_by__isnull=False),
                name="annotation_invalidated_by_someone",
            ),
            models.CheckConstraint(condition=Q(slot__gte=1), name="annotation_slot_gte_1"),
        ]
        indexes = [
            # The few invalidated labels, found without reading the valid ones.
            models.Index(
                fields=["clip"],
                condition=Q(invalidated_at__isnull=False),
                name="annotation_invalidated",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.annotator} → {self.label.name} on {self.clip}"


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


class AnnotatorTally(models.Model):
    """How many labels an annotator has submitted in a campaign ("N of M" on the page), kept
    in the same transaction as each annotation so `next` never counts an annotator's
    history. `labeling.sql.campaign_counts_rebuild` recomputes it from the annotations."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+"
    )
    submitted = models.PositiveIntegerField(default=0)
    last_submitted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["campaign", "annotator"], name="tally_one_per_member"),
        ]

    def __str__(self) -> str:
        return f"{self.annotator_id} submitted {self.submitted} in {self.campaign_id}"


def cents_to_decimal(cents: int | None) -> Decimal:
    """An amount kept in hundredths as a Decimal with two places (None, an empty sum, is 0)."""
    return (Decimal(cents or 0) / 100).quantize(Decimal("0.01"))


def decimal_to_cents(amount: Decimal) -> int:
    """A Decimal amount of at most two places in hundredths; more places are refused."""
    cents = Decimal(amount) * 100
    if cents != cents.to_integral_value():
        raise ValueError(f"{amount} has more than two decimal places")
    return int(cents)


class RewardKind(models.TextChoices):
    ANNOTATION = "annotation", _("Label")
    CLIP = "clip", _("Extracted clip")
    RARE_CLIP = "rare_clip", _("Rare clip found")
    RARE_VOTE = "rare_vote", _("Rare label voted")


class Payout(models.Model):
    """One payment run of a campaign: the entries it paid point at it (labeling/rewards.py)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="payouts")
    currency = models.CharField(max_length=3)
    total_cents = models.BigIntegerField()
    people = models.PositiveIntegerField()
    entries = models.PositiveIntegerField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(total_cents__gt=0), name="payout_total_gt_0"),
        ]

    def __str__(self) -> str:
        return f"payout {self.pk}: {self.total} {self.currency}"

    @property
    def total(self) -> Decimal:
        return cents_to_decimal(self.total_cents)


class RewardEntry(models.Model):
    """One line of the rewards ledger. Never edited and never deleted: a reward taken back is
    a reversal entry (``reverses``, a negative amount), and the earning it cancels is marked
    ``reversed_at`` in the same transaction. An entry's person, kind, clip and amount never
    change; ``payout`` is set once, when it is paid.

    The constraints are the ledger's rules: at most one live (not reversed) earning per
    person, kind and clip, so nothing is paid twice whoever aggregates when; at most one
    reversal per earning; earnings positive, reversals negative.
    """

    # The foreign keys' own indexes are left out where a composite index below starts with the
    # same column: every index is rewritten for each entry a payout marks (163,720 at DFEW's
    # size), so the ledger keeps only the indexes its queries use.
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    person = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="reward_entries",
        db_index=False,
    )
    kind = models.CharField(max_length=16, choices=RewardKind.choices)
    clip = models.ForeignKey(Clip, on_delete=models.PROTECT, related_name="+", db_index=False)
    # Annotations are never deleted (their clips PROTECT them), so no index serves a delete.
    annotation = models.ForeignKey(
        Annotation,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,
    )
    # Hundredths of the currency unit (fen for CNY): an exact integer on every database, so
    # the database's sums are exact too (SQLite has no decimal type; its NUMERIC is a float).
    # Python sees Decimal through `amount`.
    amount_cents = models.BigIntegerField()
    reverses = models.OneToOneField(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="reversal"
    )
    reversed_at = models.DateTimeField(null=True, blank=True)
    reason = models.CharField(max_length=200, blank=True)
    payout = models.ForeignKey(
        Payout, on_delete=models.PROTECT, null=True, blank=True, related_name="paid_entries"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-pk"]
        verbose_name_plural = "reward entries"
        constraints = [
            models.UniqueConstraint(
                fields=["person", "kind", "clip"],
                condition=Q(reverses__isnull=True, reversed_at__isnull=True),
                name="reward_one_live_earning",
            ),
            models.CheckConstraint(
                condition=(Q(reverses__isnull=True) & Q(amount_cents__gt=0))
                | (Q(reverses__isnull=False) & Q(amount_cents__lt=0) & Q(reversed_at__isnull=True)),
                name="reward_sign_matches_kind",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=RewardKind.values), name="reward_kind_valid"
            ),
        ]
        indexes = [
            models.Index(fields=["person", "campaign", "payout"], name="reward_person_unpaid"),
            models.Index(fields=["campaign", "payout", "person"], name="reward_campaign_unpaid"),
            models.Index(fields=["clip", "kind"], name="reward_clip_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.amount} to {self.person_id} (clip {self.clip_id})"

    @property
    def amount(self) -> Decimal:
        return cents_to_decimal(self.amount_cents)


class RewardHold(models.Model):
    """Staff holding a person's unpaid rewards in a campaign pending review: held entries stay
    in the ledger and are left out of payouts until the hold is released."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="+")
    person = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    released_at = models.DateTimeField(null=True, blank=True)
    released_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "person"],
                condition=Q(released_at__isnull=True),
                name="rewardhold_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"hold on {self.person_id} in {self.campaign_id}"
