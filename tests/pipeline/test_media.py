import subprocess
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from pipeline import media
from pipeline.face_sheets import read_face_frames
from pipeline.faces import crop
from pipeline.media import (
    ClipSpec,
    MediaError,
    cut_clip,
    extract_clip,
    ffmpeg_binary,
    frame_rate,
    frame_span,
    output_size,
    probe,
    probe_movie,
    read_frames,
    write_image,
    write_video,
)
from pipeline.synthetic import render_clip
from pipeline.synthetic_movies import drawn_face_movie, frame_numbers, numbered_frames


class MediaTests:
    def test_it_finds_an_ffmpeg_binary_without_a_manual_install(self, monkeypatch):
        monkeypatch.delenv("FFMPEG_BINARY", raising=False)
        assert "ffmpeg" in ffmpeg_binary()
        monkeypatch.setenv("FFMPEG_BINARY", "/opt/custom/ffmpeg")
        assert ffmpeg_binary() == "/opt/custom/ffmpeg"

    def test_it_writes_an_h264_mp4_that_decodes_back_to_the_frames(self, tmp_path):
        frames = render_clip("surprise", 24, 64, np.random.default_rng(1))
        path = write_video(frames, tmp_path / "clip.mp4", fps=12)
        info = probe(path)
        assert (info.codec, info.width, info.height, info.fps) == ("h264", 64, 64, 12.0)
        assert info.duration_s == pytest.approx(2.0, abs=0.1)
        decoded = read_frames(path)
        assert decoded.shape == frames.shape
        assert np.abs(decoded.astype(int) - frames).mean() < 12  # lossy, but the same picture
        assert not list(tmp_path.glob(".*tmp*"))  # the temp file was moved into place

    def test_it_rejects_odd_sizes_for_yuv420p(self, tmp_path):
        with pytest.raises(ValueError, match="even sizes"):
            write_video(np.zeros((2, 33, 32, 3), np.uint8), tmp_path / "x.mp4")

    def test_it_reports_an_unreadable_file(self, tmp_path):
        bad = tmp_path / "bad.mp4"
        bad.write_bytes(b"not a video")
        with pytest.raises(MediaError, match="bad.mp4"):
            probe(bad)

    def test_it_writes_a_jpeg_poster(self, tmp_path):
        path = write_image(np.full((16, 16, 3), 200, np.uint8), tmp_path / "p" / "poster.jpg")
        assert path.read_bytes()[:2] == b"\xff\xd8"


# --- movies that do not play ----------------------------------------------------------------


@pytest.fixture(scope="module")
def numbered_source(tmp_path_factory):
    """3 s at 25 fps whose frame k shows the number k; a keyframe every 10 frames, so cuts
    start between keyframes."""
    path = tmp_path_factory.mktemp("source") / "numbered.mp4"
    return write_video(numbered_frames(75, 64, 48), path, fps=25, gop=10)


class ProbeMovieTests:
    def test_it_records_duration_fps_size_and_codec(self, numbered_source):
        info = probe_movie(numbered_source)
        assert (info.codec, info.width, info.height, info.fps) == ("h264", 64, 48, 25.0)
        assert info.duration_s == pytest.approx(3.0, abs=0.05)

    def test_a_text_file_renamed_mp4_is_not_a_video(self, tmp_path):
        path = tmp_path / "notes.mp4"
        path.write_text("these are my notes\n" * 20)
        with pytest.raises(MediaError, match=r"notes.mp4 is not a video file"):
            probe_movie(path)

    def test_an_empty_file_says_so(self, tmp_path):
        (tmp_path / "empty.mp4").write_bytes(b"")
        with pytest.raises(MediaError, match=r"empty.mp4 is empty \(0 bytes\)"):
            probe_movie(tmp_path / "empty.mp4")

    @pytest.mark.parametrize("keep", [0.1, 0.6])
    def test_a_truncated_file_does_not_play(self, numbered_source, tmp_path, keep):
        data = numbered_source.read_bytes()
        path = tmp_path / "cut.mp4"
        path.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(MediaError, match=r"cut.mp4 (is incomplete|does not play)"):
            probe_movie(path)

    def test_audio_only_has_no_video_stream(self, tmp_path):
        path = tmp_path / "song.mp4"
        subprocess.run(
            [ffmpeg_binary(), "-v", "error", "-f", "lavfi", "-i", "sine=d=1", "-c:a", "aac", path],
            check=True,
        )
        with pytest.raises(MediaError, match="song.mp4 has sound but no video stream"):
            probe_movie(path)

    def test_a_video_with_zero_frames_is_refused(self, numbered_source, tmp_path):
        path = tmp_path / "none.mp4"
        subprocess.run(
            [ffmpeg_binary(), "-v", "error", "-i", numbered_source, "-frames:v", "0", path],
            check=False,
        )
        with pytest.raises(MediaError, match="none.mp4 holds no streams"):
            probe_movie(path)


