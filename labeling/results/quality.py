"""A campaign's quality models: fitted from its votes, stored, and used to score clips.

``quality_models_refit`` fits every quality-aware method (``pipeline.crowd``) on the valid
votes of the campaign's complete clips and stores each as a `QualityModel` row. The per-clip
aggregation (``labeling.results.aggregation``) and the adaptive-overlap rule in the loop
(``labeling.loop.services``) score a clip from its own votes with the stored rows
(`ScoringModel`), so neither refits per clip; ``quality_models_for`` refits when a model is
missing or the campaign's votes have grown by a quarter since it was fitted (so a campaign of
163,720 votes is refitted a few dozen times in its life, not per clip). The agreement report's
run refits them; ``clips_quality_refresh`` also re-scores every complete clip with them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone

from labeling.models import Annotation, Campaign, Clip, QualityModel
from pipeline import crowd

logger = logging.getLogger(__name__)

# Refit once the campaign's votes have grown by this share since the stored fit.
REFIT_GROWTH = 0.25


def confidence_method(campaign: Campaign) -> str:
    """The model whose confidence the adaptive rule uses: the campaign's method, or
    Dawid–Skene when that is DFEW's rule (which has no model of the annotators)."""
    method = campaign.aggregation_method
    return method if method in crowd.QUALITY_METHODS else "dawid_skene"


@dataclass(frozen=True)
class ScoringModel:
    """A stored `QualityModel` made ready to score clips: confusion per annotator id, and the
    crowd's for annotators it never saw."""

    method: str
    priors: np.ndarray
    by_annotator: dict[int, np.ndarray]
    crowd: np.ndarray

    @classmethod
    def from_row(cls, row: QualityModel) -> ScoringModel:
        confusion = {key: np.asarray(value, dtype=float) for key, value in row.confusion.items()}
        crowd_confusion = confusion.pop("crowd")
        return cls(
            method=row.method,
            priors=np.asarray(row.priors, dtype=float),
            by_annotator={int(key): value for key, value in confusion.items()},
            crowd=crowd_confusion,
        )

    def posteriors(self, item, annotator_ids, label, n_items: int) -> np.ndarray:
        """N×K posterior of each clip's truth from its votes (``annotator_ids`` are user ids)."""
        annotator_ids = np.asarray(annotator_ids, dtype=np.int64)
        known = sorted(self.by_annotator)
        table = np.stack([self.by_annotator[a] for a in known] + [self.crowd])
        index = np.searchsorted(known, annotator_ids) if known else np.zeros_like(annotator_ids)
        index = np.minimum(index, len(known))
        found = index < len(known)
        found[found] = np.asarray(known)[index[found]] == annotator_ids[found]
        rater = np.where(found, index, len(known))
        return crowd.posteriors(item, rater, label, n_items, self.priors, table)

    def vote_probs(self, posteriors: np.ndarray) -> np.ndarray:
        """N×K: each clip's predicted next vote (an unknown annotator from the crowd)."""
        return posteriors @ self.crowd


def campaign_label_names(campaign_id: int) -> list[str]:
    return list(
        Campaign.objects.get(pk=campaign_id).labels.order_by("code").values_list("name", flat=True)
    )


def _complete_votes(campaign_id: int):
    """(clip ids, item, annotator ids, label index) of the valid votes of complete clips."""
    codes = list(
        Campaign.objects.get(pk=campaign_id).labels.order_by("code").values_list("pk", flat=True)
    )
    rows = np.array(
        list(
            Annotation.objects.valid()
            .filter(clip__campaign_id=campaign_id, clip__status=Clip.Status.COMPLETE)
            .order_by()
            .values_list("clip_id", "annotator_id", "label_id")
        ),
        dtype=np.int64,
    ).reshape(-1, 3)
    clip_ids, item = np.unique(rows[:, 0], return_inverse=True)
    order = np.argsort(codes)
    label = (
        order[np.searchsorted(np.asarray(codes)[order], rows[:, 2])] if len(rows) else rows[:, 2]
    )
    return clip_ids, item.astype(np.int64), rows[:, 1], label.astype(np.int64), len(codes)


