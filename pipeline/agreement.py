"""Inter-annotator agreement for a labelling campaign: Fleiss' kappa, Krippendorff's alpha,
Dawid–Skene and per-annotator statistics.

Labels arrive in long form, one entry per label given: ``item`` (clip index 0..N-1), ``rater``
(annotator index 0..R-1) and ``label`` (label index 0..K-1), equal-length integer arrays.
Different clips may be labelled by different subsets of annotators (crowdsourcing). A counts
matrix is N×K: how many annotators gave each clip each label.

Everything is vectorised over clips and rows (DFEW size, 16,372 clips × 10 labels, takes well
under a second per function); loops run only over raters, labels or EM iterations.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import krippendorff
import numpy as np
from scipy import sparse
from sklearn.exceptions import UndefinedMetricWarning
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa

# Bootstrap resample weights are drawn as a (chunk × N) matrix; this caps its size (16 MB).
_BOOTSTRAP_CELLS = 2_000_000

# Robust spread of agreement: MAD × 1.4826 estimates the standard deviation of normal data.
_MAD_TO_SD = 1.4826


def _index(name: str, values, size: int) -> np.ndarray:
    """`values` as a 1-D int64 array of indices in 0..size-1, else ValueError."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got {array.dtype}")
    array = array.astype(np.int64, copy=False)
    if array.size and (array.min() < 0 or array.max() >= size):
        raise ValueError(f"{name} must lie in 0..{size - 1}, got {array.min()}..{array.max()}")
    return array


