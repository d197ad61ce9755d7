"""A clip's slots: which assignments hold them, and when the clip is full.

A clip keeps ``slots_held``, how many of its assignments hold a slot (leased or submitted,
`LIVE_ASSIGNMENT_STATUSES`), so that `next` finds the open clip nearest completion through an
index. That count is right only if every change to those rows recounts it, so the changes are
made here and nowhere else:

* `assignment_lease` makes a lease (a new row that holds a slot);
* `assignments_set_status` changes the status of a clip's assignments, and
  `assignment_set_status` of one assignment in hand; both recount the clips whose held slots
  the change can move, in the same transaction.

`AssignmentQuerySet.update` and `Assignment.save` refuse a ``status`` anywhere else, so a new
writer cannot change a status and forget the recount. (The import of votes made elsewhere
bulk-inserts submitted rows and then rebuilds the campaign's counts,
`sql.campaign_counts_rebuild`.) Every function here expects the caller to hold the clips' row
locks, taken first, as every writer takes them.

`clip_is_full` is the rule of a clip with all its slots (never more labels than the campaign's
annotations per clip), and `clip_is_done` the rule of a clip that needs no more labels (all its
slots, or the adaptive-overlap rule, ``pipeline.aggregation.stop_asking``): the loop's submit
and screening, the import and the aggregation all ask these two and nothing else.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import numpy as np
from django.db import models

from labeling.loop import sql
from labeling.models import LIVE_ASSIGNMENT_STATUSES, Assignment, AssignmentQuerySet, Clip
from pipeline.aggregation import StopRule, stop_asking


def clip_is_full(valid_labels: int, target: int) -> bool:
    """Whether a clip with ``valid_labels`` labels that count (not invalidated) has all of the
    ``target`` (its campaign's ``annotations_per_clip``) it needs: it is then complete, and no
    further label may be asked for or imported."""
    return valid_labels >= target


def stop_rule_of(settings) -> StopRule:
    """The stop rule of a campaign (or of a `sql.LockedClip`, which carries the same
    settings under the campaign's field names)."""
    return StopRule(
        max_votes=settings.annotations_per_clip,
        min_votes=settings.single_label_min_votes,
        adaptive=settings.adaptive_overlap,
        min_before_stop=settings.adaptive_min_votes,
        confidence=settings.adaptive_confidence,
    )


def clip_is_done(counts, rule: StopRule, vote_probs=None) -> bool:
    """Whether a clip with ``counts`` valid votes per label (code order) needs no more: it is
    then complete, and no further label is asked for. ``vote_probs``: its predicted next vote
    under the campaign's quality model (only the confidence part of the rule needs it)."""
    counts = np.asarray(counts, dtype=np.int64)[None, :]
    probs = None if vote_probs is None else np.asarray(vote_probs, dtype=float)[None, :]
    return bool(stop_asking(counts, rule, probs)[0])


def _holds(status: str) -> bool:
    return status in LIVE_ASSIGNMENT_STATUSES


def assignments_set_status(
    *,
    clip_ids: Collection[int],
    to: str,
    from_: Collection[str],
    rows: AssignmentQuerySet | None = None,
    **fields,
) -> int:
    """Sets ``status = to`` (and ``fields``) on the assignments of ``clip_ids`` whose status is
    in ``from_`` (of those, the ones in ``rows`` when given), and recounts those clips'
    ``slots_held`` when the change moves rows between holding a slot and not. Returns how many
    rows changed. One UPDATE, and the recount only when it can move (and something changed).
    Only rows of ``clip_ids`` are touched, so the recount never misses a clip. Caller holds the
    clips' locks."""
    rows = (Assignment.objects.all() if rows is None else rows).filter(
        clip_id__in=clip_ids, status__in=from_
    )
    # The one status write: `AssignmentQuerySet.update` refuses a status, this is why.
    changed = models.QuerySet.update(rows, status=to, **fields)
    if changed and any(_holds(status) != _holds(to) for status in from_):
        sql.clip_slots_recount(*clip_ids)
    return changed


def assignment_set_status(assignment: Assignment, to: str, **fields) -> None:
    """`assignments_set_status` for one assignment in hand (its clip locked, then its row):
    writes ``to`` and ``fields`` on the row as it was read, and on ``assignment``."""
    changed = assignments_set_status(
        clip_ids=(assignment.clip_id,),
        to=to,
        from_=(assignment.status,),
        rows=Assignment.objects.filter(pk=assignment.pk),
        **fields,
    )
    if not changed:  # the caller's lock makes this impossible; never write on a stale row
        raise RuntimeError(f"assignment {assignment.pk} is no longer {assignment.status}")
    assignment.status = to
    for name, value in fields.items():
        setattr(assignment, name, value)


def assignment_lease(
    *, clip: Clip, annotator, slot: int, now: datetime, expires_at: datetime
) -> Assignment:
    """Leases ``slot`` of the locked ``clip`` to ``annotator`` and recounts its held slots."""
    assignment = Assignment.objects.create(
        clip=clip, annotator=annotator, slot=slot, leased_at=now, expires_at=expires_at
    )
    sql.clip_slots_recount(clip.pk)
    return assignment
