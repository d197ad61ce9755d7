"""Clip extraction: the pipeline's clips per second against the raw ffmpeg command doing the
same frame-exact cut and encode, measured in the same run, and with one worker against two.

The source is generated: every frame paints its own number (``pipeline.synthetic_movies``), so
every extracted clip is checked to hold exactly the frames start_s ≤ k / fps < end_s.

- raw: ``clip_command(...)`` compiled to its argument list and run with subprocess: the cut
  and the H.264 encode alone, nothing else;
- ours, no faces: ``extract_clip`` without a face folder (cut, decode, poster, temp file and
  ``os.replace``);
- ours: ``extract_clip`` as the worker runs it: plus every frame's face crop, Haar cascade on
  a copy downscaled to ``--detect-height`` pixels (160);
- workers: the same full extraction over all clips in one process, then split over two
  processes (a Celery prefork worker's children, one ffmpeg thread each).

Targets (issue 9): ours within 15 % of raw; two workers at least 1.8× one; every clip exact.

    .venv/bin/python bench/extraction.py                      # 640×360 source, 8 clips
    .venv/bin/python bench/extraction.py --width 1920 --height 1080 --max-height 720

Exits 1 when a clip is not frame-exact.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline import media  # noqa: E402
from pipeline.faces import HaarFaceDetector  # noqa: E402
from pipeline.synthetic_movies import frame_numbers, numbered_frames  # noqa: E402


def make_source(folder: Path, args) -> Path:
    """The numbered source, streamed to ffmpeg a frame at a time (a 1080p one is large)."""
    path = folder / "source.mp4"
    proc = subprocess.Popen(
        [
            media.ffmpeg_binary(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
            "-s", f"{args.width}x{args.height}", "-framerate", str(args.fps), "-i", "pipe:",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18", "-preset", "veryfast",
            "-g", str(args.gop), "-movflags", "+faststart", str(path),
        ],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    for k in range(round(args.seconds * args.fps)):
        proc.stdin.write(numbered_frames(1, args.width, args.height, first=k).tobytes())
    proc.stdin.close()
    if proc.wait():
        raise SystemExit("ffmpeg could not write the source")
    return path


def make_spans(args, duration: float) -> list[tuple[float, float]]:
    rng = np.random.default_rng(args.seed)
    spans = []
    for _ in range(args.clips):
        length = float(rng.uniform(1.0, 3.0))
        start = float(rng.uniform(0, duration - length - 0.1))
        spans.append((round(start, 3), round(start + length, 3)))
    return spans


def _spec(span, args) -> media.ClipSpec:
    return media.ClipSpec(span[0], span[1], max_height=args.max_height, threads=args.threads)


def run_raw(source, info, spans, out: Path, args) -> float:
    started = time.perf_counter()
    for i, span in enumerate(spans):
        cmd = media.clip_command(source, out / f"raw{i}.mp4", info, _spec(span, args))
        subprocess.run(cmd.compile(cmd=media.ffmpeg_binary()), check=True, capture_output=True)
    return time.perf_counter() - started


def extract_one(job) -> int:
    source, info, span, out, faces, args, i = job
    media.extract_clip(
        source,
        info,
        _spec(span, args),
        video_path=out / f"clip{i}.mp4",
        poster_path=out / f"poster{i}.jpg",
        faces_dir=(out / f"faces{i}") if faces else None,
        detector=HaarFaceDetector(detect_height=args.detect_height) if faces else None,
    )
    return i


def run_ours(source, info, spans, out: Path, args, faces: bool, workers: int = 0) -> float:
    jobs = [(source, info, span, out, faces, args, i) for i, span in enumerate(spans)]
    started = time.perf_counter()
    if workers:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(extract_one, jobs))
    else:
        for job in jobs:
            extract_one(job)
    return time.perf_counter() - started


def check_exact(info, spans, out: Path) -> list[str]:
    rate = media.frame_rate(info.fps)
    wrong = []
    for i, (start, end) in enumerate(spans):
        first, count = media.frame_span(start, end, rate)
        got = frame_numbers(media.read_frames(out / f"clip{i}.mp4"))
        if got != list(range(first, first + count)):
            wrong.append(f"clip {i} ({start}–{end} s): frames {got[:3]}… ≠ {first}…")
    return wrong


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--gop", type=int, default=50, help="source keyframe interval")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--max-height", type=int, default=720)
    parser.add_argument("--detect-height", type=int, default=160)
    parser.add_argument("--threads", type=int, default=1, help="ffmpeg threads per clip")
    parser.add_argument("--repeat", type=int, default=2, help="best of this many runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        source = make_source(tmp, args)
        info = media.probe_movie(source)
        spans = make_spans(args, info.duration_s)
        print(
            f"source {info.width}×{info.height} {info.fps:g} fps {info.duration_s:g} s "
            f"(keyframe every {args.gop}); {len(spans)} clips of 1–3 s; output ≤ "
            f"{args.max_height} px, {args.threads} ffmpeg thread(s) per clip"
        )
        best = {"raw": [], "ours, no faces": [], "ours": [], "1 worker": [], "2 workers": []}
        for _ in range(args.repeat):  # interleaved, so drift hits every variant alike
            best["raw"].append(run_raw(source, info, spans, tmp, args))
            best["ours, no faces"].append(run_ours(source, info, spans, tmp, args, faces=False))
            best["ours"].append(run_ours(source, info, spans, tmp, args, faces=True))
            best["1 worker"].append(run_ours(source, info, spans, tmp, args, True, workers=1))
            best["2 workers"].append(run_ours(source, info, spans, tmp, args, True, workers=2))
        rate = {name: len(spans) / min(times) for name, times in best.items()}
        for name, value in rate.items():
            print(f"  {name:<15} {value:6.2f} clips/s  ({min(best[name]):.2f} s for {len(spans)})")
        print(f"ours / raw:             {rate['ours'] / rate['raw']:.2f}  (target ≥ 0.85)")
        print(f"ours, no faces / raw:   {rate['ours, no faces'] / rate['raw']:.2f}")
        print(f"2 workers / 1 worker:   {rate['2 workers'] / rate['1 worker']:.2f}  (target ≥ 1.8)")
        wrong = check_exact(info, spans, tmp)
        print(f"frame-exact: {len(spans) - len(wrong)} of {len(spans)} clips")
        for line in wrong:
            print("  " + line)
        return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
