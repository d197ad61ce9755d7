"""Services that turn a complete clip's votes into its stored result, and that take votes back.

Results are derived data: recomputed from all of a clip's valid annotations every time, never
patched. ``clips_aggregate`` is what the per-clip task, the beat sweep, the import and the
admin call; a re-run or a concurrent run upserts the same one row per clip.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import numpy as np
from django.db import transaction
from django.utils import timezone

from annotation_site.errors import ApplicationError, Forbidden
from labeling.loop import slots
from labeling.models import Annotation, Assignment, Campaign, Clip, ClipLabel, Label
from labeling.results import quality
from labeling.rewards import ledger
from pipeline.aggregation import aggregate, final_single_labels

logger = logging.getLogger(__name__)

# Clips per transaction when aggregating many: bounded locks and memory, few round trips.
BATCH = 2000


def _chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _campaign_results(campaign_id: int, clips: np.ndarray, mine: np.ndarray, now) -> list:
    """The result rows of one campaign's clips (sorted ids) from their votes (clip, label,
    annotator): DFEW's distribution and single label under the campaign's stop rule, and every
    method's label, confidence and posterior from the campaign's stored quality models."""
    if not len(mine):
        return []
    campaign = Campaign.objects.get(pk=campaign_id)
    rule = slots.stop_rule_of(campaign)
    labels = list(Label.objects.filter(campaign_id=campaign_id).order_by("code"))
    names = [label.name for label in labels]
    label_ids = np.array([label.pk for label in labels], dtype=np.int64)
    order = np.argsort(label_ids)
    row_of = np.searchsorted(clips, mine[:, 0])
    col_of = order[np.searchsorted(label_ids[order], mine[:, 1])]
    counts = np.zeros((len(clips), len(labels)), dtype=np.int64)
    np.add.at(counts, (row_of, col_of), 1)
    voted = counts.sum(axis=1) > 0
    keep = voted[row_of]
    new_index = np.cumsum(voted) - 1
    item, annotators, col = new_index[row_of[keep]], mine[keep, 2], col_of[keep]
    counts, clips = counts[voted], clips[voted]
    result = aggregate(counts, rule.min_votes)
    models = quality.quality_models_for(campaign_id)
    posteriors = {
        method: model.posteriors(item, annotators, col, len(clips))
        for method, model in models.items()
    }
    scored = quality.quality_json(posteriors, names)
    single = result.single
    confident = models.get(quality.confidence_method(campaign))
    if rule.adaptive and rule.confidence is not None and confident is not None:
        probs = confident.vote_probs(posteriors[confident.method])
        single = final_single_labels(counts, rule, probs)
    rows = []
    for i, clip_id in enumerate(clips):
        per_method = scored[i] if scored else {}
        per_method["majority"] = {
            "label": names[single[i]] if single[i] >= 0 else None,
            "confidence": round(float(result.top_share[i]), 6),
            "posterior": {
                n: round(float(p), 6) for n, p in zip(names, result.distribution[i], strict=True)
            },
        }
        n = int(result.counts[i].sum())
        rows.append(
            ClipLabel(
                clip_id=int(clip_id),
                votes={name: int(v) for name, v in zip(names, result.counts[i], strict=True)},
                distribution={
                    name: round(float(p), 6)
                    for name, p in zip(names, result.distribution[i], strict=True)
                },
                n_annotations=n,
                single_label=labels[single[i]] if single[i] >= 0 else None,
                top_share=float(result.top_share[i]),
                entropy=float(result.entropy[i]),
                computed_at=now,
                quality=per_method,
                closed_early=n < rule.max_votes,
            )
        )
    return rows


def _aggregate_batch(clip_ids: list[int], now) -> int:
    """One transaction: lock the batch's complete clips, read their votes, upsert results."""
    with transaction.atomic():
        # The clip lock first (the house order): a concurrent invalidation or submit of the
        # same clip waits, so the result matches the votes it was computed from.
        locked = list(
            Clip.objects.select_for_update()
            .filter(pk__in=clip_ids, status=Clip.Status.COMPLETE)
            .order_by("pk")
            .values_list("pk", "campaign_id")
        )
        if not locked:
            return 0
        campaign_of = dict(locked)
        votes = np.array(
            list(
                Annotation.objects.valid()
                .filter(clip_id__in=campaign_of)
                .values_list("clip_id", "label_id", "annotator_id")
            ),
            dtype=np.int64,
        ).reshape(-1, 3)
        rows = []
        for campaign_id in set(campaign_of.values()):
            clips = np.array(sorted(c for c, k in campaign_of.items() if k == campaign_id))
            rows += _campaign_results(campaign_id, clips, votes[np.isin(votes[:, 0], clips)], now)
        ClipLabel.objects.bulk_create(
            rows,
            batch_size=1000,
            update_conflicts=True,
            unique_fields=["clip"],
            update_fields=[
                "votes",
                "distribution",
                "n_annotations",
                "single_label",
                "top_share",
                "entropy",
                "computed_at",
                "quality",
                "closed_early",
            ],
        )
        # Rare-class bonuses follow the final label, in the same transaction and under the
        # same clip locks: a repeated or concurrent aggregation pays once.
        ledger.clips_sync(campaign_of, now=now)
    return len(rows)


