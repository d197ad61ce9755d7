"""The labeling side's REST API as an ML backend sees it, and the loop that scores a campaign.

``ml`` never imports ``labeling``: it reads a campaign's labels and movies, downloads the
movies' files and posts suggestions with an API token, so it runs on a GPU box that has
nothing but the API's address and a token (staff, or an extractor of the campaign: the media
permission rules apply). Only the standard library speaks HTTP here; the token goes in a
header that a redirect does not carry (a movie in S3 is a redirect to a presigned URL).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ml.suggest import Network, Segment, SuggestError, merge_windows, score_movie, top_segments

PREFIX = "/api/v1/"
# `GET /api/v1/campaigns/<id>/movies/` answers the newest this many (labeling/api/media.py).
MOVIES_LISTED = 200


class LabelingApi:
    """``GET``/``POST`` JSON and downloads against a DFER Studio site, with a token."""

    def __init__(self, base_url: str, token: str, timeout: float = 60.0):
        if not token:
            raise SuggestError("an API token is needed (--token, or $DFER_API_TOKEN)")
        # The site's address, with or without the API's prefix.
        self.base = base_url.rstrip("/").removesuffix(PREFIX.rstrip("/"))
        self.token, self.timeout = token, timeout

    def url(self, path: str) -> str:
        return path if "://" in path else f"{self.base}{PREFIX}{path.lstrip('/')}"

    def _open(self, url: str, data: bytes | None = None, method: str = "GET"):
        request = urllib.request.Request(url, data=data, method=method)
        # Unredirected: a redirect to another host (a storage's presigned URL) gets no token.
        request.add_unredirected_header("Authorization", f"Token {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise self._refusal(exc, method, url) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SuggestError(f"cannot reach the API at {self.base}: {reason}") from None

    def _refusal(self, exc: urllib.error.HTTPError, method: str, url: str) -> SuggestError:
        try:
            detail = json.loads(exc.read().decode()).get("detail", "")
        except (ValueError, AttributeError):
            detail = ""
        if exc.code == 401:
            return SuggestError(f"the API refused the token (401): {detail or 'bad token'}")
        if exc.code == 403:
            return SuggestError(
                f"the token's user may not do this (403 on {method} {url}): {detail}; use a "
                "staff token or one of an extractor of the campaign"
            )
        return SuggestError(f"{method} {url} answered {exc.code}: {detail or exc.reason}")

    def get(self, path: str, **params) -> object:
        url = self.url(path)
        if params:
            url += "?" + urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        with self._open(url) as response:
            return json.loads(response.read().decode())

    def post(self, path: str, body: dict) -> object:
        with self._open(self.url(path), json.dumps(body).encode(), "POST") as response:
            return json.loads(response.read().decode())

    def download(self, url: str, target: Path) -> Path:
        """Streams a media file (``/media/…``, served to those who may see it) to ``target``."""
        with self._open(self.url(url)) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
        return target

    # --- what the suggestion loop reads and writes --------------------------------------------

    def campaign(self, slug: str) -> dict:
        found = self.get("suggestions/campaigns/", slug=slug)
        if not found:
            raise SuggestError(
                f"no campaign {slug!r} that this token's user may score (staff, or an "
                "extractor of the campaign)"
            )
        return found[0]

    def movies(self, campaign_id: int, ids: Sequence[int] | None = None) -> list[dict]:
        if ids:
            return [self.get(f"movies/{movie_id}/") for movie_id in ids]
        return list(self.get(f"campaigns/{campaign_id}/movies/"))

    def suggestions(self, movie_id: int, run: str) -> list[dict]:
        return list(self.get(f"movies/{movie_id}/suggestions/", run=run))

    def post_suggestions(self, movie_id: int, run: str, segments: Sequence[Segment]) -> dict:
        body = {
            "run": run,
            "segments": [
                {
                    "start_s": s.start_s,
                    "end_s": s.end_s,
                    "probabilities": {k: round(v, 6) for k, v in s.probabilities.items()},
                    "emotion": s.emotion,
                }
                for s in segments
            ],
        }
        return self.post(f"movies/{movie_id}/suggestions/", body)


@dataclass
class SuggestOptions:
    window_s: float = 2.0
    stride_s: float = 0.5
    top: int = 10
    min_score: float = 0.5
    batch_size: int = 32
    progress: bool = True
    detector: object = None


@dataclass
class MovieOutcome:
    movie: int
    title: str
    posted: int = 0
    skipped: str = ""  # why not scored
    scored_s: float = 0.0  # movie seconds scored
    seconds: float = 0.0  # wall time of the scoring
    segments: list[Segment] = field(default_factory=list)


def _check_labels(network: Network, campaign: dict) -> list[str]:
    """The campaign's rare labels the model knows; refuses a model whose labels are not the
    campaign's."""
    names = [label["name"] for label in campaign["labels"]]
    foreign = [name for name in network.labels if name not in names]
    if foreign:
        raise SuggestError(
            f"the run's labels {', '.join(network.labels)} are not campaign "
            f"{campaign['slug']}'s ({', '.join(names)}): {', '.join(foreign)} unknown there"
        )
    rare = [label["name"] for label in campaign["labels"] if label["is_rare"]]
    known = [name for name in rare if name in network.labels]
    if not known:
        raise SuggestError(f"campaign {campaign['slug']} has no rare label the model knows")
    return known


