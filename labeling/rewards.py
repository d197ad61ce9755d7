"""The rewards ledger: who earned what, for which clip, and whether it was paid.

DFEW paid an additional reward for rare expression samples (disgust and fear) to get enough of
them. The rules, each written here once:

- a label earns its annotator the campaign's ``reward_annotation`` when the server accepts it,
  in the submit's own transaction (``labeling.sql.reward_earn_label``); an invalidated label's
  reward is reversed;
- a clip that passes screening (open for labelling, or complete) earns its extractor
  ``reward_clip``; a rejected clip earns nothing, and what it had earned is reversed;
- a clip whose final label is rare earns its extractor ``reward_rare_clip``, and each annotator
  who voted that label ``reward_rare_vote`` on top of their label reward (0 turns it off). The
  final label is the single label or the top vote (``Campaign.rare_label_rule``), decided when
  the clip is aggregated; a re-aggregation that changes it reverses the bonuses and pays the new
  ones.

``clips_sync`` brings the ledger in line with the clips' current state: it is called under the
clips' locks by every service that changes what a clip has earned (screening, aggregation,
invalidation, the extraction of a clip that needs no screening). The database guards the rest:
at most one live earning per person, kind and clip (so a repeated or concurrent aggregation
pays once), one reversal per earning, and a payout marks only unpaid entries.

Amounts are kept in hundredths (``RewardEntry.amount_cents``) and summed by the database; Python
sees ``Decimal``. An entry records the amount in force when it was earned.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from labeling.errors import ApplicationError, Conflict, Forbidden, NotFound
from labeling.models import (
    Annotation,
    Campaign,
    Clip,
    ClipLabel,
    Label,
    Payout,
    RewardEntry,
    RewardHold,
    RewardKind,
    cents_to_decimal,
    decimal_to_cents,
)
from pipeline import csv_safe

logger = logging.getLogger(__name__)
User = get_user_model()

# A clip has passed screening while it is open for labelling or complete; a clip reported back
# to screening keeps what it earned until a reviewer rejects it.
PASSED = (Clip.Status.ANNOTATING, Clip.Status.COMPLETE)
WITHDRAWN = (Clip.Status.REJECTED, Clip.Status.FAILED)


def currency() -> str:
    return settings.REWARD_CURRENCY


# --- what a clip has earned ---------------------------------------------------------------


def final_label_id(result: ClipLabel, rule: str, label_ids: dict[str, int]) -> int | None:
    """The clip's final label under the campaign's rule: the single label, or the most voted
    label when no other has as many votes (a tie names none)."""
    if rule == "single":
        return result.single_label_id
    ranked = sorted(result.votes.items(), key=lambda item: item[1], reverse=True)
    if not ranked or ranked[0][1] == 0 or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
        return None
    return label_ids.get(ranked[0][0])


class _Live(NamedTuple):
    """A live earning as `clips_sync` reads it (tuples: thousands per aggregation batch)."""

    pk: int
    campaign_id: int
    person_id: int
    kind: str
    clip_id: int
    annotation_id: int | None
    amount_cents: int


@dataclass(frozen=True)
class SyncResult:
    earned: int
    reversed: int


def clips_sync(clip_ids: Iterable[int], *, now: datetime | None = None) -> SyncResult:
    """Adds the earnings and reversals that make the ledger match the clips' current state.

    Runs inside the caller's transaction, which holds the clips' locks (the house order: clip
    rows first), so two calls for one clip never interleave; calling it again changes nothing.
    Label rewards are earned at submit and only reversed here; extraction rewards follow the
    clip's screening; rare bonuses follow the final label of the clip's stored result (a clip
    with no result, e.g. re-opened by an invalidation, keeps its bonuses until it has one).
    """
    ids = sorted(set(clip_ids))
    if not ids:
        return SyncResult(0, 0)
    if not connection.in_atomic_block:
        raise RuntimeError("clips_sync runs inside the transaction that locked the clips")
    now = now or timezone.now()
    clips = list(
        Clip.objects.filter(pk__in=ids).values_list("pk", "campaign_id", "status", "proposed_by_id")
    )
    campaigns = {
        c.pk: c
        for c in Campaign.objects.filter(pk__in={campaign for _, campaign, _, _ in clips}).only(
            "pk", "reward_clip", "reward_rare_clip", "reward_rare_vote", "rare_label_rule",
        )
    }  # fmt: skip
    labels = {}  # campaign id -> (name -> id, id -> label)
    for label in Label.objects.filter(campaign_id__in=campaigns).only(
        "pk", "campaign_id", "name", "is_rare"
    ):
        names, by_id = labels.setdefault(label.campaign_id, ({}, {}))
        names[label.name] = label.pk
        by_id[label.pk] = label
    # The stored results' final labels (votes are read only where a campaign ranks them).
    top_rule = [pk for pk, c in campaigns.items() if c.rare_label_rule == "top"]
    results = {
        clip_id: ClipLabel(clip_id=clip_id, single_label_id=single, votes={})
        for clip_id, single in ClipLabel.objects.filter(clip_id__in=ids).values_list(
            "clip_id", "single_label_id"
        )
    }
    if top_rule:
        for clip_id, clip_votes in ClipLabel.objects.filter(
            clip_id__in=ids, clip__campaign_id__in=top_rule
        ).values_list("clip_id", "votes"):
            results[clip_id].votes = clip_votes
    votes: dict[int, list[tuple[int, int, int]]] = {}  # clip -> [(annotation, annotator, label)]
    for pk, clip_id, annotator_id, label_id in (
        Annotation.objects.valid()
        .filter(clip_id__in=ids)
        .values_list("pk", "clip_id", "annotator_id", "label_id")
    ):
        votes.setdefault(clip_id, []).append((pk, annotator_id, label_id))
    live = [
        _Live(*row)
        for row in RewardEntry.objects.filter(
            clip_id__in=ids, reverses__isnull=True, reversed_at__isnull=True
        ).values_list(*_Live._fields)
    ]
    live_by_clip: dict[int, list[_Live]] = {}
    for e in live:
        live_by_clip.setdefault(e.clip_id, []).append(e)
    live_keys = {(e.person_id, e.kind, e.clip_id) for e in live}
    label_earners = {
        e.annotation_id for e in live if e.kind == RewardKind.ANNOTATION and e.annotation_id
    }

    wanted: dict[tuple[int, str, int], int | None] = {}  # key -> annotation id
    keep: set[tuple[int, str, int]] = set()  # rare bonuses left as they are (no result yet)
    why_not: dict[int, str] = {}
    new: list[RewardEntry] = []
    for clip_id, campaign_id, status, extractor in clips:
        campaign = campaigns[campaign_id]
        names, by_id = labels.get(campaign_id, ({}, {}))
        clip_votes = votes.get(clip_id, [])
        for annotation_id, annotator_id, _label in clip_votes:
            wanted[(annotator_id, RewardKind.ANNOTATION, clip_id)] = annotation_id
        if status in WITHDRAWN:
            why_not[clip_id] = f"clip {status}"
            continue
        if extractor and status in PASSED:
            wanted[(extractor, RewardKind.CLIP, clip_id)] = None
        elif extractor:
            keep.add((extractor, RewardKind.CLIP, clip_id))
        result = results.get(clip_id)
        if result is None:
            valid = {annotation_id for annotation_id, _, _ in clip_votes}
            keep.update(
                (e.person_id, e.kind, e.clip_id)
                for e in live_by_clip.get(clip_id, ())
                if (
                    e.kind == RewardKind.RARE_CLIP
                    or (e.kind == RewardKind.RARE_VOTE and e.annotation_id in valid)
                )
            )
            continue
        final = final_label_id(result, campaign.rare_label_rule, names)
        final_label = by_id.get(final)
        if final_label is None or not final_label.is_rare:
            why_not[clip_id] = (
                f"final label is now {final_label.name}" if final_label else "no final label now"
            )
            continue
        if extractor:
            wanted[(extractor, RewardKind.RARE_CLIP, clip_id)] = None
        for annotation_id, annotator_id, label_id in clip_votes:
            if label_id == final and annotation_id in label_earners:
                wanted[(annotator_id, RewardKind.RARE_VOTE, clip_id)] = annotation_id

    rates = {
        RewardKind.CLIP: "reward_clip",
        RewardKind.RARE_CLIP: "reward_rare_clip",
        RewardKind.RARE_VOTE: "reward_rare_vote",
    }
    campaign_of = {clip_id: campaign_id for clip_id, campaign_id, _, _ in clips}
    for key, annotation_id in wanted.items():
        person_id, kind, clip_id = key
        if key in live_keys or kind == RewardKind.ANNOTATION:
            continue  # label rewards are earned at submit, never here
        cents = decimal_to_cents(getattr(campaigns[campaign_of[clip_id]], rates[kind]))
        if cents > 0:
            new.append(
                RewardEntry(
                    campaign_id=campaign_of[clip_id],
                    person_id=person_id,
                    kind=kind,
                    clip_id=clip_id,
                    annotation_id=annotation_id,
                    amount_cents=cents,
                    created_at=now,
                )
            )
    standing = wanted.keys() | keep
    undo = [e for e in live if (e.person_id, e.kind, e.clip_id) not in standing]
    reversals = [
        RewardEntry(
            campaign_id=e.campaign_id,
            person_id=e.person_id,
            kind=e.kind,
            clip_id=e.clip_id,
            annotation_id=e.annotation_id,
            amount_cents=-e.amount_cents,
            reverses_id=e.pk,
            reason=_reversal_reason(e, why_not.get(e.clip_id)),
            created_at=now,
        )
        for e in undo
    ]
    if undo:
        marked = RewardEntry.objects.filter(
            pk__in=[e.pk for e in undo], reversed_at__isnull=True
        ).update(reversed_at=now)
        if marked != len(undo):  # the clip locks make this impossible; never pay on a guess
            raise RuntimeError("a reward entry changed under the clip's lock")
    RewardEntry.objects.bulk_create(reversals + new, batch_size=1000)
    if new or reversals:
        logger.info("rewards: %d earned, %d reversed on %d clips", len(new), len(undo), len(ids))
    return SyncResult(len(new), len(reversals))


def _reversal_reason(entry: _Live, why: str | None) -> str:
    if entry.kind in (RewardKind.ANNOTATION, RewardKind.RARE_VOTE) and why is None:
        return "label invalidated"
    return why or "no longer earned"


# --- what a person has earned -----------------------------------------------------------------


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


def _active_holds(**filters) -> list[tuple[int, int]]:
    """(campaign, person) of the active holds matching ``filters``: a handful at most, so the
    sums below test membership instead of running a subquery per entry."""
    return list(
        RewardHold.objects.filter(released_at__isnull=True, **filters).values_list(
            "campaign_id", "person_id"
        )
    )


def earnings_of(user, *, campaign_id: int | None = None) -> Earnings:
    """One person's earnings, summed by the database: today (local day), total, pending
    (unpaid and not held), paid, held. total = pending + paid + held."""
    entries = RewardEntry.objects.filter(person_id=user.pk)
    if campaign_id is not None:
        entries = entries.filter(campaign_id=campaign_id)
    midnight = timezone.make_aware(datetime.combine(timezone.localdate(), time.min))
    unpaid = Q(payout__isnull=True)
    held = Q(campaign_id__in=[campaign for campaign, _ in _active_holds(person_id=user.pk)])
    sums = entries.aggregate(
        today=Sum("amount_cents", filter=Q(created_at__gte=midnight)),
        total=Sum("amount_cents"),
        paid=Sum("amount_cents", filter=Q(payout__isnull=False)),
        held=Sum("amount_cents", filter=unpaid & held),
        pending=Sum("amount_cents", filter=unpaid & ~held),
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
        RewardHold.objects.filter(campaign_id=campaign_id, released_at__isnull=True).values_list(
            "person_id", "reason"
        )
    )
    rows = (
        RewardEntry.objects.filter(campaign_id=campaign_id)
        .values("person_id", "person__username")
        .annotate(
            unpaid=Sum("amount_cents", filter=Q(payout__isnull=True)),
            paid=Sum("amount_cents", filter=Q(payout__isnull=False)),
            entries=Count("pk"),
        )
        .order_by("person__username")
    )
    return [
        PersonTotals(
            person_id=row["person_id"],
            username=row["person__username"],
            pending=cents_to_decimal(0 if row["person_id"] in holds else row["unpaid"]),
            held=cents_to_decimal(row["unpaid"] if row["person_id"] in holds else 0),
            paid=cents_to_decimal(row["paid"]),
            entries=row["entries"],
            on_hold=row["person_id"] in holds,
            hold_reason=holds.get(row["person_id"], ""),
        )
        for row in rows
    ]


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
            rare_clips=Count("pk", filter=Q(reverses__isnull=True, reversed_at__isnull=True)),
            earned=Sum("amount_cents"),
            paid=Sum("amount_cents", filter=Q(payout__isnull=False)),
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


# --- holds and payouts ------------------------------------------------------------------------


def _staff_or_command(staff) -> None:
    if staff is not None and not getattr(staff, "is_staff", False):
        raise Forbidden("Only staff can hold rewards or pay them out.")


def _person(username: str):
    try:
        return User.objects.get(username=username)
    except User.DoesNotExist:
        raise NotFound(f"No user {username!r}.") from None


def reward_hold(*, staff, campaign_id: int, username: str, reason: str) -> RewardHold:
    """Holds a person's unpaid rewards in the campaign: they stay in the ledger, out of payouts,
    until released. One active hold per person and campaign (a database constraint)."""
    _staff_or_command(staff)
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError("Say why the rewards are held (the person's record keeps it).")
    person = _person(username)
    with transaction.atomic():
        if Campaign.objects.select_for_update().filter(pk=campaign_id).first() is None:
            raise NotFound(f"Campaign {campaign_id} not found.")
        if RewardHold.objects.filter(
            campaign_id=campaign_id, person=person, released_at__isnull=True
        ).exists():
            raise Conflict(f"{username}'s rewards are already held in this campaign.")
        return RewardHold.objects.create(
            campaign_id=campaign_id, person=person, reason=reason[:500], created_by=staff
        )


def reward_hold_release(*, staff, campaign_id: int, username: str) -> RewardHold:
    """Ends the active hold: the held entries are pending again and the next payout pays them."""
    _staff_or_command(staff)
    person = _person(username)
    with transaction.atomic():
        hold = (
            RewardHold.objects.select_for_update()
            .filter(campaign_id=campaign_id, person=person, released_at__isnull=True)
            .first()
        )
        if hold is None:
            raise Conflict(f"{username}'s rewards are not held in this campaign.")
        hold.released_at = timezone.now()
        hold.released_by = staff
        hold.save(update_fields=["released_at", "released_by"])
        return hold


def payout_create(*, staff, campaign_id: int) -> Payout:
    """Pays every unpaid entry of each person whose unpaid, unheld total is above zero (a
    person whose reversals outweigh their earnings waits for the next payout), in one
    transaction. The campaign row's lock serializes payouts, and the entries are marked only
    while still unpaid, so a second click or a concurrent payout pays nothing twice: it finds
    nothing left and is refused. ``staff`` is None for the command line."""
    _staff_or_command(staff)
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None:
            raise NotFound(f"Campaign {campaign_id} not found.")
        held = [person for _, person in _active_holds(campaign_id=campaign_id)]
        unpaid = RewardEntry.objects.filter(campaign_id=campaign_id, payout__isnull=True).exclude(
            person_id__in=held
        )
        nets = dict(
            unpaid.values("person_id")
            .annotate(net=Sum("amount_cents"))
            .filter(net__gt=0)
            .values_list("person_id", "net")
        )
        if not nets:
            raise Conflict("Nothing to pay: no one has unpaid, unheld rewards above zero.")
        payout = Payout.objects.create(
            campaign_id=campaign_id,
            currency=currency(),
            total_cents=sum(nets.values()),
            people=len(nets),
            entries=0,
            created_by=staff,
        )
        RewardEntry.objects.filter(
            campaign_id=campaign_id, payout__isnull=True, person_id__in=nets
        ).update(payout=payout)
        # A reversal committed since the sums were read can leave a person at zero or below:
        # they wait (their entries are unmarked before anything is committed).
        short = list(
            payout.paid_entries.values("person_id")
            .annotate(net=Sum("amount_cents"))
            .filter(net__lte=0)
            .values_list("person_id", flat=True)
        )
        if short:
            payout.paid_entries.filter(person_id__in=short).update(payout=None)
        # What was marked is what is paid: the totals come from the marked rows themselves.
        paid = payout.paid_entries.aggregate(
            total=Sum("amount_cents"), entries=Count("pk"), people=Count("person", distinct=True)
        )
        payout.total_cents, payout.entries, payout.people = (
            paid["total"] or 0,
            paid["entries"],
            paid["people"],
        )
        if payout.total_cents <= 0:
            raise Conflict("Nothing to pay: the unpaid rewards changed while paying; try again.")
        payout.save(update_fields=["total_cents", "entries", "people"])
    logger.info("payout %d: %s %s to %d people", payout.pk, payout.total, payout.currency,
                payout.people)  # fmt: skip
    return payout


def _cell(text: str) -> str:
    """A spreadsheet would run a cell that starts with = + - @ (or tab, CR) as a formula
    (usernames may start with + - @, slugs with -): such a cell is written with a leading
    apostrophe, by the app's one CSV rule (``pipeline.csv_safe``)."""
    return csv_safe.neutralise(text)


CSV_COLUMNS = ("payout", "campaign", "username", "currency", "amount", "entries")


def payout_rows(payout: Payout) -> list[dict[str, str]]:
    """The payout per person, summed by the database, amounts as decimal strings."""
    rows = (
        payout.paid_entries.values("person__username")
        .annotate(cents=Sum("amount_cents"), entries=Count("pk"))
        .order_by("person__username")
    )
    slug = Campaign.objects.values_list("slug", flat=True).get(pk=payout.campaign_id)
    return [
        {
            "payout": str(payout.pk),
            "campaign": _cell(slug),
            "username": _cell(row["person__username"]),
            "currency": _cell(payout.currency),
            "amount": str(cents_to_decimal(row["cents"])),
            "entries": str(row["entries"]),
        }
        for row in rows
    ]


def payout_csv(payout: Payout) -> str:
    """The payout for finance: one row per person (header ``CSV_COLUMNS``)."""
    out = io.StringIO()
    # Every text cell neutralised again (idempotent); amounts are never negative in a payout.
    writer = csv_safe.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(payout_rows(payout))
    return out.getvalue()
