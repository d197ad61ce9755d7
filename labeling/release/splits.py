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

    Reads the stored results; never changes an existing split. scikit-learn's warnings (a label
    with fewer clips than folds) are returned, not hidden.
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            folds = assign_folds(labels, groups=movies if group_by_movie else None, k=k, seed=seed)
        except ValueError as exc:  # scikit-learn's own words: e.g. every label too small
            raise ApplicationError(f"Cannot split into {k} folds: {exc}") from exc
    in_code_order = list(campaign.labels.order_by("code").values_list("pk", "name"))
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
    return SplitMade(split, [str(w.message) for w in caught])


def split_for(campaign: Campaign, split_id: int | None) -> Split | None:
    """The campaign's split ``split_id`` (404 if it is another campaign's or missing)."""
    if split_id is None:
        return None
    split = Split.objects.filter(pk=split_id, campaign=campaign).first()
    if split is None:
        raise NotFound(f"Campaign {campaign.pk} has no split {split_id}.")
    return split
