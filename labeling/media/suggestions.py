"""A model's suggestions of rare-emotion segments: received, accepted, dismissed, counted.

``suggestions_add`` stores a run's segments of a movie (all or nothing, a retry changing
nothing); ``suggestion_accept`` turns one into a proposed clip through ``movies.clip_propose``,
the marking page's own service, with the model's emotion as the suspected label;
``suggestion_dismiss`` closes one; ``suggestion_stats`` counts a run's decisions and its
precision once the accepted clips have their final labels.

Who may: staff, and extractors of the movie's campaign (``access.movies_visible``): to
anyone else a movie or a suggestion does not exist. Nothing of a suggestion reaches
annotators or reviewers (tests/labeling/test_suggestions_independence.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from annotation_site.errors import ApplicationError, Conflict, Forbidden, NotFound
from labeling import access
from labeling.media import movies
from labeling.models import Campaign, Clip, Label, Movie, Suggestion

MAX_SEGMENTS = 200
# The probabilities of a segment sum to 1 within this (a softmax written as JSON floats).
SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class SuggestedSegment:
    start_s: float
    end_s: float
    probabilities: dict[str, float]
    emotion: str = ""  # empty: the most probable rare label


@dataclass
class Added:
    suggestions: list[Suggestion]
    created: int


def _check_extractor(user) -> None:
    if not access.can_extract(user):
        raise Forbidden("Only extractors and staff see and decide a model's suggestions.")


def _movie_of(user, movie_id: int, *, lock: bool = False) -> Movie:
    found = access.movies_visible(user).filter(pk=movie_id)
    movie = (
        (found.select_for_update(of=("self",)) if lock else found)
        .select_related("campaign")
        .first()
    )
    if movie is None:
        raise NotFound(f"Movie {movie_id} not found.")
    return movie


def _span(value: float) -> float:
    """Spans are kept to the millisecond, so a retry of the same floats matches the row."""
    return round(float(value), 3)


def rare_score(probabilities: dict[str, float], rare: Sequence[str]) -> float:
    """The rare-class score that ranks a segment: the probabilities of the rare labels summed
    (clamped to [0, 1] against rounding)."""
    return min(1.0, max(0.0, sum(probabilities.get(name, 0.0) for name in rare)))


def _check(
    i: int, seg: SuggestedSegment, movie: Movie, campaign: Campaign, labels: dict[str, Label]
) -> Label:
    """Raises on a segment that cannot become a clip of ``movie``, or whose probabilities are
    not a distribution over the campaign's labels; returns the suggested emotion's label."""
    where = f"Segment {i} ({seg.start_s:g}–{seg.end_s:g} s)"
    if not (math.isfinite(seg.start_s) and math.isfinite(seg.end_s)):
        raise ApplicationError(f"{where}: times must be numbers.", {"segment": i})
    if not 0 <= seg.start_s < seg.end_s:
        raise ApplicationError(f"{where}: the end must come after the start, from 0 s on.")
    if movie.duration_s is not None and seg.end_s > movie.duration_s + 1e-6:
        raise ApplicationError(
            f"{where} ends after the movie ({movie.duration_s:g} s).", {"segment": i}
        )
    length = seg.end_s - seg.start_s
    if not campaign.clip_min_seconds <= length <= campaign.clip_max_seconds + 1e-9:
        raise ApplicationError(
            f"{where} lasts {length:g} s; clips of this campaign last "
            f"{campaign.clip_min_seconds:g}–{campaign.clip_max_seconds:g} s.",
            {"segment": i},
        )
    unknown = sorted(set(seg.probabilities) - set(labels))
    if unknown:
        raise ApplicationError(
            f"{where}: unknown labels {', '.join(unknown)}; this campaign's are "
            f"{', '.join(labels)}.",
            {"segment": i},
        )
    values = list(seg.probabilities.values())
    if not values or any(not (math.isfinite(p) and 0 <= p <= 1) for p in values):
        raise ApplicationError(f"{where}: each probability lies in [0, 1].", {"segment": i})
    if abs(sum(values) - 1) > SUM_TOLERANCE:
        raise ApplicationError(
            f"{where}: the probabilities sum to {sum(values):.4f}, not 1.", {"segment": i}
        )
    rare = [name for name, label in labels.items() if label.is_rare]
    name = seg.emotion or max(rare or labels, key=lambda n: seg.probabilities.get(n, 0.0))
    if name not in labels:
        raise ApplicationError(
            f"{where}: unknown emotion {name!r}; one of {', '.join(labels)}.", {"segment": i}
        )
    return labels[name]


def suggestions_add(
    *, user, movie_id: int, run: str, segments: Sequence[SuggestedSegment]
) -> Added:
    """Stores a run's suggested segments of a movie, all or nothing; returns every
    suggestion of the posted spans and how many are new.

    Each segment must lie inside the movie and within the campaign's clip length bounds (so
    that accepting it can make a clip), and carry probabilities over the campaign's label
    names that sum to 1. Its rare-class score is computed here from the campaign's rare labels
    (`rare_score`); its emotion, when not given, is the most probable rare label. A span the
    run has posted before (to the millisecond) is kept as it was: a retry creates nothing.
    """
    _check_extractor(user)
    run = (run or "").strip()
    if not run or len(run) > 100:
        raise ApplicationError("Name the run that scored the movie (at most 100 characters).")
    if not segments:
        raise ApplicationError("Send at least one segment.")
    if len(segments) > MAX_SEGMENTS:
        raise ApplicationError(f"At most {MAX_SEGMENTS} segments per request.")
    with transaction.atomic():
        movie = _movie_of(user, movie_id, lock=True)
        if movie.status != Movie.Status.READY:
            raise Conflict(f"Movie {movie.pk} is {movie.get_status_display().lower()}.")
        if not movie.source or movie.duration_s is None:
            raise Conflict(f"Movie {movie.pk} has no file of its own to suggest clips in.")
        campaign = movie.campaign
        labels = {label.name: label for label in campaign.labels.all()}
        rare = [name for name, label in labels.items() if label.is_rare]
        rows: dict[tuple[float, float], Suggestion] = {}
        for i, seg in enumerate(segments, start=1):
            emotion = _check(i, seg, movie, campaign, labels)
            key = (_span(seg.start_s), _span(seg.end_s))
            probabilities = {name: float(p) for name, p in seg.probabilities.items()}
            rows.setdefault(
                key,
                Suggestion(
                    movie=movie,
                    run=run,
                    start_s=key[0],
                    end_s=key[1],
                    probabilities=probabilities,
                    emotion=emotion,
                    rare_score=rare_score(probabilities, rare),
                    created_by=user if user.is_authenticated else None,
                ),
            )
        existing = set(
            Suggestion.objects.filter(movie=movie, run=run).values_list("start_s", "end_s")
        )
        new = [row for key, row in rows.items() if key not in existing]
        Suggestion.objects.bulk_create(new)
        spans = Q(pk__in=[])
        for start, end in rows:
            spans |= Q(start_s=start, end_s=end)
        stored = list(
            Suggestion.objects.filter(spans, movie=movie, run=run).select_related(
                "emotion", "decided_by"
            )
        )
    return Added(stored, len(new))


def suggestions_of_movie(
    *, user, movie_id: int, run: str | None = None, status: str | None = None
) -> list[Suggestion]:
    """A movie's suggestions, highest rare-class score first (the order the marking page
    offers them in); optionally of one run and in one status."""
    _check_extractor(user)
    movie = _movie_of(user, movie_id)
    rows = Suggestion.objects.filter(movie=movie).select_related("emotion", "decided_by")
    if run:
        rows = rows.filter(run=run)
    if status:
        rows = rows.filter(status=status)
    return list(rows.order_by("-rare_score", "start_s", "pk"))


def _suggestion_of(user, suggestion_id: int) -> Suggestion:
    """The suggestion, locked, when its movie is one the user sees; NotFound otherwise."""
    found = (
        Suggestion.objects.select_for_update(of=("self",))
        .filter(pk=suggestion_id, movie__in=access.movies_visible(user))
        .select_related("emotion")
        .first()
    )
    if found is None:
        raise NotFound(f"Suggestion {suggestion_id} not found.")
    return found


def _decided(suggestion: Suggestion) -> Conflict:
    return Conflict(
        f"Suggestion {suggestion.pk} is already {suggestion.get_status_display().lower()}.",
        {"status": suggestion.status, "clip": suggestion.clip_id},
    )


def suggestion_accept(*, user, suggestion_id: int) -> Suggestion:
    """Turns an open suggestion into a proposed clip of its span, with the model's emotion
    as the suspected label, through `movies.clip_propose` (its checks: the movie ready, the
    campaign's length bounds and clips per movie; its extraction queued on commit), and
    records the clip and who accepted it, in one transaction. A suggestion already decided
    is a Conflict (409), and nothing changes; so does a second accept racing the first
    (the row is locked, and a clip comes from at most one suggestion)."""
    _check_extractor(user)
    with transaction.atomic():
        suggestion = _suggestion_of(user, suggestion_id)
        if suggestion.status != Suggestion.Status.OPEN:
            raise _decided(suggestion)
        proposed = movies.clip_propose(
            user=user,
            movie_id=suggestion.movie_id,
            segments=[
                movies.Segment(suggestion.start_s, suggestion.end_s, suggestion.emotion.name)
            ],
        )
        suggestion.status = Suggestion.Status.ACCEPTED
        suggestion.clip = proposed.clips[0]
        suggestion.decided_by, suggestion.decided_at = user, timezone.now()
        suggestion.save(update_fields=["status", "clip", "decided_by", "decided_at"])
    return suggestion


def suggestion_dismiss(*, user, suggestion_id: int) -> Suggestion:
    """Closes an open suggestion as dismissed by ``user``; 409 when already decided."""
    _check_extractor(user)
    with transaction.atomic():
        suggestion = _suggestion_of(user, suggestion_id)
        if suggestion.status != Suggestion.Status.OPEN:
            raise _decided(suggestion)
        suggestion.status = Suggestion.Status.DISMISSED
        suggestion.decided_by, suggestion.decided_at = user, timezone.now()
        suggestion.save(update_fields=["status", "decided_by", "decided_at"])
    return suggestion


@dataclass(frozen=True)
class RunStats:
    run: str
    suggested: int
    accepted: int
    dismissed: int
    ignored: int  # still open
    judged: int  # accepted, and the clip has its final result (or was rejected)
    hits: int  # ... whose single label is the suggested emotion

    @property
    def precision(self) -> float | None:
        """Share of the judged accepted suggestions whose clip's single label is the
        suggested emotion; None before any accepted clip has its result."""
        return self.hits / self.judged if self.judged else None


def suggestion_stats(*, user, run: str | None = None, campaign_id: int | None = None):
    """Per run, over the movies ``user`` sees: suggestions made, accepted, dismissed, and
    ignored (still open); and the precision of the accepted ones. An accepted suggestion is
    judged once its clip has its final result (`ClipLabel`), a hit when that result's single
    label is the suggested emotion; a clip rejected at screening is judged a miss. Counted by
    the database, one query."""
    _check_extractor(user)
    rows = Suggestion.objects.filter(movie__in=access.movies_visible(user))
    if run:
        rows = rows.filter(run=run)
    if campaign_id is not None:
        rows = rows.filter(movie__campaign_id=campaign_id)
    accepted = Q(status=Suggestion.Status.ACCEPTED)
    judged = accepted & (Q(clip__result__isnull=False) | Q(clip__status=Clip.Status.REJECTED))
    counted = (
        rows.values("run")
        .annotate(
            suggested=Count("pk"),
            accepted=Count("pk", filter=accepted),
            dismissed=Count("pk", filter=Q(status=Suggestion.Status.DISMISSED)),
            ignored=Count("pk", filter=Q(status=Suggestion.Status.OPEN)),
            judged=Count("pk", filter=judged),
            hits=Count("pk", filter=accepted & Q(clip__result__single_label=F("emotion"))),
        )
        .order_by("run")
    )
    return [RunStats(**row) for row in counted]
