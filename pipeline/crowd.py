"""Quality-aware aggregation: models of each annotator fitted to a campaign's votes by EM.

Pure numpy/scipy: no Django. Votes arrive in long form as in ``pipeline.agreement``: ``item``
(clip index 0..N-1), ``rater`` (annotator index 0..R-1), ``label`` (label index 0..K-1).

Every model here ends as the same two things, so that one function (`posteriors`) gives a
clip's posterior over its true label from any of them, for any subset of its votes (the
adaptive-overlap rule scores clips part-way through) and for annotators the fit never saw:

* ``priors`` (K): the share of each true label;
* ``confusion`` (R×K×K): ``confusion[r, t, l]`` = P(annotator r says l | the truth is t).

The methods (`METHODS`):

* ``majority``: DFEW's rule, no model; its "posterior" is the vote shares.
* ``dawid_skene``: Dawid & Skene (1979), a full confusion matrix per annotator
  (``pipeline.agreement.dawid_skene``).
* ``one_coin``: one accuracy per annotator, errors spread evenly over the other labels (the
  "one-coin" Dawid–Skene of Zhang et al. 2014; crowd-kit's ``OneCoinDawidSkene``). K×K
  parameters per annotator are many for the few hundred votes a careless annotator gives; one
  is enough to down-weight them.
* ``mace``: MACE (Hovy, Berg-Kirkpatrick, Vaswani & Hovy 2013): each vote is the truth unless
  the annotator was "spamming" (probability θ_r), and then it is drawn from that annotator's
  own spam distribution ξ_r. Fitted here by EM with a Beta(0.5, 0.5)-style smoothing of θ, the
  priors estimated as in Dawid–Skene (the paper keeps them uniform).

crowd-kit (Toloka) has these models, but its 1.4 wheel pulls transformers, tokenizers,
huggingface_hub, pyarrow and nltk into the web app's environment for three EM loops of a few
dozen lines; and its pandas implementation is slower than these vectorised ones on DFEW's
163,720 votes (bench/agreement_scale.py). The tests check them against Dawid & Skene's
published example and against hand computations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import agreement

METHODS = ("majority", "dawid_skene", "one_coin", "mace")
QUALITY_METHODS = METHODS[1:]


@dataclass(frozen=True)
class Fit:
    """A fitted model of the annotators, and the posteriors of the clips it was fitted on."""

    method: str
    priors: np.ndarray  # K
    confusion: np.ndarray  # R×K×K, confusion[r, true, given]; rows sum to 1
    posteriors: np.ndarray  # N×K
    iterations: int

    def crowd_confusion(self, weights: np.ndarray | None = None) -> np.ndarray:
        """K×K: the confusion of an annotator drawn from the crowd (weighted by ``weights``,
        e.g. labels given; equal weights otherwise): what the next, unknown, vote looks like."""
        if len(self.confusion) == 0:
            k = len(self.priors)
            return np.full((k, k), 1.0 / k)
        w = np.ones(len(self.confusion)) if weights is None else np.asarray(weights, float)
        if w.sum() <= 0:
            w = np.ones(len(self.confusion))
        return np.tensordot(w / w.sum(), self.confusion, axes=1)


def _log_likelihoods(item, rater, label, n_items, log_confusion) -> np.ndarray:
    """N×K: sum over each clip's votes of log P(vote | truth t), for every t."""
    k = log_confusion.shape[1]
    per_vote = log_confusion[rater, :, label]  # votes × K
    out = np.empty((n_items, k))
    for t in range(k):  # K bincounts: faster than np.add.at over rows
        out[:, t] = np.bincount(item, weights=per_vote[:, t], minlength=n_items)
    return out


def posteriors(item, rater, label, n_items: int, priors, confusion) -> np.ndarray:
    """N×K posterior over each clip's true label given its votes, under a fitted model.

    ``rater`` indexes ``confusion``; a clip without votes gets the priors. Log space: a product
    of many small probabilities underflows."""
    log_post = np.log(priors)[None, :] + _log_likelihoods(
        item, rater, label, n_items, np.log(confusion)
    )
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return post / post.sum(axis=1, keepdims=True)


