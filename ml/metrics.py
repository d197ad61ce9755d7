"""WAR, UAR, per-class recall and the confusion matrix, as DFEW reports them.

WAR (weighted average recall) is plain accuracy over all test clips; UAR (unweighted average
recall) is the mean over classes of correct-in-class / clips-in-class, from the confusion
matrix. Labels here are 0-based class indices.
"""

from __future__ import annotations

import warnings

import numpy as np


class AbsentClassWarning(UserWarning):
    """A class has no test clip, so its recall is undefined and UAR averages fewer classes."""


def confusion(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts C[t, p] of clips of true class t predicted as p."""
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError("y_true and y_pred differ in length")
    if len(y_true) and (
        min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= num_classes
    ):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}")
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def per_class_recall(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Recall of each class; NaN for a class with no test clip."""
    matrix = confusion(y_true, y_pred, num_classes)
    support = matrix.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / support, np.nan)


def war(y_true, y_pred) -> float:
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if len(y_true) == 0:
        raise ValueError("no test clips")
    return float((y_true == y_pred).mean())


def uar(y_true, y_pred, num_classes: int | None = None) -> float:
    """Mean recall over classes. With `num_classes`, a class absent from `y_true` is left out
    of the mean and an `AbsentClassWarning` names it; without it, the classes are those seen
    in `y_true` or `y_pred`."""
    if num_classes is None:
        num_classes = int(max(np.max(y_true), np.max(y_pred))) + 1
    recalls = per_class_recall(y_true, y_pred, num_classes)
    absent = np.flatnonzero(np.isnan(recalls))
    if len(absent):
        warnings.warn(
            f"classes {absent.tolist()} have no test clip: UAR averages the other "
            f"{num_classes - len(absent)} classes",
            AbsentClassWarning,
            stacklevel=2,
        )
    if len(absent) == num_classes:
        raise ValueError("no test clips")
    return float(np.nanmean(recalls))