def _rows(item, label, n_items: int, n_labels: int, rater=None, n_raters: int = 0):
    """Validated long-form arrays (item, label[, rater]), all of one length."""
    if n_labels < 1:
        raise ValueError(f"n_labels must be at least 1, got {n_labels}")
    item = _index("item", item, n_items)
    label = _index("label", label, n_labels)
    arrays = [item, label]
    if rater is not None:
        arrays.append(_index("rater", rater, n_raters))
    if len({len(a) for a in arrays}) != 1:
        raise ValueError(f"item, label and rater differ in length: {[len(a) for a in arrays]}")
    return arrays


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Element-wise numerator / denominator, NaN where the denominator is 0."""
    out = np.full(len(denominator), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def vote_counts(item, label, n_items: int, n_labels: int) -> np.ndarray:
    """N×K int64 matrix: how many labels each clip got for each label index."""
    item, label = _rows(item, label, n_items, n_labels)
    flat = np.bincount(item * n_labels + label, minlength=n_items * n_labels)
    return flat.reshape(n_items, n_labels).astype(np.int64, copy=False)


def _as_counts(counts) -> np.ndarray:
    """`counts` as a 2-D non-negative int64 array (integral floats are accepted)."""
    array = np.asarray(counts)
    if array.ndim != 2:
        raise ValueError(f"counts must be 2-D (clips × labels), got shape {array.shape}")
    if array.size and array.dtype.kind not in "iuf":
        raise ValueError(f"counts must be numeric, got {array.dtype}")
    if array.size and not (np.isfinite(array).all() and (array == np.round(array)).all()):
        raise ValueError("counts must be whole numbers")
    if array.size and array.min() < 0:
        raise ValueError("counts must be non-negative")
    return array.astype(np.int64)


def check_counts(counts) -> np.ndarray:
    """Validate a counts matrix in which every clip has the same number m >= 2 of labels.

    Returns it as int64; raises ValueError otherwise. Zero clips are allowed.
    """
    array = _as_counts(counts)
    totals = array.sum(axis=1)
    if len(totals) and (totals != totals[0]).any():
        values = np.unique(totals)
        raise ValueError(f"unequal numbers of raters per clip: {values[:10].tolist()}")
    if len(totals) and totals[0] < 2:
        raise ValueError(f"every clip needs at least 2 raters, got {totals[0]}")
    return array


def _per_item_agreement(counts: np.ndarray) -> np.ndarray:
    """P_i of Fleiss (1971): the share of agreeing rater pairs on each clip."""
    m = counts[0].sum()
    return ((counts * counts).sum(axis=1) - m) / (m * (m - 1))


@dataclass(frozen=True)
class Fleiss:
    kappa: float | None  # None when undefined
    observed: float | None  # P-bar: mean per-clip agreement
    chance: float | None  # P-bar-e: sum of squared label proportions
    per_category: list[float | None]  # kappa_j of Fleiss (1971); None where p_j is 0 or 1
    reason: str | None  # why kappa is None


def fleiss(counts) -> Fleiss:
    """Fleiss' kappa for a counts matrix with the same number of raters on every clip.

    The headline kappa comes from statsmodels; the parts (observed and chance agreement, the
    per-category kappas) are computed here. Kappa is None, with a reason, when there are no clips
    or when every vote is for one label (chance agreement 1 makes kappa 0/0).
    """
    counts = check_counts(counts)
    n, k = counts.shape
    if n == 0:
        return Fleiss(None, None, None, [None] * k, "no complete clip")
    m = int(counts[0].sum())
    totals = counts.sum(axis=0)
    p = totals / (n * m)
    observed = float(_per_item_agreement(counts).mean())
    chance = float((p * p).sum())
    # Fleiss (1971): kappa_j = 1 - sum_i n_ij (m - n_ij) / (N m (m - 1) p_j q_j).
    disagreement = (counts * (m - counts)).sum(axis=0)
    per_category = [
        None
        if totals[j] in (0, n * m)
        else float(1 - disagreement[j] / (n * m * (m - 1) * p[j] * (1 - p[j])))
        for j in range(k)
    ]
    # Decided on the integer totals, not on the float chance, so there is no rounding edge.
    if np.count_nonzero(totals) == 1:
        reason = "every vote is for one label (chance agreement is 1)"
        return Fleiss(None, observed, 1.0, per_category, reason)
    kappa = float(fleiss_kappa(counts, method="fleiss"))
    return Fleiss(kappa, observed, chance, per_category, None)


def bootstrap_kappa_ci(
    counts, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """Percentile bootstrap interval for Fleiss' kappa, resampling clips with replacement.

    Seeded with numpy's default_rng(seed), so the same seed gives the same interval. Resamples
    whose votes all fall in one label (kappa undefined) are dropped. None when kappa itself is
    undefined or every resample is dropped.
    """
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    counts = check_counts(counts)
    if fleiss(counts).kappa is None:
        return None
    n, _ = counts.shape
    m = counts[0].sum()
    # Kappa is a function of two sums over clips, sum_i P_i and sum_i n_ij, so one matrix product
    # of resample weights (how often each clip is drawn) with [P_i, n_ij] gives every resample.
    design = np.column_stack([_per_item_agreement(counts), counts]).astype(float)
    rng = np.random.default_rng(seed)
    chunk = max(1, _BOOTSTRAP_CELLS // n)
    kappas = []
    for start in range(0, n_resamples, chunk):
        size = min(chunk, n_resamples - start)
        draws = rng.integers(0, n, size=(size, n))
        offsets = np.arange(size)[:, None] * n
        weights = np.bincount((draws + offsets).ravel(), minlength=size * n).reshape(size, n)
        sums = weights @ design
        observed = sums[:, 0] / n
        p = sums[:, 1:] / (n * m)
        chance = (p * p).sum(axis=1)
        # Label totals are whole numbers, exact in float64: a single non-zero one means chance 1.
        defined = np.count_nonzero(sums[:, 1:], axis=1) > 1
        kappas.append((observed[defined] - chance[defined]) / (1 - chance[defined]))
    kappas = np.concatenate(kappas)
    if not len(kappas):
        return None
    low, high = np.quantile(kappas, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def landis_koch(kappa: float | None) -> str | None:
    """Landis & Koch (1977) band for a kappa: poor (< 0), slight (0 to 0.20), fair (to 0.40),
    moderate (to 0.60), substantial (to 0.80), almost perfect (above 0.80).

    Bands are closed above: 0.20 is slight, 0.2001 is fair. None for None or NaN.
    """
    if kappa is None or math.isnan(kappa):
        return None
    if kappa < 0:
        return "poor"
    for upper, name in ((0.2, "slight"), (0.4, "fair"), (0.6, "moderate"), (0.8, "substantial")):
        if kappa <= upper:
            return name
    return "almost perfect"


def krippendorff_alpha(counts) -> float | None:
    """Nominal Krippendorff's alpha of a value-counts matrix (clips × labels).

    Rows may have unequal totals (missing labels); rows with fewer than 2 labels are not
    pairable and do not count. None when alpha is undefined: no pairable row, or every
    pairable label is the same value.
    """
    counts = _as_counts(counts)
    pairable = counts[counts.sum(axis=1) >= 2]
    if np.count_nonzero(pairable.sum(axis=0)) < 2:
        return None
    return float(krippendorff.alpha(value_counts=pairable, level_of_measurement="nominal"))


def leave_one_out_majority(item, label, n_items: int, n_labels: int) -> np.ndarray:
    """For each row, the label the other raters of that clip voted for most.

    -1 where those others tie for the top or where there are no others.
    """
    item, label = _rows(item, label, n_items, n_labels)
    others = vote_counts(item, label, n_items, n_labels)[item]
    others[np.arange(len(item)), label] -= 1
    top = others.max(axis=1, initial=0)
    winner = others.argmax(axis=1)
    tied = (others == top[:, None]).sum(axis=1) > 1
    winner[tied | (top == 0)] = -1
    return winner


@dataclass(frozen=True)
class DawidSkene:
    posteriors: np.ndarray  # N×K, P(true label | all labels); rows sum to 1
    priors: np.ndarray  # K, estimated share of each true label
    confusion: np.ndarray  # R×K×K, confusion[r, true, given]; rows sum to 1
    accuracy: np.ndarray  # R, expected share of r's labels that are correct; NaN without rows
    iterations: int  # EM iterations run (max_iter when it did not converge)


def dawid_skene(
    item,
    rater,
    label,
    n_items: int,
    n_raters: int,
    n_labels: int,
    max_iter: int = 100,
    tol: float = 1e-6,
    smoothing: float = 0.01,
) -> DawidSkene:
    """Dawid & Skene (1979) EM estimate of each clip's true label and each rater's confusion.

    Assumes raters label independently given the true label. Starts from majority-vote
    posteriors (each clip's vote shares); stops when no posterior moves by tol or more, or after
    max_iter iterations. `smoothing` (> 0) is added to every confusion count and prior count so
    that no probability is 0: otherwise one rater never yet seen giving label l for true label t
    would rule t out on every clip they labelled l. Clips without labels get the priors as
    posteriors and do not inform the priors.
    """
    item, label, rater = _rows(item, label, n_items, n_labels, rater, n_raters)
    if smoothing <= 0:
        raise ValueError(f"smoothing must be positive, got {smoothing}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}")
    k = n_labels
    # votes[i, r*K + l]: how often rater r gave clip i label l. Both EM steps are products with it.
    votes = sparse.csr_matrix(
        (np.ones(len(item)), (item, rater * k + label)), shape=(n_items, n_raters * k)
    )
    votes_t = votes.T.tocsr()
    counts = vote_counts(item, label, n_items, n_labels)
    labelled = counts.sum(axis=1) > 0
    posteriors = np.full((n_items, k), 1 / k)
    posteriors[labelled] = counts[labelled] / counts[labelled].sum(axis=1, keepdims=True)
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        # M-step: priors and confusion matrices from the current posteriors.
        priors = posteriors[labelled].sum(axis=0) + smoothing
        priors /= priors.sum()
        given_true = (votes_t @ posteriors).reshape(n_raters, k, k) + smoothing
        confusion = given_true.transpose(0, 2, 1)
        confusion /= confusion.sum(axis=2, keepdims=True)
        # E-step in log space: a product over a clip's labels can underflow when it has many.
        log_given_true = np.log(confusion).transpose(0, 2, 1).reshape(n_raters * k, k)
        log_post = np.log(priors) + votes @ log_given_true
        log_post -= log_post.max(axis=1, keepdims=True)
        updated = np.exp(log_post)
        updated /= updated.sum(axis=1, keepdims=True)
        change = np.abs(updated - posteriors).max(initial=0.0)
        posteriors = updated
        if change < tol:
            break
    correct = np.bincount(rater, weights=posteriors[item, label], minlength=n_raters)
    accuracy = _ratio(correct, np.bincount(rater, minlength=n_raters))
    return DawidSkene(posteriors, priors, np.ascontiguousarray(confusion), accuracy, iterations)


@dataclass(frozen=True)
class RaterStats:
    n_labels: np.ndarray  # R int: labels given
    agreement_with_majority: np.ndarray  # R: share equal to the others' majority; NaN if none
    cohen_kappa_vs_majority: list[float | None]  # R: Cohen's kappa against that majority
    dawid_skene_accuracy: np.ndarray  # R: DawidSkene.accuracy
    median_seconds: np.ndarray  # R: median seconds per label; NaN where none known
    flagged: np.ndarray  # R bool: agreement far below the other raters'


def _group_medians(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of `values` per group index, NaN values ignored, NaN for an empty group."""
    known = ~np.isnan(values)
    group, values = group[known], values[known]
    ordered = values[np.lexsort((values, group))]
    sizes = np.bincount(group, minlength=n_groups)
    starts = np.cumsum(sizes) - sizes
    present = sizes > 0
    low = starts[present] + (sizes[present] - 1) // 2
    high = starts[present] + sizes[present] // 2
    medians = np.full(n_groups, np.nan)
    medians[present] = (ordered[low] + ordered[high]) / 2
    return medians


def rater_stats(
    item,
    rater,
    label,
    n_items: int,
    n_raters: int,
    n_labels: int,
    seconds=None,
    min_labels: int = 20,
) -> RaterStats:
    """Per-rater quality statistics against the leave-one-out majority of the same clip.

    A row counts towards agreement and Cohen's kappa only where the other raters of its clip
    have a single top label (see leave_one_out_majority). `seconds` is optional time per row
    (NaN where unknown).

    Flagging rule: among raters with at least `min_labels` labels and a defined agreement, take
    the median agreement and its MAD; a rater is flagged when its agreement is below
    median - max(3 × 1.4826 × MAD, 0.10). The median and MAD are robust, so a bad rater does not
    move the bar enough to hide itself; the 0.10 floor keeps a tight, good crowd from flagging
    raters who are only slightly below it.
    """
    item, label, rater = _rows(item, label, n_items, n_labels, rater, n_raters)
    if seconds is None:
        seconds = np.full(len(item), np.nan)
    seconds = np.asarray(seconds, dtype=float)
    if seconds.shape != item.shape:
        raise ValueError(f"seconds must have one entry per row, got shape {seconds.shape}")
    majority = leave_one_out_majority(item, label, n_items, n_labels)
    defined = majority >= 0
    n_given = np.bincount(rater, minlength=n_raters)
    hits = np.bincount(
        rater[defined], weights=label[defined] == majority[defined], minlength=n_raters
    )
    agreement = _ratio(hits, np.bincount(rater[defined], minlength=n_raters))

    # Group the defined rows by rater once, then one sklearn call per rater.
    order = np.argsort(rater[defined], kind="stable")
    bounds = np.cumsum(np.bincount(rater[defined], minlength=n_raters))[:-1]
    own = np.split(label[defined][order], bounds)
    others = np.split(majority[defined][order], bounds)
    kappas: list[float | None] = []
    for given, expected in zip(own, others, strict=True):
        kappa = None
        if len(given) >= 2:
            with warnings.catch_warnings():
                # Undefined kappa (one label in common) is reported as None, not warned about.
                warnings.simplefilter("ignore", UndefinedMetricWarning)
                value = cohen_kappa_score(given, expected, labels=range(n_labels))
            kappa = None if math.isnan(value) else float(value)
        kappas.append(kappa)

    model = dawid_skene(item, rater, label, n_items, n_raters, n_labels)

    eligible = (n_given >= min_labels) & ~np.isnan(agreement)
    flagged = np.zeros(n_raters, dtype=bool)
    if eligible.any():
        centre = np.median(agreement[eligible])
        mad = np.median(np.abs(agreement[eligible] - centre))
        bar = centre - max(3 * _MAD_TO_SD * mad, 0.10)
        flagged[eligible] = agreement[eligible] < bar
    return RaterStats(
        n_labels=n_given,
        agreement_with_majority=agreement,
        cohen_kappa_vs_majority=kappas,
        dawid_skene_accuracy=model.accuracy,
        median_seconds=_group_medians(rater, seconds, n_raters),
        flagged=flagged,
    )


def share_histogram(counts, bins: int = 10) -> tuple[list[int], list[float]]:
    """Histogram over [0, 1] of each clip's winning share (top count / m): (counts, edges).

    Bins are [j/bins, (j+1)/bins), the last one closed. Shares are whole fractions c/m, so the
    bin is found in integer arithmetic: np.histogram's float edges would put 3/10 below
    0.30000000000000004 and so in the wrong bin.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    counts = check_counts(counts)
    top = counts.max(axis=1, initial=0)
    m = counts[0].sum() if len(counts) else 1
    index = np.minimum(top * bins // m, bins - 1)
    histogram = np.bincount(index, minlength=bins)
    edges = [j / bins for j in range(bins + 1)]
    return histogram.tolist(), edges