def lavfi_video(path, rate: int, seconds: float = 0.2):
    """A real 64×64 H.264 MP4 of ffmpeg's test pattern at ``rate`` frames per second."""
    subprocess.run(
        [
            ffmpeg_binary(), "-v", "error", "-f", "lavfi",
            "-i", f"testsrc=size=64x64:rate={rate}:duration={seconds}",
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-y", str(path),
        ],
        check=True,
    )  # fmt: skip
    return path


class AbbreviatedRateTests:
    """ffmpeg prints a whole rate of thousands abbreviated: "1k fps, 1k tbr" (issue 21, 9)."""

    @pytest.mark.parametrize("rate", [1000, 2000])
    def test_a_video_of_thousands_of_frames_a_second_is_probed(self, tmp_path, rate):
        path = lavfi_video(tmp_path / "fast.mp4", rate)
        info = probe_movie(path)
        assert (info.width, info.height, info.fps) == (64, 64, float(rate))
        assert info.duration_s == pytest.approx(0.2, abs=0.01)
        assert frame_rate(info.fps) == rate

    def test_a_1500_fps_video_printed_in_full_is_probed_as_before(self, tmp_path):
        assert probe(lavfi_video(tmp_path / "fast.mp4", 1500)).fps == 1500.0

    @pytest.mark.parametrize(
        ("rates", "fps"),
        [
            ("1k fps, 1k tbr, 16k tbn", 1000.0),
            ("25k fps, 25k tbr, 100k tbn", 25000.0),
            ("1.5k fps, 1.5k tbr, 90k tbn", 1500.0),
            ("25k tbr, 90k tbn", 25000.0),  # no fps: the tbr
            ("25 fps, 25 tbr, 12800 tbn", 25.0),
            ("29.97 fps, 29.97 tbr, 30k tbn", 29.97),
            ("120 tbr, 90k tbn", 120.0),
        ],
    )
    def test_every_abbreviated_rate_is_read_in_full(self, tmp_path, monkeypatch, rates, fps):
        path = tmp_path / "described.mp4"
        path.write_bytes(b"not read: ffmpeg's description below stands in for it")
        description = (
            "Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'described.mp4':\n"
            "  Duration: 00:00:01.00, start: 0.000000, bitrate: 169 kb/s\n"
            "  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), "
            f"yuv420p(progressive), 64x64 [SAR 1:1 DAR 1:1], 169 kb/s, {rates} (default)\n"
        )
        monkeypatch.setattr(media, "_ffmpeg_text", lambda args, timeout=60: description)
        assert probe(path).fps == pytest.approx(fps)

    def test_a_stream_without_a_rate_says_so(self, tmp_path, monkeypatch):
        path = tmp_path / "norate.mp4"
        path.write_bytes(b"x")
        description = (
            "  Duration: 00:00:01.00, start: 0.000000, bitrate: 169 kb/s\n"
            "  Stream #0:0: Video: h264 (High), yuv420p(progressive), 64x64, 169 kb/s\n"
        )
        monkeypatch.setattr(media, "_ffmpeg_text", lambda args, timeout=60: description)
        with pytest.raises(MediaError, match="norate.mp4: its frame rate is unknown"):
            probe_movie(path)


# --- frame-exact clips ----------------------------------------------------------------------


class FrameSpanTests:
    @pytest.mark.parametrize(
        ("start", "end", "fps", "span"),
        [
            (0.0, 1.0, Fraction(25), (0, 25)),
            (0.04, 0.4, Fraction(25), (1, 9)),  # 0.04 is frame 1 exactly: included
            (0.12, 0.2, Fraction(25), (3, 2)),  # 0.12 × 25 is 3.0000000000000004 in floats
            (0.5, 0.52, Fraction(25), (13, 0)),  # between two frames: none
            (1.0, 2.0, Fraction(30000, 1001), (30, 30)),
        ],
    )
    def test_it_holds_the_frames_from_start_up_to_before_end(self, start, end, fps, span):
        assert frame_span(start, end, fps) == span

    def test_a_millisecond_rounded_frame_time_means_that_frame(self):
        rate = Fraction(30000, 1001)
        # Frame 100 is at 3.336670 s; 3.337 (rounded up) and 3.336 (down) both start there.
        assert frame_span(3.337, 3.671, rate) == (100, 10)
        assert frame_span(3.336, 3.670, rate) == (100, 10)
        assert frame_span(3.3375, 3.671, rate)[0] == 101  # a quarter frame later: the next

    def test_ntsc_rates_are_read_as_the_exact_fraction(self):
        assert frame_rate(29.97) == Fraction(30000, 1001)
        assert frame_rate(23.98) == Fraction(24000, 1001)
        assert frame_rate(25.0) == 25

    def test_output_size_keeps_the_aspect_within_the_height_bound_and_even(self):
        assert output_size(1920, 1080, 720) == (1280, 720)
        assert output_size(64, 48, 720) == (64, 48)
        assert output_size(641, 361, 720) == (640, 360)


