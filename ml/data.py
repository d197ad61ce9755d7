"""Datasets over exported folds, the authors' frame sampling, and the per-batch transform.

Two sources, one output: every dataset item is ``(clip, label, votes, clip_id)`` with ``clip``
a ``T × H × W × 3`` uint8 tensor, ``label`` a 0-based class index (−1 when the clip has no
single label), and ``votes`` the per-class vote counts. Clips stay uint8 until they reach the
training device, where `prepare_batch` resizes (and, in the modern protocol, crops and flips)
and normalises the whole batch at once; a DataLoader worker does no float work per clip.

Which frames: `sample_indices`, the DFEW authors' rule. At test time the same frames always;
in training, when the dataset is built with ``train=True``, a fresh random draw per clip and
epoch. The draw comes from ``random.Random((seed, epoch, clip))``: the same run gives the same
draws whatever the number of DataLoader workers, and a run resumed at epoch e draws what the
uninterrupted run drew. The epoch reaches the workers through the sampler (`EpochSampler`
yields ``(epoch, index)``), since persistent workers never see a ``set_epoch`` call.

- `CompactDataset`: the compact format (``pipeline/compact.py``): every frame of every clip in
  one memory-mapped uint8 array, ragged, with an offsets index. The fast path.
- `DFEWDataset`: DFEW's release layout (``data/<clip:05d>/*.jpg`` and
  ``label/single_{train,test}set_<k>.csv``), read the way the authors' loader reads it.
"""

from __future__ import annotations

import csv
import glob
import math
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset, Sampler

from pipeline.compact import open_frames, read_meta
from pipeline.dfew import indices_like_authors

# ImageNet statistics: used with ImageNet-pretrained weights (the authors' rule), or always in
# the modern protocol.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def sample_indices(
    n_frames: int, count: int = 16, train: bool = False, rng: random.Random | None = None
) -> np.ndarray:
    """The DFEW authors' frame choice (``generate_index``), as indices into a clip's frames.

    A clip with fewer than `count` frames has its frame list repeated whole until it is at
    least `count` long. Test time: the entries at ``linspace(0, len − 1, count)`` (10 frames →
    0 1 2 3 5 6 7 8 0 1 2 3 5 6 7 9). Training: the entries at `count` distinct positions drawn
    at random and sorted (``rng``, a ``random.Random``, makes it reproducible; default the
    ``random`` module, as theirs). The rule is written once, in
    ``pipeline.dfew.indices_like_authors``.
    """
    return np.asarray(indices_like_authors(n_frames, train, rng, count), dtype=np.int64)


