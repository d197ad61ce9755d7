import random

import numpy as np
import pytest
import torch
from PIL import Image

from ml.data import (
    CompactDataset,
    DFEWDataset,
    EpochSampler,
    prepare_batch,
    random_sized_box,
    sample_indices,
    segment_indices,
)
from pipeline.compact import ClipRecord, open_frames, write_compact
from pipeline.synthetic import generate_dataset


def ramp(n: int, base: int) -> np.ndarray:
    """A clip of n 8×8 frames whose frame t is filled with base + t."""
    return np.stack([np.full((8, 8, 3), base + t, np.uint8) for t in range(n)])


@pytest.fixture
def compact(tmp_path):
    records = [
        ClipRecord(clip_id=10 + i, movie=i, label=label, votes=votes, fold=fold)
        for i, (label, votes, fold) in enumerate(
            [(1, (8, 1, 1), 1), (0, (5, 5, 0), 1), (3, (0, 2, 8), 2), (2, (1, 7, 2), 2)]
        )
    ]
    # Ragged: 3, 40, 10 and 25 frames; clip i's frames hold 50·i + t.
    clips = [ramp(n, 50 * i) for i, n in enumerate((3, 40, 10, 25))]
    return write_compact(tmp_path / "ds", records, clips, ["a", "b", "c"], (8, 8), "test")


class CompactFormatTests:
    def test_it_keeps_every_frame_of_ragged_clips_in_one_array(self, compact):
        frames, offsets = open_frames(compact)
        assert isinstance(frames, np.memmap) and frames.dtype == np.uint8
        assert offsets.tolist() == [0, 3, 43, 53, 78] and frames.shape == (78, 8, 8, 3)
        assert frames[43:53, 0, 0, 0].tolist() == list(range(100, 110))

    def test_it_refuses_a_clip_of_another_size_and_leaves_no_file(self, tmp_path):
        record = ClipRecord(1, 1, 1, (10,), 1)
        with pytest.raises(ValueError, match=r"clip 1: expected T×8×8×3 uint8"):
            write_compact(tmp_path, [record], [np.zeros((4, 9, 8, 3), np.uint8)], ["a"], (8, 8))
        assert list(tmp_path.iterdir()) == []

    def test_it_refuses_more_clips_than_records(self, tmp_path):
        record = ClipRecord(1, 1, 1, (10,), 1)
        with pytest.raises(ValueError, match="1 manifest rows"):
            write_compact(tmp_path, [record], [ramp(2, 0), ramp(2, 0)], ["a"], (8, 8))