def quality_models_refit(campaign_id: int) -> dict[str, ScoringModel]:
    """Fits every quality-aware method on the campaign's complete clips and stores each (an
    upsert: a re-run replaces the rows). Empty when no clip is complete."""
    clip_ids, item, annotators, label, k = _complete_votes(campaign_id)
    if not len(item):
        return {}
    names = campaign_label_names(campaign_id)
    people, rater = np.unique(annotators, return_inverse=True)
    weights = np.bincount(rater, minlength=len(people))
    now = timezone.now()
    out = {}
    with transaction.atomic():
        for method in crowd.QUALITY_METHODS:
            fit = crowd.fit(method, item, rater, label, len(clip_ids), len(people), k)
            confusion = {
                str(int(a)): np.round(fit.confusion[r], 6).tolist() for r, a in enumerate(people)
            }
            confusion["crowd"] = np.round(fit.crowd_confusion(weights), 6).tolist()
            row, _ = QualityModel.objects.update_or_create(
                campaign_id=campaign_id,
                method=method,
                defaults={
                    "labels": names,
                    "priors": np.round(fit.priors, 6).tolist(),
                    "confusion": confusion,
                    "n_votes": len(item),
                    "fitted_at": now,
                },
            )
            out[method] = ScoringModel.from_row(row)
    logger.info("refitted quality models of campaign %d on %d votes", campaign_id, len(item))
    return out


def quality_models_for(campaign_id: int, *, votes_now: int | None = None) -> dict:
    """The campaign's stored models; refitted when one is missing, was fitted on another label
    set, or the votes of complete clips (``votes_now``, counted if not given) have grown by
    `REFIT_GROWTH` since."""
    rows = list(QualityModel.objects.filter(campaign_id=campaign_id))
    names = campaign_label_names(campaign_id)
    if votes_now is None:
        votes_now = (
            Annotation.objects.valid()
            .filter(clip__campaign_id=campaign_id, clip__status=Clip.Status.COMPLETE)
            .count()
        )
    stale = (
        len(rows) < len(crowd.QUALITY_METHODS)
        or any(row.labels != names for row in rows)
        or any(votes_now > (1 + REFIT_GROWTH) * row.n_votes for row in rows)
    )
    if stale and votes_now:
        return quality_models_refit(campaign_id)
    return {row.method: ScoringModel.from_row(row) for row in rows}


def stored_model(campaign_id: int, method: str) -> ScoringModel | None:
    """One stored model as it is (no refit): what the loop's submit reads."""
    row = QualityModel.objects.filter(campaign_id=campaign_id, method=method).first()
    return None if row is None else ScoringModel.from_row(row)


def quality_json(posteriors: dict[str, np.ndarray], names: list[str]) -> list[dict]:
    """Per clip: {method: {"label", "confidence", "posterior"}} from each method's N×K
    posteriors (ties: the lowest label code)."""
    per_method = {}
    for method, post in posteriors.items():
        label, confidence = crowd.labels_and_confidence(post)
        per_method[method] = (label, confidence, np.round(post, 6))
    n = len(next(iter(posteriors.values()))) if posteriors else 0
    return [
        {
            method: {
                "label": names[int(label[i])],
                "confidence": round(float(confidence[i]), 6),
                "posterior": dict(zip(names, post[i].tolist(), strict=True)),
            }
            for method, (label, confidence, post) in per_method.items()
        }
        for i in range(n)
    ]


def clips_quality_refresh(campaign_id: int) -> int:
    """Refits the campaign's quality models and recomputes every complete clip's result with
    them (``aggregation.clips_aggregate``: idempotent upserts); returns the results written."""
    from labeling.results import aggregation  # it imports this module

    quality_models_refit(campaign_id)
    ids = Clip.objects.filter(campaign_id=campaign_id, status=Clip.Status.COMPLETE)
    return aggregation.clips_aggregate(ids.order_by("pk").values_list("pk", flat=True))