def segment_indices(
    n_frames: int,
    count: int = 16,
    train: bool = False,
    rng: random.Random | None = None,
    duration: int = 2,
) -> np.ndarray:
    """The 2024 EC-STFL release's frame choice (``dataloader/Videos_Dataset.py``): ``count /
    duration`` segments (8 × 2 for 16 frames), `duration` consecutive frames from each
    segment's start, the last frame repeated at the clip's end.

    Training: segment starts at ``k · avg + randint(avg)`` with ``avg = (n − duration + 1) //
    segments``; when that is 0, sorted random starts, or all zero for clips no longer than the
    segment count. Test: the middle of each segment, ``int(tick / 2 + tick · k)`` with ``tick
    = (n − duration + 1) / segments``, or all zero for short clips.
    """
    segments = max(1, count // duration)
    rng = rng or random
    if train:
        average = (n_frames - duration + 1) // segments
        if average > 0:
            starts = [k * average + rng.randrange(average) for k in range(segments)]
        elif n_frames > segments:
            starts = sorted(rng.randrange(n_frames - duration + 1) for _ in range(segments))
        else:
            starts = [0] * segments
    elif n_frames > segments + duration - 1:
        tick = (n_frames - duration + 1) / segments
        starts = [int(tick / 2.0 + tick * k) for k in range(segments)]
    else:
        starts = [0] * segments
    picked = []
    for p in starts:
        for _ in range(duration):
            picked.append(p)
            if p < n_frames - 1:
                p += 1
    return np.asarray(picked, dtype=np.int64)


def clip_rng(seed: int, epoch: int, clip_id: int) -> random.Random:
    """The random source of one clip's training draw in one epoch (see the module text)."""
    return random.Random(f"{seed}:{epoch}:{clip_id}")


class EpochSampler(Sampler):
    """Yields ``(epoch, index)``: a permutation drawn from (seed, epoch), this rank's share of
    it when several processes train (every rank the same length, padded with repeats as
    DistributedSampler does), or the indices in order when ``shuffle`` is off. Call
    ``set_epoch`` before each epoch; the order never depends on earlier epochs, so a resumed
    run sees the batches the uninterrupted one saw."""

    def __init__(self, n: int, seed: int = 0, rank: int = 0, world: int = 1, shuffle=True):
        self.n, self.seed, self.rank, self.world, self.shuffle = n, seed, rank, world, shuffle
        self.epoch = 0
        self.per_rank = -(-n // world) if n else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        order += order[: self.per_rank * self.world - self.n]
        return iter((self.epoch, i) for i in order[self.rank :: self.world])

    def __len__(self) -> int:
        return self.per_rank


class _Clips(Dataset):
    """What both sources share: labels, votes, ids, and which frames an item reads."""

    label_names: list[str]
    labels: torch.Tensor
    votes: torch.Tensor
    clip_ids: torch.Tensor

    def __init__(self, frames: int, train: bool, seed: int, sampling: str = "random"):
        self.num_frames, self.train, self.seed = frames, train, seed
        # "random"/"fixed": the DFEW authors' rule; "segments": the EC-STFL release's 8 × 2.
        self.sampling = sampling

    def _indices(self, key, n_frames: int) -> tuple[int, np.ndarray]:
        """(item, frame indices) for a key that is an index or an ``(epoch, index)`` pair."""
        epoch, i = key if isinstance(key, tuple) else (0, key)
        rule = segment_indices if self.sampling == "segments" else sample_indices
        if not self.train:
            return i, rule(n_frames, self.num_frames)
        rng = clip_rng(self.seed, epoch, int(self.clip_ids[i]))
        return i, rule(n_frames, self.num_frames, train=True, rng=rng)

    def __len__(self) -> int:
        return len(self.clip_ids)


class CompactDataset(_Clips):
    """Clips of the given folds. ``single_only`` keeps clips with a single label (DFEW's
    benchmark protocol); without it, clips with only a vote distribution are kept too.
    ``train`` draws the frames afresh per epoch; ``train_sampling="fixed"`` keeps the test-time
    frames in training too (the modern protocol)."""

    def __init__(
        self,
        root: str | os.PathLike,
        folds,
        single_only: bool = True,
        frames: int = 16,
        train: bool = False,
        seed: int = 0,
        sampling: str = "random",
    ):
        super().__init__(frames, train, seed, sampling)
        self.root = Path(root)
        self.meta = read_meta(self.root)
        self.label_names: list[str] = self.meta["labels"]
        self.source = self.meta.get("source") or str(self.root.resolve())
        folds = set(folds)
        rows, labels, votes, clip_ids = [], [], [], []
        with open(self.root / "manifest.csv", newline="") as f:
            for index, row in enumerate(csv.DictReader(f)):
                if int(row["fold"]) not in folds:
                    continue
                label = int(row["label"])
                if single_only and label == 0:
                    continue
                rows.append(index)
                labels.append(label - 1)
                votes.append([int(row[f"votes_{c}"]) for c in range(1, len(self.label_names) + 1)])
                clip_ids.append(int(row["clip_id"]))
        self.rows = np.asarray(rows, dtype=np.int64)
        self.labels = torch.tensor(labels, dtype=torch.long)
        self.votes = torch.tensor(votes, dtype=torch.float32).reshape(-1, len(self.label_names))
        self.clip_ids = torch.tensor(clip_ids, dtype=torch.long)
        self._frames = None  # opened lazily, once per DataLoader worker

    def _open(self):
        if self._frames is None:
            self._frames = open_frames(self.root, self.meta)
        return self._frames

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_frames"] = None  # never pickle a memory map into a worker
        return state

    def __getitem__(self, key):
        frames, offsets = self._open()
        row = self.rows[key[1] if isinstance(key, tuple) else key]
        start, end = int(offsets[row]), int(offsets[row + 1])
        i, picked = self._indices(key, end - start)
        clip = torch.from_numpy(frames[start + picked])  # fancy indexing copies: writable
        return clip, self.labels[i], self.votes[i], self.clip_ids[i]


class DFEWDataset(_Clips):
    """DFEW's release layout for fold `fold` (1..5), ``split`` "train" or "test"; frames
    resized to `size` as they are read (the authors' ``transforms.Resize``)."""

    def __init__(
        self,
        root,
        fold: int,
        split: str,
        frames: int = 16,
        size: int = 112,
        seed: int = 0,
        sampling: str = "random",
    ):
        if split not in ("train", "test"):
            raise ValueError("split is 'train' or 'test'")
        super().__init__(frames, split == "train", seed, sampling)
        self.root = Path(root)
        self.size = size
        self.label_names = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]
        self.source = _release_source(self.root)
        csv_path = self.root / "label" / f"single_{split}set_{fold}.csv"
        with open(csv_path, newline="") as f:
            rows = [(int(r["video_name"]), int(r["label"])) for r in csv.DictReader(f)]
        self.clip_ids = torch.tensor([c for c, _ in rows], dtype=torch.long)
        self.labels = torch.tensor([label - 1 for _, label in rows], dtype=torch.long)
        self.votes = F.one_hot(self.labels, len(self.label_names)).float()

    def __getitem__(self, key):
        from PIL import Image

        i = key[1] if isinstance(key, tuple) else key
        clip_id = int(self.clip_ids[i])
        paths = sorted(glob.glob(str(self.root / "data" / f"{clip_id:05d}" / "*")))
        frames = []
        for index in self._indices(key, len(paths))[1]:
            with Image.open(paths[index]) as image:
                image = image.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
                frames.append(np.asarray(image))
        return torch.from_numpy(np.stack(frames)), self.labels[i], self.votes[i], self.clip_ids[i]


def _release_source(root: Path) -> str:
    """The clip numbering of a release: its campaign when DFER Studio wrote it, else the folder."""
    import json

    marker = root / "dfer-export.json"
    if marker.is_file():
        return json.loads(marker.read_text()).get("campaign") or str(root.resolve())
    return str(root.resolve())


def prepare_batch(
    clips: torch.Tensor,
    size: int,
    train: bool,
    generator: torch.Generator | None = None,
    augment: bool = False,
    normalize: bool = False,
    crop_fraction: float = 1.0,
    channels_last: bool = False,
    crop: str = "fraction",
) -> torch.Tensor:
    """uint8 ``B × T × H × W × 3`` (on the training device) → float ``B × 3 × T × size × size``.

    The authors' protocol (the defaults): a plain resize to `size`, pixels in [0, 1], ImageNet
    mean/std only with `normalize` (they normalise only with ImageNet-pretrained weights).
    The modern protocol: with `augment` in training, a random crop of `crop_fraction` of each
    side and a random horizontal flip per clip; at test time the centre crop of
    `crop_fraction`; `normalize` always. With ``crop="random-sized"`` and `augment` in
    training: the EC-STFL release's RandomSizedCrop (`random_sized_box`) and a flip per clip.
    """
    b, t, h, w, _ = clips.shape
    device = clips.device
    if train and augment and crop == "random-sized":
        boxes = [random_sized_box(h, w, generator) for _ in range(b)]
        flips = (torch.rand(b, generator=generator) < 0.5).tolist()
        parts = []
        for i, (top, left, ch, cw) in enumerate(boxes):
            part = clips[i : i + 1, :, top : top + ch, left : left + cw]
            part = prepare_batch(part, size, False, normalize=normalize)
            parts.append(part.flip(-1) if flips[i] else part)
        x = torch.cat(parts)
        memory = torch.channels_last_3d if channels_last else torch.contiguous_format
        return x.contiguous(memory_format=memory)
    fraction = crop_fraction if (augment or not train) else 1.0
    ch, cw = max(1, round(h * fraction)), max(1, round(w * fraction))
    if train and augment:
        top = torch.randint(0, h - ch + 1, (b,), generator=generator).tolist()
        left = torch.randint(0, w - cw + 1, (b,), generator=generator).tolist()
        flip = (torch.rand(b, generator=generator) < 0.5).tolist()
    else:
        top, left, flip = [(h - ch) // 2] * b, [(w - cw) // 2] * b, [False] * b
    if (ch, cw) != (h, w) or any(flip):
        crops = []
        for i in range(b):
            crop = clips[i, :, top[i] : top[i] + ch, left[i] : left[i] + cw]
            crops.append(crop.flip(2) if flip[i] else crop)
        clips = torch.stack(crops)
    x = clips.permute(0, 1, 4, 2, 3).float().div_(255.0).reshape(b * t, 3, ch, cw)
    if (ch, cw) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
    if normalize:
        mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
        std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
        x = (x - mean) / std
    x = x.view(b, t, 3, size, size).permute(0, 2, 1, 3, 4)
    memory = torch.channels_last_3d if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=memory)


def random_sized_box(h: int, w: int, generator: torch.Generator | None = None):
    """(top, left, height, width) of the release's ``GroupRandomSizedCrop``: up to 10 tries
    of 8-100 % of the area at an aspect ratio of 3/4-4/3 (sides swapped half the time),
    placed at random; else the whole frame (their fallback, scale then crop, on square
    frames)."""

    def uniform(lo, hi):
        return lo + (hi - lo) * float(torch.rand(1, generator=generator))

    for _ in range(10):
        target = uniform(0.08, 1.0) * h * w
        ratio = uniform(3 / 4, 4 / 3)
        cw, ch = round(math.sqrt(target * ratio)), round(math.sqrt(target / ratio))
        if float(torch.rand(1, generator=generator)) < 0.5:
            cw, ch = ch, cw
        if 0 < cw <= w and 0 < ch <= h:
            left = int(torch.randint(0, w - cw + 1, (1,), generator=generator))
            top = int(torch.randint(0, h - ch + 1, (1,), generator=generator))
            return top, left, ch, cw
    return 0, 0, h, w


# --- what an export holds, checked before any training ---------------------------------------


def frame_side(root: str | os.PathLike) -> tuple[int, int] | None:
    """(height, width) of an export's frames: the compact format's, or the first JPEG of
    DFEW's layout; None when there is none to read."""
    root = Path(root)
    if (root / "meta.json").exists():
        meta = read_meta(root)
        if "height" in meta and "width" in meta:
            return int(meta["height"]), int(meta["width"])
        return None
    first = next(iter(sorted((root / "data").glob("*/*.jpg"))), None)
    if first is None:
        return None
    from PIL import Image

    with Image.open(first) as image:
        return image.height, image.width


def check_frame_size(root, input_size: int, model: str = "", upsample: bool = False):
    """Refuses (ValueError) frames smaller than the network's input side, naming the fix;
    with `upsample` it warns as loudly (stderr and a warning) and returns the message."""
    side = frame_side(root)
    if side is None or min(side) >= input_size:
        return None
    who = f" of {model}" if model else ""
    message = (
        f"the frames are {side[0]}×{side[1]}, smaller than the input side {input_size}{who}: "
        f"the network would see them upsampled. Export at the size it needs: `python manage.py "
        f"export_dfew <campaign> <outdir> --size {input_size}` (or pass --input-size "
        f"{min(side)}, or --upsample to train on them anyway, recorded as a modification)"
    )
    if not upsample:
        raise ValueError(message)
    import sys
    import warnings

    print(f"WARNING: {message}", file=sys.stderr, flush=True)
    warnings.warn(message, stacklevel=2)
    return message


def export_folds(root: str | os.PathLike) -> list[int]:
    """The folds an export has: the manifest's but 0 (compact format), or those with a test list in
    ``label/`` (DFEW's layout). Raises FileNotFoundError for neither layout."""
    root = Path(root)
    if (root / "meta.json").exists():
        # fold 0: clips with a vote distribution and no single label (in no test fold)
        with open(root / "manifest.csv", newline="") as f:
            return sorted({int(row["fold"]) for row in csv.DictReader(f)} - {0})
    if (root / "label").is_dir():
        found = []
        for path in (root / "label").glob("single_*set_*.csv"):
            tail = path.stem.rsplit("_", 1)[-1]
            if tail.isdigit():
                found.append(int(tail))
        return sorted(set(found))
    raise FileNotFoundError(
        f"{root}: neither a compact export (meta.json) nor DFEW's layout (label/)"
    )


def _fold_labels(root: Path, folds: list[int]) -> tuple[list[str], dict[int, list[int]]]:
    """(label names, {fold: 0-based single labels of its clips}) without reading any frame."""
    if (root / "meta.json").exists():
        names = read_meta(root)["labels"]
        labels: dict[int, list[int]] = {k: [] for k in folds}
        with open(root / "manifest.csv", newline="") as f:
            for row in csv.DictReader(f):
                fold, label = int(row["fold"]), int(row["label"])
                if fold in labels and label > 0:
                    labels[fold].append(label - 1)
        return names, labels
    names = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]
    labels = {}
    for k in folds:
        with open(root / "label" / f"single_testset_{k}.csv", newline="") as f:
            labels[k] = [int(r["label"]) - 1 for r in csv.DictReader(f)]
    return names, labels


