"""Adaptive overlap replayed on a campaign's own votes (``pipeline.overlap``): the
``simulate_overlap`` command and the staff page read their figures here. Reads only."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from labeling.loop import slots
from labeling.models import Annotation, Campaign, Clip
from pipeline import crowd
from pipeline.overlap import simulate_overlap


def campaign_votes_in_order(campaign: Campaign):
    """(item, rater, label, n_items, n_raters, n_labels) of the valid votes of the campaign's
    complete clips, each clip's votes in submission order (time, then id)."""
    codes = list(campaign.labels.order_by("code").values_list("code", flat=True))
    rows = np.array(
        list(
            Annotation.objects.valid()
            .filter(clip__campaign=campaign, clip__status=Clip.Status.COMPLETE)
            .order_by("clip_id", "created_at", "pk")
            .values_list("clip_id", "annotator_id", "label__code")
        ),
        dtype=np.int64,
    ).reshape(-1, 3)
    _, item = np.unique(rows[:, 0], return_inverse=True)
    people, rater = np.unique(rows[:, 1], return_inverse=True)
    label = np.searchsorted(codes, rows[:, 2])
    n_items = int(item.max()) + 1 if len(item) else 0
    return item, rater, label, n_items, len(people), len(codes)


def campaign_overlap_simulation(
    campaign: Campaign,
    *,
    min_votes: int,
    confidence: float | None = None,
    orders: int = 0,
    seed: int = 0,
    votes=None,
    fit: crowd.Fit | None = None,
) -> dict:
    """The adaptive rule (after ``min_votes`` votes; with ``confidence``, the campaign's
    quality model's) replayed on the campaign's complete clips (``pipeline.overlap``)."""
    item, rater, label, n_items, n_raters, n_labels = votes or campaign_votes_in_order(campaign)
    rule = replace(
        slots.stop_rule_of(campaign),
        adaptive=True,
        min_before_stop=min_votes,
        confidence=confidence,
    )
    from labeling.results.quality import confidence_method

    out = simulate_overlap(
        item,
        rater,
        label,
        n_items,
        n_raters,
        n_labels,
        rule,
        method=confidence_method(campaign),
        orders=orders,
        seed=seed,
        fit=fit,
    )
    out["campaign"] = campaign.slug
    return out


def campaign_overlap_curve(campaign: Campaign, *, confidence: float | None, ks=range(3, 11)):
    """Labels saved and single-label agreement for each K (the staff page's plot): one load of
    the votes and one model fit for all."""
    votes = campaign_votes_in_order(campaign)
    item, rater, label, n_items, n_raters, n_labels = votes
    fit = None
    if confidence is not None and len(item):
        from labeling.results.quality import confidence_method

        fit = crowd.fit(confidence_method(campaign), item, rater, label, n_items, n_raters,
                        n_labels)  # fmt: skip
    points = []
    for k in ks:
        if k > campaign.annotations_per_clip or not len(item):
            continue
        result = campaign_overlap_simulation(
            campaign, min_votes=k, confidence=confidence, votes=votes, fit=fit
        )
        points.append(
            {
                "k": k,
                "saved_fraction": result["saved_fraction"],
                "single_label_agreement": result["single_label_agreement"],
                "labels_used": result["labels_used"],
                "labels_full": result["labels_full"],
            }
        )
    return points