def suggest_campaign(
    api: LabelingApi,
    network: Network,
    *,
    run: str,
    slug: str,
    movie_ids: Sequence[int] | None = None,
    options: SuggestOptions | None = None,
    log: Callable[[str], None] = print,
) -> list[MovieOutcome]:
    """Scores each ready movie of the campaign (or those of ``movie_ids``) that has no
    suggestion from ``run`` yet and posts its ``top`` segments. A re-run skips the movies
    done; a movie posted twice is stored once (the API keeps a run's spans unique)."""
    options = options or SuggestOptions()
    campaign = api.campaign(slug)
    rare = _check_labels(network, campaign)
    lo, hi = campaign["clip_min_seconds"], campaign["clip_max_seconds"]
    if not lo <= options.window_s <= hi:
        raise SuggestError(
            f"--window-s {options.window_s:g} is outside campaign {slug}'s clip lengths "
            f"({lo:g}–{hi:g} s)"
        )
    outcomes = []
    listed = api.movies(campaign["id"], movie_ids)
    if not movie_ids and len(listed) >= MOVIES_LISTED:
        log(
            f"the movies API lists a campaign's newest {MOVIES_LISTED}; --movies reaches the others"
        )
    for movie in listed:
        outcome = MovieOutcome(movie["id"], movie["title"])
        outcomes.append(outcome)
        if movie.get("campaign") != campaign["id"]:
            outcome.skipped = f"not a movie of campaign {slug}"
        elif movie["status"] != "ready" or not movie.get("video_url"):
            outcome.skipped = f"not ready ({movie['status']})"
        elif done := api.suggestions(movie["id"], run):
            outcome.skipped = f"already has {len(done)} suggestions from run {run}"
        if outcome.skipped:
            log(f"movie {movie['id']} “{movie['title']}”: skipped, {outcome.skipped}")
            continue
        with tempfile.TemporaryDirectory(prefix="dfer-suggest-") as tmp:
            path = api.download(movie["video_url"], Path(tmp) / f"movie-{movie['id']}")
            scored = score_movie(
                path,
                network,
                window_s=options.window_s,
                stride_s=options.stride_s,
                batch_size=options.batch_size,
                detector=options.detector,
                progress=options.progress,
            )
        segments = merge_windows(
            scored.windows, network.labels, rare, min_score=options.min_score, max_s=hi
        )
        duration = movie.get("duration_s") or scored.duration_s
        outcome.segments = [s for s in top_segments(segments, options.top) if s.end_s <= duration]
        outcome.scored_s, outcome.seconds = scored.duration_s, scored.seconds
        if outcome.segments:
            outcome.posted = api.post_suggestions(movie["id"], run, outcome.segments)["created"]
        log(
            f"movie {movie['id']} “{movie['title']}”: {len(scored.windows)} windows over "
            f"{scored.duration_s:.1f} s scored in {scored.seconds:.1f} s; "
            f"{len(outcome.segments)} segments sent ({outcome.posted} new)"
        )
    return outcomes
