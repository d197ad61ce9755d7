"""train_benchmark reads the export's folds and refuses what cannot work before training
(issue 20, point 3)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from pipeline.synthetic import generate_dataset

TINY = dict(
    model="tiny", epochs=1, batch_size=8, frames=4, input_size=24, workers=0, no_progress=True
)


@pytest.fixture(scope="module")
def two_folds(tmp_path_factory):
    """An export with 2 folds (6 clips per emotion, 24×24 frames)."""
    folder = tmp_path_factory.mktemp("two")
    root = Path(generate_dataset(folder, 6, 1, frames=4, size=24, max_frames=6, progress=False))
    manifest = root / "manifest.csv"
    with open(manifest, newline="") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["fold"] = str((int(row["fold"]) - 1) % 2 + 1)
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def run(**options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("train_benchmark", stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
@pytest.mark.filterwarnings("ignore::ml.metrics.AbsentClassWarning")
@pytest.mark.usefixtures("tiny_model")
class TrainBenchmarkChecksTests:
    def test_a_two_fold_export_trains_its_two_folds_with_a_summary_and_one_line_per_epoch(
        self, two_folds, tmp_path, capsys
    ):
        out, err = run(data=str(two_folds), out=str(tmp_path / "run"), **TINY)
        printed = capsys.readouterr().out  # the training loop prints to the process's stdout
        result = json.loads((tmp_path / "run" / "results.json").read_text())
        assert [f["fold"] for f in result["folds"]] == [1, 2] and result["complete"]
        # the data summary comes first, per fold and set, per class
        lines = out.splitlines()
        assert lines[0].startswith("Clips per class")
        assert lines[1].split()[:3] == ["fold", "set", "happy"]
        assert lines[2].split()[:2] == ["1", "train"] and lines[3].split()[:2] == ["1", "test"]
        # 14 training clips per fold: the warning says results will be near chance
        assert "warning: fold 1: fewer than 20 training clips for happy 3" in err
        # --no-progress: one line per epoch
        assert "fold 1 epoch 1/1: loss" in printed and "fold 2 epoch 1/1: loss" in printed
        # checkpoints kept by default
        assert (tmp_path / "run" / "fold2" / "last.pt").exists()

    def test_a_fold_the_export_lacks_is_refused_before_any_training(self, two_folds, tmp_path):
        with pytest.raises(CommandError, match=r"has folds 1, 2, not 3; use --folds 1-2"):
            run(data=str(two_folds), out=str(tmp_path / "run"), folds="1-3", **TINY)
        assert not (tmp_path / "run").exists()

    def test_frames_smaller_than_the_input_are_refused(self, two_folds, tmp_path):
        options = {**TINY, "input_size": 112}
        with pytest.raises(CommandError, match="smaller than the input side 112") as refused:
            run(data=str(two_folds), out=str(tmp_path / "run"), **options)
        assert "export_dfew <campaign> <outdir> --size 112" in str(refused.value)
        assert not (tmp_path / "run").exists()

    def test_clips_with_votes_only_are_in_no_fold(self, two_folds, tmp_path):
        # export_dfew writes fold 0 for clips with a vote distribution and no single label
        # (the demo has six): they are training material, never a test fold of their own.
        root = tmp_path / "with-zero"
        root.mkdir()
        for path in two_folds.iterdir():
            (root / path.name).symlink_to(path)
        (root / "manifest.csv").unlink()
        with open(two_folds / "manifest.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        for r in rows[:3]:
            r["label"], r["fold"] = "0", "0"
        with open(root / "manifest.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        run(data=str(root), out=str(tmp_path / "run"), **TINY)
        result = json.loads((tmp_path / "run" / "results.json").read_text())
        assert result["folds_finished"] == [1, 2]

    def test_a_class_with_fewer_clips_than_folds_is_refused(self, two_folds, tmp_path):
        root = tmp_path / "short"
        root.mkdir()
        for path in two_folds.iterdir():
            (root / path.name).symlink_to(path)
        (root / "manifest.csv").unlink()
        with open(two_folds / "manifest.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        fear = [r for r in rows if r["label"] == "7"]
        for r in fear[1:]:
            r["label"] = "0"  # no single label: only one fear clip is left
        with open(root / "manifest.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        with pytest.raises(CommandError, match="fear has 1 single-labelled clips, fewer than"):
            run(data=str(root), out=str(tmp_path / "run"), **TINY)

    def test_keep_checkpoints_none_leaves_no_checkpoint_and_each_fold_is_written(
        self, two_folds, tmp_path
    ):
        run(data=str(two_folds), out=str(tmp_path / "run"), keep_checkpoints="none", **TINY)
        assert not list((tmp_path / "run").rglob("*.pt"))
        assert json.loads((tmp_path / "run" / "results.json").read_text())["folds_finished"] == [
            1,
            2,
        ]

    def test_help_shows_defaults_and_an_example(self):
        from ml.management.commands.train_benchmark import Command

        text = Command().create_parser("manage.py", "train_benchmark").format_help()
        assert "(default: last)" in text and "(default: cpu)" in text
        assert "example:" in text and "--keep-checkpoints" in text
