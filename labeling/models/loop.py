"""The labelling loop: assignments (leases on a clip's slots), annotations, tallies."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from labeling.models.campaigns import Campaign, Label
from labeling.models.clips import Clip

# Assignment statuses that hold one of a clip's slots. A leased row holds its slot until it is
# marked expired, released or submitted, even after its lease has lapsed: a lapsed lease is
# freed by the beat sweep or by the next `next` on its clip (`AssignmentQuerySet.lapsed`).
LIVE_ASSIGNMENT_STATUSES = ("leased", "submitted")

# What refuses a status written anywhere but `labeling.loop.slots`.
_STATUS_WRITES = (
    "An assignment's status changes only through labeling.loop.slots.assignments_set_status "
    "(or assignment_set_status), which also recounts the clip's held slots (Clip.slots_held)."
)


class AssignmentQuerySet(models.QuerySet):
    def update(self, **kwargs) -> int:
        """As `QuerySet.update`, but refuses a ``status``: see `_STATUS_WRITES`."""
        if "status" in kwargs:
            raise TypeError(_STATUS_WRITES)
        return super().update(**kwargs)

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

    Its status changes only through `labeling.loop.slots` (the queryset's ``update`` and
    ``save`` refuse it elsewhere), so the clip's ``slots_held`` is recounted with every change.
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

    def save(self, *args, **kwargs) -> None:
        """Creates a row, or saves the ``update_fields`` of one, never its ``status``: a status
        changes through `labeling.loop.slots`, which recounts the clip's held slots."""
        fields = kwargs.get("update_fields")
        if not self._state.adding and (fields is None or "status" in fields):
            raise TypeError(_STATUS_WRITES)
        super().save(*args, **kwargs)

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


class AnnotatorTally(models.Model):
    """How many labels an annotator has submitted in a campaign ("N of M" on the page), kept
    in the same transaction as each annotation so `next` never counts an annotator's
    history. `labeling.loop.sql.campaign_counts_rebuild` recomputes it from the annotations."""

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
