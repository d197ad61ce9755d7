"""Score a movie's sliding windows with a trained benchmark network and pick the segments most
likely to show a rare emotion (issue 24).

Pure torch and the media pipeline, no Django: `load_network` rebuilds a run's network from
the checkpoint ``train`` wrote (``<run>/fold<k>/last.pt``: the weights and the resolved
config, ``ml/train.py`` `save_checkpoint`); `score_movie` decodes the movie once, at the rate
that gives a window exactly the network's frame count (16 frames over 2 s: 8 fps), finds and
tracks the face in every frame (``pipeline.faces.FaceCrops``, as the extraction does), and
scores every window in batches on the network's device; `merge_windows` joins overlapping
windows whose rare-class score is high into segments, ranked by that score. The ``ml`` app
posts them to the labeling side over the REST API (``ml/suggest_api.py``), never by import.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import ffmpeg
import numpy as np
import torch
from torch import nn

from ml.config import TrainConfig
from ml.data import prepare_batch
from ml.networks import MODELS, TAKES_FRAMES
from pipeline import media
from pipeline.faces import FaceCrops, FaceDetector

# Frames are decoded this high at most for the face search; the crops are cut from them.
DECODE_HEIGHT = 360
FACE_SIZE = 112  # the extraction's crop side (labeling/media/extraction.py)


class SuggestError(Exception):
    """Why suggestions cannot be made, in words a person reads."""


@dataclass
class Network:
    """A run's trained network, ready to score clips of ``frames`` face crops."""

    model: nn.Module
    labels: list[str]
    config: TrainConfig
    device: torch.device
    checkpoint: Path

    @property
    def frames(self) -> int:
        return self.config.frames

    @torch.no_grad()
    def probabilities(self, clips: np.ndarray) -> np.ndarray:
        """Softmax over the labels for uint8 clips ``B × T × H × W × 3`` (test-time transform
        of the run's protocol: its input side, centre crop and normalisation)."""
        cfg = self.config
        x = torch.from_numpy(np.ascontiguousarray(clips)).to(self.device)
        x = prepare_batch(
            x,
            cfg.input_size,
            train=False,
            normalize=cfg.normalizes,
            crop_fraction=cfg.test_crop,
            channels_last=cfg.channels_last,
        )
        logits, _ = self.model(x)
        return torch.softmax(logits.float(), dim=1).cpu().numpy()


def _fold_of(path: Path) -> int:
    match = re.fullmatch(r"fold(\d+)", path.parent.name)
    return int(match.group(1)) if match else 0


def find_checkpoint(run_dir: str | Path, fold: int | None = None) -> Path:
    """``<run>/fold<k>/last.pt``: fold ``fold``'s, or the lowest fold's that has one."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SuggestError(f"{run_dir}: the run's folder does not exist")
    found = sorted(run_dir.glob("fold*/last.pt"), key=_fold_of)
    if fold is not None:
        found = [p for p in found if _fold_of(p) == fold]
    if not found:
        which = f"fold {fold}'s" if fold is not None else "any"
        raise SuggestError(
            f"{run_dir} holds no checkpoint ({which} fold<k>/last.pt): the run kept none "
            "(--keep-checkpoints none) or has not finished a fold"
        )
    return found[0]


def _labels(run_dir: Path, cfg: TrainConfig) -> list[str]:
    """The run's label names in class order: results.json's, else its export's meta.json."""
    results = run_dir / "results.json"
    if results.is_file():
        labels = json.loads(results.read_text()).get("labels")
        if labels:
            return list(labels)
    meta = Path(cfg.data) / "meta.json"
    if meta.is_file():
        return list(json.loads(meta.read_text())["labels"])
    raise SuggestError(f"{run_dir}: no results.json and no export at {cfg.data} names the labels")


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_network(
    run_dir: str | Path, *, fold: int | None = None, device: str | None = None
) -> Network:
    """The network a run trained, with its weights, in evaluation mode on ``device`` (the GPU
    when there is one, else the CPU)."""
    run_dir = Path(run_dir)
    path = find_checkpoint(run_dir, fold)
    state = torch.load(path, map_location="cpu", weights_only=False)
    known = {f.name for f in fields(TrainConfig)}
    try:
        cfg = TrainConfig(**{k: v for k, v in state["config"].items() if k in known}).resolved()
    except (KeyError, TypeError, ValueError) as exc:
        raise SuggestError(f"{path}: not a checkpoint of ml.train ({exc})") from None
    labels = _labels(run_dir, cfg)
    extra = {"frames": cfg.frames} if cfg.model in TAKES_FRAMES else {}
    model = MODELS[cfg.model](num_classes=len(labels), pretrained=None, **extra)
    model.load_state_dict(state["model"])
    target = torch.device(device) if device else default_device()
    model.to(target).eval()
    return Network(model, labels, cfg, target, path)


