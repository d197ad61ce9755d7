import numpy as np
import pytest

from pipeline.media import MediaError, ffmpeg_binary, probe, read_frames, write_image, write_video
from pipeline.synthetic import render_clip


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