class CompactDatasetTests:
    def test_it_reads_the_clips_of_the_requested_folds(self, compact):
        ds = CompactDataset(compact, folds=[2])
        assert len(ds) == 2
        clip, label, votes, clip_id = ds[0]
        assert clip.dtype == torch.uint8 and clip.shape == (16, 8, 8, 3)
        # 10 frames at test time: the authors' indices, offset by the clip's base 100
        authors = (0, 1, 2, 3, 5, 6, 7, 8, 0, 1, 2, 3, 5, 6, 7, 9)
        assert clip[:, 0, 0, 0].tolist() == [100 + i for i in authors]
        assert (int(label), votes.tolist(), int(clip_id)) == (2, [0.0, 2.0, 8.0], 12)

    def test_training_draws_sorted_frames_afresh_each_epoch_reproducibly(self, compact):
        ds = CompactDataset(compact, [1, 2], single_only=False, train=True, seed=5)
        long = 1  # clip 11: 40 frames, values 50..89
        draws = [ds[(epoch, long)][0][:, 0, 0, 0].tolist() for epoch in range(4)]
        for draw in draws:
            assert draw == sorted(set(draw)) and len(draw) == 16  # distinct, in order
            assert 50 <= draw[0] and draw[-1] <= 89
        assert len({tuple(d) for d in draws}) == 4  # a new draw every epoch
        again = CompactDataset(compact, [1, 2], single_only=False, train=True, seed=5)
        assert again[(2, long)][0][:, 0, 0, 0].tolist() == draws[2]  # same seed and epoch
        other = CompactDataset(compact, [1, 2], single_only=False, train=True, seed=6)
        assert other[(2, long)][0][:, 0, 0, 0].tolist() != draws[2]

    def test_it_skips_clips_without_a_single_label_unless_asked(self, compact):
        assert int(CompactDataset(compact, [1])[0][1]) == 0
        assert len(CompactDataset(compact, [1])) == 1
        everything = CompactDataset(compact, [1], single_only=False)
        assert len(everything) == 2 and int(everything[1][1]) == -1

    def test_it_refuses_a_folder_of_another_format(self, tmp_path):
        (tmp_path / "meta.json").write_text('{"format": "dfer-compact", "version": 1}')
        with pytest.raises(ValueError, match="not a dfer-compact v2 dataset.*export it again"):
            CompactDataset(tmp_path, [1])

    def test_the_synthetic_generator_writes_five_stratified_folds_of_ragged_clips(self, tmp_path):
        root = generate_dataset(
            tmp_path / "syn", clips_per_class=10, size=32, frames=4, max_frames=9, progress=False
        )
        ds = CompactDataset(root, [1, 2, 3, 4, 5], single_only=False)
        assert len(ds) == 70
        assert ds.votes.sum(1).eq(10).all()  # ten annotators per clip
        folds = [CompactDataset(root, [k], single_only=False) for k in range(1, 6)]
        assert sum(len(f) for f in folds) == 70 and all(len(f) >= 8 for f in folds)
        lengths = np.diff(open_frames(root)[1])
        assert lengths.min() >= 4 and lengths.max() <= 9 and len(set(lengths)) > 1


class SampleIndicesTests:
    def test_it_takes_the_authors_test_indices(self):
        assert sample_indices(10).tolist() == [0, 1, 2, 3, 5, 6, 7, 8, 0, 1, 2, 3, 5, 6, 7, 9]
        assert sample_indices(31, 16).tolist() == list(range(0, 31, 2))
        # 3 frames -> 0 1 2 0 1 2, then linspace(0, 5, 5) -> positions 0 1 2 3 5.
        assert sample_indices(3, 5).tolist() == [0, 1, 2, 0, 2]

    def test_it_draws_the_authors_sorted_random_positions_in_training(self):
        # 10 frames: the list 0..9 0..9, 16 of its 20 positions drawn and sorted.
        positions = sorted(random.Random(7).sample(range(20), 16))
        drawn = sample_indices(10, train=True, rng=random.Random(7)).tolist()
        assert drawn == [p % 10 for p in positions]
        long = sample_indices(100, train=True, rng=random.Random(7)).tolist()
        assert long == sorted(random.Random(7).sample(range(100), 16))


class EpochSamplerTests:
    def test_it_shards_a_permutation_that_depends_only_on_seed_and_epoch(self):
        a, b = EpochSampler(10, seed=1, rank=0, world=2), EpochSampler(10, seed=1, rank=1, world=2)
        a.set_epoch(3)
        b.set_epoch(3)
        keys = list(a) + list(b)
        assert {epoch for epoch, _ in keys} == {3}
        assert sorted(i for _, i in keys) == list(range(10)) and len(a) == 5
        fresh = EpochSampler(10, seed=1, rank=0, world=2)
        fresh.set_epoch(3)
        assert list(fresh) == list(a)
        fresh.set_epoch(4)
        assert list(fresh) != list(a)


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


