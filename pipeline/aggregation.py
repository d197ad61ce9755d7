"""Votes become labels: the emotion distribution, the single label, the winning share, entropy.

The single-label rule lives here and only here: a clip is single-labelled when one label has at
least ``min_votes`` of its votes (DFEW: "more than 6 of 10", so ``min_votes = 7``). Everything
that decides a single label (the aggregation task, the agreement report, the synthetic
generator) calls :func:`single_labels`. The rule is unambiguous only when ``min_votes`` is more
than half of the votes, which the campaign's database constraint enforces
(``labeling/models/``).

Also DFEW's Table 2 (single-labelled clips per label and duration bucket), and the adaptive
overlap's stop rule (`stop_asking`): the one rule of when a clip has the labels it needs, which
the loop (``labeling.loop.slots``), the import and the simulator all call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import betabinom

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
class StopRule:
    """When a clip stops asking for labels: a campaign's settings, as plain values.

    ``max_votes`` (annotations per clip) is never exceeded and always stops. With ``adaptive``,
    a clip with at least ``min_before_stop`` votes also stops once the remaining votes cannot
    change its single-label outcome (`decided`), or, with ``confidence`` set, once one outcome
    is at least that probable (`outcome_probabilities`, whose spread around the quality model's
    prediction is ``strength`` pseudo-votes).
    """

    max_votes: int
    min_votes: int
    adaptive: bool = False
    min_before_stop: int = 5
    confidence: float | None = None
    strength: float = 5.0

    def __post_init__(self):
        if not 1 <= self.min_votes <= self.max_votes or 2 * self.min_votes <= self.max_votes:
            raise ValueError(
                f"min_votes {self.min_votes} must be more than half of max_votes "
                f"{self.max_votes} and no more than it"
            )
        if self.min_before_stop < 1:
            raise ValueError(f"min_before_stop must be at least 1, got {self.min_before_stop}")
        if self.confidence is not None and not 0.5 <= self.confidence <= 1:
            raise ValueError(f"confidence must lie in [0.5, 1], got {self.confidence}")
        if self.strength <= 0:
            raise ValueError(f"strength must be positive, got {self.strength}")


def _as_counts(counts) -> np.ndarray:
    counts = np.asarray(counts, dtype=np.int64)
    if counts.ndim != 2:
        raise ValueError(f"expected an N×K vote-count matrix, got shape {counts.shape}")
    return counts


def decided(counts, max_votes: int, min_votes: int) -> np.ndarray:
    """Per clip: whether the votes still to come (up to ``max_votes``) can no longer change its
    single-label outcome: one label has ``min_votes`` already (no other can reach it, as
    ``min_votes`` is more than half), or none can reach it with every remaining vote. Integer
    arithmetic only, so "cannot change" is exact."""
    counts = _as_counts(counts)
    remaining = max_votes - counts.sum(axis=1)
    top = counts.max(axis=1, initial=0)
    return (top >= min_votes) | (top + remaining < min_votes) | (remaining <= 0)


def outcome_probabilities(counts, max_votes: int, min_votes: int, vote_probs, strength=5.0):
    """N×(K+1): the probability that each clip ends with single label l (columns 0..K-1), or
    with none (the last column), once it has all ``max_votes`` votes.

    The remaining r votes of a clip are drawn from a Dirichlet-multinomial centred on
    ``vote_probs`` (N×K: the quality model's prediction of the next vote) with ``strength``
    pseudo-votes, updated by the clip's own votes: a clip whose votes are split keeps its
    spread (ambiguous clips are, whoever labels them). Label l's share of those r votes is then
    beta-binomial, and l wins when it gets at least ``min_votes`` minus its count; as
    ``min_votes`` is more than half, at most one label can. Exact 0 and 1 where the outcome is
    already settled (`decided`)."""
    counts = _as_counts(counts)
    vote_probs = np.asarray(vote_probs, dtype=float)
    n = counts.sum(axis=1, keepdims=True)
    remaining = np.broadcast_to(max_votes - n, counts.shape)
    need = min_votes - counts
    alpha = strength * vote_probs + counts
    beta = strength * (1 - vote_probs) + (n - counts)
    with np.errstate(all="ignore"):
        p = betabinom.sf(need - 1, np.maximum(remaining, 1), alpha, beta)
    p = np.where(need <= 0, 1.0, np.where(need > remaining, 0.0, p))
    p = np.nan_to_num(p, nan=0.0)
    settled = (need <= 0).any(axis=1)
    p[settled] = (need[settled] <= 0).astype(float)
    none = np.clip(1.0 - p.sum(axis=1, keepdims=True), 0.0, 1.0)
    return np.hstack([p, none])


def stop_asking(counts, rule: StopRule, vote_probs=None) -> np.ndarray:
    """Per clip (row of an N×K vote-count matrix): whether it has the labels it needs and is
    complete. The one rule of "full", for every door: the loop's submit and screening
    (``labeling.loop.slots.clip_is_done``), the import, and ``simulate_overlap``.

    Without ``rule.adaptive``: all ``max_votes``. With it, also: at least ``min_before_stop``
    votes and the outcome `decided`, or (``rule.confidence`` set and ``vote_probs`` given) one
    outcome at least that probable."""
    counts = _as_counts(counts)
    n = counts.sum(axis=1)
    stop = n >= rule.max_votes
    if not rule.adaptive:
        return stop
    enough = n >= rule.min_before_stop
    stop |= enough & decided(counts, rule.max_votes, rule.min_votes)
    if rule.confidence is not None and vote_probs is not None:
        probs = outcome_probabilities(
            counts, rule.max_votes, rule.min_votes, vote_probs, rule.strength
        )
        stop |= enough & (probs.max(axis=1) >= rule.confidence)
    return stop


def final_single_labels(counts, rule: StopRule, vote_probs=None) -> np.ndarray:
    """The single label of each clip as its campaign records it: `single_labels` where the
    outcome is `decided` (every clip with all its votes, and every clip the exact rule closed);
    for a clip the confidence rule closed early, its most probable final outcome (-1: none)."""
    counts = _as_counts(counts)
    single = single_labels(counts, rule.min_votes)
    if vote_probs is None or not len(counts):
        return single
    open_ = ~decided(counts, rule.max_votes, rule.min_votes)
    if open_.any():
        probs = outcome_probabilities(
            counts[open_],
            rule.max_votes,
            rule.min_votes,
            np.asarray(vote_probs)[open_],
            rule.strength,
        )
        best = probs.argmax(axis=1)
        single[open_] = np.where(best == counts.shape[1], -1, best)
    return single


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
