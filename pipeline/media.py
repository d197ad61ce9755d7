"""ffmpeg work as plain functions: find the binary, encode frames, decode frames, probe.

Outputs are written to a temporary file beside the target and moved into place with
``os.replace``, so a crash never leaves half a video where a finished one is expected and a
re-run overwrites rather than duplicates.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import ffmpeg
import numpy as np
from PIL import Image


class MediaError(Exception):
    """ffmpeg could not read or write a file; the message carries ffmpeg's own words."""


def ffmpeg_binary() -> str:
    """$FFMPEG_BINARY, else ffmpeg on PATH, else the binary that imageio-ffmpeg ships."""
    configured = os.environ.get("FFMPEG_BINARY")
    if configured:
        return configured
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _atomic_target(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


def write_video(frames: np.ndarray, path: str | Path, fps: float = 25.0, crf: int = 23) -> Path:
    """Encodes T×H×W×3 uint8 frames as H.264 (yuv420p, faststart) MP4 that browsers play."""
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected T×H×W×3 uint8 frames, got {frames.shape} {frames.dtype}")
    _, height, width, _ = frames.shape
    if height % 2 or width % 2:
        raise ValueError(f"H.264 with yuv420p needs even sizes, got {width}×{height}")
    path = Path(path)
    tmp = _atomic_target(path)
    stream = ffmpeg.input(
        "pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{width}x{height}", framerate=fps
    ).output(
        str(tmp),
        vcodec="libx264",
        pix_fmt="yuv420p",
        crf=crf,
        preset="veryfast",
        movflags="+faststart",
        an=None,
        f="mp4",
    )
    try:
        stream.overwrite_output().run(
            cmd=ffmpeg_binary(), input=frames.tobytes(), capture_stdout=True, capture_stderr=True
        )
    except ffmpeg.Error as exc:
        tmp.unlink(missing_ok=True)
        raise MediaError(exc.stderr.decode(errors="replace")[-2000:]) from exc
    os.replace(tmp, path)
    return path


def write_image(frame: np.ndarray, path: str | Path, quality: int = 90) -> Path:
    """Writes one H×W×3 uint8 frame as a JPEG (poster, face crop)."""
    path = Path(path)
    tmp = _atomic_target(path)
    Image.fromarray(frame).save(tmp, format="JPEG", quality=quality)
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    duration_s: float
    codec: str


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"(\d+(?:\.\d+)?) (?:fps|tbr)")


def probe(path: str | Path) -> VideoInfo:
    """Reads size, frame rate, duration and codec from ffmpeg's description of the input.

    Uses ``ffmpeg -i`` rather than ffprobe, because the ffmpeg that imageio-ffmpeg ships
    comes without ffprobe.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path} does not exist")
    proc = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
    )
    text = proc.stderr
    video = _VIDEO.search(text)
    duration = _DURATION.search(text)
    if not video or not duration:
        raise MediaError(f"{path.name}: no video stream found. ffmpeg said: {text[-800:]}")
    hours, minutes, seconds = duration.groups()
    stream_line = text[video.start() : text.find("\n", video.start())]
    fps = _FPS.search(stream_line)
    return VideoInfo(
        width=int(video.group(2)),
        height=int(video.group(3)),
        fps=float(fps.group(1)) if fps else 0.0,
        duration_s=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        codec=video.group(1),
    )


def read_frames(path: str | Path) -> np.ndarray:
    """Decodes every frame of a video to a T×H×W×3 uint8 array."""
    info = probe(path)
    try:
        out, _ = (
            ffmpeg.input(str(path))
            .output("pipe:", format="rawvideo", pix_fmt="rgb24")
            .run(cmd=ffmpeg_binary(), capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as exc:
        raise MediaError(exc.stderr.decode(errors="replace")[-2000:]) from exc
    return np.frombuffer(out, dtype=np.uint8).reshape(-1, info.height, info.width, 3)
