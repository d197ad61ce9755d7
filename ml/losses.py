"""Losses: cross-entropy with soft targets, center loss, and EC-STFL.

Each is a small module; networks never compute a loss. The training loop adds an auxiliary
feature loss to the softmax loss: ``L = L_s + λ · L_aux`` (DFEW poster, section 3).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def _pairwise_distances(features: torch.Tensor) -> torch.Tensor:
    """Euclidean distances between all rows, with gradients finite at zero distance."""
    sq = features.pow(2).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * features @ features.T
    # sqrt has an infinite slope at 0 (a sample and itself, or two equal features): clamp.
    return d2.clamp_min(1e-12).sqrt()


def release_lambda_scale(batch_seen: int, reference: int = 32) -> float:
    """The factor applied to λ for the release EC-STFL, which divides by the batch it sees:
    ``batch_seen / reference`` makes ``λ · L`` what the release computes at its batch of
    `reference` (32) whatever the number of processes (the loss sees the global batch) or
    the accumulation (it sees one micro-batch of every process)."""
    return batch_seen / reference


def ec_stfl(features: torch.Tensor, labels: torch.Tensor, variant: str = "poster") -> torch.Tensor:
    """Expression-Clustered Spatiotemporal Feature Learning loss.

    ``variant="poster"`` (DFEW poster, section 3)::

        L = Σ_{i,j: x_j ∈ N(x_i)} ||x_i − x_j|| / N_{x_i}
          ÷ Σ_{i,j: x_j ∉ N(x_i)} ||x_i − x_j|| / N_{x_j}

    where N(x_i) is the set of mini-batch samples with x_i's label and N_{x_i} its size. The
    numerator pulls each expression's features together, the denominator pushes different
    expressions apart; dividing by the label-set sizes keeps frequent classes from dominating.
    A batch with a single label has no different-label pair, so the ratio is undefined; the
    loss is then 0 (a constant: it neither pulls nor pushes).

    ``variant="release"``: what the official 2024 code (github CV-AC/ECSTFL, ``ECSTFL.py``)
    computes, epsilons included. With L1 distances d, per sample i
    ``a_i = Σ_{same} d_ij / (n_same_i + 1e-6)`` (the mean over its label set, itself included),
    ``r_i = Σ_{other} 1/(d_ij + 1e-6) / (n_other_i + 1 + 1e-6)``, and
    ``L = mean_i(a_i · r_i / B)``. A product where the poster has a ratio of sums, so the two
    differ on the same batch.

    Vectorised: one B×B distance matrix, no loop over pairs. Under DDP give it the global
    batch (`ml.distributed.gather_with_grad`).
    """
    if features.dim() != 2 or labels.dim() != 1 or len(features) != len(labels):
        raise ValueError("expected features B×D and labels B")
    same = labels[:, None] == labels[None, :]
    if variant == "release":
        return _ec_stfl_release(features.float(), same)
    if variant != "poster":
        raise ValueError(f"unknown EC-STFL variant {variant!r}; known: poster, release")
    if bool(same.all()):
        return features.sum() * 0.0  # keeps the graph (and DDP's gradient hooks) intact
    distances = _pairwise_distances(features.float())
    # N_{x_i}: how many samples of the batch share sample i's label (itself included).
    set_size = same.sum(1).to(distances.dtype)
    within = (distances * same).sum(1) / set_size  # each i's pairs, over i's set size
    between = (distances * ~same) / set_size[None, :]  # each pair (i, j), over j's set size
    return within.sum() / between.sum()


def _ec_stfl_release(features: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
    distances = torch.cdist(features, features, p=1)  # L1, as the release
    same_f, other_f = same.to(features.dtype), (~same).to(features.dtype)
    attractive = (distances * same_f).sum(1) / (same_f.sum(1) + 1e-6)
    repulsive = (other_f / (distances + 1e-6)).sum(1) / (other_f.sum(1) + 1 + 1e-6)
    return (attractive * repulsive / len(features)).mean()


class ECSTFLLoss(nn.Module):
    def __init__(self, variant: str = "poster"):
        super().__init__()
        self.variant = variant

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return ec_stfl(features, labels, self.variant)


class CenterLoss(nn.Module):
    """Center loss as Wen et al. (ECCV 2016) define and train it.

    The loss is ``½ · mean_i ||x_i − c_{y_i}||²`` (their Caffe layer divides the sum by the
    batch size), its weight λ given by the training loop. The centres are not learned by the
    optimiser: they are a buffer, moved after each optimiser step by their rule (Algorithm 1,
    eq. 4) with rate α::

        Δc_j = Σ_i δ(y_i = j)(c_j − x_i) / (1 + Σ_i δ(y_i = j)),   c_j ← c_j − α · Δc_j

    over the step's whole (global) batch: under DDP `update` receives every process's
    features, so the centres stay equal across processes. Centres start at zero, as in their
    Caffe layer's filler.
    """

    def __init__(self, num_classes: int, num_features: int, alpha: float = 0.5):
        super().__init__()
        self.alpha = alpha
        self.register_buffer("centers", torch.zeros(num_classes, num_features))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return 0.5 * (features.float() - self.centers[labels]).pow(2).sum(1).mean()

    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Wen et al.'s centre step for one batch (features detached, any process count)."""
        features = features.detach().float()
        counts = torch.bincount(labels, minlength=len(self.centers)).to(features.dtype)
        sums = torch.zeros_like(self.centers).index_add_(0, labels, features)
        delta = (counts[:, None] * self.centers - sums) / (1.0 + counts[:, None])
        self.centers -= self.alpha * delta


class SoftTargetCrossEntropy(nn.Module):
    """Cross-entropy against a distribution (e.g. ten annotators' votes, normalised)."""

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return -(target * F.log_softmax(logits.float(), dim=-1)).sum(-1).mean()
