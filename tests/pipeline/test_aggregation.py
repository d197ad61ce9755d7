"""The single-label rule, the vote distribution, entropy and DFEW's Table 2 (no database)."""

import math

import numpy as np
import pytest

from pipeline.aggregation import (
    aggregate,
    duration_bucket,
    single_labels,
    table2,
)

NAMES = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


class SingleLabelTests:
    def test_it_needs_more_than_six_of_ten_votes_by_default(self):
        # DFEW: a clip is single-labelled when one emotion has more than 6 of its 10 votes.
        counts = np.array(
            [
                [7, 3, 0, 0, 0, 0, 0],  # 7 of 10: single label "happy"
                [6, 4, 0, 0, 0, 0, 0],  # 6 of 10: not enough
                [0, 0, 0, 0, 0, 0, 10],  # unanimous "fear"
                [2, 2, 2, 1, 1, 1, 1],
            ]
        )
        assert single_labels(counts, 7).tolist() == [0, -1, 6, -1]


class AggregateTests:
    def test_it_gives_distribution_share_and_entropy_in_bits(self):
        result = aggregate(np.array([[5, 5, 0], [10, 0, 0], [4, 3, 3]]), 7)
        assert result.distribution[0].tolist() == [0.5, 0.5, 0.0]
        assert result.top_share.tolist() == [0.5, 1.0, 0.4]
        assert result.single.tolist() == [-1, 0, -1]
        # Two equal halves carry one bit; a unanimous clip none.
        assert result.entropy[0] == pytest.approx(1.0)
        assert result.entropy[1] == 0.0
        expected = -(0.4 * math.log2(0.4) + 2 * 0.3 * math.log2(0.3))
        assert result.entropy[2] == pytest.approx(expected)

    def test_it_refuses_a_clip_without_votes(self):
        with pytest.raises(ValueError, match="at least one vote"):
            aggregate(np.array([[0, 0, 0]]), 7)


class Table2Tests:
    def test_it_counts_single_labelled_clips_per_label_and_duration_bucket(self):
        # Buckets as in DFEW's Table 2: [0, 2), [2, 5), [5, inf) seconds.
        single = np.array([0, 0, 0, 1, 6, -1, 6, 0])
        durations = np.array([1.99, 2.0, 5.0, 4.99, 0.5, 1.0, np.nan, 7.0])
        table = table2(single, durations, NAMES)
        assert table["happy"] == {"0-2s": 1, "2-5s": 1, "5s+": 2, "total": 4, "percent": 57.14}
        assert table["sad"]["2-5s"] == 1
        # A clip of unknown duration counts in its label's total but in no bucket.
        assert table["fear"] == {"0-2s": 1, "2-5s": 0, "5s+": 0, "total": 2, "percent": 28.57}
        assert table["disgust"]["total"] == 0
        assert table["total"]["total"] == 7 and table["total"]["percent"] == 100.0
        assert sum(table[name]["total"] for name in NAMES) == 7

    def test_it_has_no_percentages_without_single_labels(self):
        table = table2(np.array([-1, -1]), np.array([1.0, 3.0]), NAMES)
        assert table["happy"]["percent"] is None and table["total"]["total"] == 0

    def test_duration_bucket_edges(self):
        assert [duration_bucket(d) for d in (0.0, 1.999, 2.0, 4.999, 5.0, 60.0)] == [
            "0-2s",
            "0-2s",
            "2-5s",
            "2-5s",
            "5s+",
            "5s+",
        ]
        assert duration_bucket(None) is None and duration_bucket(float("nan")) is None
