"""Does a trained model find the rare emotions? Top-N suggested segments against N random ones.

Issue 24's target: on generated movies whose emotion timeline is known, the share of disgust
and fear among the top-N segments a model suggests is at least 3x their share among the
same number of segments placed at random, in the same run.

1. Training data like the demo's: drawn-face movies (``pipeline.synthetic_movies``, every
   emotion equally often, 3 s each), decoded and face-tracked by the very code that scores
   (``ml.suggest.face_tiles``), each emotion's 3 s written as one clip of a compact export.
2. A small network (registered here as ``bench_tiny``: 3-D convolutions, 16-32-48 channels)
   trained through ``ml.train.train`` on the CPU in a minute or two.
3. Test movies: the same drawn face, its expression changing every 3 s, the emotions drawn
   with DFEW's rarity (disgust 1.2 %, fear 8.1 % of its single labels: 146 and 977 of
   12,059, DFEW paper Table 1; the other five share the rest equally here), each emotion
   count fixed by its share, then shuffled.
4. Each test movie is scored (``ml.suggest.score_movie``: 2-s windows every 0.5 s), windows
   merged (``merge_windows``), the top N per movie kept. A segment shows the emotion that
   covers most of it on the known timeline. The baseline: as many segments of the same
   lengths at uniformly random places in the same movies, drawn 200 times.

Printed: both shares and their ratio (target >= 3x), rare segments found per minute of movie
scored, and the scoring speed against decoding the same movies alone (same rate, same run).

    python bench/suggest.py                      # ~10 CPU minutes
    python bench/suggest.py --movies 4 --segments 40 --epochs 8   # quicker, noisier
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.networks import MODELS, VideoClassifier  # noqa: E402
from ml.suggest import (  # noqa: E402
    decode_only,
    face_tiles,
    load_network,
    merge_windows,
    score_movie,
    top_segments,
)
from ml.train import TrainConfig, train  # noqa: E402
from pipeline.compact import ClipRecord, write_compact  # noqa: E402
from pipeline.emotions import EMOTION_NAMES  # noqa: E402
from pipeline.media import write_video  # noqa: E402
from pipeline.synthetic_movies import drawn_face_movie  # noqa: E402

RARE = ("disgust", "fear")
# DFEW's single labels (paper, Table 1): disgust 146 and fear 977 of 12,059.
DFEW_SHARE = {"disgust": 146 / 12059, "fear": 977 / 12059}
FPS, SIZE, SEGMENT_S = 12, 160, 3.0
FRAMES, WINDOW_S = 8, 2.0  # the network sees 8 frames over 2 s: decoded at 4 fps


class BenchTiny(VideoClassifier):
    """Small enough to train on a CPU in minutes (16-32-48 channels, the first convolution
    striding 2); sees time through one 3x1x1 convolution."""

    def __init__(self, num_classes: int = 7):
        super().__init__()

        def block(cin, cout, k=(1, 3, 3), p=(0, 1, 1), stride=1):
            conv = nn.Conv3d(cin, cout, k, padding=p, stride=stride)
            return [conv, nn.BatchNorm3d(cout), nn.ReLU()]

        self.body = nn.Sequential(
            *block(3, 16, stride=(1, 2, 2)),
            *block(16, 32),
            nn.MaxPool3d((1, 2, 2)),
            *block(32, 48),
            nn.MaxPool3d((1, 2, 2)),
            *block(48, 48, (3, 1, 1), (1, 0, 0)),
            nn.AdaptiveMaxPool3d(1),
        )
        self.dropout = nn.Dropout(0.2)
        self.num_features = 48
        self.head = nn.Linear(48, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)


def bench_tiny(num_classes=7, pretrained=None, **kwargs):
    return BenchTiny(num_classes)


def emotion_sequence(n: int, rng: np.random.Generator) -> list[str]:
    """``n`` segments' emotions with DFEW's rare shares, the others equally often, shuffled."""
    counts = {name: round(n * share) for name, share in DFEW_SHARE.items()}
    common = [e for e in EMOTION_NAMES if e not in RARE]
    rest = n - sum(counts.values())
    for i, name in enumerate(common):
        counts[name] = rest // len(common) + (i < rest % len(common))
    sequence = [name for name, k in counts.items() for _ in range(k)]
    rng.shuffle(sequence)
    return sequence


def training_export(folder: Path, per_class: int, rng: np.random.Generator) -> Path:
    """A compact export of face-crop clips, one per 3-s segment of demo-like movies."""
    records, clips, rate = [], [], FRAMES / WINDOW_S
    per = round(SEGMENT_S * rate)
    for m in range(per_class):
        emotions = list(EMOTION_NAMES)
        rng.shuffle(emotions)
        path = write_video(
            drawn_face_movie(emotions, SEGMENT_S, FPS, SIZE, rng), folder / f"train-{m}.mp4", FPS
        )
        tiles = [tile for tile, _ in face_tiles(path, rate)]
        for s, emotion in enumerate(emotions):
            clip = np.stack(tiles[s * per : (s + 1) * per])
            code = EMOTION_NAMES.index(emotion) + 1
            votes = tuple(10 if c == code else 0 for c in range(1, 8))
            records.append(ClipRecord(len(records) + 1, m + 1, code, votes, m % 5 + 1))
            clips.append(clip)
    size = clips[0].shape[1:3]
    return write_compact(folder / "export", records, clips, EMOTION_NAMES, size, "bench-suggest")


def truth(start: float, end: float, timeline: list[str]) -> str:
    """The emotion covering most of [start, end) on a timeline of SEGMENT_S-long emotions."""
    cover: dict[str, float] = {}
    for s, emotion in enumerate(timeline):
        a, b = max(start, s * SEGMENT_S), min(end, (s + 1) * SEGMENT_S)
        if b > a:
            cover[emotion] = cover.get(emotion, 0.0) + b - a
    return max(cover, key=cover.get)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--movies", type=int, default=8, help="test movies")
    parser.add_argument("--segments", type=int, default=80, help="3-s segments per test movie")
    parser.add_argument("--top", type=int, default=5, help="segments suggested per movie")
    parser.add_argument("--train-movies", type=int, default=40, help="clips per emotion")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    MODELS["bench_tiny"] = bench_tiny
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory(prefix="bench-suggest-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        export = training_export(folder, args.train_movies, rng)
        print(f"training export: {args.train_movies * 7} clips in {time.perf_counter() - t0:.0f} s")
        cfg = TrainConfig(
            data=str(export),
            out=str(folder / "run"),
            model="bench_tiny",
            folds=[1],
            epochs=args.epochs,
            batch_size=16,
            frames=FRAMES,
            input_size=64,
            workers=0,
            progress=False,
            device=args.device,
        )
        t0 = time.perf_counter()
        import json

        run = train(cfg)
        result = json.loads((run / "results.json").read_text())["folds"][0]
        print(
            f"trained bench_tiny {args.epochs} epochs in {time.perf_counter() - t0:.0f} s; "
            f"fold-1 test WAR {result['war']:.2f}, UAR {result['uar']:.2f}"
        )
        network = load_network(run, device=args.device)

        top_truths, lengths, timelines, scored_s, score_s, decode_s = [], [], [], 0.0, 0.0, 0.0
        for m in range(args.movies):
            timeline = emotion_sequence(args.segments, rng)
            frames = drawn_face_movie(timeline, SEGMENT_S, FPS, SIZE, rng)
            path = write_video(frames, folder / f"test-{m}.mp4", FPS)
            del frames
            t0 = time.perf_counter()
            decode_only(path, network.frames / WINDOW_S)
            decode_s += time.perf_counter() - t0
            scored = score_movie(path, network, window_s=WINDOW_S, stride_s=0.5, progress=False)
            score_s += scored.seconds
            scored_s += scored.duration_s
            segments = merge_windows(scored.windows, network.labels, RARE, max_s=15.0)
            chosen = top_segments(segments, args.top)
            top_truths += [truth(s.start_s, s.end_s, timeline) for s in chosen]
            lengths.append([s.end_s - s.start_s for s in chosen])
            timelines.append(timeline)

        n = len(top_truths)
        top_hits = sum(t in RARE for t in top_truths)
        random_shares = []
        for _ in range(200):
            hits = 0
            for timeline, spans in zip(timelines, lengths, strict=True):
                movie_s = len(timeline) * SEGMENT_S
                for length in spans:
                    start = rng.uniform(0, movie_s - length)
                    hits += truth(start, start + length, timeline) in RARE
            random_shares.append(hits / max(1, n))
        top_share, random_share = top_hits / max(1, n), float(np.mean(random_shares))
        minutes = scored_s / 60
        rare_time = sum(sum(e in RARE for e in t) for t in timelines) / sum(map(len, timelines))
        print(
            f"\n{args.movies} test movies, {minutes:.1f} min, rare share of the time {rare_time:.1%}"
        )
        print(f"top-{args.top} per movie: {n} segments, {top_hits} disgust/fear: {top_share:.1%}")
        print(f"random, same count and lengths (mean of 200 draws): {random_share:.1%}")
        ratio = top_share / random_share if random_share else float("inf")
        verdict = "meets" if n and ratio >= 3 else "MISSES"
        print(f"ratio {ratio:.1f}x ({verdict} the >= 3x target)")
        print(
            f"yield: {top_hits / minutes:.2f} rare segments per minute scored "
            f"(random: {random_share * n / minutes:.2f})"
        )
        print(
            f"speed: scoring {scored_s / score_s:.1f}x real time ({score_s:.1f} s); decode "
            f"alone {scored_s / decode_s:.1f}x ({decode_s:.1f} s); scoring takes "
            f"{score_s / decode_s:.1f}x the decode's time, on {network.device}"
        )


if __name__ == "__main__":
    main()
