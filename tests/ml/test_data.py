import numpy as np
import pytest
import torch
from PIL import Image

from ml.data import CompactDataset, DFEWDataset, prepare_batch, sample_indices
from pipeline.compact import ClipRecord, write_compact
from pipeline.synthetic import generate_dataset


@pytest.fixture
def compact(tmp_path):
    records = [
        ClipRecord(clip_id=10 + i, movie=i, label=label, votes=votes, fold=fold)
        for i, (label, votes, fold) in enumerate(
            [(1, (8, 1, 1), 1), (0, (5, 5, 0), 1), (3, (0, 2, 8), 2), (2, (1, 7, 2), 2)]
        )
    ]
    clips = [np.full((4, 8, 8, 3), i * 10, np.uint8) for i in range(4)]
    return write_compact(tmp_path / "ds", records, clips, ["a", "b", "c"], 4, (8, 8))


class CompactDatasetTests:
    def test_it_reads_the_clips_of_the_requested_folds(self, compact):
        ds = CompactDataset(compact, folds=[2])
        assert len(ds) == 2
        clip, label, votes, clip_id = ds[0]
        assert clip.dtype == torch.uint8 and clip.shape == (4, 8, 8, 3)
        assert int(clip[0, 0, 0, 0]) == 20
        assert (int(label), votes.tolist(), int(clip_id)) == (2, [0.0, 2.0, 8.0], 12)

    def test_it_skips_clips_without_a_single_label_unless_asked(self, compact):
        assert int(CompactDataset(compact, [1])[0][1]) == 0
        assert len(CompactDataset(compact, [1])) == 1
        everything = CompactDataset(compact, [1], single_only=False)
        assert len(everything) == 2 and int(everything[1][1]) == -1

    def test_it_refuses_a_folder_of_another_format(self, tmp_path):
        (tmp_path / "meta.json").write_text('{"format": "other"}')
        with pytest.raises(ValueError, match="not a dfer-compact v1 dataset"):
            CompactDataset(tmp_path, [1])

    def test_the_synthetic_generator_writes_five_stratified_folds(self, tmp_path):
        root = generate_dataset(
            tmp_path / "syn", clips_per_class=10, size=32, frames=4, progress=False
        )
        ds = CompactDataset(root, [1, 2, 3, 4, 5], single_only=False)
        assert len(ds) == 70
        assert ds.votes.sum(1).eq(10).all()  # ten annotators per clip
        folds = [CompactDataset(root, [k], single_only=False) for k in range(1, 6)]
        assert sum(len(f) for f in folds) == 70 and all(len(f) >= 8 for f in folds)


class DFEWDatasetTests:
    def test_it_reads_the_release_layout_like_the_authors_loader(self, tmp_path):
        (tmp_path / "label").mkdir()
        (tmp_path / "label" / "single_testset_1.csv").write_text("video_name,label\n7,5\n")
        frames = tmp_path / "data" / "00007"
        frames.mkdir(parents=True)
        for i in range(1, 6):  # a short clip: 5 frames, repeated up to 16
            Image.new("RGB", (20, 20), (i * 40, 0, 0)).save(frames / f"00007_{i:05d}.jpg")
        ds = DFEWDataset(tmp_path, fold=1, split="test", frames=16, size=12)
        clip, label, votes, clip_id = ds[0]
        assert clip.shape == (16, 12, 12, 3) and int(label) == 4 and int(clip_id) == 7
        assert votes.tolist() == [0, 0, 0, 0, 1, 0, 0]
        reds = [int(clip[t, 6, 6, 0]) // 40 for t in range(16)]
        # The authors' rule: 5 frames repeated whole to 20, then linspace(0, 19, 16):
        # positions 0 1 2 3 5 6 7 8 10 11 12 13 15 16 17 19 -> frames 1 2 3 4 1 2 3 4 ... 5.
        assert reds == [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 5]

    def test_sample_indices_spread_over_long_clips(self):
        assert sample_indices(31, 16).tolist() == list(range(0, 31, 2))
        # 3 frames -> 0 1 2 0 1 2, then linspace(0, 5, 5) -> positions 0 1 2 3 5.
        assert sample_indices(3, 5).tolist() == [0, 1, 2, 0, 2]


class PrepareBatchTests:
    def test_it_normalises_crops_and_resizes(self):
        clips = torch.full((2, 4, 16, 16, 3), 255, dtype=torch.uint8)
        x = prepare_batch(clips, size=8, train=False)
        assert x.shape == (2, 3, 4, 8, 8) and x.dtype == torch.float32
        # white normalised by ImageNet statistics: (1 − 0.485) / 0.229 on the red channel
        assert x[0, 0, 0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)

    def test_training_crops_differ_per_clip_but_eval_is_deterministic(self):
        clips = torch.randint(0, 255, (8, 2, 16, 16, 3), dtype=torch.uint8)
        clips[:] = clips[0]
        g = torch.Generator().manual_seed(0)
        train = prepare_batch(clips, size=14, train=True, generator=g)
        assert any(not torch.equal(train[0], train[i]) for i in range(1, 8))
        evaluation = prepare_batch(clips, size=14, train=False)
        assert all(torch.equal(evaluation[0], evaluation[i]) for i in range(1, 8))