def clips_aggregate(clip_ids: Iterable[int], *, progress=None) -> int:
    """Stores the result of each given clip that is complete: votes and distribution per label,
    the single label under its campaign's rule, the winning share and the entropy.

    Reads all valid annotations of the clips; clips not complete are left alone. Idempotent:
    one row per clip, overwritten by a re-run. Returns how many results were written.
    ``progress(done, total)`` is called after every batch.
    """
    ids = sorted(set(clip_ids))
    now = timezone.now()
    written = 0
    for done, chunk in enumerate(_chunks(ids, BATCH), start=1):
        written += _aggregate_batch(chunk, now)
        if progress is not None:
            progress(min(done * BATCH, len(ids)), len(ids))
    return written


def clip_ids_missing_result(campaign_id: int | None = None) -> list[int]:
    """Complete clips without a stored result (a lost message, or an import)."""
    clips = Clip.objects.filter(status=Clip.Status.COMPLETE, result__isnull=True)
    if campaign_id is not None:
        clips = clips.filter(campaign_id=campaign_id)
    return list(clips.order_by("pk").values_list("pk", flat=True))


def annotations_invalidate(*, staff, annotation_ids: Iterable[int], reason: str = "") -> list[int]:
    """Invalidates annotations (e.g. after a quality review) and returns the clips they touched.

    The annotations are kept and marked; their assignments become ``invalidated``, which frees
    the slots for other annotators (their own annotators are never offered the clip again). A
    complete clip goes back to annotating and loses its stored result; it is re-aggregated when
    full again. One transaction; annotations already invalidated are left as they are.
    """
    if not getattr(staff, "is_staff", False):
        raise Forbidden("Only staff can invalidate annotations.")
    ids = sorted(set(annotation_ids))
    if not ids:
        raise ApplicationError("No annotations given to invalidate.")
    now = timezone.now()
    with transaction.atomic():
        clip_ids = sorted(
            set(Annotation.objects.valid().filter(pk__in=ids).values_list("clip_id", flat=True))
        )
        # Clip locks first, in id order, as every writer takes them.
        list(Clip.objects.select_for_update().filter(pk__in=clip_ids).order_by("pk").values("pk"))
        targets = Annotation.objects.valid().filter(pk__in=ids)
        assignment_ids = list(targets.values_list("assignment_id", flat=True))
        targets.update(invalidated_at=now, invalidated_by=staff, invalidation_reason=reason[:2000])
        slots.assignments_set_status(
            clip_ids=clip_ids,
            rows=Assignment.objects.filter(pk__in=assignment_ids),
            from_=(Assignment.Status.SUBMITTED,),
            to=Assignment.Status.INVALIDATED,
        )
        Clip.objects.filter(pk__in=clip_ids, status=Clip.Status.COMPLETE).update(
            status=Clip.Status.ANNOTATING, updated_at=now
        )
        ClipLabel.objects.filter(clip_id__in=clip_ids).delete()
        ledger.clips_sync(clip_ids, now=now)
    logger.info("invalidated %d annotations on %d clips", len(assignment_ids), len(clip_ids))
    return clip_ids


def annotator_invalidate(*, staff, campaign_id: int, username: str, reason: str = "") -> int:
    """Invalidates every valid annotation of one annotator in a campaign; returns how many."""
    ids = list(
        Annotation.objects.valid()
        .filter(clip__campaign_id=campaign_id, annotator__username=username)
        .values_list("pk", flat=True)
    )
    if not ids:
        raise ApplicationError(f"{username!r} has no valid annotations in this campaign.")
    annotations_invalidate(staff=staff, annotation_ids=ids, reason=reason)
    return len(ids)
