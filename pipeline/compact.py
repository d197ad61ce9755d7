"""The compact training format: what the ml app trains on, off the web host.

A folder with four files:

- ``manifest.csv``: one row per clip, in the order of the frames. Columns: ``clip_id``,
  ``movie``, ``label`` (the single label's 1-based code, 0 when no emotion reached the
  campaign's single-label threshold), ``votes_1`` … ``votes_K`` (how many annotators chose each
  label code), ``fold`` (1..k; 0 for a clip outside the split, which only ever trains a
  distribution target), ``frames`` (how many frames the clip has).
- ``frames.u8``: every frame of every clip, one after the other, as raw uint8 of shape
  ``(total_frames, H, W, 3)`` (channels last, C order). Clips are ragged: a 1 s clip has fewer
  frames than a 5 s one, and all of them are kept, so training can draw its 16 frames afresh
  every epoch as the DFEW authors did. Read it with :func:`open_frames` (a ``numpy.memmap``): a
  DataLoader worker touches only the pages of the frames it reads (bench/loader.py measures
  this against one JPEG per frame, the DFEW authors' scheme).
- ``offsets.npy``: int64, ``N + 1`` entries; clip i's frames are
  ``frames[offsets[i]:offsets[i + 1]]``.
- ``meta.json``: ``{"format": "dfer-compact", "version": 2, "count", "total_frames",
  "height", "width", "labels": [names in code order], "source"}``. ``source`` names the clip
  numbering (e.g. the campaign): two exports with the same source number the same clips alike,
  which lets training refuse a checkpoint that saw the test clips.

Writers stream clips to disk, so a dataset larger than memory can be written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import csv_safe

FORMAT = "dfer-compact"
VERSION = 2


@dataclass(frozen=True)
class ClipRecord:
    clip_id: int
    movie: int
    label: int  # 1-based code; 0 = not single-labelled
    votes: tuple[int, ...]
    fold: int


class CompactWriter:
    """Streams clips into a compact dataset: ``add(record, clip)`` per clip, then ``close()``.

    Frames go straight to disk (a dataset larger than memory can be written); the manifest,
    offsets and meta.json are written by ``close()``, the frames renamed into place last, so a
    reader never sees a half-written dataset under the final names.
    """

    def __init__(
        self, out: str | Path, label_names: Sequence[str], size: tuple[int, int], source: str = ""
    ):
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.label_names, self.size, self.source = list(label_names), size, source
        self.records: list[ClipRecord] = []
        self.counts: list[int] = []
        self._tmp = self.out / "frames.u8.tmp"
        self._file = open(self._tmp, "wb")

    def add(self, record: ClipRecord, clip: np.ndarray) -> None:
        height, width = self.size
        if clip.ndim != 4 or clip.shape[1:] != (height, width, 3) or clip.dtype != np.uint8:
            raise ValueError(
                f"clip {record.clip_id}: expected T×{height}×{width}×3 uint8, got "
                f"{clip.shape} {clip.dtype}"
            )
        if len(clip) == 0:
            raise ValueError(f"clip {record.clip_id}: no frames")
        if len(record.votes) != len(self.label_names):
            raise ValueError(
                f"clip {record.clip_id}: {len(record.votes)} vote counts for "
                f"{len(self.label_names)} labels"
            )
        self._file.write(np.ascontiguousarray(clip).tobytes())
        self.records.append(record)
        self.counts.append(len(clip))

    def close(self) -> Path:
        self._file.close()
        offsets = np.zeros(len(self.counts) + 1, dtype=np.int64)
        np.cumsum(self.counts, out=offsets[1:])
        np.save(self.out / "offsets.npy", offsets)
        k = len(self.label_names)
        with open(self.out / "manifest.csv", "w", newline="") as f:
            # Numbers only today; any text cell (the header) goes through the one CSV rule.
            writer = csv_safe.writer(f)
            votes = [f"votes_{c}" for c in range(1, k + 1)]
            writer.writerow(["clip_id", "movie", "label", *votes, "fold", "frames"])
            for r, n in zip(self.records, self.counts, strict=True):
                writer.writerow([r.clip_id, r.movie, r.label, *r.votes, r.fold, n])
        meta = {
            "format": FORMAT,
            "version": VERSION,
            "count": len(self.records),
            "total_frames": int(offsets[-1]),
            "height": self.size[0],
            "width": self.size[1],
            "labels": self.label_names,
            "source": self.source,
        }
        (self.out / "meta.json").write_text(json.dumps(meta, indent=2))
        os.replace(self._tmp, self.out / "frames.u8")
        return self.out

    def abort(self) -> None:
        self._file.close()
        self._tmp.unlink(missing_ok=True)


def write_compact(
    out: str | Path,
    records: Sequence[ClipRecord],
    clips: Iterable[np.ndarray],
    label_names: Sequence[str],
    size: tuple[int, int],
    source: str = "",
) -> Path:
    """Writes `records` and their frames (each clip T×H×W×3 uint8, any T ≥ 1) as a compact
    dataset through a `CompactWriter`."""
    writer = CompactWriter(out, label_names, size, source)
    try:
        rest = iter(clips)
        for record in records:
            clip = next(rest, None)
            if clip is None:
                break
            writer.add(record, clip)
        if len(writer.records) != len(records) or next(rest, None) is not None:
            raise ValueError(f"{len(records)} manifest rows but a different number of clips")
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def read_meta(root: str | Path) -> dict:
    """meta.json of a compact dataset; ValueError for anything else (e.g. the v1 format)."""
    meta = json.loads((Path(root) / "meta.json").read_text())
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(
            f"{root} is not a {FORMAT} v{VERSION} dataset (meta.json: {meta}); "
            "export it again to get every frame of each clip"
        )
    return meta


def open_frames(root: str | Path, meta: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(frames, offsets): the read-only memory map of every frame and the clip offsets."""
    root = Path(root)
    meta = meta or read_meta(root)
    shape = (meta["total_frames"], meta["height"], meta["width"], 3)
    frames = np.memmap(root / "frames.u8", dtype=np.uint8, mode="r", shape=shape)
    return frames, np.load(root / "offsets.npy")
