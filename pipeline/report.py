"""A campaign's agreement report from its votes, as plain arrays: no database, no Django.

``agreement_report`` is what the Celery task, the management command and the API all get
their figures from. It assumes the votes of complete clips only (every clip with the same
number of valid votes); the caller loads them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline import agreement
from pipeline.aggregation import aggregate, table2

Progress = Callable[[float, str], None]

# How many of the lowest-agreement clips the report lists for a person to look at.
LOWEST_CLIPS = 20


@dataclass(frozen=True)
class Votes:
    """One campaign's valid votes on its complete clips, row per vote."""

    item: np.ndarray  # clip index 0..N-1
    rater: np.ndarray  # annotator index 0..R-1
    label: np.ndarray  # label index 0..K-1 (code order)
    seconds: np.ndarray  # lease-to-submit seconds per vote; NaN where unknown
    clip_ids: np.ndarray  # N database ids
    clip_numbers: np.ndarray  # N clip numbers
    durations: np.ndarray  # N seconds; NaN where unknown
    rater_names: Sequence[str]  # R usernames
    label_names: Sequence[str]  # K names in code order


def _none_if_nan(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _rounded(value, digits: int = 4) -> float | None:
    value = _none_if_nan(value)
    return None if value is None else round(value, digits)


def agreement_report(
    votes: Votes,
    min_votes: int,
    *,
    n_resamples: int = 1000,
    seed: int = 0,
    progress: Progress | None = None,
) -> dict:
    """Every figure of the agreement report, named plainly and JSON-ready.

    Fleiss' kappa (statsmodels) with a seeded percentile bootstrap over clips, kappa per label,
    observed and chance agreement, the Landis–Koch reading, Krippendorff's nominal alpha, the
    single labels under ``min_votes``, DFEW's Table 2, the winning-share histogram, the
    lowest-agreement clips, and per-annotator quality (leave-one-out majority agreement,
    Cohen's kappa against it, Dawid–Skene accuracy, median seconds, a flag).
    """
    step = progress or (lambda fraction, stage: None)
    names = list(votes.label_names)
    n_items, n_labels, n_raters = len(votes.clip_ids), len(names), len(votes.rater_names)

    step(0.05, "counting votes")
    counts = agreement.vote_counts(votes.item, votes.label, n_items, n_labels)
    totals = counts.sum(axis=1)
    # Fleiss' kappa needs the same number of raters on every clip: with adaptive overlap, some
    # clips close with fewer votes, and kappa (and the share histogram) is over the clips with
    # the most (Krippendorff's alpha takes them all).
    even = counts[totals == totals.max()] if n_items else counts
    fleiss = agreement.fleiss(even)
    step(0.15, "bootstrapping the kappa interval")
    ci = agreement.bootstrap_kappa_ci(even, n_resamples=n_resamples, seed=seed)
    step(0.35, "Krippendorff's alpha")
    alpha = agreement.krippendorff_alpha(counts) if n_items else None

    step(0.45, "single labels and Table 2")
    if n_items:
        result = aggregate(counts, min_votes)
        single, shares, entropy = result.single, result.top_share, result.entropy
    else:
        single, shares, entropy = (np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0))
    single_per_label = np.bincount(single[single >= 0], minlength=n_labels)
    hist_counts, hist_edges = agreement.share_histogram(even) if n_items else ([], [])
    lowest = np.lexsort((votes.clip_numbers, -entropy, shares))[:LOWEST_CLIPS]

    step(0.55, "annotators (leave-one-out majority, Dawid–Skene)")
    if len(votes.item):
        raters = agreement.rater_stats(
            votes.item,
            votes.rater,
            votes.label,
            n_items,
            n_raters,
            n_labels,
            seconds=votes.seconds,
        )
        annotators = [
            {
                "annotator": votes.rater_names[r],
                "n_labels": int(raters.n_labels[r]),
                "agreement_with_others_majority": _rounded(raters.agreement_with_majority[r]),
                "cohen_kappa_vs_majority": _rounded(raters.cohen_kappa_vs_majority[r]),
                "dawid_skene_accuracy": _rounded(raters.dawid_skene_accuracy[r]),
                "median_seconds": _rounded(raters.median_seconds[r], 1),
                "flagged": bool(raters.flagged[r]),
            }
            for r in range(n_raters)
            if raters.n_labels[r]
        ]
    else:
        annotators = []
    step(0.95, "writing the report")

    kappa = _rounded(fleiss.kappa)
    return {
        "n_clips": n_items,
        "n_annotations": int(len(votes.item)),
        "annotations_per_clip": int(totals.max()) if n_items else None,
        "n_clips_for_kappa": int(len(even)),
        "votes_per_clip": {str(n): int(c) for n, c in enumerate(np.bincount(totals)) if c},
        "labels": names,
        "fleiss_kappa": kappa,
        "fleiss_kappa_reason": fleiss.reason,
        "fleiss_kappa_ci": [round(ci[0], 4), round(ci[1], 4)] if ci is not None else None,
        "bootstrap": {"resamples": n_resamples, "seed": seed, "level": 0.95},
        "kappa_per_label": {
            name: _rounded(value) for name, value in zip(names, fleiss.per_category, strict=True)
        },
        "observed_agreement": _rounded(fleiss.observed),
        "chance_agreement": _rounded(fleiss.chance),
        "krippendorff_alpha": _rounded(alpha),
        "landis_koch": agreement.landis_koch(fleiss.kappa),
        "single_label_min_votes": min_votes,
        "n_single_labelled": int((single >= 0).sum()),
        "single_per_label": {name: int(n) for name, n in zip(names, single_per_label, strict=True)},
        "table2": table2(single, votes.durations, names),
        "winning_share_histogram": {
            "counts": [int(c) for c in hist_counts],
            "edges": [round(float(e), 4) for e in hist_edges],
        },
        "lowest_agreement_clips": [
            {
                "clip_id": int(votes.clip_ids[i]),
                "clip": int(votes.clip_numbers[i]),
                "top_share": round(float(shares[i]), 4),
                "entropy": round(float(entropy[i]), 4),
                "votes": {name: int(n) for name, n in zip(names, counts[i], strict=True) if n},
            }
            for i in lowest
        ],
        "annotators": annotators,
    }
