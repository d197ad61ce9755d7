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
from labeling.rewards import ledger
from pipeline.aggregation import aggregate

logger = logging.getLogger(__name__)

# Clips per transaction when aggregating many: bounded locks and memory, few round trips.
BATCH = 2000


def _chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


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
                .values_list("clip_id", "label_id")
            ),
            dtype=np.int64,
        ).reshape(-1, 2)
        rows = []
        for campaign_id in set(campaign_of.values()):
            campaign = Campaign.objects.only("single_label_min_votes").get(pk=campaign_id)
            labels = list(Label.objects.filter(campaign_id=campaign_id).order_by("code"))
            label_ids = np.array([label.pk for label in labels], dtype=np.int64)
            order = np.argsort(label_ids)
            clips = np.array(sorted(c for c, k in campaign_of.items() if k == campaign_id))
            mine = votes[np.isin(votes[:, 0], clips)]
            if not len(mine):
                continue
            row_of = np.searchsorted(clips, mine[:, 0])
            col_of = order[np.searchsorted(label_ids[order], mine[:, 1])]
            counts = np.zeros((len(clips), len(labels)), dtype=np.int64)
            np.add.at(counts, (row_of, col_of), 1)
            voted = counts.sum(axis=1) > 0
            result = aggregate(counts[voted], campaign.single_label_min_votes)
            for i, clip_id in enumerate(clips[voted]):
                rows.append(
                    ClipLabel(
                        clip_id=int(clip_id),
                        votes={
                            lab.name: int(n)
                            for lab, n in zip(labels, result.counts[i], strict=True)
                        },
                        distribution={
                            lab.name: round(float(p), 6)
                            for lab, p in zip(labels, result.distribution[i], strict=True)
                        },
                        n_annotations=int(result.counts[i].sum()),
                        single_label=labels[result.single[i]] if result.single[i] >= 0 else None,
                        top_share=float(result.top_share[i]),
                        entropy=float(result.entropy[i]),
                        computed_at=now,
                    )
                )
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
