"""Suggesting rare-emotion segments: the windowing and merging rules, scoring a real generated
movie with a tiny trained run, and ``manage.py suggest_segments`` end to end against a live
server, through the REST API only."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from annotation_site.auth import token_issue
from labeling.media import movies
from labeling.models import Role, Suggestion
from ml.models import BenchmarkRun
from ml.suggest import Window, load_network, merge_windows, score_movie, window_starts
from ml.train import TrainConfig, train
from pipeline.emotions import EMOTION_NAMES
from pipeline.media import write_video
from pipeline.synthetic import generate_dataset
from pipeline.synthetic_movies import drawn_face_movie
from tests.conftest import make_user

LABELS = list(EMOTION_NAMES)  # happy sad neutral angry surprise disgust fear
RARE = ["disgust", "fear"]
# The tiny run's one fold has too few clips for every emotion to reach its test set.
pytestmark = pytest.mark.filterwarnings("ignore::ml.metrics.AbsentClassWarning")


def p(**given) -> np.ndarray:
    rest = [n for n in LABELS if n not in given]
    left = (1 - sum(given.values())) / len(rest)
    return np.array([given.get(n, left) for n in LABELS])


class WindowStartsTests:
    def test_windows_step_by_the_stride_and_the_last_ends_on_the_last_frame(self):
        assert window_starts(30, 16, 4) == [0, 4, 8, 12, 14]
        assert window_starts(28, 16, 4) == [0, 4, 8, 12]
        assert window_starts(15, 16, 4) == []  # shorter than a window


class MergeWindowsTests:
    def test_overlapping_high_windows_of_one_rare_emotion_join_ranked_by_score(self):
        windows = [
            Window(0.0, 2.0, 1.0, p(happy=0.9)),  # low rare score: dropped
            Window(0.5, 2.5, 1.0, p(fear=0.6)),
            Window(1.0, 3.0, 1.0, p(fear=0.8)),  # joins the one before
            Window(1.5, 3.5, 1.0, p(disgust=0.9)),  # another emotion: a new segment
            Window(5.0, 7.0, 1.0, p(fear=0.7)),  # not overlapping: a new segment
            Window(6.0, 8.0, 0.2, None),  # too few faces: never suggested
        ]
        segments = merge_windows(windows, LABELS, RARE, min_score=0.5)
        assert [(s.start_s, s.end_s, s.emotion) for s in segments] == [
            (1.5, 3.5, "disgust"),
            (0.5, 3.0, "fear"),
            (5.0, 7.0, "fear"),
        ]
        # The joined segment's probabilities are its windows' mean: fear (0.6 + 0.8) / 2.
        assert segments[1].probabilities["fear"] == pytest.approx(0.7)
        assert sum(segments[1].probabilities.values()) == pytest.approx(1)
        # Ranked by the rare labels' probabilities summed: (1/6 spread over 6) + 0.9, …
        fear_joined = 0.7 + (0.4 / 6 + 0.2 / 6) / 2
        assert [s.rare_score for s in segments] == pytest.approx(
            [0.9 + 0.1 / 6, fear_joined, 0.7 + 0.3 / 6]
        )

    def test_a_joined_span_longer_than_the_longest_clip_is_cut_around_its_best_window(self):
        windows = [Window(i * 0.5, i * 0.5 + 2, 1.0, p(fear=0.6 + 0.01 * i)) for i in range(20)]
        (segment,) = merge_windows(windows, LABELS, RARE, min_score=0.5, max_s=4.0)
        # The best window is the last (9.5–11.5 s): 4 s ending where the windows end.
        assert (segment.start_s, segment.end_s) == (7.5, 11.5)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny network trained for one epoch on generated drawn-face clips (CPU, seconds)."""
    import tests.ml.conftest as c
    from ml.networks import MODELS

    MODELS["tiny"] = c.tiny
    root = tmp_path_factory.mktemp("suggest")
    data = generate_dataset(root / "data", 6, 1, frames=4, size=32, max_frames=6, progress=False)
    cfg = TrainConfig(
        data=str(data),
        out=str(root / "run"),
        model="tiny",
        folds=[1],
        epochs=1,
        batch_size=8,
        frames=4,
        input_size=24,
        workers=0,
        progress=False,
    )
    yield train(cfg)
    del MODELS["tiny"]


@pytest.fixture(scope="module")
def movie_path(tmp_path_factory):
    """8 s of a drawn face: neutral, fear, happy, disgust, 2 s each, at 12 fps."""
    frames = drawn_face_movie(
        ["neutral", "fear", "happy", "disgust"], 2.0, 12, 96, np.random.default_rng(4)
    )
    return write_video(frames, tmp_path_factory.mktemp("movie") / "face.mp4", fps=12)


