"""Face detectors on the real-face test set (``pipeline.real_faces``): Haar, the detector the
pipeline has always used, against the CNN detectors (``pipeline.faces.DETECTORS``) in the
same run, on the same frames, each on one core.

For every detector, per frame of the movie (340 frames of 640×360: 280 with the target face,
60 without), two lines: the main face per frame (``detect``: the largest; no tracking, no
``near``), and "tracked": the target's box per frame from ``FaceCrops`` as the extraction
runs it (the whole frame every 5th frame, every 10th while steady, the target looked for in
a window around it on every frame between, misses bridged within 0.2 s, aligned crops cut),
on the yuv420p planes the extraction gets. For each:

- localised: share of face frames whose box is on the target (centre within a quarter of the
  face's side, size 0.7–1.5× of it; issue 19's rule), overall and per stretch;
- IoU: mean IoU with the truth over face frames (0 where nothing was found);
- other: face frames whose box is on the second, smaller face instead (must be 0);
- no face: share of frames without a face that the detector says have none;
- jitter: mean frame-to-frame change of the box centre's error, in % of the face's side,
  over consecutive localised frames of a stretch;
- ms/frame: the best of ``--repeat`` passes over the movie (detection, or all of FaceCrops'
  work with its crops; the frames are drawn beforehand), the process held to one core (``os.sched_setaffinity``, as
  ``bench/extraction.py``), OpenCV and OpenMP at one thread.

A detector whose package is missing is reported as such and skipped. Run it with::

    .venv/bin/python bench/faces.py
    .venv/bin/python bench/faces.py --detectors haar,yuface --repeat 3 --seed 1
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before any OpenMP library loads

import sys  # noqa: E402
import time  # noqa: E402
from collections import defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from pipeline.faces import DETECTORS, FaceCrops, make_detector  # noqa: E402
from pipeline.media import I420Frame  # noqa: E402
from pipeline.real_faces import (  # noqa: E402
    HEIGHT,
    STRETCHES,
    WIDTH,
    iou,
    localised,
    real_face_movie,
    side,
)


def evaluate(boxes, movie) -> dict:
    face = [i for i, t in enumerate(movie.truth) if t is not None]
    empty = [i for i, t in enumerate(movie.truth) if t is None]
    hit = {i: localised(boxes[i], movie.truth[i]) for i in face}
    per = defaultdict(list)
    for i in face:
        per[movie.stretch[i]].append(hit[i])
    other = sum(
        1 for i in face if movie.others[i] is not None and localised(boxes[i], movie.others[i])
    )
    steps = []
    for i in face[1:]:
        if hit.get(i - 1) and hit[i] and movie.stretch[i] == movie.stretch[i - 1]:
            err = []
            for j in (i - 1, i):
                b, t = boxes[j], movie.truth[j]
                err.append((b.x + b.w / 2 - t.x - t.w / 2, b.y + b.h / 2 - t.y - t.h / 2))
            d = ((err[1][0] - err[0][0]) ** 2 + (err[1][1] - err[0][1]) ** 2) ** 0.5
            steps.append(100 * d / side(movie.truth[i]))
    return {
        "localised": sum(hit.values()) / len(face),
        "iou": sum(iou(boxes[i], movie.truth[i]) for i in face) / len(face),
        "other": other,
        "no_face": sum(boxes[i] is None for i in empty) / len(empty),
        "jitter": sum(steps) / len(steps) if steps else float("nan"),
        "per": {name: sum(v) / len(v) for name, v in per.items()},
    }


def per_frame(detector, frames) -> list:
    return [detector.detect(frame) for frame in frames]


def tracked(detector, frames) -> list:
    """FaceCrops as the extraction runs it (every 5th frame, every 10th while steady, the
    0.2 s hold at 25 fps, 112 px aligned crops), on the yuv420p planes the extraction gets."""
    crops = FaceCrops(detector, 112, 5, None, 5)
    for frame in frames:
        crops.add(frame)
    return crops.boxes


def timed(run, detector, frames, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        run(detector, frames)
        best = min(best, time.perf_counter() - t0)
    return 1000 * best / len(frames)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--core", type=int, default=None, help="the core to pin (default: the last)"
    )
    parser.add_argument("--luma", action="store_true", help="give CNN detectors the grey frame too")
    args = parser.parse_args()

    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[-1] if args.core is None else args.core})
    movie = real_face_movie(args.seed)
    frames = list(movie.frames())
    planes = [I420Frame(cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420), WIDTH, HEIGHT) for f in frames]
    grey = None
    n_face = sum(t is not None for t in movie.truth)
    print(
        f"real-face movie, seed {args.seed}: {movie.n_frames} frames 640×360, {n_face} with the "
        f"target, {movie.n_frames - n_face} without; one core {sorted(os.sched_getaffinity(0))}"
    )
    rows = []
    for name in args.detectors.split(","):
        try:
            detector = make_detector(name)
        except ImportError as error:
            print(f"{name}: not installed ({error})")
            continue
        variants = [(name, per_frame, frames)]
        if args.luma and getattr(detector, "wants_rgb", False):
            grey = grey or [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
            variants.append((f"{name} (luma)", per_frame, grey))
        variants.append((f"{name} tracked", tracked, planes))
        for label, run, seen in variants:
            result = evaluate(run(detector, seen), movie)
            result["ms"] = timed(run, detector, seen, args.repeat)
            rows.append((label, result))

    names = [s.name for s in STRETCHES if s.face]
    print()
    print(
        f"{'detector':20} {'localised':>9} {'IoU':>5} {'other':>5} {'no face':>7} {'jitter %':>8} {'ms/frame':>8}"
    )
    for label, r in rows:
        print(
            f"{label:20} {r['localised']:9.3f} {r['iou']:5.2f} {r['other']:5d} {r['no_face']:7.2f} "
            f"{r['jitter']:8.1f} {r['ms']:8.1f}"
        )
    print()
    print("localised per stretch")
    print(f"{'detector':20} " + " ".join(f"{n[:11]:>11}" for n in names))
    for label, r in rows:
        print(f"{label:20} " + " ".join(f"{r['per'][n]:11.2f}" for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
