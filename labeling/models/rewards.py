"""The rewards ledger: entries in hundredths, holds, payouts."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from labeling.models.campaigns import Campaign
from labeling.models.clips import Clip
from labeling.models.loop import Annotation
from labeling.rewards import rules
from labeling.rewards.rules import cents_to_decimal

# An earning that stands: not a reversal, not reversed (at most one per person, kind and clip).
LIVE = Q(reverses__isnull=True, reversed_at__isnull=True)
UNPAID = Q(payout__isnull=True)
PAID = Q(payout__isnull=False)
# A hold not released (at most one per campaign and person).
ACTIVE_HOLD = Q(released_at__isnull=True)


def payable(held: Q) -> Q:
    """The one payable rule, as a filter on the ledger: an entry is payable while it is unpaid
    and no active hold covers it (``held``, from `RewardHoldQuerySet.covering`). A payout
    pays each person whose payable net is above zero; the others wait."""
    return UNPAID & ~held


def covered_by(holds: Iterable[tuple[int, int]]) -> Q:
    """The ledger entries that holds on these (campaign, person) pairs cover."""
    covered = Q(pk__in=[])  # none
    for campaign_id, person_id in holds:
        covered |= Q(campaign_id=campaign_id, person_id=person_id)
    return covered


class RewardKind(models.TextChoices):
    ANNOTATION = rules.ANNOTATION, _("Label")
    CLIP = rules.CLIP, _("Extracted clip")
    RARE_CLIP = rules.RARE_CLIP, _("Rare clip found")
    RARE_VOTE = rules.RARE_VOTE, _("Rare label voted")


class RewardEntryQuerySet(models.QuerySet):
    def live(self) -> RewardEntryQuerySet:
        """Earnings that stand (neither reversals nor reversed)."""
        return self.filter(LIVE)

    def unpaid(self) -> RewardEntryQuerySet:
        return self.filter(UNPAID)

    def payable(self, held: Q) -> RewardEntryQuerySet:
        """The payable entries (`payable`), ``held`` being what the active holds cover."""
        return self.filter(payable(held))


class RewardHoldQuerySet(models.QuerySet):
    def active(self) -> RewardHoldQuerySet:
        return self.filter(ACTIVE_HOLD)

    def covering(self) -> Q:
        """The ledger entries these holds cover, as a filter on `RewardEntry`. The holds are
        read now (a handful at most), so sums test membership instead of running a subquery
        per entry."""
        return covered_by(self.values_list("campaign_id", "person_id"))


class Payout(models.Model):
    """One payment run of a campaign: the entries it paid point at it (rewards/payouts.py)."""

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

    objects = RewardEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-pk"]
        verbose_name_plural = "reward entries"
        constraints = [
            models.UniqueConstraint(
                fields=["person", "kind", "clip"],
                condition=LIVE,
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

    objects = RewardHoldQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "person"],
                condition=ACTIVE_HOLD,
                name="rewardhold_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"hold on {self.person_id} in {self.campaign_id}"
