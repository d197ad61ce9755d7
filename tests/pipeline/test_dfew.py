import os
import random
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.aggregation import single_labels
from pipeline.dfew import (
    ReleaseClip,
    indices_like_authors,
    label_columns,
    read_split_like_authors,
    sample_like_authors,
    staged_directory,
    write_frames,
    write_labels,
)
from pipeline.emotions import DFEW_EMOTIONS
from pipeline.folds import assign_folds

K = 5
DFEW_COLUMNS = ["1happy", "2sad", "3neutral", "4angry", "5surprise", "6disgust", "7fear"]


def make_release(seed: int = 0) -> list[ReleaseClip]:
    """40 clips with scattered numbers: 35 single-labelled (5 per DFEW label, 7+ of 10 votes),
    5 not single-labelled; folds from assign_folds over the single-labelled clips only."""
    rng = np.random.default_rng(seed)
    numbers = sorted(rng.choice(np.arange(1, 500), size=40, replace=False).tolist())
    counts = []
    for i in range(40):
        votes = [0] * 7
        if i < 35:
            top = i % 7
            votes[top] = 7 + i % 3
            votes[(top + 1) % 7] += 10 - votes[top]
        else:  # split 4/3/3: no label reaches 7 of 10
            votes[i % 7], votes[(i + 2) % 7], votes[(i + 4) % 7] = 4, 3, 3
        counts.append(votes)
    codes = single_labels(np.array(counts), min_votes=7) + 1  # 0 when not single-labelled
    single = np.flatnonzero(codes > 0)
    folds = np.zeros(40, dtype=int)
    folds[single] = assign_folds(codes[single], k=K, seed=seed)
    clips = [
        ReleaseClip(number=n, votes=tuple(v), label=int(c), fold=int(f))
        for n, v, c, f in zip(numbers, counts, codes, folds, strict=True)
    ]
    order = rng.permutation(40)  # the writer sorts; hand it the clips out of order
    return [clips[i] for i in order]


def frame(index: int, height: int = 24, width: int = 32) -> np.ndarray:
    """A flat frame whose colour encodes its index (JPEG keeps flat colours almost exactly)."""
    return np.full((height, width, 3), (index * 6 % 256, 100, 200), np.uint8)


class LabelColumnsTests:
    def test_it_names_the_columns_the_dfew_way(self):
        assert label_columns(DFEW_EMOTIONS) == DFEW_COLUMNS
        assert label_columns([(1, "a"), (2, "b")]) == ["1a", "2b"]


