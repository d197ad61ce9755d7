"""Votes become labels: the emotion distribution, the single label, the winning share, entropy.

The single-label rule lives here and only here: a clip is single-labelled when one label has at
least ``min_votes`` of its votes (DFEW: "more than 6 of 10", so ``min_votes = 7``). Everything
that decides a single label (the aggregation task, the agreement report, the synthetic
generator) calls :func:`single_labels`. The rule is unambiguous only when ``min_votes`` is more
than half of the votes, which the campaign's database constraint enforces
(``labeling/models/``).

Also DFEW's Table 2 (single-labelled clips per label and duration bucket).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# DFEW's Table 2 duration buckets: [0, 2), [2, 5), [5, inf) seconds.
BUCKETS: tuple[tuple[str, float, float], ...] = (
    ("0-2s", 0.0, 2.0),
    ("2-5s", 2.0, 5.0),
    ("5s+", 5.0, float("inf")),
)


def single_labels(counts: np.ndarray, min_votes: int) -> np.ndarray:
    """Per row of an N×K vote-count matrix: the index of the label with at least ``min_votes``
    votes, or -1 when none has. Assumes ``min_votes`` is unambiguous for the row totals."""
    counts = np.asarray(counts)
    if counts.size == 0:
        return np.full(len(counts), -1, dtype=np.int64)
    top = counts.argmax(axis=1)
    return np.where(counts.max(axis=1) >= min_votes, top, -1).astype(np.int64)


@dataclass(frozen=True)
class Aggregate:
    """The result of N clips' votes, row-aligned with the counts matrix."""

    counts: np.ndarray  # N×K int
    distribution: np.ndarray  # N×K float, votes / total
    single: np.ndarray  # N int, label index or -1
    top_share: np.ndarray  # N float, the winning label's share of the votes
    entropy: np.ndarray  # N float, Shannon entropy of the distribution in bits


def aggregate(counts: np.ndarray, min_votes: int) -> Aggregate:
    """Aggregates every row of an N×K vote-count matrix (rows with no votes are invalid)."""
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2:
        raise ValueError(f"expected an N×K vote-count matrix, got shape {counts.shape}")
    totals = counts.sum(axis=1)
    if (totals <= 0).any():
        raise ValueError("every clip needs at least one vote to be aggregated")
    distribution = counts / totals[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(distribution > 0, distribution * np.log2(distribution), 0.0)
    return Aggregate(
        counts=counts,
        distribution=distribution,
        single=single_labels(counts, min_votes),
        top_share=distribution.max(axis=1) if len(counts) else np.zeros(0),
        entropy=-terms.sum(axis=1) + 0.0,  # + 0.0 turns -0.0 into 0.0
    )


def duration_bucket(duration_s: float | None) -> str | None:
    """The Table 2 bucket name of a duration, or None when the duration is unknown."""
    if duration_s is None or not np.isfinite(duration_s) or duration_s < 0:
        return None
    for name, low, high in BUCKETS:
        if low <= duration_s < high:
            return name
    return None  # unreachable: the last bucket is open-ended


def table2(single: np.ndarray, durations: np.ndarray, label_names: Sequence[str]) -> dict:
    """DFEW's Table 2: single-labelled clips per label and duration bucket, with totals and
    each label's percentage of all single-labelled clips.

    ``single`` holds label indices (-1 = not single-labelled); ``durations`` seconds (NaN when
    unknown: such a clip counts in its label's total but in no bucket). Returns
    ``{label: {"0-2s", "2-5s", "5s+", "total", "percent"}, ..., "total": {...}}``.
    """
    single = np.asarray(single, dtype=np.int64)
    durations = np.asarray(durations, dtype=np.float64)
    keep = single >= 0
    single, durations = single[keep], durations[keep]
    k = len(label_names)
    n = len(single)
    table: dict[str, dict] = {}
    columns = {}
    for name, low, high in BUCKETS:
        in_bucket = (durations >= low) & (durations < high)
        columns[name] = np.bincount(single[in_bucket], minlength=k)
    totals = np.bincount(single, minlength=k)
    for index, label in enumerate(label_names):
        row = {name: int(column[index]) for name, column in columns.items()}
        row["total"] = int(totals[index])
        row["percent"] = round(100.0 * totals[index] / n, 2) if n else None
        table[label] = row
    table["total"] = {name: int(column.sum()) for name, column in columns.items()}
    table["total"]["total"] = n
    table["total"]["percent"] = 100.0 if n else None
    return table