def _shares(item, label, n_items: int, n_labels: int) -> np.ndarray:
    counts = agreement.vote_counts(item, label, n_items, n_labels).astype(float)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.full_like(counts, 1.0 / n_labels), where=totals > 0)


def _priors(post: np.ndarray, labelled: np.ndarray, smoothing: float) -> np.ndarray:
    priors = post[labelled].sum(axis=0) + smoothing
    return priors / priors.sum()


def _em(item, rater, label, n_items, n_labels, m_step, max_iter, tol, smoothing):
    """EM from majority-vote posteriors: ``m_step(post) -> confusion``; stops when no
    posterior moves by ``tol`` or more."""
    labelled = np.bincount(item, minlength=n_items) > 0
    post = _shares(item, label, n_items, n_labels)
    iterations = 0
    for _ in range(max_iter):
        iterations += 1
        priors = _priors(post, labelled, smoothing)
        confusion = m_step(post)
        updated = posteriors(item, rater, label, n_items, priors, confusion)
        change = np.abs(updated - post).max(initial=0.0)
        post = updated
        if change < tol:
            break
    return priors, confusion, post, iterations


def one_coin(item, rater, label, n_items, n_raters, n_labels, *, max_iter=100, tol=1e-6,
             smoothing=0.5) -> Fit:  # fmt: skip
    """One-coin Dawid–Skene: annotator r is right with probability a_r and otherwise says any
    other label alike. M-step: a_r = (expected correct votes + s) / (votes + 2 s)."""
    item, label, rater = agreement._rows(item, label, n_items, n_labels, rater, n_raters)
    k = n_labels
    given = np.bincount(rater, minlength=n_raters)
    eye = np.eye(k, dtype=bool)

    def m_step(post):
        right = np.bincount(rater, weights=post[item, label], minlength=n_raters)
        accuracy = (right + smoothing) / (given + 2 * smoothing)
        wrong = (1 - accuracy) / max(k - 1, 1)
        return np.where(eye[None], accuracy[:, None, None], wrong[:, None, None])

    priors, confusion, post, its = _em(
        item, rater, label, n_items, k, m_step, max_iter, tol, smoothing
    )
    return Fit("one_coin", priors, confusion, post, its)


def mace(item, rater, label, n_items, n_raters, n_labels, *, max_iter=100, tol=1e-6,
         smoothing=0.5) -> Fit:  # fmt: skip
    """MACE by EM. P(vote l | truth t) = (1 - θ_r) [l = t] + θ_r ξ_r[l].

    M-step: a vote is spam with probability 1 - P(T = l) (1 - θ)/(θ ξ_l + 1 - θ) (a vote that
    differs from the truth is always spam); θ_r is the expected share of spam among r's votes,
    ξ_r the spread of r's expected spam over labels, both smoothed by ``smoothing``."""
    item, label, rater = agreement._rows(item, label, n_items, n_labels, rater, n_raters)
    k = n_labels
    given = np.bincount(rater, minlength=n_raters)
    eye = np.eye(k)
    state = {"theta": np.full(n_raters, 0.5), "xi": np.full((n_raters, k), 1.0 / k)}

    def m_step(post):
        theta, xi = state["theta"], state["xi"]
        spam_l = theta[rater] * xi[rater, label]
        honest = post[item, label] * (1 - theta[rater]) / (spam_l + 1 - theta[rater])
        spam = 1 - honest
        total = np.bincount(rater, weights=spam, minlength=n_raters)
        theta = (total + smoothing) / (given + 2 * smoothing)
        by_label = np.zeros((n_raters, k))
        np.add.at(by_label, (rater, label), spam)
        xi = (by_label + smoothing) / (total[:, None] + k * smoothing)
        state["theta"], state["xi"] = theta, xi
        return (1 - theta)[:, None, None] * eye[None] + (theta[:, None] * xi)[:, None, :]

    priors, confusion, post, its = _em(
        item, rater, label, n_items, k, m_step, max_iter, tol, smoothing
    )
    return Fit("mace", priors, confusion, post, its)