# --- decoding and scoring ---------------------------------------------------------------------


def _decode(path: Path, rate: float, max_height: int = DECODE_HEIGHT) -> Iterator[np.ndarray]:
    """The movie's frames at ``rate`` per second (frame k at k / rate s), RGB, at most
    ``max_height`` high: one ffmpeg run, frames streamed (a feature film never sits in memory).
    """
    info = media.probe(path)
    width, height = media.output_size(info.width, info.height, max_height)
    command = (
        ffmpeg.input(str(path))
        .video.filter("fps", fps=f"{rate:.6f}")
        .filter("scale", width, height)
        .output("pipe:", format="rawvideo", pix_fmt="rgb24")
        .global_args("-hide_banner", "-nostdin", "-loglevel", "error")
        .compile(cmd=media.ffmpeg_binary())
    )
    # pipeline.media's raw-frame reader: ffmpeg's own words on failure, after the frames.
    return media.frames_of(command, width, height)


def decode_only(path: str | Path, rate: float) -> int:
    """Decodes the movie as `score_movie` does and does nothing else: the baseline of the
    scoring speed (bench/suggest.py). Returns the frame count."""
    return sum(1 for _ in _decode(Path(path), rate))


def face_tiles(
    path: str | Path, rate: float, detector: FaceDetector | None = None
) -> Iterator[tuple[np.ndarray, bool]]:
    """Per decoded frame (`_decode`, at ``rate``): the tracked face's 112-px RGB crop and
    whether a face was found there (``FaceCrops``, as the extraction crops a clip: the detector
    on every other frame, a lost face's box held 0.2 s)."""
    crops = FaceCrops(detector, FACE_SIZE, detect_every=2, hold=round(0.2 * rate))
    for frame in _decode(Path(path), rate):
        crops.add(frame)
        i = len(crops.tiles) - 1
        tile = crops.tiles[i]
        crops.tiles[i] = None  # FaceCrops counts frames by its list; the caller keeps the crop
        yield tile, crops.boxes[i] is not None


@dataclass(frozen=True)
class Window:
    start_s: float
    end_s: float
    face_share: float  # share of its frames with a face found
    probabilities: np.ndarray | None  # None: too few faces to score


@dataclass
class Scored:
    windows: list[Window]
    n_frames: int  # decoded, at `rate`
    rate: float
    seconds: float  # wall time of the decode, faces and network together

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.rate


def window_starts(n_frames: int, size: int, stride: int) -> list[int]:
    """First frames of the windows of ``size`` frames every ``stride`` frames, the last one
    moved to end on the last frame when the stride leaves a tail (none when the movie is
    shorter than a window)."""
    if n_frames < size:
        return []
    starts = list(range(0, n_frames - size + 1, stride))
    if starts[-1] + size < n_frames:
        starts.append(n_frames - size)
    return starts