class PrepareBatchTests:
    def test_the_authors_transform_is_a_plain_resize_to_0_1_without_normalisation(self):
        clips = torch.zeros((1, 2, 16, 16, 3), dtype=torch.uint8)
        clips[..., 0, 0] = 255  # a white pixel in the corner, red channel
        clips[0, :, :, :, 1] = 51
        x = prepare_batch(clips, size=8, train=True)
        assert x.shape == (1, 3, 2, 8, 8) and x.dtype == torch.float32
        assert x[0, 1].allclose(torch.full((2, 8, 8), 0.2))  # 51/255: no mean/std applied
        # no crop: the whole 16×16 frame resized, so the bright corner stays in the corner
        assert x[0, 0, 0, 0, 0] > 0 and x[0, 0, 0, 4:, 4:].eq(0).all()
        again = prepare_batch(clips, size=8, train=True)
        assert torch.equal(x, again)  # no random augmentation

    def test_normalisation_uses_imagenet_statistics_when_asked(self):
        clips = torch.full((2, 4, 16, 16, 3), 255, dtype=torch.uint8)
        x = prepare_batch(clips, size=8, train=False, normalize=True, crop_fraction=0.875)
        assert x[0, 0, 0, 0, 0].item() == pytest.approx((1 - 0.485) / 0.229, rel=1e-5)

    def test_the_modern_recipe_crops_differ_per_clip_but_eval_is_deterministic(self):
        clips = torch.randint(0, 255, (8, 2, 16, 16, 3), dtype=torch.uint8)
        clips[:] = clips[0]
        g = torch.Generator().manual_seed(0)
        train = prepare_batch(clips, 14, train=True, generator=g, augment=True, crop_fraction=0.875)
        assert any(not torch.equal(train[0], train[i]) for i in range(1, 8))
        evaluation = prepare_batch(clips, size=14, train=False, crop_fraction=0.875)
        assert all(torch.equal(evaluation[0], evaluation[i]) for i in range(1, 8))


class SegmentIndicesTests:
    """The 2024 EC-STFL release's 8 segments × 2 frames (dataloader/Videos_Dataset.py),
    worked by hand from its formulas."""

    def test_at_test_time_it_takes_each_segments_middle(self):
        # 20 frames: tick = (20 − 2 + 1) / 8 = 2.375; starts int(1.1875 + 2.375·k)
        assert segment_indices(20, 16).tolist() == [
            1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18,
        ]  # fmt: skip

    def test_short_clips_start_every_segment_at_the_first_frame(self):
        assert segment_indices(5, 16).tolist() == [0, 1] * 8  # 5 ≤ 8 + 2 − 1
        assert segment_indices(1, 16).tolist() == [0, 0] * 8  # the last frame repeats
        assert segment_indices(8, 16, train=True, rng=random.Random(0)).tolist() == [0, 1] * 8

    def test_in_training_each_segment_starts_at_random_within_its_share(self):
        # 12 frames: avg = (12 − 2 + 1) // 8 = 1, so segment k starts at k exactly
        picked = segment_indices(12, 16, train=True, rng=random.Random(0)).tolist()
        assert picked == [i + d for i in range(8) for d in (0, 1)]
        # 20 frames: avg 2, segment k starts at 2k or 2k + 1, then the next frame
        for seed in range(20):
            picked = segment_indices(20, 16, train=True, rng=random.Random(seed)).tolist()
            starts = picked[::2]
            assert all(s in (2 * k, 2 * k + 1) for k, s in enumerate(starts))
            assert picked[1::2] == [s + 1 for s in starts]


class RandomSizedCropTests:
    def test_boxes_keep_the_releases_area_and_aspect_limits(self):
        g = torch.Generator().manual_seed(0)
        for _ in range(200):
            top, left, h, w = random_sized_box(112, 112, g)
            assert 0 <= top and top + h <= 112 and 0 <= left and left + w <= 112
            if (h, w) != (112, 112):
                # rounding each side to whole pixels moves the area and ratio a little
                assert 0.08 * 0.9 <= h * w / 112**2 <= 1.0
                assert 3 / 4 * 0.9 <= w / h <= 4 / 3 * 1.1

    def test_a_batch_is_cropped_resized_and_flipped_per_clip(self):
        clips = torch.randint(0, 255, (3, 4, 40, 40, 3), dtype=torch.uint8)
        g = torch.Generator().manual_seed(1)
        x = prepare_batch(clips, 24, train=True, generator=g, augment=True, crop="random-sized")
        assert x.shape == (3, 3, 4, 24, 24) and 0 <= float(x.min()) and float(x.max()) <= 1
        plain = prepare_batch(clips, 24, train=False)
        assert not torch.allclose(x, plain)