class WriteLabelsTests:
    def test_it_writes_splits_the_authors_loader_reads_back_exactly(self, tmp_path):
        clips = make_release()
        singles = {c.number: c for c in clips if c.label > 0}
        others = {c.number for c in clips if c.label == 0}
        assert len(singles) == 35 and len(others) == 5
        write_labels(tmp_path, clips, DFEW_EMOTIONS, K)

        tested: list[int] = []
        for fold in range(1, K + 1):
            test_names, test_labels = read_split_like_authors(tmp_path, fold, "test")
            train_names, train_labels = read_split_like_authors(tmp_path, fold, "train")
            expected_test = sorted(n for n, c in singles.items() if c.fold == fold)
            expected_train = sorted(n for n, c in singles.items() if c.fold != fold)
            assert test_names == expected_test and expected_test
            assert train_names == expected_train
            assert test_labels == [singles[n].label for n in test_names]
            assert train_labels == [singles[n].label for n in train_names]
            assert set(test_labels + train_labels) <= set(range(1, 8))
            assert not (set(test_names) | set(train_names)) & others
            tested += test_names
        # The test sets partition the single-labelled clips.
        assert sorted(tested) == sorted(singles) and len(tested) == len(set(tested))

    def test_it_writes_exactly_the_video_name_and_label_columns(self, tmp_path):
        write_labels(tmp_path, make_release(), DFEW_EMOTIONS, K)
        text = (tmp_path / "label" / "single_testset_1.csv").read_text()
        assert text.startswith("video_name,label\n")
        assert all(line.count(",") == 1 for line in text.splitlines())

    def test_it_writes_a_vote_table_with_every_clip_under_dfew_column_names(self, tmp_path):
        clips = make_release()
        write_labels(tmp_path, clips, DFEW_EMOTIONS, K)
        df = pd.read_csv(tmp_path / "label" / "votes.csv")
        assert list(df.columns) == ["video_name", *DFEW_COLUMNS, "label"]
        by_number = {c.number: c for c in clips}
        assert df["video_name"].tolist() == sorted(by_number)
        for row in df.itertuples(index=False):
            clip = by_number[row.video_name]
            assert tuple(row[1:8]) == clip.votes
            assert row.label == clip.label
        assert (df["label"] == 0).sum() == 5

    def test_it_returns_the_paths_it_wrote(self, tmp_path):
        paths = write_labels(tmp_path, make_release(), DFEW_EMOTIONS, K)
        names = [p.name for p in paths]
        assert names[:2] == ["single_trainset_1.csv", "single_testset_1.csv"]
        assert names[-1] == "votes.csv" and len(names) == 2 * K + 1
        assert sorted(p.name for p in (tmp_path / "label").iterdir()) == sorted(names)

    def test_it_writes_byte_identical_files_for_the_same_input(self, tmp_path):
        clips = make_release()
        first = write_labels(tmp_path / "a", clips, DFEW_EMOTIONS, K)
        second = write_labels(tmp_path / "b", list(reversed(clips)), DFEW_EMOTIONS, K)
        again = write_labels(tmp_path / "a", clips, DFEW_EMOTIONS, K)
        for a, b, c in zip(first, second, again, strict=True):
            assert a.read_bytes() == b.read_bytes() == c.read_bytes()
            assert b"\r" not in a.read_bytes()

    def test_it_writes_header_only_splits_when_no_clip_has_a_fold(self, tmp_path):
        clips = [replace(c, fold=0) for c in make_release()]
        write_labels(tmp_path, clips, DFEW_EMOTIONS, K)
        assert (tmp_path / "label" / "single_trainset_3.csv").read_text() == "video_name,label\n"
        assert read_split_like_authors(tmp_path, 3, "test") == ([], [])
        assert len(pd.read_csv(tmp_path / "label" / "votes.csv")) == 40

    def test_it_ignores_the_fold_of_a_clip_that_is_not_single_labelled(self, tmp_path):
        clips = [replace(c, fold=2) if c.label == 0 else c for c in make_release()]
        write_labels(tmp_path, clips, DFEW_EMOTIONS, K)
        names, _ = read_split_like_authors(tmp_path, 2, "test")
        assert not set(names) & {c.number for c in clips if c.label == 0}


class WriteLabelsErrorTests:
    def check(self, tmp_path, clips, match, labels=DFEW_EMOTIONS):
        with pytest.raises(ValueError, match=match):
            write_labels(tmp_path, clips, labels, K)
        assert not (tmp_path / "label").exists()  # checked before anything is written

    def test_it_rejects_a_fold_outside_0_to_k(self, tmp_path):
        clips = make_release()
        self.check(tmp_path, [replace(clips[0], fold=K + 1), *clips[1:]], r"fold 6 .*0\.\.5")
        self.check(tmp_path, [replace(clips[0], fold=-1), *clips[1:]], "fold -1")

    def test_it_rejects_a_single_labelled_clip_left_out_of_the_split(self, tmp_path):
        clips = make_release()
        i = next(i for i, c in enumerate(clips) if c.label > 0)
        clips[i] = replace(clips[i], fold=0)
        self.check(tmp_path, clips, rf"clip\(s\) {clips[i].number} have fold 0")

    def test_it_rejects_votes_of_the_wrong_length(self, tmp_path):
        clips = make_release()
        clips[3] = replace(clips[3], votes=clips[3].votes[:6])
        self.check(tmp_path, clips, rf"clip {clips[3].number}: 6 vote counts for 7 labels")

    def test_it_rejects_duplicate_clip_numbers(self, tmp_path):
        clips = make_release()
        clips[5] = replace(clips[5], number=clips[6].number)
        self.check(tmp_path, clips, rf"clip {clips[6].number}: duplicate clip number")

    def test_it_rejects_a_label_code_not_in_the_labels(self, tmp_path):
        clips = make_release()
        clips[2] = replace(clips[2], label=8)
        self.check(tmp_path, clips, rf"clip {clips[2].number}: label code 8 is not one")

    def test_it_rejects_labels_whose_codes_are_not_1_to_k(self, tmp_path):
        labels = [(0, "happy"), *DFEW_EMOTIONS[1:]]
        self.check(tmp_path, make_release(), "codes must be 1..7", labels=labels)

    def test_it_rejects_a_clip_number_below_1(self, tmp_path):
        clips = make_release()
        clips[0] = replace(clips[0], number=0)
        self.check(tmp_path, clips, "clip 0: clip numbers start at 1")


