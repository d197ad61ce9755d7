"""Clips per second of the ml dataset against the DFEW authors' loading scheme, one core.

Both read the same generated ragged clips (every frame kept, 20 to 80 frames each, 112×112)
from this machine's disk, warm in the page cache after writing, and both draw 16 frames per
clip the authors' training way (16 sorted random positions, afresh per epoch):

- baseline, the authors' scheme (``libs/DFEW_Dataset.py``): ``sorted(glob(data/<clip>/*))``,
  the 16 positions, each JPEG opened with PIL, converted, resized, turned into float32 and
  stacked to ``3 × 16 × H × W``;
- ours: `ml.data.CompactDataset` in training mode (every frame in one memory-mapped uint8
  array with an offsets index), an item being the clip's ``16 × H × W × 3`` uint8 tensor; the
  float conversion (and any resize) happen per batch on the training device. A second figure adds
  that batch step on this CPU, for a box without GPU.

    python bench/loader.py [--clips 200] [--size 112]
"""

from __future__ import annotations

import argparse
import glob
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.data import CompactDataset, prepare_batch, sample_indices  # noqa: E402
from pipeline.compact import ClipRecord, write_compact  # noqa: E402
from pipeline.synthetic import render_clip  # noqa: E402


def authors_item(root: Path, clip_id: int, size: int, rng: random.Random) -> torch.Tensor:
    paths = sorted(glob.glob(str(root / "data" / f"{clip_id:05d}" / "*")))
    frames = []
    for index in sample_indices(len(paths), 16, train=True, rng=rng):
        image = Image.open(paths[index]).convert("RGB").resize((size, size))
        frames.append(
            torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        )
    return torch.stack(frames, dim=1)  # 3 × 16 × H × W


def rate(fn, n: int, repeats: int = 3) -> float:
    """Clips per second of fn(epoch, i) over n clips, the best of `repeats` epochs."""
    best = float("inf")
    for epoch in range(repeats):
        t0 = time.perf_counter()
        for i in range(n):
            fn(epoch, i)
        best = min(best, time.perf_counter() - t0)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--size", type=int, default=112)
    args = parser.parse_args()
    torch.set_num_threads(1)  # one core for both schemes
    work = Path(tempfile.mkdtemp(prefix="dfer-loader-"))
    rng = np.random.default_rng(0)
    clips = [
        render_clip("happy", int(rng.integers(20, 81)), args.size, rng) for _ in range(args.clips)
    ]
    for i, clip in enumerate(clips, start=1):
        folder = work / "dfew" / "data" / f"{i:05d}"
        folder.mkdir(parents=True)
        for t, frame in enumerate(clip, start=1):
            Image.fromarray(frame).save(folder / f"{i:05d}_{t:05d}.jpg", quality=95)
    records = [ClipRecord(i, 1, 1, (10, 0, 0, 0, 0, 0, 0), 1) for i in range(1, args.clips + 1)]
    labels = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]
    write_compact(work / "compact", records, clips, labels, (args.size, args.size))
    dataset = CompactDataset(work / "compact", [1], train=True)
    frames = sum(len(c) for c in clips)

    draws = random.Random(0)
    baseline = rate(lambda e, i: authors_item(work / "dfew", i + 1, args.size, draws), args.clips)
    ours = rate(lambda e, i: dataset[(e, i)], args.clips)

    def with_batch_step(epoch: int, i: int) -> None:
        prepare_batch(dataset[(epoch, i)][0][None], args.size, train=True)

    ours_cpu = rate(with_batch_step, args.clips)
    print(
        f"{args.clips} clips, {frames} frames in all (20–80 per clip, every frame kept), "
        f"16 random frames per clip per epoch at {args.size}×{args.size}, one process, one thread"
    )
    print(f"authors' scheme (JPEG per frame, PIL, float):  {baseline:9.1f} clips/s  (baseline)")
    print(
        f"compact memmap, uint8 item:                     {ours:9.1f} clips/s  "
        f"(×{ours / baseline:.1f} the authors' scheme, same run)"
    )
    print(
        f"compact memmap + batch step to float, this CPU: {ours_cpu:9.1f} clips/s  "
        f"(×{ours_cpu / baseline:.1f})"
    )


if __name__ == "__main__":
    main()