def score_movie(
    path: str | Path,
    network: Network,
    *,
    window_s: float = 2.0,
    stride_s: float = 0.5,
    batch_size: int = 32,
    min_face_share: float = 0.5,
    detector: FaceDetector | None = None,
    progress: bool = True,
) -> Scored:
    """Every window of ``window_s`` seconds, every ``stride_s`` seconds, scored by the network
    on the tracked face's crops. The movie is decoded once at ``frames / window_s`` frames a
    second, so a window is exactly the network's ``frames`` frames; frames are kept only until
    the last window that needs them is scored. A window with a face in fewer than
    ``min_face_share`` of its frames is not scored (no face, nothing to suggest)."""
    if window_s <= 0 or stride_s <= 0:
        raise SuggestError("--window-s and --stride-s must be positive")
    path = Path(path)
    size = network.frames
    rate = size / window_s
    stride = max(1, round(stride_s * rate))
    started = time.perf_counter()
    tiles: list[np.ndarray] = []  # frames first .. first + len - 1
    faces: list[bool] = []
    first = 0
    windows: list[Window] = []
    pending: list[int] = []
    next_start = 0

    def flush() -> None:
        nonlocal first
        scored = [
            s for s in pending if np.mean(faces[s - first : s - first + size]) >= min_face_share
        ]
        probs = {}
        if scored:
            clips = np.stack([np.stack(tiles[s - first : s - first + size]) for s in scored])
            for s, p in zip(scored, network.probabilities(clips), strict=True):
                probs[s] = p
        for s in pending:
            share = float(np.mean(faces[s - first : s - first + size]))
            windows.append(Window(s / rate, (s + size) / rate, share, probs.get(s)))
        # The next window starts at `next_start`; the tail window (`window_starts`) may start
        # up to a stride earlier.
        drop = max(0, next_start - stride + 1 - first)
        del tiles[:drop], faces[:drop]
        first += drop
        pending.clear()

    frames = face_tiles(path, rate, detector)
    if progress:
        from tqdm import tqdm

        total = round(media.probe(path).duration_s * rate)
        frames = tqdm(frames, total=total, desc=path.name, unit="frame", leave=False)
    for tile, has_face in frames:
        tiles.append(tile)
        faces.append(has_face)
        while next_start + size <= first + len(tiles):
            pending.append(next_start)
            next_start += stride
            if len(pending) >= batch_size:
                flush()
    n_frames = first + len(tiles)
    # The tail: one last window ending on the last frame (`window_starts`).
    starts = window_starts(n_frames, size, stride)
    if starts and starts[-1] > next_start - stride:
        pending.append(starts[-1])
    if pending:
        flush()
    return Scored(windows, n_frames, rate, time.perf_counter() - started)


# --- from windows to suggested segments -------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    probabilities: dict[str, float]
    emotion: str  # the most probable rare label
    rare_score: float  # the rare labels' probabilities summed


def rare_score(probabilities: np.ndarray, labels: Sequence[str], rare: Sequence[str]) -> float:
    """The rare labels' probabilities summed (the labeling side ranks by the same rule)."""
    return float(sum(probabilities[labels.index(name)] for name in rare if name in labels))


def merge_windows(
    windows: Sequence[Window],
    labels: Sequence[str],
    rare: Sequence[str],
    *,
    min_score: float = 0.5,
    max_s: float | None = None,
) -> list[Segment]:
    """Segments from the windows whose rare-class score is at least ``min_score``: windows
    that overlap (or touch) and share their most probable rare label are joined, their
    probabilities averaged. A joined span longer than ``max_s`` (the campaign's longest clip)
    is cut to ``max_s`` around its best window. Highest rare-class score first."""
    rare = [name for name in rare if name in labels]
    if not rare:
        raise SuggestError(f"none of the rare labels ({', '.join(rare)}) is one the model knows")
    rare_idx = [labels.index(name) for name in rare]
    groups: list[list[Window]] = []
    for w in sorted(windows, key=lambda w: w.start_s):
        if w.probabilities is None or rare_score(w.probabilities, labels, rare) < min_score:
            continue
        top = rare_idx[int(np.argmax(w.probabilities[rare_idx]))]
        last = groups[-1] if groups else None
        if (
            last
            and w.start_s <= last[-1].end_s + 1e-9
            and rare_idx[int(np.argmax(last[-1].probabilities[rare_idx]))] == top
        ):
            last.append(w)
        else:
            groups.append([w])
    segments = []
    for group in groups:
        mean = np.mean([w.probabilities for w in group], axis=0)
        mean = mean / mean.sum()
        start, end = group[0].start_s, group[-1].end_s
        if max_s is not None and end - start > max_s:
            best = max(group, key=lambda w: rare_score(w.probabilities, labels, rare))
            middle = (best.start_s + best.end_s) / 2
            start = min(max(start, middle - max_s / 2), end - max_s)
            end = start + max_s
        segments.append(
            Segment(
                round(start, 3),
                round(end, 3),
                {name: float(p) for name, p in zip(labels, mean, strict=True)},
                labels[rare_idx[int(np.argmax(mean[rare_idx]))]],
                rare_score(mean, labels, rare),
            )
        )
    return sorted(segments, key=lambda s: (-s.rare_score, s.start_s))


def top_segments(segments: Sequence[Segment], n: int) -> list[Segment]:
    """The ``n`` best segments (they come ranked from `merge_windows`)."""
    return list(segments[:n])
