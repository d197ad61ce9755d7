"""K-fold splits for a dataset of clips: stratified by label, optionally grouped by movie.

DFEW's protocol is 5-fold cross-validation; grouping by movie keeps every clip of one movie in
one fold, so a model is never tested on a face it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold


def assign_folds(
    labels: Sequence[int], groups: Sequence[int] | None = None, k: int = 5, seed: int = 0
) -> np.ndarray:
    """Fold number (1..k) for each clip, stratified by `labels`, grouped by `groups` if given.

    Assumes every label has at least k clips (sklearn warns otherwise and some folds then lack
    the class).
    """
    labels = np.asarray(labels)
    if len(labels) < k:
        raise ValueError(f"need at least {k} clips for {k} folds, got {len(labels)}")
    folds = np.zeros(len(labels), dtype=np.int64)
    placeholder = np.zeros(len(labels))
    if groups is None:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(placeholder, labels)
    else:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        splits = splitter.split(placeholder, labels, np.asarray(groups))
    for fold, (_, test) in enumerate(splits, start=1):
        folds[test] = fold
    return folds
