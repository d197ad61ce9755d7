"""A clip's face crops as one file: a JPEG contact sheet of square tiles, ``SHEET_COLUMNS`` a
row, in frame order, the frame count in the JPEG's comment (``write_face_sheet``), read back
as a T x size x size x 3 stack (``read_face_frames``). Written under a temporary name and
moved into place. ``pipeline.faces`` makes the crops; this module stores them."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image


@dataclass(frozen=True)
class FaceFrames:
    n_frames: int
    n_found: int
    n_examined: int

    @property
    def ratio(self) -> float:
        return self.n_found / self.n_examined if self.n_examined else 0.0


# A clip's contact sheet: this many tiles a row (16 × 112 px = 1,792 px wide), and its JPEG
# comment, which carries the frame count (the last row may be part empty).
SHEET_COLUMNS = 16


_SHEET_COMMENT = re.compile(rb"dfer-faces frames=(\d+) size=(\d+)")


def tiled(tiles: Sequence[np.ndarray], columns: int, fill: int = 0) -> np.ndarray:
    """Equal tiles laid out ``columns`` a row, in order, the last row padded with ``fill``."""
    stack = np.stack(tiles)
    rows = math.ceil(len(tiles) / columns)
    if rows * columns > len(tiles):
        pad = np.full((rows * columns - len(tiles), *stack.shape[1:]), fill, np.uint8)
        stack = np.concatenate([stack, pad])
    t, h, w, *channels = stack.shape
    grid = stack.reshape(rows, columns, h, w, *channels).swapaxes(1, 2)
    return grid.reshape(rows * h, columns * w, *channels)


def write_face_sheet(crops: list[np.ndarray], path: str | Path, quality: int = 90) -> Path:
    """Writes equal square RGB crops as one JPEG contact sheet (see the module's docstring),
    to a temporary file moved into place, so a re-run replaces the old sheet whole."""
    if not crops:
        raise ValueError("a face sheet needs at least one crop")
    sheet = Image.fromarray(tiled(crops, min(SHEET_COLUMNS, len(crops))))
    return commit(stage_sheet(sheet, len(crops), crops[0].shape[0], path, quality), path)


def plane_sheet(tiles: list[tuple]) -> Image.Image:
    """The contact sheet of crops given as yuv420p planes (``crop_planes``): the planes are
    tiled as they are and the sheet converted to RGB at once (the tiles sit on the chroma
    grid, so each converts exactly as its own crop would)."""
    columns = min(SHEET_COLUMNS, len(tiles))
    ys, us, vs = zip(*tiles, strict=True)
    y, u, v = tiled(ys, columns), tiled(us, columns, 128), tiled(vs, columns, 128)
    # RGBX (the fourth byte unused) is PIL's own layout for RGB: the image wraps the array
    # without a copy, where an RGB array would be copied in.
    rgbx = cv2.cvtColor(i420(y, u, v), cv2.COLOR_YUV2RGBA_I420)
    return Image.frombuffer("RGBX", rgbx.shape[1::-1], rgbx, "raw", "RGBX", 0, 1)


def stage_sheet(sheet: Image.Image, count: int, size: int, path: str | Path, quality: int) -> Path:
    """Encodes the sheet to a temporary file beside ``path`` and returns that file."""
    if size % 8:
        raise ValueError(f"face crops tile on the 8-pixel JPEG grid: {size} is not a multiple")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        sheet.save(
            tmp,
            format="JPEG",
            quality=quality,
            subsampling=0,  # 4:4:4: no chroma shared across tile edges
            comment=f"dfer-faces frames={count} size={size}".encode(),
        )
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def commit(tmp: Path, path: str | Path) -> Path:
    """Moves a staged file into place (``os.replace``), deleting it if that fails."""
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return Path(path)


def read_face_frames(path: str | Path) -> np.ndarray:
    """A clip's face crops as a T × size × size × 3 uint8 RGB stack, in frame order, from its
    contact sheet (or from a folder of one JPEG per frame, ``00001.jpg``…, the layout clips
    extracted before the sheet have)."""
    path = Path(path)
    if path.is_dir():
        names = sorted(p for p in path.iterdir() if p.suffix == ".jpg")
        return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in names])
    with Image.open(path) as image:
        found = _SHEET_COMMENT.search(image.info.get("comment", b""))
        if found is None:
            raise ValueError(f"{path.name} is not a face sheet (no frame count in its comment)")
        sheet = np.asarray(image.convert("RGB"))
    count, size = int(found.group(1)), int(found.group(2))
    columns = sheet.shape[1] // size
    tiles = sheet.reshape(sheet.shape[0] // size, size, columns, size, 3).swapaxes(1, 2)
    return np.ascontiguousarray(tiles.reshape(-1, size, size, 3)[:count])


def i420(y: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Planes of an H×W image (H a multiple of 4) as one yuv420p buffer for cv2.cvtColor."""
    width = y.shape[1]
    return np.concatenate([y, u.reshape(-1, width), v.reshape(-1, width)])
