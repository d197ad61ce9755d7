"""python manage.py import_clip_folders --src <dir> --out <compact dir> [--size 112]

Converts a dataset laid out as one folder per class (AFEW's layout: ``Angry/``, ``Happy/`` …,
each holding videos, or folders of frame images) into the compact training format, so that
``train_benchmark --init-from <checkpoint>`` can fine-tune on it (DFEW's Table 5 transfer).
Class folders are matched to the seven DFEW emotions by name, case-insensitively; clips get
stratified folds and a one-vote distribution (their single label). Every frame of each clip
is kept (training draws its frames afresh each epoch, as the DFEW authors' loader does).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from PIL import Image
from tqdm import tqdm

from pipeline.compact import ClipRecord, write_compact
from pipeline.emotions import EMOTION_NAMES
from pipeline.folds import assign_folds
from pipeline.media import MediaError, read_frames

VIDEO_SUFFIXES = {".avi", ".mp4", ".mkv", ".mov", ".webm"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png"}


def load_clip(path: Path, size: int) -> np.ndarray:
    """Every frame of a video file or a folder of images (in name order), size×size uint8."""
    if path.is_dir():
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not images:
            raise MediaError(f"{path}: no frame images")
        frames = [Image.open(image).convert("RGB") for image in images]
    else:
        video = read_frames(path)
        if len(video) == 0:
            raise MediaError(f"{path}: no frames decoded")
        frames = [Image.fromarray(frame) for frame in video]
    return np.stack([np.asarray(im.resize((size, size), Image.BILINEAR)) for im in frames])


class Command(BaseCommand):
    help = "Converts a folder-per-class clip dataset (e.g. AFEW) into the compact format."

    def add_arguments(self, parser):
        parser.add_argument("--src", required=True)
        parser.add_argument("--out", required=True)
        parser.add_argument("--size", type=int, default=112)
        parser.add_argument("--folds", type=int, default=5)
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, src, out, size, folds, seed, **options):
        src = Path(src)
        if not src.is_dir():
            raise CommandError(f"--src {src}: no such folder")
        items: list[tuple[Path, int]] = []
        for folder in sorted(p for p in src.iterdir() if p.is_dir()):
            name = folder.name.lower()
            if name not in EMOTION_NAMES:
                self.stderr.write(
                    f"skipping {folder.name!r}: not one of {', '.join(EMOTION_NAMES)}"
                )
                continue
            for clip in sorted(folder.iterdir()):
                if clip.is_dir() or clip.suffix.lower() in VIDEO_SUFFIXES:
                    items.append((clip, EMOTION_NAMES.index(name)))
        if len(items) < folds:
            raise CommandError(f"{src}: found {len(items)} clips, need at least {folds}")
        clips, kept = [], []
        for path, label in tqdm(items, desc="decoding clips", unit="clip"):
            try:
                clips.append(load_clip(path, size))
                kept.append(label)
            except MediaError as exc:
                self.stderr.write(f"skipping {path}: {exc}")
        fold_of = assign_folds(kept, k=folds, seed=seed)
        records = []
        for i, (label, fold) in enumerate(zip(kept, fold_of, strict=True)):
            votes = [0] * len(EMOTION_NAMES)
            votes[label] = 1
            records.append(ClipRecord(i + 1, 0, label + 1, tuple(votes), int(fold)))
        write_compact(out, records, clips, EMOTION_NAMES, (size, size), f"import:{src.resolve()}")
        self.stdout.write(self.style.SUCCESS(f"wrote {len(records)} clips to {out}"))