class WriteFramesTests:
    def test_it_writes_dfew_named_jpegs_of_the_right_size(self, tmp_path):
        assert write_frames(tmp_path, 7, (frame(i) for i in range(3))) == 3
        folder = tmp_path / "data" / "00007"
        assert sorted(p.name for p in folder.iterdir()) == [
            "00007_00001.jpg",
            "00007_00002.jpg",
            "00007_00003.jpg",
        ]
        for i, path in enumerate(sorted(folder.iterdir())):
            with Image.open(path) as image:
                assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (32, 24))
                assert np.abs(np.asarray(image).astype(int) - frame(i)).max() <= 3

    def test_it_replaces_a_longer_earlier_write(self, tmp_path):
        write_frames(tmp_path, 1, (frame(i) for i in range(40)))
        assert write_frames(tmp_path, 1, (frame(i) for i in range(10))) == 10
        names = sorted(p.name for p in (tmp_path / "data" / "00001").iterdir())
        assert names == [f"00001_{i:05d}.jpg" for i in range(1, 11)]
        assert [p.name for p in (tmp_path / "data").iterdir()] == ["00001"]  # no staging left

    def test_it_leaves_the_old_frames_when_a_frame_is_bad(self, tmp_path):
        write_frames(tmp_path, 1, (frame(i) for i in range(5)))
        before = {p.name: p.read_bytes() for p in (tmp_path / "data" / "00001").iterdir()}
        bad = [frame(0), frame(1), np.zeros((24, 32, 3), np.float32)]
        with pytest.raises(ValueError, match=r"clip 1, frame 3: expected an H×W×3 uint8"):
            write_frames(tmp_path, 1, bad)
        after = {p.name: p.read_bytes() for p in (tmp_path / "data" / "00001").iterdir()}
        assert after == before
        assert [p.name for p in (tmp_path / "data").iterdir()] == ["00001"]

    def test_it_rejects_a_clip_without_frames(self, tmp_path):
        with pytest.raises(ValueError, match="clip 3: no frames"):
            write_frames(tmp_path, 3, [])
        assert not (tmp_path / "data" / "00003").exists()

    def test_it_rejects_grey_frames(self, tmp_path):
        with pytest.raises(ValueError, match="H×W×3"):
            write_frames(tmp_path, 3, [np.zeros((24, 32), np.uint8)])