def dawid_skene(item, rater, label, n_items, n_raters, n_labels, **options) -> Fit:
    """Dawid & Skene (1979): ``pipeline.agreement.dawid_skene`` as a `Fit`."""
    model = agreement.dawid_skene(item, rater, label, n_items, n_raters, n_labels, **options)
    return Fit("dawid_skene", model.priors, model.confusion, model.posteriors, model.iterations)


def majority(item, rater, label, n_items, n_raters, n_labels) -> Fit:
    """No model: the posterior is the clip's vote shares; every annotator alike (the pooled
    confusion of the votes against each clip's shares)."""
    item, label, rater = agreement._rows(item, label, n_items, n_labels, rater, n_raters)
    post = _shares(item, label, n_items, n_labels)
    labelled = np.bincount(item, minlength=n_items) > 0
    pooled = np.zeros((n_labels, n_labels)) + 0.01
    pooled += post[item].T @ np.eye(n_labels)[label]
    pooled /= pooled.sum(axis=1, keepdims=True)
    confusion = np.broadcast_to(pooled, (n_raters, n_labels, n_labels)).copy()
    return Fit("majority", _priors(post, labelled, 0.01), confusion, post, 0)


_FITTERS = {"majority": majority, "dawid_skene": dawid_skene, "one_coin": one_coin, "mace": mace}


def fit(method: str, item, rater, label, n_items: int, n_raters: int, n_labels: int) -> Fit:
    """Fits ``method`` (one of `METHODS`) to the votes."""
    if method not in _FITTERS:
        raise ValueError(f"unknown aggregation method {method!r}; known: {', '.join(METHODS)}")
    return _FITTERS[method](item, rater, label, n_items, n_raters, n_labels)


def labels_and_confidence(post: np.ndarray, rng: np.random.Generator | None = None):
    """Each clip's label (the most probable; ties broken at random with ``rng``, else the
    lowest index) and its confidence (that probability)."""
    post = np.asarray(post, dtype=float)
    if not len(post):
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    top = post.max(axis=1)
    if rng is None:
        return post.argmax(axis=1).astype(np.int64), top
    tied = np.isclose(post, top[:, None], rtol=0, atol=1e-12)
    noise = rng.random(post.shape) * tied
    return noise.argmax(axis=1).astype(np.int64), top


def methods_report(item, rater, label, n_items: int, n_raters: int, label_names, min_votes: int,
                   fits: dict[str, Fit] | None = None) -> dict:  # fmt: skip
    """Each quality-aware method beside the majority: per method, how many clips get another
    label than the plurality of their votes (ties: the lowest code), per plurality label, and
    how many of the single-labelled clips (DFEW's rule) get another label than their single
    label. ``fits``: methods already fitted (fitted here otherwise)."""
    from pipeline.aggregation import single_labels

    k = len(label_names)
    counts = agreement.vote_counts(item, label, n_items, k)
    plurality = counts.argmax(axis=1) if n_items else np.zeros(0, dtype=np.int64)
    single = single_labels(counts, min_votes)
    out = {}
    for method in QUALITY_METHODS:
        model = (fits or {}).get(method) or fit(method, item, rater, label, n_items, n_raters, k)
        labels, confidence = labels_and_confidence(model.posteriors)
        differ = labels != plurality
        per_label = np.bincount(plurality[differ], minlength=k)
        singled = single >= 0
        out[method] = {
            "differ_from_plurality": int(differ.sum()),
            "differ_per_label": {n: int(c) for n, c in zip(label_names, per_label, strict=True)},
            "differ_from_single_label": int((labels[singled] != single[singled]).sum()),
            "label_counts": {
                n: int(c)
                for n, c in zip(label_names, np.bincount(labels, minlength=k), strict=True)
            },
            "mean_confidence": round(float(confidence.mean()), 4) if n_items else None,
            "iterations": int(model.iterations),
        }
    return out
