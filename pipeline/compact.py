"""The compact training format: what the ml app trains on, off the web host.

A folder with three files:

- ``manifest.csv``: one row per clip, in the order of the frames array. Columns: ``clip_id``,
  ``movie``, ``label`` (the single label's 1-based code, 0 when no emotion reached the
  campaign's single-label threshold), ``votes_1`` … ``votes_K`` (how many annotators chose each
  label code), ``fold`` (1..k; 0 for a clip outside the split, which only ever trains a
  distribution target).
- ``frames.npy``: uint8, shape ``(N, T, H, W, 3)``, the T sampled frames of every clip,
  channels last. One array, read with ``numpy.load(..., mmap_mode="r")``: a DataLoader
  worker touches only the pages of the clips it reads, and a clip is one contiguous slice
  (bench/loader.py measures this against one JPEG per frame, the DFEW authors' scheme).
- ``meta.json``: ``{"format": "dfer-compact", "version": 1, "count", "frames", "height",
  "width", "labels": [names in code order]}``.

Writers stream clips into the memory map, so a dataset larger than memory can be written.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FORMAT = "dfer-compact"
VERSION = 1


@dataclass(frozen=True)
class ClipRecord:
    clip_id: int
    movie: int
    label: int  # 1-based code; 0 = not single-labelled
    votes: tuple[int, ...]
    fold: int


def write_compact(
    out: str | Path,
    records: Sequence[ClipRecord],
    clips: Iterable[np.ndarray],
    label_names: Sequence[str],
    frames: int,
    size: tuple[int, int],
) -> Path:
    """Writes `records` and their frame arrays (each T×H×W×3 uint8) as a compact dataset."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    height, width = size
    shape = (len(records), frames, height, width, 3)
    tmp = out / "frames.npy.tmp"
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    written = 0
    for i, clip in enumerate(clips):
        if clip.shape != shape[1:] or clip.dtype != np.uint8:
            raise ValueError(f"clip {i}: expected {shape[1:]} uint8, got {clip.shape} {clip.dtype}")
        array[i] = clip
        written += 1
    if written != len(records):
        raise ValueError(f"{len(records)} manifest rows but {written} clips")
    array.flush()
    del array
    os.replace(tmp, out / "frames.npy")

    k = len(label_names)
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["clip_id", "movie", "label", *[f"votes_{c}" for c in range(1, k + 1)], "fold"]
        )
        for r in records:
            if len(r.votes) != k:
                raise ValueError(f"clip {r.clip_id}: {len(r.votes)} vote counts for {k} labels")
            writer.writerow([r.clip_id, r.movie, r.label, *r.votes, r.fold])
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "count": len(records),
        "frames": frames,
        "height": height,
        "width": width,
        "labels": list(label_names),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=2))
    return out
