"""Datasets over exported folds, and the per-batch augmentation.

Two sources, one output: every dataset item is ``(clip, label, votes, clip_id)`` with ``clip``
a ``T × H × W × 3`` uint8 tensor, ``label`` a 0-based class index (−1 when the clip has no
single label), and ``votes`` the per-class vote counts. Clips stay uint8 until they reach the
training device, where `prepare_batch` crops, flips, resizes and normalises the whole batch at
once; a DataLoader worker does no float work per clip.

- `CompactDataset`: the compact format (``pipeline/compact.py``): a memory-mapped
  ``frames.npy`` and ``manifest.csv``. The fast path.
- `DFEWDataset`: DFEW's release layout (``data/<clip:05d>/*.jpg`` and
  ``label/single_{train,test}set_<k>.csv``), read the way the authors' loader reads it.
"""

from __future__ import annotations

import csv
import glob
import json
import os
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import Dataset

from pipeline.dfew import indices_like_authors

# ImageNet statistics, as the DFEW code and the pretrained backbones use them.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


class CompactDataset(Dataset):
    """Clips of the given folds. ``single_only`` keeps clips with a single label (DFEW's
    benchmark protocol); without it, clips with only a vote distribution are kept too."""

    def __init__(self, root: str | os.PathLike, folds, single_only: bool = True):
        self.root = Path(root)
        meta = json.loads((self.root / "meta.json").read_text())
        if meta.get("format") != "dfer-compact" or meta.get("version") != 1:
            raise ValueError(f"{root} is not a dfer-compact v1 dataset (meta.json: {meta})")
        self.label_names: list[str] = meta["labels"]
        self.num_frames = meta["frames"]
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

    @property
    def frames(self) -> np.ndarray:
        if self._frames is None:
            self._frames = np.load(self.root / "frames.npy", mmap_mode="r")
        return self._frames

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_frames"] = None  # never pickle a memory map into a worker
        return state

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int):
        clip = torch.from_numpy(np.array(self.frames[self.rows[i]]))  # a writable copy
        return clip, self.labels[i], self.votes[i], self.clip_ids[i]


def sample_indices(n_frames: int, count: int = 16) -> np.ndarray:
    """The DFEW loader's test-time frame choice: `count` indices evenly spaced over the clip's
    frame list, a short clip's list first repeated whole until it is long enough (the authors'
    rule, written once in ``pipeline.dfew.indices_like_authors``)."""
    return np.asarray(indices_like_authors(n_frames, train=False, count=count), dtype=np.int64)


class DFEWDataset(Dataset):
    """DFEW's release layout for fold `fold` (1..5), ``split`` "train" or "test"."""

    def __init__(self, root, fold: int, split: str, frames: int = 16, size: int = 112):
        if split not in ("train", "test"):
            raise ValueError("split is 'train' or 'test'")
        self.root = Path(root)
        self.num_frames, self.size = frames, size
        self.label_names = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]
        csv_path = self.root / "label" / f"single_{split}set_{fold}.csv"
        with open(csv_path, newline="") as f:
            rows = [(int(r["video_name"]), int(r["label"])) for r in csv.DictReader(f)]
        self.clip_ids = torch.tensor([c for c, _ in rows], dtype=torch.long)
        self.labels = torch.tensor([label - 1 for _, label in rows], dtype=torch.long)
        self.votes = F.one_hot(self.labels, len(self.label_names)).float()

    def __len__(self) -> int:
        return len(self.clip_ids)

    def __getitem__(self, i: int):
        from PIL import Image

        clip_id = int(self.clip_ids[i])
        paths = sorted(glob.glob(str(self.root / "data" / f"{clip_id:05d}" / "*")))
        frames = []
        for index in sample_indices(len(paths), self.num_frames):
            with Image.open(paths[index]) as image:
                image = image.convert("RGB").resize((self.size, self.size), Image.BILINEAR)
                frames.append(np.asarray(image))
        return torch.from_numpy(np.stack(frames)), self.labels[i], self.votes[i], self.clip_ids[i]


def prepare_batch(
    clips: torch.Tensor,
    size: int,
    train: bool,
    generator: torch.Generator | None = None,
    crop_fraction: float = 0.875,
    channels_last: bool = False,
) -> torch.Tensor:
    """uint8 ``B × T × H × W × 3`` (on the training device) → normalised float
    ``B × 3 × T × size × size``.

    Training: a random crop of `crop_fraction` of each side per clip and a random horizontal
    flip per clip (the DFEW code's augmentations). Evaluation: the centre crop. Both are then
    resized to the model's input side.
    """
    b, t, h, w, _ = clips.shape
    ch, cw = max(1, round(h * crop_fraction)), max(1, round(w * crop_fraction))
    device = clips.device
    if train:
        top = torch.randint(0, h - ch + 1, (b,), generator=generator).tolist()
        left = torch.randint(0, w - cw + 1, (b,), generator=generator).tolist()
        flip = (torch.rand(b, generator=generator) < 0.5).tolist()
    else:
        top, left, flip = [(h - ch) // 2] * b, [(w - cw) // 2] * b, [False] * b
    crops = []
    for i in range(b):
        crop = clips[i, :, top[i] : top[i] + ch, left[i] : left[i] + cw]
        crops.append(crop.flip(2) if flip[i] else crop)
    x = torch.stack(crops).permute(0, 1, 4, 2, 3).float().div_(255.0)  # B,T,3,ch,cw
    x = x.reshape(b * t, 3, ch, cw)
    if (ch, cw) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    mean = torch.tensor(MEAN, device=device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=device).view(1, 3, 1, 1)
    x = ((x - mean) / std).view(b, t, 3, size, size).permute(0, 2, 1, 3, 4)
    memory = torch.channels_last_3d if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=memory)
