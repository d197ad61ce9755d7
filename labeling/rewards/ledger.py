"""The rewards ledger kept in step with the clips: ``clips_sync`` writes, under the clip
locks of screening, aggregation, invalidation and extraction, the entries each clip should
have and reverses those it should no longer have."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import connection
from django.utils import timezone

from labeling.models import Annotation, Campaign, Clip, ClipLabel, Label, RewardEntry
from labeling.rewards import rules

logger = logging.getLogger(__name__)


def currency() -> str:
    return settings.REWARD_CURRENCY


@dataclass(frozen=True)
class SyncResult:
    earned: int
    reversed: int


def clips_sync(clip_ids: Iterable[int], *, now: datetime | None = None) -> SyncResult:
    """Adds the earnings and reversals that make the ledger match the clips' current state.

    Runs inside the caller's transaction, which holds the clips' locks (the house order: clip
    rows first), so two calls for one clip never interleave; calling it again changes nothing.
    It reads each clip's state, asks `rules.decide` what the clip should gain and lose (the
    rules are there), and writes that: reversals first, then the new earnings.
    """
    ids = sorted(set(clip_ids))
    if not ids:
        return SyncResult(0, 0)
    if not connection.in_atomic_block:
        raise RuntimeError("clips_sync runs inside the transaction that locked the clips")
    now = now or timezone.now()
    clips, campaigns = _read(ids)
    new: list[RewardEntry] = []
    undo: dict[int, rules.Reverse] = {}  # by the earning's pk
    for campaign_id, clip in clips:
        decision = rules.decide(campaigns[campaign_id], clip)
        undo.update((r.entry.pk, r) for r in decision.reverse)
        new.extend(
            RewardEntry(
                campaign_id=campaign_id,
                person_id=e.person_id,
                kind=e.kind,
                clip_id=clip.clip_id,
                annotation_id=e.annotation_id,
                amount_cents=e.amount_cents,
                created_at=now,
            )
            for e in decision.earn
        )
    reversals = _reverse(sorted(undo.values(), key=lambda r: -r.entry.pk), now)
    RewardEntry.objects.bulk_create(reversals + new, batch_size=1000)
    if new or reversals:
        logger.info("rewards: %d earned, %d reversed on %d clips", len(new), len(undo), len(ids))
    return SyncResult(len(new), len(reversals))


def _read(
    ids: list[int],
) -> tuple[list[tuple[int, rules.ClipState]], dict[int, rules.CampaignRules]]:
    """Each clip's campaign and state (in `Clip`'s order), and the campaigns' rules."""
    clips = list(
        Clip.objects.filter(pk__in=ids).values_list("pk", "campaign_id", "status", "proposed_by_id")
    )
    campaigns = _campaign_rules({campaign for _, campaign, _, _ in clips})
    # The stored results' final labels (votes are read only where a campaign ranks them).
    results = {
        clip_id: rules.Result(single, {})
        for clip_id, single in ClipLabel.objects.filter(clip_id__in=ids).values_list(
            "clip_id", "single_label_id"
        )
    }
    top_rule = [pk for pk, c in campaigns.items() if c.rare_label_rule == rules.TOP]
    if top_rule:
        for clip_id, clip_votes in ClipLabel.objects.filter(
            clip_id__in=ids, clip__campaign_id__in=top_rule
        ).values_list("clip_id", "votes"):
            results[clip_id] = rules.Result(results[clip_id].single_label_id, clip_votes)
    votes: dict[int, list[rules.Vote]] = {}
    for pk, clip_id, annotator_id, label_id in (
        Annotation.objects.valid()
        .filter(clip_id__in=ids)
        .values_list("pk", "clip_id", "annotator_id", "label_id")
    ):
        votes.setdefault(clip_id, []).append(rules.Vote(pk, annotator_id, label_id))
    live: dict[int, list[rules.Entry]] = {}
    for row in RewardEntry.objects.live().filter(clip_id__in=ids).values_list(*rules.Entry._fields):
        entry = rules.Entry._make(row)
        live.setdefault(entry.clip_id, []).append(entry)
    states = [
        (
            campaign_id,
            rules.ClipState(
                clip_id=clip_id,
                status=status,
                extractor_id=extractor,
                votes=tuple(votes.get(clip_id, ())),
                result=results.get(clip_id),
                live=tuple(live.get(clip_id, ())),
            ),
        )
        for clip_id, campaign_id, status, extractor in clips
    ]
    return states, campaigns


def _campaign_rules(campaign_ids: set[int]) -> dict[int, rules.CampaignRules]:
    labels: dict[int, list[rules.Label]] = {}
    for pk, campaign_id, name, rare in Label.objects.filter(
        campaign_id__in=campaign_ids
    ).values_list("pk", "campaign_id", "name", "is_rare"):
        labels.setdefault(campaign_id, []).append(rules.Label(pk, name, rare))
    return {
        pk: rules.CampaignRules(
            reward_clip=clip,
            reward_rare_clip=rare_clip,
            reward_rare_vote=rare_vote,
            rare_label_rule=rule,
            labels=tuple(labels.get(pk, ())),
        )
        for pk, clip, rare_clip, rare_vote, rule in Campaign.objects.filter(
            pk__in=campaign_ids
        ).values_list(
            "pk", "reward_clip", "reward_rare_clip", "reward_rare_vote", "rare_label_rule"
        )
    }


def _reverse(undo: list[rules.Reverse], now: datetime) -> list[RewardEntry]:
    """Marks the earnings reversed and returns their reversal entries (unsaved)."""
    if not undo:
        return []
    marked = (
        RewardEntry.objects.live()
        .filter(pk__in=[entry.pk for entry, _ in undo])
        .update(reversed_at=now)
    )
    if marked != len(undo):  # the clip locks make this impossible; never pay on a guess
        raise RuntimeError("a reward entry changed under the clip's lock")
    return [
        RewardEntry(
            campaign_id=e.campaign_id,
            person_id=e.person_id,
            kind=e.kind,
            clip_id=e.clip_id,
            annotation_id=e.annotation_id,
            amount_cents=-e.amount_cents,
            reverses_id=e.pk,
            reason=why,
            created_at=now,
        )
        for e, why in undo
    ]
