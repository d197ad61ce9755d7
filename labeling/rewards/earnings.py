"""What people have earned: one person's earnings, per-person totals, extractors' yield."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from django.db.models import Count, Q, Sum
from django.utils import timezone

from labeling.models import Clip, RewardEntry, RewardHold, RewardKind
from labeling.models.rewards import LIVE, PAID, UNPAID, covered_by, payable
from labeling.rewards.ledger import currency
from labeling.rewards.rules import PASSED, cents_to_decimal


@dataclass(frozen=True)
class Earnings:
    currency: str
    today: Decimal
    total: Decimal
    pending: Decimal
    paid: Decimal
    held: Decimal

    def as_json(self) -> dict[str, str]:
        """Amounts as decimal strings (never floats)."""
        return {
            "currency": self.currency,
            **{
                name: str(getattr(self, name))
                for name in ("today", "total", "pending", "paid", "held")
            },
        }


def earnings_of(user, *, campaign_id: int | None = None) -> Earnings:
    """One person's earnings, summed by the database: today (local day), total, pending
    (unpaid and not held), paid, held. total = pending + paid + held."""
    entries = RewardEntry.objects.filter(person_id=user.pk)
    if campaign_id is not None:
        entries = entries.filter(campaign_id=campaign_id)
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    held = RewardHold.objects.active().filter(person_id=user.pk).covering()
    sums = entries.aggregate(
        today=Sum("amount_cents", filter=Q(created_at__gte=midnight)),
        total=Sum("amount_cents"),
        paid=Sum("amount_cents", filter=PAID),
        held=Sum("amount_cents", filter=UNPAID & held),
        pending=Sum("amount_cents", filter=payable(held)),
    )
    return Earnings(currency(), **{name: cents_to_decimal(v) for name, v in sums.items()})


@dataclass(frozen=True)
class PersonTotals:
    person_id: int
    username: str
    pending: Decimal
    held: Decimal
    paid: Decimal
    entries: int
    on_hold: bool
    hold_reason: str


def totals_by_person(campaign_id: int) -> list[PersonTotals]:
    """Every person with ledger entries in the campaign: unpaid (pending, held) and paid."""
    holds = dict(
        RewardHold.objects.active()
        .filter(campaign_id=campaign_id)
        .values_list("person_id", "reason")
    )
    held = covered_by((campaign_id, person) for person in holds)
    rows = (
        RewardEntry.objects.filter(campaign_id=campaign_id)
        .values("person_id", "person__username")
        .annotate(
            pending=Sum("amount_cents", filter=payable(held)),
            held=Sum("amount_cents", filter=UNPAID & held),
            paid=Sum("amount_cents", filter=PAID),
            entries=Count("pk"),
        )
        .order_by("person__username")
    )
    return [
        PersonTotals(
            person_id=row["person_id"],
            username=row["person__username"],
            pending=cents_to_decimal(row["pending"]),
            held=cents_to_decimal(row["held"]),
            paid=cents_to_decimal(row["paid"]),
            entries=row["entries"],
            on_hold=row["person_id"] in holds,
            hold_reason=holds.get(row["person_id"], ""),
        )
        for row in rows
    ]


def payable_total(people: Iterable[PersonTotals]) -> Decimal:
    """What a payout would pay now: the pending (payable) net of each person whose net is
    above zero, as `payouts.payout_create` pays it."""
    return sum((p.pending for p in people if p.pending > 0), start=Decimal(0))


@dataclass(frozen=True)
class ExtractorYield:
    username: str
    clips: int
    passed: int
    rare_clips: int
    rare_bonus: Decimal
    rare_bonus_paid: Decimal


def extractor_yield(campaign_id: int) -> list[ExtractorYield]:
    """Per extractor: clips proposed, clips that passed screening, clips whose final label is
    rare (a live rare-clip bonus), and the rare bonus earned (net) and paid."""
    clips = {
        row["proposed_by__username"]: row
        for row in Clip.objects.filter(campaign_id=campaign_id, proposed_by__isnull=False)
        .values("proposed_by__username")
        .annotate(clips=Count("pk"), passed=Count("pk", filter=Q(status__in=PASSED)))
        .order_by()
    }
    bonus = {
        row["person__username"]: row
        for row in RewardEntry.objects.filter(campaign_id=campaign_id, kind=RewardKind.RARE_CLIP)
        .values("person__username")
        .annotate(
            rare_clips=Count("pk", filter=LIVE),
            earned=Sum("amount_cents"),
            paid=Sum("amount_cents", filter=PAID),
        )
        .order_by()
    }
    return sorted(
        (
            ExtractorYield(
                username=name,
                clips=clips.get(name, {}).get("clips", 0),
                passed=clips.get(name, {}).get("passed", 0),
                rare_clips=bonus.get(name, {}).get("rare_clips", 0),
                rare_bonus=cents_to_decimal(bonus.get(name, {}).get("earned")),
                rare_bonus_paid=cents_to_decimal(bonus.get(name, {}).get("paid")),
            )
            for name in clips.keys() | bonus.keys()
        ),
        key=lambda y: (-y.rare_clips, y.username),
    )


@dataclass(frozen=True)
class SourceYield:
    """One extractor's clips and rare clips, from a model's suggestion or marked by hand."""

    username: str
    suggested_clips: int
    suggested_rare: int
    hand_clips: int
    hand_rare: int

    @staticmethod
    def _share(rare: int, clips: int) -> float | None:
        return rare / clips if clips else None

    @property
    def suggested_yield(self) -> float | None:
        return self._share(self.suggested_rare, self.suggested_clips)

    @property
    def hand_yield(self) -> float | None:
        return self._share(self.hand_rare, self.hand_clips)


def extractor_yield_by_source(campaign_id: int) -> list[SourceYield]:
    """`extractor_yield`'s clips and rare clips (the same rule: a live rare-clip bonus) per
    extractor, split by where the clip came from: an accepted suggestion of a model
    (``Suggestion.clip``) or marked by hand. Yield is rare clips over clips proposed."""
    suggested = Q(suggestion__isnull=False)
    clips = {
        row["proposed_by__username"]: row
        for row in Clip.objects.filter(campaign_id=campaign_id, proposed_by__isnull=False)
        .values("proposed_by__username")
        .annotate(suggested=Count("pk", filter=suggested), hand=Count("pk", filter=~suggested))
        .order_by()
    }
    from_suggestion = Q(clip__suggestion__isnull=False)
    rare = {
        row["person__username"]: row
        for row in RewardEntry.objects.filter(
            LIVE, campaign_id=campaign_id, kind=RewardKind.RARE_CLIP
        )
        .values("person__username")
        .annotate(
            suggested=Count("pk", filter=from_suggestion), hand=Count("pk", filter=~from_suggestion)
        )
        .order_by()
    }
    return sorted(
        (
            SourceYield(
                username=name,
                suggested_clips=clips.get(name, {}).get("suggested", 0),
                suggested_rare=rare.get(name, {}).get("suggested", 0),
                hand_clips=clips.get(name, {}).get("hand", 0),
                hand_rare=rare.get(name, {}).get("hand", 0),
            )
            for name in clips.keys() | rare.keys()
        ),
        key=lambda y: y.username,
    )