class ScoreMovieTests:
    def test_every_window_of_the_movie_is_scored_once_as_a_distribution(self, tiny_run, movie_path):
        network = load_network(tiny_run, device="cpu")
        assert network.labels == LABELS and network.frames == 4
        scored = score_movie(movie_path, network, window_s=2.0, stride_s=0.5, batch_size=3)
        # 4 frames over 2 s: decoded at 2 fps, 16 frames of 8 s; a window every frame.
        assert (scored.rate, scored.n_frames) == (2.0, 16)
        assert [(w.start_s, w.end_s) for w in scored.windows] == [
            (i * 0.5, i * 0.5 + 2.0) for i in range(13)
        ]
        scored_windows = [w for w in scored.windows if w.probabilities is not None]
        assert len(scored_windows) >= 10  # the drawn face is found in most frames
        for w in scored_windows:
            assert w.probabilities.shape == (7,) and w.probabilities.sum() == pytest.approx(1)

    def test_a_run_without_a_checkpoint_is_refused_by_name(self, tmp_path):
        from ml.suggest import SuggestError

        with pytest.raises(SuggestError, match="holds no checkpoint"):
            load_network(tmp_path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.django_db(transaction=True)
class SuggestSegmentsCommandTests:
    @pytest.fixture
    def stage(self, campaign, tiny_run, movie_path, tmp_path):
        eve = make_user("eve", Role.EXTRACTOR)
        campaign.annotators.add(eve, through_defaults={"role": Role.EXTRACTOR})
        movie = movies.movie_register_path(campaign=campaign, path=movie_path, user=eve)
        run = BenchmarkRun.objects.create(
            model="tiny", loss="ce", data="", out_dir=str(tiny_run), folds="1", epochs=1
        )
        return movie, run, token_issue(eve).key

    def _call(self, live_server, run, token, **more):
        options = dict(
            run=str(run),
            campaign="campaign",
            api=live_server.url,
            token=token,
            top=3,
            min_score=0.0,
            detector="haar",
            no_progress=True,
            device="cpu",
        )
        call_command("suggest_segments", **{**options, **more})

    def test_it_posts_each_movies_top_segments_over_the_api_and_skips_them_next_time(
        self, live_server, stage, capsys
    ):
        movie, run, token = stage
        self._call(live_server, run.pk, token)
        rows = list(Suggestion.objects.order_by("-rare_score"))
        assert 1 <= len(rows) <= 3
        for row in rows:
            assert row.movie_id == movie.pk and row.run == str(run.pk)
            assert 0 <= row.start_s < row.end_s <= movie.duration_s + 1e-6
            assert set(row.probabilities) == set(LABELS)
            assert sum(row.probabilities.values()) == pytest.approx(1, abs=1e-4)
            assert row.emotion.name in RARE and row.status == "open"
            rare = row.probabilities["disgust"] + row.probabilities["fear"]
            assert row.rare_score == pytest.approx(rare)
        assert "1 movies scored, 0 skipped" in capsys.readouterr().out

        self._call(live_server, run.pk, token)  # again: the movie is done
        assert Suggestion.objects.count() == len(rows)
        assert f"already has {len(rows)} suggestions from run {run.pk}" in capsys.readouterr().out

    def test_unknown_run_run_without_checkpoint_bad_token_and_no_api_are_clear(
        self, live_server, stage, tmp_path
    ):
        _movie, run, token = stage
        with pytest.raises(CommandError, match="unknown run 99999"):
            self._call(live_server, 99999, token)
        empty = BenchmarkRun.objects.create(
            model="tiny", loss="ce", data="", out_dir=str(tmp_path), folds="1", epochs=1
        )
        with pytest.raises(CommandError, match="holds no checkpoint"):
            self._call(live_server, empty.pk, token)
        with pytest.raises(CommandError, match="refused the token"):
            self._call(live_server, run.pk, "not-a-token")
        with pytest.raises(CommandError, match="cannot reach the API"):
            self._call(live_server, run.pk, token, api=f"http://127.0.0.1:{_free_port()}")
        with pytest.raises(CommandError, match="no campaign 'nope'"):
            self._call(live_server, run.pk, token, campaign="nope")
        assert not Suggestion.objects.exists()

    def test_an_annotators_token_sees_no_campaign_to_score(self, live_server, stage, alice):
        _movie, run, _token = stage
        with pytest.raises(CommandError, match="may not do this"):
            self._call(live_server, run.pk, token_issue(alice).key)
