"""The adaptive-overlap stop rule and its replay (pipeline/aggregation.py, pipeline/overlap.py),
no database."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import betaln, comb

from pipeline.aggregation import (
    StopRule,
    decided,
    final_single_labels,
    outcome_probabilities,
    single_labels,
    stop_asking,
)
from pipeline.overlap import simulate_overlap
from pipeline.synthetic import simulate_campaign

DFEW = StopRule(max_votes=10, min_votes=7, adaptive=True, min_before_stop=5)


class DecidedTests:
    def test_it_is_exact_about_what_the_remaining_votes_can_change(self):
        counts = np.array(
            [
                [7, 0, 0],  # 7 of 10 already: single label, whatever comes
                [6, 0, 0],  # 6 of 6: the 7th may or may not come
                [2, 2, 2],  # 6 votes, top 2: 2 + 4 < 7, no single label is possible
                [3, 2, 1],  # 3 + 4 = 7: still possible
                [4, 3, 3],  # all ten: decided
            ]
        )
        assert decided(counts, 10, 7).tolist() == [True, False, True, False, True]


class StopAskingTests:
    def test_without_adaptive_overlap_only_all_votes_stop(self):
        rule = StopRule(max_votes=10, min_votes=7)
        counts = np.array([[7, 0], [9, 0], [10, 0], [5, 5]])
        assert stop_asking(counts, rule).tolist() == [False, False, True, True]

    def test_it_waits_for_k_votes(self):
        rule = StopRule(10, 7, adaptive=True, min_before_stop=8)
        assert stop_asking(np.array([[7, 0]]), rule).tolist() == [False]
        assert stop_asking(np.array([[7, 1]]), rule).tolist() == [True]

    def test_the_confidence_part_needs_a_model_and_k_votes(self):
        rule = StopRule(10, 7, adaptive=True, min_before_stop=5, confidence=0.9)
        counts = np.array([[5, 0], [4, 0]])
        probs = np.array([[0.95, 0.05], [0.95, 0.05]])
        assert stop_asking(counts, rule).tolist() == [False, False]  # no model: exact only
        assert stop_asking(counts, rule, probs).tolist() == [True, False]

    def test_it_refuses_an_ambiguous_single_label_rule(self):
        with pytest.raises(ValueError, match="more than half"):
            StopRule(max_votes=10, min_votes=5)


def betabinom_sf(k, n, a, b):
    """P(X > k), X ~ BetaBinomial(n, a, b), from its pmf C(n, x) B(x + a, n - x + b) / B(a, b)."""
    return sum(
        comb(n, x) * np.exp(betaln(x + a, n - x + b) - betaln(a, b)) for x in range(k + 1, n + 1)
    )


class OutcomeProbabilitiesTests:
    def test_it_is_the_beta_binomial_chance_of_reaching_the_threshold(self):
        # 5 votes, 4 happy and 1 sad; 5 remain; happy needs 3 more, sad 6 (impossible).
        # The next-vote prediction (0.8, 0.2) with 5 pseudo-votes, plus the clip's own votes:
        # happy's share ~ Beta(5·0.8 + 4, 5·0.2 + 1) = Beta(8, 2).
        counts = np.array([[4, 1]])
        probs = outcome_probabilities(counts, 10, 7, np.array([[0.8, 0.2]]), strength=5.0)
        assert probs[0, 0] == pytest.approx(betabinom_sf(2, 5, 8.0, 2.0))
        assert probs[0, 1] == 0.0
        assert probs[0].sum() == pytest.approx(1.0)

    def test_a_settled_clip_has_probability_one(self):
        probs = outcome_probabilities(np.array([[7, 1], [2, 2]]), 10, 7, np.array([[0.5, 0.5]] * 2))
        assert probs[0].tolist() == [1.0, 0.0, 0.0]
        # 2 + 6 = 8 >= 7: both may still win; neither is certain.
        assert 0 < probs[1, 0] < 1 and probs[1, 0] == pytest.approx(probs[1, 1])


class FinalSingleLabelTests:
    def test_it_is_the_single_label_rule_where_the_outcome_is_decided(self):
        counts = np.array([[7, 0, 0], [2, 2, 2], [4, 3, 3]])
        assert final_single_labels(counts, DFEW, np.full((3, 3), 1 / 3)).tolist() == [0, -1, -1]

    def test_a_clip_closed_by_confidence_gets_its_most_probable_outcome(self):
        rule = StopRule(10, 7, adaptive=True, min_before_stop=5, confidence=0.9)
        counts = np.array([[5, 0]])
        assert single_labels(counts, 7).tolist() == [-1]
        assert final_single_labels(counts, rule, np.array([[0.95, 0.05]])).tolist() == [0]


@pytest.fixture(scope="module")
def campaign():
    return simulate_campaign(4000, seed=1)


class SimulateOverlapTests:
    def test_the_exact_rule_never_changes_a_single_label_and_saves_labels(self, campaign):
        c = campaign
        result = simulate_overlap(c.item, c.rater, c.label, c.n_items, c.n_raters, 7, DFEW,
                                  orders=2, seed=4)  # fmt: skip
        assert result["single_label_agreement"] == 1.0
        assert result["mean"]["min_single_label_agreement"] == 1.0
        assert result["saved_fraction"] > 0.15
        assert result["labels_full"] == 40000 and result["n_clips"] == 4000
        assert result["labels_used"] == sum(k * int(n) for k, n in
                                            ((int(k), n) for k, n in
                                             result["votes_histogram"].items()))  # fmt: skip
        assert set(result) >= {"decided_early", "saved_fraction", "labels_used", "orders"}

    def test_the_confidence_rule_saves_a_third_and_keeps_nearly_every_label(self, campaign):
        # The targets, on a campaign a quarter of DFEW's size (bench/overlap.py gives
        # the DFEW-size figures: >= 30 % saved, >= 99.5 % kept).
        c = campaign
        rule = StopRule(10, 7, adaptive=True, min_before_stop=5, confidence=0.985)
        result = simulate_overlap(c.item, c.rater, c.label, c.n_items, c.n_raters, 7, rule)
        assert result["saved_fraction"] >= 0.30
        assert result["single_label_agreement"] >= 0.993
        assert max(int(k) for k in result["votes_histogram"]) <= 10

    def test_random_orders_are_seeded(self, campaign):
        c = campaign
        a = simulate_overlap(c.item, c.rater, c.label, c.n_items, c.n_raters, 7, DFEW,
                             orders=1, seed=9)  # fmt: skip
        b = simulate_overlap(c.item, c.rater, c.label, c.n_items, c.n_raters, 7, DFEW,
                             orders=1, seed=9)  # fmt: skip
        assert a["orders"] == b["orders"] and len(a["orders"]) == 2