def check_export(
    root,
    folds: list[int],
    input_size: int,
    min_train_clips: int,
    model: str = "",
    upsample: bool = False,
):
    """What `train_benchmark` checks before training: returns (summary lines, warnings) or
    raises ValueError naming every problem (a requested fold the export lacks, a missing fold
    file, a class with fewer clips than folds, frames smaller than the input)."""
    root = Path(root)
    have = export_folds(root)
    problems = []
    missing = [k for k in folds if k not in have]
    if missing:
        problems.append(
            f"the export has folds {', '.join(map(str, have)) or 'none'}, not "
            f"{', '.join(map(str, missing))}; use --folds {_span(have)} (or leave --folds out)"
        )
    if (root / "label").is_dir() and not (root / "meta.json").exists():
        for k in have:
            for split in ("train", "test"):
                if not (root / "label" / f"single_{split}set_{k}.csv").exists():
                    problems.append(f"label/single_{split}set_{k}.csv is missing")
    try:
        check_frame_size(root, input_size, model, upsample)
    except ValueError as exc:
        problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems) + ".")
    names, labels = _fold_labels(root, have)
    totals = [sum(lab.count(c) for lab in labels.values()) for c in range(len(names))]
    short = [f"{n} has {t}" for n, t in zip(names, totals, strict=True) if 0 < t < len(have)]
    if short:
        raise ValueError(
            f"{'; '.join(short)} single-labelled clips, fewer than the export's {len(have)} "
            "folds: some test folds have none of them. Split again with fewer folds, or label "
            "more."
        )
    width = max(9, *(len(n) + 1 for n in names))
    lines = ["fold  set  " + "".join(f"{n:>{width}}" for n in names) + f"{'total':>{width}}"]
    warnings_ = []
    for k in folds:
        test = [labels[k].count(c) for c in range(len(names))]
        train = [totals[c] - test[c] for c in range(len(names))]
        for part, counts in (("train", train), ("test", test)):
            cells = "".join(f"{n:>{width}}" for n in counts)
            lines.append(f"{k:<5} {part:<5}{cells}{sum(counts):>{width}}")
        few = [f"{n} {c}" for n, c in zip(names, train, strict=True) if 0 < c < min_train_clips]
        if few:
            warnings_.append(
                f"fold {k}: fewer than {min_train_clips} training clips for {', '.join(few)}; "
                "expect results near chance for these classes"
            )
        if sum(train) < min_train_clips:
            warnings_.append(
                f"fold {k}: {sum(train)} training clips in all; results will be near chance"
            )
    return lines, warnings_


def _span(folds: list[int]) -> str:
    if folds and folds == list(range(folds[0], folds[-1] + 1)):
        return f"{folds[0]}-{folds[-1]}"
    return ",".join(map(str, folds))
