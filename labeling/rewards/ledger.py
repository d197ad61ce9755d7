"""The rewards ledger kept in step with the clips: ``clips_sync`` writes, under the clip
locks of screening, aggregation, invalidation and extraction, the entries each clip should
have and reverses those it should no longer have."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from django.conf import settings
from django.db import connection
from django.utils import timezone

from labeling.models import (
    Annotation,
    Campaign,
    Clip,
    ClipLabel,
    Label,
    RewardEntry,
    RewardKind,
    decimal_to_cents,
)

logger = logging.getLogger(__name__)


# A clip has passed screening while it is open for labelling or complete; a clip reported back
# to screening keeps what it earned until a reviewer rejects it.
PASSED = (Clip.Status.ANNOTATING, Clip.Status.COMPLETE)


WITHDRAWN = (Clip.Status.REJECTED, Clip.Status.FAILED)


def currency() -> str:
    return settings.REWARD_CURRENCY


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
