"""Fold splits of a campaign's single-labelled clips (stratified, optionally grouped by
movie), stored so that every export of a split reads the same folds."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from django.db import transaction

from annotation_site.errors import ApplicationError, Forbidden, NotFound
from labeling.access import user_can_export
from labeling.models import (
    Campaign,
    Clip,
    ClipLabel,
    Split,
    SplitClip,
)
from pipeline.folds import assign_folds


@dataclass(frozen=True)
class SplitMade:
    split: Split
    warnings: list[str]


def split_create(
    *,
    campaign: Campaign,
    k: int = 5,
    seed: int = 0,
    group_by_movie: bool = False,
    user=None,
) -> SplitMade:
    """Stores a new k-fold split of the campaign's single-labelled clips, stratified by label
    (scikit-learn), every movie's clips in one fold with ``group_by_movie``.

    Reads the stored results; never changes an existing split. When no label has ``k`` clips it
    refuses, naming the short labels and the largest k that would work; when only some have
    fewer than ``k``, the split is made and the same advice is returned as a warning, with
    scikit-learn's other warnings (never hidden).
    """
    if user is not None and not user_can_export(user):
        raise Forbidden("Only staff or exporters can make splits.")
    if k < 2:
        raise ApplicationError("A split needs at least 2 folds.")
    if not 0 <= seed < 2**31:
        raise ApplicationError(f"The seed must be between 0 and {2**31 - 1}, not {seed}.")
    rows = list(
        ClipLabel.objects.filter(
            clip__campaign=campaign,
            clip__status=Clip.Status.COMPLETE,
            single_label__isnull=False,
        )
        .order_by("clip__number")
        .values_list("clip_id", "clip__movie_id", "single_label_id")
    )
    if len(rows) < k:
        raise ApplicationError(
            f"{len(rows)} single-labelled clips: a {k}-fold split needs at least {k}."
        )
    clip_ids, movies, labels = (np.array(column) for column in zip(*rows, strict=True))
    if group_by_movie and len(set(movies.tolist())) < k:
        raise ApplicationError(
            f"The clips come from {len(set(movies.tolist()))} movies: grouping by movie needs "
            f"at least {k}."
        )
    in_code_order = list(campaign.labels.order_by("code").values_list("pk", "name"))
    clips_per_label = {
        name: int((labels == pk).sum()) for pk, name in in_code_order if (labels == pk).any()
    }
    advice = short_labels_advice(clips_per_label, k)
    if advice and max(clips_per_label.values()) < k:
        # scikit-learn refuses this one with its own words; ours say what would work.
        raise ApplicationError(f"Cannot split into {k} folds: {advice}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            folds = assign_folds(labels, groups=movies if group_by_movie else None, k=k, seed=seed)
        except ValueError as exc:  # what the check above does not foresee
            raise ApplicationError(f"Cannot split into {k} folds: {exc}") from exc
    said = [str(w.message) for w in caught if "least populated class" not in str(w.message)]
    if advice:
        said.insert(
            0,
            f"{advice} Some test folds will have no clip of the short labels, and "
            "train_benchmark refuses such a split.",
        )
    fold_counts = {
        str(fold): {
            name: int(((folds == fold) & (labels == pk)).sum()) for pk, name in in_code_order
        }
        for fold in range(1, k + 1)
    }
    with transaction.atomic():
        split = Split.objects.create(
            campaign=campaign,
            k=k,
            seed=seed,
            group_by_movie=group_by_movie,
            n_clips=len(rows),
            fold_counts=fold_counts,
            created_by=user,
        )
        SplitClip.objects.bulk_create(
            [
                SplitClip(split=split, clip_id=int(c), label_id=int(label), fold=int(fold))
                for c, label, fold in zip(clip_ids, labels, folds, strict=True)
            ],
            batch_size=5000,
        )
    return SplitMade(split, said)


def short_labels_advice(clips_per_label: dict[str, int], k: int) -> str:
    """Empty when every label has at least ``k`` clips, else which labels are short (smallest
    first) and what would work: "sad has 2 clips; at most 2 folds, or label more sad clips."
    Labels without clips are not counted (they are not in the split at all)."""
    short = {name: n for name, n in clips_per_label.items() if n < k}
    if not short:
        return ""
    parts = []
    for n in sorted(set(short.values())):
        names = [name for name, m in short.items() if m == n]
        if len(names) == 1:
            parts.append(f"{names[0]} has {n} clip{'s' if n != 1 else ''}")
        else:
            parts.append(f"{', '.join(names[:-1])} and {names[-1]} have {n}")
    has = "; ".join(parts)
    more = f"label more {' and '.join(short)} clips" if len(short) <= 3 else "label more clips"
    at_most = min(clips_per_label.values())
    if at_most >= 2:
        return f"{has}; at most {at_most} folds, or {more}."
    return f"{has}; {more} (a split needs at least 2 clips of every label)."


def split_for(campaign: Campaign, split_id: int | None) -> Split | None:
    """The campaign's split ``split_id`` (404 if it is another campaign's or missing)."""
    if split_id is None:
        return None
    split = Split.objects.filter(pk=split_id, campaign=campaign).first()
    if split is None:
        raise NotFound(f"Campaign {campaign.pk} has no split {split_id}.")
    return split
