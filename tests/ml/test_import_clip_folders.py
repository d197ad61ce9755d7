import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from ml.data import CompactDataset
from pipeline.compact import open_frames
from pipeline.media import write_video
from pipeline.synthetic import render_clip


class ImportClipFoldersCommandTests:
    @pytest.mark.filterwarnings("ignore:The least populated class")  # one angry clip, 2 folds
    def test_it_converts_an_afew_style_tree_of_videos_and_frame_folders(self, tmp_path):
        rng = np.random.default_rng(0)
        src = tmp_path / "afew"
        for name in ("Happy", "Sad"):
            (src / name).mkdir(parents=True)
            for i in range(3):
                write_video(render_clip(name.lower(), 10, 32, rng), src / name / f"{i}.avi")
        frames = src / "Angry" / "clip0"
        frames.mkdir(parents=True)
        for t in range(20):
            Image.new("RGB", (30, 30), (t * 10, 0, 0)).save(frames / f"{t:03d}.png")
        (src / "Contempt").mkdir()  # not a DFEW emotion: skipped with a message

        call_command(
            "import_clip_folders",
            src=str(src),
            out=str(tmp_path / "out"),
            size=24,
            folds=2,
        )

        ds = CompactDataset(tmp_path / "out", [1, 2])
        assert len(ds) == 7
        assert sorted(ds.labels.tolist()) == [0, 0, 0, 1, 1, 1, 3]  # happy, sad, angry
        angry = int((ds.labels == 3).nonzero()[0])
        clip, label, votes, _ = ds[angry]
        assert clip.shape == (16, 24, 24, 3) and votes.sum() == 1
        assert int(clip[-1, 12, 12, 0]) > int(clip[0, 12, 12, 0])  # frames run in order
        # every one of the 20 frames is kept, in name order
        frames, offsets = open_frames(tmp_path / "out")
        row = int(ds.rows[angry])
        reds = frames[offsets[row] : offsets[row + 1], 12, 12, 0].astype(int)
        assert len(reds) == 20 and (np.diff(reds) > 0).all()

    def test_it_says_when_the_folder_is_missing(self, tmp_path):
        with pytest.raises(CommandError, match="no such folder"):
            call_command("import_clip_folders", src=str(tmp_path / "x"), out=str(tmp_path / "o"))
