"""Adaptive overlap and quality-aware aggregation on a DFEW-size campaign with known truth.

A generated campaign (``pipeline.synthetic.simulate_campaign``: 16,372 clips × 10 votes from
40 annotators, 3 of them careless, three clips in four clear) goes through the pure functions
the app runs (no database: the figures are the rule's, not the server's):

- overlap: the clips' votes replayed in submission order and in ``--orders`` random orders
  with the stop rule (``pipeline.overlap.simulate_overlap``); the baseline is all ten votes
  per clip (163,720 labels), and the exact rule alone is shown beside the confidence rule;
- accuracy against the planted truth with the first five votes of each clip and with all ten:
  the plurality vote with ties broken at random (the baseline), DFEW's single label where it
  has one, and every method (those that lose included);
- time: each method fitted on all 163,720 votes on one core (BLAS threads limited to one),
  beside DFEW's rule (``pipeline.aggregation.aggregate``) in the same run.

    python bench/overlap.py [--clips 16372] [--seed 0] [--orders 2] [--json figures.json]

Exits 1 when a target is missed: >= 30 % fewer labels with >= 99.5 % of clips keeping their
all-votes single label; a quality-aware label beating plurality with five votes; the slowest
method <= 10 s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import agreement, crowd  # noqa: E402
from pipeline.aggregation import StopRule, aggregate, single_labels  # noqa: E402
from pipeline.overlap import simulate_overlap  # noqa: E402
from pipeline.synthetic import simulate_campaign  # noqa: E402

K, CONFIDENCE, METHOD = 5, 0.985, "dawid_skene"  # the campaign settings measured


def time_methods(item, rater, label, n_items, n_raters, n_labels, min_votes, repeat=3) -> dict:
    """Best-of-``repeat`` seconds of every method on one core; DFEW's rule is the baseline."""
    times = {}
    with threadpool_limits(1):
        counts = agreement.vote_counts(item, label, n_items, n_labels)
        for method in crowd.METHODS:
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                if method == "majority":
                    aggregate(agreement.vote_counts(item, label, n_items, n_labels), min_votes)
                else:
                    crowd.fit(method, item, rater, label, n_items, n_raters, n_labels)
                best = min(best, time.perf_counter() - start)
            times[method] = best
    del counts
    return times


def accuracies(c, first: int, seed: int) -> dict:
    keep = np.tile(np.arange(10), c.n_items) < first
    item, rater, label = c.item[keep], c.rater[keep], c.label[keep]
    counts = agreement.vote_counts(item, label, c.n_items, c.n_labels)
    plurality, _ = crowd.labels_and_confidence(counts, np.random.default_rng(seed))
    out = {"plurality (random ties)": float((plurality == c.truth).mean())}
    single = single_labels(counts, 7) if first == 10 else None
    if single is not None:
        has = single >= 0
        out["DFEW single label, where it has one"] = float((single[has] == c.truth[has]).mean())
    for method in crowd.QUALITY_METHODS:
        fit = crowd.fit(method, item, rater, label, c.n_items, c.n_raters, c.n_labels)
        out[method] = float((fit.posteriors.argmax(axis=1) == c.truth).mean())
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--clips", type=int, default=16372)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--orders", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    c = simulate_campaign(args.clips, seed=args.seed)
    votes = (c.item, c.rater, c.label, c.n_items, c.n_raters, c.n_labels)
    print(f"campaign: {c.n_items} clips, {len(c.item)} votes, {c.n_raters} annotators "
          f"({int(c.careless.sum())} careless), seed {args.seed}")  # fmt: skip

    exact = StopRule(10, 7, adaptive=True, min_before_stop=K)
    confident = StopRule(10, 7, adaptive=True, min_before_stop=K, confidence=CONFIDENCE)
    runs = {
        "exact rule": simulate_overlap(*votes, exact, orders=args.orders, seed=args.seed),
        f"confidence >= {CONFIDENCE} ({METHOD})": simulate_overlap(
            *votes, confident, method=METHOD, orders=args.orders, seed=args.seed
        ),
    }
    print(f"\nadaptive overlap, K = {K}; baseline: all votes, {len(c.item):,} labels")
    print(f"{'rule':<34}{'labels':>9}{'saved':>8}{'kept':>9}{'worst order':>13}{'early':>7}")
    for name, r in runs.items():
        print(f"{name:<34}{r['labels_used']:>9,}{100 * r['saved_fraction']:>7.1f}%"
              f"{100 * r['single_label_agreement']:>8.2f}%"
              f"{100 * r['mean']['min_single_label_agreement']:>12.2f}%{r['decided_early']:>7}")  # fmt: skip
    adaptive = runs[f"confidence >= {CONFIDENCE} ({METHOD})"]

    print("\naccuracy against the planted truth")
    table = {n: accuracies(c, n, args.seed) for n in (5, 10)}
    for name in table[10]:
        five = table[5].get(name)
        cells = "—" if five is None else f"{100 * five:.2f}%"
        print(f"  {name:<38}{cells:>9}{100 * table[10][name]:>9.2f}%   (5 votes, 10 votes)")
    best_five = max(table[5][m] for m in crowd.QUALITY_METHODS)
    gain = best_five - table[5]["plurality (random ties)"]

    times = time_methods(*votes, min_votes=7)
    print(f"\ntime on one core, {len(c.item):,} votes (baseline: DFEW's rule)")
    for method, seconds in times.items():
        print(f"  {method:<14}{seconds:8.3f} s  {seconds / times['majority']:8.1f}× majority")
    slowest = max(times[m] for m in crowd.QUALITY_METHODS)

    targets = {
        "saved >= 30 %": adaptive["saved_fraction"] >= 0.30,
        "kept >= 99.5 % (submission order)": adaptive["single_label_agreement"] >= 0.995,
        "quality-aware beats plurality at 5 votes": gain > 0,
        "slowest method <= 10 s": slowest <= 10.0,
    }
    print(f"\nbest quality-aware gain over plurality at 5 votes: {100 * gain:+.2f} points")
    for name, ok in targets.items():
        print(f"  {name:<44}{'PASS' if ok else 'FAIL'}")
    if args.json:
        args.json.write_text(json.dumps(
            {"overlap": runs, "accuracy": table, "seconds": times, "pass": targets}, indent=2
        ))  # fmt: skip
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
