"""Adaptive overlap replayed on a campaign's own votes: how many labels it would have saved,
and how many clips would have kept the single label all their votes give them.

Pure numpy: ``simulate_overlap`` (the management command of that name, the staff page and
bench/overlap.py call it) takes the votes in long form, each clip's votes in submission order,
and the stop rule (``pipeline.aggregation.stop_asking``, the rule the loop itself applies).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pipeline import agreement, crowd
from pipeline.aggregation import StopRule, final_single_labels, single_labels, stop_asking


@dataclass(frozen=True)
class Replay:
    used: np.ndarray  # N: votes each clip would have had
    single: np.ndarray  # N: its single label then (-1: none)
    full_single: np.ndarray  # N: its single label from all its votes
    total: np.ndarray  # N: all its votes


def _positions(item: np.ndarray) -> np.ndarray:
    """Each vote's place (0, 1, …) among its clip's votes, in the given order."""
    order = np.argsort(item, kind="stable")
    sizes = np.bincount(item)
    starts = np.repeat(np.cumsum(sizes) - sizes, sizes)
    pos = np.empty(len(item), dtype=np.int64)
    pos[order] = np.arange(len(item)) - starts
    return pos


def vote_probs_for(fit: crowd.Fit, item, rater, label, n_items: int, weights=None):
    """N×K: each clip's predicted next vote under a fitted model, from the votes given: its
    posterior over the truth times the crowd's confusion (`crowd.Fit.crowd_confusion`)."""
    post = crowd.posteriors(item, rater, label, n_items, fit.priors, fit.confusion)
    return post @ fit.crowd_confusion(weights)


def replay(item, rater, label, n_items: int, n_labels: int, rule: StopRule,
           fit: crowd.Fit | None = None) -> Replay:  # fmt: skip
    """Replays each clip's votes in the given order, asking the stop rule after each vote.

    ``fit``: the quality model of the campaign (needed for ``rule.confidence``), fitted on all
    its votes as a running campaign's stored model is fitted on the votes so far."""
    item, label, rater = (np.asarray(a, dtype=np.int64) for a in (item, label, rater))
    pos = _positions(item)
    total = np.bincount(item, minlength=n_items)
    full_counts = agreement.vote_counts(item, label, n_items, n_labels)
    full_single = single_labels(full_counts, rule.min_votes)
    used = total.copy()
    single = full_single.copy()
    open_ = total > 0
    weights = np.bincount(rater, minlength=len(fit.confusion)) if fit is not None else None
    for n in range(1, int(total.max(initial=0)) + 1):
        if not open_.any():
            break
        keep = pos < n
        counts = agreement.vote_counts(item[keep], label[keep], n_items, n_labels)
        probs = None
        if fit is not None and rule.confidence is not None and rule.adaptive:
            probs = vote_probs_for(fit, item[keep], rater[keep], label[keep], n_items, weights)
        # A clip whose votes run out stops there, whatever the rule (imported clips may have
        # fewer than the campaign's maximum).
        stops = open_ & (stop_asking(counts, rule, probs) | (total <= n))
        if stops.any():
            used[stops] = n
            single[stops] = final_single_labels(
                counts[stops], rule, None if probs is None else probs[stops]
            )
            open_ &= ~stops
    return Replay(used=used, single=single, full_single=full_single, total=total)


def _summary(result: Replay) -> dict:
    n = len(result.total)
    full, used = int(result.total.sum()), int(result.used.sum())
    return {
        "n_clips": n,
        "labels_full": full,
        "labels_used": used,
        "saved_fraction": round(1 - used / full, 6) if full else 0.0,
        "single_label_agreement": round(float((result.single == result.full_single).mean()), 6)
        if n
        else None,
        "decided_early": int((result.used < result.total).sum()),
        "votes_histogram": {
            str(k): int(v) for k, v in enumerate(np.bincount(result.used)) if v and k
        },
    }


def simulate_overlap(
    item,
    rater,
    label,
    n_items: int,
    n_raters: int,
    n_labels: int,
    rule: StopRule,
    *,
    method: str = "dawid_skene",
    orders: int = 0,
    seed: int = 0,
    fit: crowd.Fit | None = None,
) -> dict:
    """The adaptive rule replayed in submission order and in ``orders`` random orders of each
    clip's votes (seeded): the figures of the submission order at the top level, each order's
    under ``orders``, and their means under ``mean``.

    ``saved_fraction`` is 1 - labels used / labels given; ``single_label_agreement`` the share
    of clips whose single label under the rule equals the one from all their votes ("no single
    label" included); ``decided_early`` the clips stopped before their last vote."""
    rule = replace(rule, adaptive=True)
    item, rater, label = (np.asarray(a, dtype=np.int64) for a in (item, rater, label))
    if fit is None and rule.confidence is not None:
        fit = crowd.fit(method, item, rater, label, n_items, n_raters, n_labels)
    rng = np.random.default_rng(seed)
    runs = [_summary(replay(item, rater, label, n_items, n_labels, rule, fit))]
    for _ in range(orders):
        shuffled = np.lexsort((rng.random(len(item)), item))
        runs.append(
            _summary(
                replay(
                    item[shuffled], rater[shuffled], label[shuffled], n_items, n_labels, rule, fit
                )  # fmt: skip
            )
        )
    out = dict(runs[0])
    out["rule"] = {
        "min_votes_before_stop": rule.min_before_stop,
        "confidence": rule.confidence,
        "max_votes": rule.max_votes,
        "single_label_min_votes": rule.min_votes,
        "strength": rule.strength,
        "method": method if rule.confidence is not None else None,
    }
    out["orders"] = runs
    keys = ("saved_fraction", "single_label_agreement")
    out["mean"] = {
        key: round(float(np.mean([r[key] for r in runs if r[key] is not None] or [0])), 6)
        for key in keys
    }
    out["mean"]["min_single_label_agreement"] = min(
        (r["single_label_agreement"] for r in runs if r["single_label_agreement"] is not None),
        default=None,
    )
    out["seed"] = seed
    return out


def overlap_svg(points: list[dict], confidence: float | None) -> str:
    """Labels saved against single-label agreement, one point per K (``points`` as
    ``labeling.results.overlap.campaign_overlap_curve`` gives them), as inline SVG text."""
    from pipeline.plots import _STYLE, _svg, plt  # the project's one way of drawing

    with plt.rc_context(_STYLE):
        figure, axes = plt.subplots(figsize=(5.5, 3.2))
        saved = [100 * p["saved_fraction"] for p in points]
        agree = [100 * p["single_label_agreement"] for p in points]
        axes.plot(saved, agree, marker="o", color="#4c72b0")
        for p, x, y in zip(points, saved, agree, strict=True):
            axes.annotate(f"K={p['k']}", (x, y), textcoords="offset points", xytext=(4, 4))
        axes.axhline(99.5, color="#c44e52", lw=1, ls="--", label="99.5 %")
        axes.legend(frameon=False, loc="lower left")
        axes.set_xlabel("labels saved (%)")
        axes.set_ylabel("clips keeping their single label (%)")
        rule = "exact rule" if confidence is None else f"confidence ≥ {confidence:g}"
        axes.set_title(f"Adaptive overlap ({rule})")
        return _svg(figure)