class SampleLikeAuthorsTests:
    def test_it_samples_a_short_clip_from_its_repeated_frame_list(self, tmp_path):
        write_frames(tmp_path, 10, (frame(i) for i in range(10)))
        # 10 frames < 16: the list is repeated whole until at least 16 long, 0..9 0..9 (20
        # entries); linspace(0, 19, 16) = 0, 1.27, 2.53, 3.8, 5.07, 6.33, 7.6, 8.87, 10.13,
        # 11.4, 12.67, 13.93, 15.2, 16.47, 17.73, 19, truncated 0 1 2 3 5 6 7 8 10 11 12 13
        # 15 16 17 19, i.e. entries 0 1 2 3 5 6 7 8 0 1 2 3 5 6 7 9.
        expected = [0, 1, 2, 3, 5, 6, 7, 8, 0, 1, 2, 3, 5, 6, 7, 9]
        assert indices_like_authors(10, train=False) == expected
        paths = sample_like_authors(tmp_path, 10, train=False)
        assert [p.name for p in paths] == [f"00010_{i + 1:05d}.jpg" for i in expected]
        for path in paths:
            with Image.open(path) as image:
                assert image.size == (32, 24)

    def test_it_samples_a_long_clip_evenly_at_test_time(self, tmp_path):
        write_frames(tmp_path, 40, (frame(i) for i in range(40)))
        expected = np.linspace(0, 39, 16).astype(int).tolist()
        assert expected[:4] == [0, 2, 5, 7] and expected[-1] == 39
        paths = sample_like_authors(tmp_path, 40, train=False)
        assert [p.name for p in paths] == [f"00040_{i + 1:05d}.jpg" for i in expected]

    def test_it_draws_sorted_random_positions_at_training_time(self, tmp_path):
        write_frames(tmp_path, 10, (frame(i) for i in range(10)))
        write_frames(tmp_path, 40, (frame(i) for i in range(40)))
        short = sample_like_authors(tmp_path, 10, train=True, rng=random.Random(3))
        positions = sorted(random.Random(3).sample(range(20), 16))
        assert [p.name for p in short] == [f"00010_{p % 10 + 1:05d}.jpg" for p in positions]
        long = sample_like_authors(tmp_path, 40, train=True, rng=random.Random(3))
        assert len(long) == 16 and long == sorted(set(long))  # 16 distinct frames, in order
        assert long == sample_like_authors(tmp_path, 40, train=True, rng=random.Random(3))

    def test_it_repeats_the_whole_list_until_it_is_at_least_16_long(self):
        # 8 frames: 0..7 0..7 is already 16 entries, so nothing is skipped or repeated twice.
        assert indices_like_authors(8, train=False) == list(range(8)) * 2
        # 5 frames: 4 copies (20 entries), the same positions as for 10 frames, taken mod 5.
        expected = [0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 4]
        assert indices_like_authors(5, train=False) == expected
        assert indices_like_authors(1, train=False) == [0] * 16

    def test_it_rejects_a_clip_without_frames(self, tmp_path):
        with pytest.raises(ValueError, match="clip 9: no frames"):
            sample_like_authors(tmp_path, 9, train=False)


class ReadSplitLikeAuthorsTests:
    def test_it_rejects_an_unknown_split(self, tmp_path):
        with pytest.raises(ValueError, match="'train' or 'test'"):
            read_split_like_authors(tmp_path, 1, "val")


class StagedDirectoryTests:
    def test_it_stages_beside_the_final_folder_under_a_hidden_name(self, tmp_path):
        with staged_directory(tmp_path / "export") as staging:
            assert staging.parent == tmp_path and staging.name.startswith(".export.")
            assert str(os.getpid()) in staging.name
            assert list(staging.iterdir()) == []
            assert not (tmp_path / "export").exists()  # nothing visible until the block ends
            (staging / "file").write_text("new")
        assert (tmp_path / "export" / "file").read_text() == "new"
        assert [p.name for p in tmp_path.iterdir()] == ["export"]

    def test_it_replaces_an_older_folder_on_success(self, tmp_path):
        final = tmp_path / "export"
        (final / "sub").mkdir(parents=True)
        (final / "old").write_text("old")
        (final / "sub" / "older").write_text("old")
        with staged_directory(final) as staging:
            (staging / "new").write_text("new")
            assert (final / "old").read_text() == "old"  # the old one stays readable meanwhile
        assert sorted(p.name for p in final.iterdir()) == ["new"]
        assert [p.name for p in tmp_path.iterdir()] == ["export"]  # old one removed too

    def test_it_leaves_the_old_folder_untouched_and_no_temp_folder_on_an_exception(self, tmp_path):
        final = tmp_path / "export"
        final.mkdir()
        (final / "old").write_text("old")
        with pytest.raises(RuntimeError, match="half-way"):
            with staged_directory(final) as staging:
                (staging / "partial").write_text("partial")
                raise RuntimeError("half-way")
        assert [p.name for p in final.iterdir()] == ["old"]
        assert (final / "old").read_text() == "old"
        assert [p.name for p in tmp_path.iterdir()] == ["export"]

    def test_it_creates_nothing_on_an_exception_when_there_was_no_folder(self, tmp_path):
        with pytest.raises(KeyError):
            with staged_directory(tmp_path / "export"):
                raise KeyError("x")
        assert list(tmp_path.iterdir()) == []
