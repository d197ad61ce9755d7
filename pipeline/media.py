"""ffmpeg work as plain functions: find the binary, encode frames, decode frames, probe a
movie (refusing files that do not play), and cut a frame-exact, normalised clip with its poster.

Outputs are written to a temporary file beside the target and moved into place with
``os.replace``, so a crash never leaves half a video where a finished one is expected and a
re-run overwrites rather than duplicates.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
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


def write_video(
    frames: np.ndarray, path: str | Path, fps: float = 25.0, crf: int = 23, gop: int | None = None
) -> Path:
    """Encodes T×H×W×3 uint8 frames as H.264 (yuv420p, faststart) MP4 that browsers play.

    ``gop`` sets the keyframe interval (x264's default, 250, when None)."""
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
        **({"g": gop} if gop else {}),
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
    os.replace(_stage_image(frame, path, quality), path)
    return path


def _stage_image(frame: np.ndarray, path: Path, quality: int = 90) -> Path:
    """``write_image`` to a temporary file beside ``path``, returned for os.replace."""
    tmp = _atomic_target(path)
    try:
        Image.fromarray(frame).save(tmp, format="JPEG", quality=quality)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    duration_s: float
    codec: str
    # ffmpeg's demuxer names for the input ("mov,mp4,m4a,3gp,3g2,mj2"): what the file is,
    # read from its content, whatever its name says.
    container: str = ""


@dataclass(frozen=True)
class Container:
    """A video container a movie upload may be: ffmpeg's demuxer names for it, the suffixes a
    stored file of it may have (the first is chosen when the upload's is not one of them), and
    the Content-Type of each."""

    demuxer: str
    types: dict[str, str]

    @property
    def suffix(self) -> str:
        return next(iter(self.types))

    @property
    def content_type(self) -> str:
        return self.types[self.suffix]


VIDEO_CONTAINERS = (
    Container(
        "mov,mp4,m4a,3gp,3g2,mj2",
        {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime",
         ".3gp": "video/3gpp"},
    ),
    Container("matroska,webm", {".mkv": "video/x-matroska", ".webm": "video/webm"}),
    Container("avi", {".avi": "video/x-msvideo"}),
    Container("mpegts", {".ts": "video/mp2t"}),
    Container("mpeg", {".mpg": "video/mpeg", ".mpeg": "video/mpeg"}),
    Container("flv", {".flv": "video/x-flv"}),
    Container("asf", {".wmv": "video/x-ms-wmv", ".asf": "video/x-ms-asf"}),
    Container("ogg", {".ogv": "video/ogg"}),
)  # fmt: skip


def video_container(info: VideoInfo) -> Container | None:
    """The container ``info`` was probed as, when it is one a movie may be; None for anything
    else (a still image, a GIF, an image sequence, an unknown demuxer)."""
    return next((c for c in VIDEO_CONTAINERS if c.demuxer == info.container), None)


def stored_suffix(container: Container, upload_name: str) -> str:
    """The suffix to store a movie under: the upload's own when it names this container,
    else the container's first."""
    suffix = Path(upload_name).suffix.lower()
    return suffix if suffix in container.types else container.suffix


# Anchored at the start of ffmpeg's own lines: a file's metadata (a title, a comment) is printed
# too, indented after its key ("    title : …"), and must never pass for the real description.
_INPUT = re.compile(r"^Input #0, (.+?), from ", re.M)
_DURATION = re.compile(r"^\s*Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", re.M)
_VIDEO = re.compile(r"^\s*Stream #\d+:\d+\S*: Video: (\w+).*?, (\d{2,5})x(\d{2,5})", re.M)
# ffmpeg prints a whole rate of thousands as "1k fps", "25k tbr" (libavformat's print_fps).
_FPS = re.compile(r"(\d+(?:\.\d+)?)(k?) (?:fps|tbr)\b")


def _rate(match: re.Match | None) -> float:
    """The frame rate a `_FPS` match reads, its "k" (thousands) included; 0.0 for none."""
    if match is None:
        return 0.0
    return float(match.group(1)) * (1000 if match.group(2) else 1)


# ffmpeg's words for inputs that are not video at all, and the reason a person reads instead.
_UNREADABLE = (
    ("misdetection possible", "is not a video file (ffmpeg cannot read it)"),
    ("Invalid data found when processing input", "is not a video file (ffmpeg cannot read it)"),
    ("moov atom not found", "is incomplete (truncated, or still being copied)"),
    ("error reading header", "is incomplete (truncated, or still being copied)"),
    ("could not find codec parameters", "has a video stream that cannot be decoded"),
)


def _ffmpeg_text(args: list[str], timeout: float = 60) -> str:
    proc = subprocess.run(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", *args],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=timeout,
    )
    return proc.stderr


def probe(path: str | Path) -> VideoInfo:
    """Reads size, frame rate, duration and codec from ffmpeg's description of the input.

    Uses ``ffmpeg -i`` rather than ffprobe, because the ffmpeg that imageio-ffmpeg ships
    comes without ffprobe. Raises MediaError with a reason a person can read for a missing or
    empty file, a file that is not video, and one with sound but no picture.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise MediaError(f"{path.name} is empty (0 bytes)")
    text = _ffmpeg_text(["-i", str(path)])
    video = _VIDEO.search(text)
    duration = _DURATION.search(text)
    if not video:
        for needle, reason in _UNREADABLE:
            if needle in text:
                raise MediaError(f"{path.name} {reason}. ffmpeg said: {_tail(text)}")
        if re.search(r"Stream #\S+.*?: Audio:", text):
            raise MediaError(f"{path.name} has sound but no video stream")
        if "Stream #" not in text and "Duration: N/A" in text:
            raise MediaError(f"{path.name} holds no streams (an empty video, zero frames)")
        raise MediaError(f"{path.name}: no video stream found. ffmpeg said: {_tail(text)}")
    if not duration:
        raise MediaError(f"{path.name}: its duration is unknown. ffmpeg said: {_tail(text)}")
    hours, minutes, seconds = duration.groups()
    stream_line = text[video.start() : text.find("\n", video.start())]
    fps = _FPS.search(stream_line)
    return VideoInfo(
        width=int(video.group(2)),
        height=int(video.group(3)),
        fps=_rate(fps),
        duration_s=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        codec=video.group(1),
        container=container.group(1) if (container := _INPUT.search(text)) else "",
    )


def _tail(text: str, n: int = 600) -> str:
    """The last lines of ffmpeg's message (the error is at the end), without its banner."""
    return text.strip()[-n:]


def _decodes_a_frame(path: Path, at_s: float) -> tuple[bool, str]:
    """Whether one frame decodes at ``at_s`` (input seeking), with ffmpeg's errors."""
    proc = subprocess.run(
        [
            ffmpeg_binary(), "-hide_banner", "-nostdin", "-v", "error", "-ss", f"{at_s:.3f}",
            "-i", str(path), "-map", "0:v:0", "-frames:v", "1", "-vf", "scale=8:8",
            "-f", "rawvideo", "-pix_fmt", "gray", "pipe:",
        ],
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return len(proc.stdout) == 64, proc.stderr.decode(errors="replace")


def probe_movie(path: str | Path) -> VideoInfo:
    """`probe`, then checks that the video plays: a frame decodes at its start and near its end.

    A truncated file often still has a complete header (``+faststart`` puts it first), so
    its description looks fine and only decoding near the end shows the loss.
    """
    path = Path(path)
    info = probe(path)
    if info.duration_s <= 0:
        raise MediaError(f"{path.name} has a video stream with no frames")
    if info.fps <= 0:
        raise MediaError(f"{path.name}: its frame rate is unknown (ffmpeg names none)")
    for at_s, where in ((0.0, "at its start"), (max(0.0, info.duration_s - 1.0), "near its end")):
        ok, errors = _decodes_a_frame(path, at_s)
        if not ok or "partial file" in errors:
            raise MediaError(
                f"{path.name} does not play: no picture decodes {where} ({at_s:.1f} s of "
                f"{info.duration_s:.1f} s; the file may be truncated). ffmpeg said: "
                f"{_tail(errors) or 'nothing'}"
            )
    return info


# --- frame-exact clips ------------------------------------------------------------------------


def frame_rate(fps: float) -> Fraction:
    """The exact rate behind ffmpeg's rounded figure: 29.97 → 30000/1001, 25 → 25."""
    for base in (24, 30, 48, 60, 120):
        if abs(fps - base * 1000 / 1001) < 0.006:
            return Fraction(base * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def _exact(seconds: float) -> Fraction:
    return Fraction(repr(float(seconds)))  # 0.12 is 12/100, not the binary float near it


# A time this share of a frame period after frame k's time still means frame k: a frame time
# rounded to the millisecond (29.97 fps: k × 0.0333667 s) is at most 0.015 periods off.
SNAP = Fraction(2, 100)


def frame_span(start_s: float, end_s: float, fps: Fraction) -> tuple[int, int]:
    """(first frame, frame count) of the source frames k with start_s ≤ k / fps < end_s, a
    time within `SNAP` of a frame period after a frame's time snapped onto that frame."""
    first = math.ceil(_exact(start_s) * fps - SNAP)
    stop = math.ceil(_exact(end_s) * fps - SNAP)
    return first, max(0, stop - first)


def output_size(width: int, height: int, max_height: int) -> tuple[int, int]:
    """The clip's size: the source's aspect, at most ``max_height`` high, both sides even."""
    out_h = min(height, max_height)
    out_h -= out_h % 2
    out_w = max(2, round(width * out_h / height / 2) * 2)
    return out_w, out_h


@dataclass(frozen=True)
class ClipSpec:
    """How to cut one clip: the source span and the normalised output."""

    start_s: float
    end_s: float
    max_height: int = 720
    fps: float | None = None  # None: the source's rate
    crf: int = 23
    preset: str = "veryfast"
    threads: int | None = 1  # one ffmpeg thread per worker process scales across processes


def clip_command(
    source: str | Path,
    target: str | Path,
    info: VideoInfo,
    spec: ClipSpec,
    frames_to_stdout: bool = False,
):
    """The ffmpeg command (ffmpeg-python stream) that cuts ``spec``'s frames frame-exactly;
    with ``frames_to_stdout`` the same frames also go to stdout as raw yuv420p (the planes the
    encoder gets, so ffmpeg converts nothing for them), and the poster and the face crops need
    no second decode.

    Input seeking to half a frame before the first wanted frame: ffmpeg decodes from the
    keyframe before and drops every frame stamped earlier than the seek point, so the first
    frame kept is the wanted one whatever the rounding of the container's timestamps (a seek
    to the frame's own time drops it when its stamp rounds a hair below). ``-frames:v`` stops
    after the wanted count; the frames are re-stamped by their index (``setpts=N/rate``) and
    passed through unchanged in number, so none is repeated or dropped.
    """
    rate = frame_rate(info.fps)
    first, count = frame_span(spec.start_s, spec.end_s, rate)
    if count < 1:
        raise MediaError(f"{spec.start_s}–{spec.end_s} s holds no frame at {float(rate)} fps")
    width, height = output_size(info.width, info.height, spec.max_height)
    seek = max(Fraction(0), (first - Fraction(1, 2)) / rate)
    stream = ffmpeg.input(
        str(source),
        **({"ss": f"{float(seek):.6f}"} if seek > 0 else {}),
        **({"threads": spec.threads} if spec.threads else {}),
    )
    video = stream.video.filter("setpts", f"N/({rate.numerator}/{rate.denominator})/TB")
    out_rate = rate
    if spec.fps and abs(spec.fps - float(rate)) > 1e-3:
        out_rate = frame_rate(spec.fps)
        video = video.filter("fps", fps=f"{out_rate.numerator}/{out_rate.denominator}")
    video = video.filter("scale", width, height).filter("setsar", "1")
    options = {
        "frames:v": count if out_rate == rate else None,
        "t": None if out_rate == rate else f"{float(count / rate):.6f}",
        "vcodec": "libx264",
        "pix_fmt": "yuv420p",
        "crf": spec.crf,
        "preset": spec.preset,
        "fps_mode": "passthrough",
        "movflags": "+faststart",
        "threads": spec.threads,
        "an": None,
        "f": "mp4",
    }
    limit = {k: options[k] for k in ("frames:v", "t") if options[k] is not None}
    options = {k: v for k, v in options.items() if v is not None or k == "an"}
    if not frames_to_stdout:
        command = video.output(str(target), **options)
    else:
        split = video.filter_multi_output("split")
        encoded, raw = split[0], split[1]
        command = ffmpeg.merge_outputs(
            encoded.output(str(target), **options),
            raw.output(
                "pipe:", format="rawvideo", pix_fmt="yuv420p", fps_mode="passthrough", **limit
            ),
        )
    return command.global_args("-hide_banner", "-nostdin").overwrite_output()


@dataclass(frozen=True, eq=False)
class I420Frame:
    """One decoded frame as ffmpeg's yuv420p planes, in one buffer of H × 3/2 rows of W bytes:
    the luma plane ``y`` (H×W, a grey frame as it is), then ``u`` and ``v`` (H/2 × W/2). Both
    sides are even. ``rgb()`` converts with OpenCV (BT.601, limited range: ffmpeg's default)."""

    data: np.ndarray
    width: int
    height: int

    @property
    def y(self) -> np.ndarray:
        return self.data[: self.height]

    def _chroma(self, index: int) -> np.ndarray:
        quarter = self.width * self.height // 4
        flat = self.data[self.height :].reshape(-1)
        return flat[index * quarter : (index + 1) * quarter].reshape(
            self.height // 2, self.width // 2
        )

    @property
    def u(self) -> np.ndarray:
        return self._chroma(0)

    @property
    def v(self) -> np.ndarray:
        return self._chroma(1)

    def rgb(self) -> np.ndarray:
        return cv2.cvtColor(self.data, cv2.COLOR_YUV2RGB_I420)


@dataclass(frozen=True)
class ClipMedia:
    first_frame: int
    n_frames: int
    width: int
    height: int
    fps: float
    face_ratio: float | None = None
    # The clip's `faces.FaceCrops` (per-frame detections, the track), None without faces_path.
    face_crops: object | None = field(default=None, compare=False, repr=False)


def cut_clip(source: str | Path, target: str | Path, info: VideoInfo, spec: ClipSpec) -> Path:
    """Writes the frame-exact, normalised clip to ``target`` (temp file, then os.replace)."""
    target = Path(target)
    tmp = _atomic_target(target)
    try:
        clip_command(source, tmp, info, spec).run(
            cmd=ffmpeg_binary(), capture_stdout=True, capture_stderr=True
        )
    except ffmpeg.Error as exc:
        tmp.unlink(missing_ok=True)
        raise MediaError(exc.stderr.decode(errors="replace")[-2000:]) from exc
    os.replace(tmp, target)
    return target


def frames_of(
    command: list[str], width: int, height: int, yuv420p: bool = False
) -> Iterator[np.ndarray | I420Frame]:
    """Runs an ffmpeg command that writes raw frames to stdout (rgb24, or yuv420p as
    ``I420Frame``) and yields them one at a time (a long clip never sits in memory); raises
    MediaError, with ffmpeg's words, when ffmpeg fails, after the frames it wrote."""
    size = width * height * 3 // (2 if yuv420p else 1)
    shape = (height * 3 // 2, width) if yuv420p else (height, width, 3)
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors)
        try:
            while chunk := proc.stdout.read(size):
                if len(chunk) < size:
                    break
                frame = np.frombuffer(chunk, np.uint8).reshape(shape)
                yield I420Frame(frame, width, height) if yuv420p else frame
        finally:
            proc.stdout.close()
            if proc.poll() is None and sys.exc_info()[0] is not None:
                proc.kill()
            code = proc.wait()
        if code != 0:
            errors.seek(0)
            raise MediaError(errors.read().decode(errors="replace")[-2000:])


def extract_clip(
    source: str | Path,
    info: VideoInfo,
    spec: ClipSpec,
    *,
    video_path: str | Path,
    poster_path: str | Path,
    faces_path: str | Path | None = None,
    detector=None,
    face_size: int = 112,
    detect_every: int = 5,
    steady_every: int | None = None,
    face_hold_s: float | None = 0.2,
    face_target: tuple[float, float] | None = None,
) -> ClipMedia:
    """Cuts the clip (``clip_command``) and, from the same ffmpeg run, takes its poster (the
    middle frame) and, with ``faces_path``, every frame's face crop, stored as one contact
    sheet (``faces.FaceCrops``: the detector on every ``detect_every``-th frame, every
    ``steady_every``-th while the picture is steady; a face's box held at most
    ``face_hold_s`` seconds after the last look that found it; the face followed is the one at
    ``face_target``, a point in the output frames' pixels, else the largest near the centre).
    The frames reach Python as ffmpeg's
    yuv420p planes, so no frame is converted whole except the poster.

    Each output is staged and moved into place only when ffmpeg succeeded with every frame
    of the clip; a re-run writes the same files over the old ones. The poster and the face
    sheet are encoded as soon as the clip's last frame has come, while ffmpeg still
    finishes the video (its encoder's last frames, the MP4's index), rather than after."""
    video_path, poster_path = Path(video_path), Path(poster_path)
    rate = frame_rate(spec.fps or info.fps)
    first, count = frame_span(spec.start_s, spec.end_s, frame_rate(info.fps))
    counted = rate == frame_rate(info.fps)  # a resampled clip's frame count is ffmpeg's
    width, height = output_size(info.width, info.height, spec.max_height)
    tmp = _atomic_target(video_path)
    command = clip_command(source, tmp, info, spec, frames_to_stdout=True)
    crops = None
    if faces_path is not None:
        from pipeline import faces

        hold = None if face_hold_s is None else round(face_hold_s * float(rate))
        crops = faces.FaceCrops(
            detector, face_size, detect_every, steady_every, hold, target=face_target
        )
    poster: I420Frame | None = None
    staged: dict[Path, Path] = {}  # target: its staged file

    def stage() -> None:
        staged[poster_path] = _stage_image(poster.rgb(), poster_path)
        if crops is not None:
            staged[Path(faces_path)] = crops.stage(faces_path)

    n_decoded = 0
    try:
        for frame in frames_of(command.compile(cmd=ffmpeg_binary()), width, height, True):
            if n_decoded == count // 2 or poster is None:
                poster = frame
            n_decoded += 1
            if crops is not None:
                crops.add(frame)
            if counted and n_decoded == count:
                stage()
        if counted and n_decoded != count:  # no face sheet of a short clip goes in place
            raise MediaError(
                f"the source ended early: {n_decoded} of the clip's {count} frames decoded "
                f"(from frame {first}); the movie file may be truncated"
            )
        if poster is None:
            raise MediaError(f"{video_path.name}: the clip has no frames")
        if not staged:
            stage()
    except BaseException:
        for path in (tmp, *staged.values()):
            path.unlink(missing_ok=True)
        raise
    os.replace(tmp, video_path)
    for target, path in staged.items():
        os.replace(path, target)
    ratio = None if crops is None else crops.found.ratio
    return ClipMedia(first, n_decoded, width, height, float(rate), ratio, crops)


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