def extract_into(source, folder, spec, faces=False, name="clip"):
    """``extract_clip`` of ``source`` into ``folder``: <name>.mp4, poster.jpg, faces.jpg."""
    return extract_clip(
        source,
        probe(source),
        spec,
        video_path=folder / f"{name}.mp4",
        poster_path=folder / "poster.jpg",
        faces_path=folder / "faces.jpg" if faces else None,
    )


class ExtractClipTests:
    @pytest.mark.parametrize(
        ("start", "end"),
        [(0.0, 1.0), (0.03, 0.5), (0.04, 0.4), (0.123, 1.777), (1.01, 2.0), (0.5, 0.55),
         (2.9, 3.0), (1.98, 2.62)],
    )  # fmt: skip
    def test_the_clip_holds_exactly_the_source_frames_in_its_span(
        self, numbered_source, tmp_path, start, end
    ):
        media = extract_into(numbered_source, tmp_path, ClipSpec(start, end))
        first, count = frame_span(start, end, Fraction(25))
        expected = list(range(first, first + count))
        assert frame_numbers(read_frames(tmp_path / "clip.mp4")) == expected
        assert (media.first_frame, media.n_frames) == (first, count)
        assert Image.open(tmp_path / "poster.jpg").size == (64, 48)

    def test_it_normalises_to_h264_yuv420p_faststart_within_the_height_bound(
        self, numbered_source, tmp_path
    ):
        media = extract_into(
            numbered_source, tmp_path, ClipSpec(0.0, 1.0, max_height=24), name="small"
        )
        out = probe(tmp_path / "small.mp4")
        assert (out.codec, out.width, out.height, out.fps) == ("h264", 32, 24, 25.0)
        assert (media.width, media.height) == (32, 24)
        data = (tmp_path / "small.mp4").read_bytes()
        assert data.index(b"moov") < data.index(b"mdat")  # +faststart: the index comes first
        assert (
            "yuv420p"
            in subprocess.run(
                [ffmpeg_binary(), "-hide_banner", "-i", tmp_path / "small.mp4"],
                capture_output=True,
                text=True,
            ).stderr
        )

    def test_a_campaign_rate_resamples_the_clip(self, numbered_source, tmp_path):
        extract_into(numbered_source, tmp_path, ClipSpec(0.0, 2.0, fps=12.5), name="slow")
        assert probe(tmp_path / "slow.mp4").fps == 12.5
        assert len(read_frames(tmp_path / "slow.mp4")) == 25

    def test_a_rerun_overwrites_and_leaves_no_temporary_file(self, numbered_source, tmp_path):
        for _ in range(2):
            extract_into(numbered_source, tmp_path / "c", ClipSpec(0.2, 0.6), faces=True)
        assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
            "clip.mp4",
            "faces.jpg",
            "poster.jpg",
        ]
        assert len(read_face_frames(tmp_path / "c" / "faces.jpg")) == 10

    def test_the_face_crops_come_from_the_clips_own_frames_without_a_second_decode(self, tmp_path):
        # given: a drawn-face movie, and a detector that records what it was shown
        frames = drawn_face_movie(["happy", "fear"], 1.0, 12, 96, np.random.default_rng(7))
        source = write_video(frames, tmp_path / "faces.mp4", fps=12)
        shown = []

        class Recording:
            def detect(self, frame, near=None):
                shown.append(frame.shape)

        # when
        result = extract_clip(
            source,
            probe(source),
            ClipSpec(0.25, 1.5),
            video_path=tmp_path / "clip.mp4",
            poster_path=tmp_path / "poster.jpg",
            faces_path=tmp_path / "faces.jpg",
            detector=Recording(),
            face_size=48,
        )
        # then: one crop per frame of the clip, in order, each the centred square of that
        # frame (no face found) as the decoded clip shows it, give or take the two lossy
        # encodes; the detector saw the luma plane of frames 0 and 5, and no face twice let
        # it skip frame 10 (steady: every 10th frame), which counts as examined, no face
        clip = read_frames(tmp_path / "clip.mp4")
        crops = read_face_frames(tmp_path / "faces.jpg").astype(int)
        assert result.n_frames == len(clip) == len(crops) == 15
        assert shown == [(96, 96)] * 2 and result.face_ratio == 0.0
        expected = np.stack([crop(frame, None, 48) for frame in clip]).astype(int)
        distance = np.abs(crops[:, None] - expected[None]).mean(axis=(2, 3, 4))
        assert distance.argmin(axis=1).tolist() == list(range(15))
        assert distance.diagonal().max() < 6

    def test_a_span_with_no_frame_is_refused(self, numbered_source, tmp_path):
        with pytest.raises(MediaError, match="holds no frame"):
            cut_clip(
                numbered_source, tmp_path / "x.mp4", probe(numbered_source), ClipSpec(0.5, 0.52)
            )
        assert not list(tmp_path.iterdir())

    def test_a_source_that_fails_mid_cut_raises_with_ffmpegs_words(self, numbered_source, tmp_path):
        info = probe(numbered_source)
        with pytest.raises(MediaError) as caught:
            cut_clip(tmp_path / "gone.mp4", tmp_path / "x.mp4", info, ClipSpec(0.0, 1.0))
        assert "No such file" in str(caught.value)
        assert not list(tmp_path.glob("*.mp4")) and not list(tmp_path.glob(".*"))

    def test_a_failed_extraction_leaves_no_file_behind(self, numbered_source, tmp_path):
        info = probe(numbered_source)
        broken = tmp_path / "broken.mp4"
        broken.write_bytes(numbered_source.read_bytes()[:3000])
        with pytest.raises(MediaError):
            extract_clip(  # the good file's description: ffmpeg fails mid-way
                broken,
                info,
                ClipSpec(0.0, 2.0),
                video_path=tmp_path / "out" / "clip.mp4",
                poster_path=tmp_path / "out" / "poster.jpg",
                faces_path=tmp_path / "out" / "faces.jpg",
            )
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())

    def test_a_failure_after_the_last_frame_leaves_the_old_outputs_and_nothing_staged(
        self, numbered_source, tmp_path, monkeypatch
    ):
        # given: a clip extracted once; then ffmpeg fails after it piped every frame (the
        # poster and the face sheet are already staged by then)
        folder = tmp_path / "c"
        extract_into(numbered_source, folder, ClipSpec(0.2, 0.6), faces=True)
        before = {p.name: p.read_bytes() for p in folder.iterdir()}
        real = media.frames_of

        def failing_at_the_end(*args, **kwargs):
            yield from real(*args, **kwargs)
            raise MediaError("moov atom could not be written")

        monkeypatch.setattr(media, "frames_of", failing_at_the_end)
        # when
        with pytest.raises(MediaError, match="moov"):
            extract_into(numbered_source, folder, ClipSpec(0.0, 1.0), faces=True)
        # then: the first run's files, untouched, and no temporary file
        assert {p.name: p.read_bytes() for p in folder.iterdir()} == before

    def test_the_poster_and_the_sheet_of_a_resampled_clip_are_written_after_the_last_frame(
        self, numbered_source, tmp_path
    ):
        result = extract_into(
            numbered_source, tmp_path, ClipSpec(0.0, 2.0, fps=12.5), faces=True, name="slow"
        )
        assert result.n_frames == 25 == len(read_face_frames(tmp_path / "faces.jpg"))
        assert Image.open(tmp_path / "poster.jpg").size == (64, 48)


class NtscRateTests:
    @pytest.mark.parametrize("rate", ["30000/1001", "24000/1001"])
    def test_cuts_are_frame_exact_at_ntsc_rates_with_b_frames(self, tmp_path, rate):
        source = tmp_path / "ntsc.mp4"
        subprocess.run(
            [ffmpeg_binary(), "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
             "-s", "64x48", "-framerate", rate, "-i", "pipe:", "-c:v", "libx264", "-g", "12",
             "-bf", "3", "-pix_fmt", "yuv420p", source],
            input=numbered_frames(120, 64, 48).tobytes(),
            check=True,
        )  # fmt: skip
        exact = Fraction(rate)
        assert frame_rate(probe_movie(source).fps) == exact
        for start, end in [(0.1, 0.9), (1.001, 1.502), (2.37, 3.3)]:
            extract_into(source, tmp_path, ClipSpec(start, end))
            first, count = frame_span(start, end, exact)
            assert frame_numbers(read_frames(tmp_path / "clip.mp4")) == list(
                range(first, first + count)
            )
