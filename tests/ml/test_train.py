"""The training loop on generated drawn-face clips, on the CPU, with a tiny network."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from django.core.management import CommandError, call_command

from ml import metrics
from ml.data import CompactDataset
from ml.models import BenchmarkRun
from ml.train import TrainConfig, train
from pipeline.synthetic import generate_dataset

ROOT = Path(__file__).resolve().parents[2]
# `few` has too few clips for every emotion to reach each fold's test set.
ABSENT = pytest.mark.filterwarnings("ignore::ml.metrics.AbsentClassWarning")
TINY = "import tests.ml.conftest as c; from ml.networks import MODELS; MODELS['tiny'] = c.tiny"


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """280 ragged clips (40 per emotion, 6 to 12 frames) at 32×32, five folds."""
    folder = tmp_path_factory.mktemp("faces")
    return generate_dataset(folder, 40, 3, frames=6, size=32, max_frames=12, progress=False)


@pytest.fixture(scope="module")
def few(tmp_path_factory):
    """42 clips (6 per emotion, 4 to 8 frames) for the tests of the loop's mechanics."""
    folder = tmp_path_factory.mktemp("few")
    return generate_dataset(folder, 6, 1, frames=4, size=24, max_frames=8, progress=False)


def quick(data, out, **overrides) -> TrainConfig:
    cfg = TrainConfig(
        data=str(data),
        out=str(out),
        model="tiny",
        folds=[1],
        epochs=1,
        batch_size=8,
        frames=4,
        input_size=24,
        workers=0,
        progress=False,
    )
    return replace(cfg, **overrides)


def weights(out: Path, fold: int = 1) -> dict:
    return torch.load(out / f"fold{fold}" / "last.pt", weights_only=False)["model"]


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@ABSENT
@pytest.mark.usefixtures("tiny_model")
class TrainTests:
    def test_it_learns_the_drawn_expressions_well_above_chance_with_the_authors_protocol(
        self, faces, tmp_path
    ):
        # Chance is 1/7 ≈ 14.3% for WAR and UAR; 10 epochs reach about 38% WAR here.
        out = train(quick(faces, tmp_path, epochs=10, batch_size=16, input_size=32))
        result = json.loads((out / "results.json").read_text())
        fold = result["folds"][0]
        assert fold["test_clips"] == len(CompactDataset(faces, [1]))
        assert fold["war"] > 0.28, fold
        assert fold["uar"] > 0.25, fold
        assert fold["history"][-1]["loss"] < fold["history"][0]["loss"]
        table = (out / "results.md").read_text()
        assert table.startswith("# DFEW benchmark, protocol dfew: the DFEW authors' protocol")
        assert "| tiny | softmax |" in table and "population std" in table
        assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
        checkpoint = torch.load(out / "fold1" / "last.pt", weights_only=False)
        assert set(checkpoint) >= {"model", "optimizer", "config", "epoch", "best_metric", "rng"}

    def test_results_record_the_resolved_protocol_and_every_hyper_parameter(self, few, tmp_path):
        out = train(quick(few, tmp_path / "dfew", batch_size=None))
        result = json.loads((out / "results.json").read_text())
        cfg = result["config"]
        assert result["protocol"] == cfg["protocol"] == "dfew"
        assert None not in [cfg[k] for k in ("lr", "optimizer", "batch_size", "augment", "lam")]
        assert (cfg["optimizer"], cfg["lr"], cfg["schedule"], cfg["batch_size"]) == (
            "adam",
            1e-3,
            "constant",
            32,
        )
        assert (cfg["augment"], cfg["normalize"], cfg["test_crop"]) == (False, "pretrained", 1.0)
        assert cfg["train_sampling"] == "random" and cfg["epochs"] == 1  # explicit wins
        assert set(cfg) == set(TrainConfig.__dataclass_fields__)
        modern = train(quick(few, tmp_path / "modern", protocol="modern", batch_size=None))
        text = (modern / "results.md").read_text()
        assert text.startswith("# DFEW benchmark, protocol modern")
        assert "sgd lr 0.01 cosine, batch 16" in text
        assert json.loads((modern / "results.json").read_text())["config"]["augment"] is True

    def test_a_resumed_run_ends_with_the_weights_of_the_uninterrupted_run(self, few, tmp_path):
        # The tiny network has dropout, the frames are drawn at random and the batches
        # shuffled: equal weights need the sampler's, the augmentation's and torch's random
        # state to continue exactly where the first epoch left them.
        whole = train(quick(few, tmp_path / "whole", epochs=2))
        train(quick(few, tmp_path / "split", epochs=1))
        resumed = train(quick(few, tmp_path / "split", epochs=2, resume=True))
        history = json.loads((resumed / "results.json").read_text())["folds"][0]["history"]
        assert [h["epoch"] for h in history] == [2]  # epoch 1 came from the checkpoint
        assert same_weights(weights(whole), weights(resumed))
        fresh = train(quick(few, tmp_path / "fresh", epochs=1, seed=1))
        assert not same_weights(weights(fresh), weights(resumed))

    @pytest.mark.parametrize(
        "loss",
        [
            {"loss": "ec-stfl"},
            {"loss": "ec-stfl", "ec_stfl_variant": "release"},
            {"loss": "center"},
        ],
        ids=["ec-stfl", "ec-stfl-release", "center"],
    )
    def test_the_feature_loss_changes_training_exactly_when_its_weight_is_not_zero(
        self, few, tmp_path, loss
    ):
        softmax = weights(train(quick(few, tmp_path / "ce")))
        off = weights(train(quick(few, tmp_path / "off", lam=0.0, **loss)))
        on = weights(train(quick(few, tmp_path / "on", lam=1.0, **loss)))
        assert same_weights(off, softmax)  # λ = 0: the same steps as softmax alone
        assert not same_weights(on, softmax)  # λ > 0: the auxiliary term moved the weights

    @pytest.mark.parametrize(
        "overrides",
        [
            {"target": "distribution"},
            {"channels_last": True},
            {"protocol": "modern", "loss": "ec-stfl", "lam": 0.1},
        ],
        ids=["distribution", "channels-last", "modern-ec-stfl"],
    )
    def test_each_target_and_switch_trains(self, few, tmp_path, overrides):
        out = train(quick(few, tmp_path, **overrides))
        fold = json.loads((out / "results.json").read_text())["folds"][0]
        assert math.isfinite(fold["history"][0]["loss"])
        assert fold["test_clips"] == len(CompactDataset(few, [1]))

    def test_it_fine_tunes_from_a_checkpoint_that_never_saw_the_test_clips(self, few, tmp_path):
        first = train(quick(few, tmp_path / "a"))
        start = weights(first)
        cfg = quick(few, tmp_path / "b", lr=0.0, init_from=str(first / "fold1" / "last.pt"))
        tuned = weights(train(cfg))
        # lr 0: fine-tuning changed nothing, so the weights are the ones loaded.
        assert torch.equal(tuned["body.0.weight"], start["body.0.weight"])

    def test_it_refuses_a_checkpoint_trained_on_the_folds_test_clips(self, few, tmp_path):
        first = train(quick(few, tmp_path / "a"))  # fold 1 tested: trained on folds 2-5
        cfg = quick(few, tmp_path / "b", folds=[2], init_from=str(first / "fold1" / "last.pt"))
        test_clips = len(CompactDataset(few, [2]))
        with pytest.raises(ValueError, match=f"trained on {test_clips} of this fold's test"):
            train(cfg)

    def test_it_rejects_unknown_choices(self, few):
        with pytest.raises(ValueError, match="unknown model 'vgg19'"):
            TrainConfig(data=str(few), model="vgg19")
        with pytest.raises(ValueError, match="unknown protocol 'fast'"):
            TrainConfig(data=str(few), protocol="fast")


class DistributedTrainTests:
    def test_two_processes_evaluate_every_test_clip_exactly_once(self, few, tmp_path):
        out = tmp_path / "ddp"
        script = tmp_path / "run.py"
        script.write_text(f"{TINY}\nfrom ml.train import main\nmain()\n")
        args = ["--data", str(few), "--out", str(out), "--model", "tiny", "--folds", "1"]
        args += ["--epochs", "1", "--batch-size", "4", "--frames", "4", "--input-size", "24"]
        args += ["--loss", "ec-stfl", "--workers", "0", "--device", "cpu", "--no-progress"]
        proc = subprocess.run(
            [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
            + [str(script), *args],
            cwd=ROOT,
            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads((out / "results.json").read_text())
        assert result["world_size"] == 2
        expected = sorted(CompactDataset(few, [1]).clip_ids.tolist())
        assert sorted(result["folds"][0]["clip_ids"]) == expected  # none twice, none missed


@ABSENT
@pytest.mark.django_db
@pytest.mark.usefixtures("tiny_model")
class TrainBenchmarkCommandTests:
    def test_it_sweeps_lambda_and_records_each_run_with_its_protocol(self, faces, tmp_path, capsys):
        # `faces`, not `few`: train_benchmark refuses a class with fewer clips than folds
        call_command(
            "train_benchmark",
            data=str(faces),
            out=str(tmp_path / "sweep"),
            model="tiny",
            loss="ec-stfl",
            lam="0.01,1",
            ec_stfl_variant="release",
            folds="1",
            epochs=1,
            batch_size=8,
            frames=4,
            input_size=24,
            workers=0,
            no_progress=True,
        )
        runs = list(BenchmarkRun.objects.order_by("lam"))
        assert [(r.protocol, r.loss, r.lam, r.status) for r in runs] == [
            ("dfew", "ec-stfl", 0.01, "finished"),
            ("dfew", "ec-stfl", 1.0, "finished"),
        ]
        assert runs[0].results["config"]["ec_stfl_variant"] == "release"
        summary = (tmp_path / "sweep" / "summary.md").read_text()
        assert "EC-STFL release (λ=0.01)" in summary and "EC-STFL release (λ=1)" in summary
        assert "protocol dfew" in capsys.readouterr().out

    def test_it_says_when_the_data_folder_is_missing(self, tmp_path):
        with pytest.raises(CommandError, match="no such folder"):
            call_command("train_benchmark", data=str(tmp_path / "nope"), epochs=1)
        assert not BenchmarkRun.objects.exists()

    def test_staff_see_the_runs(self, client, admin_user):
        BenchmarkRun.objects.create(
            protocol="dfew",
            model="c3d",
            loss="ce",
            data="/d",
            out_dir="/o",
            folds="1",
            epochs=1,
            status="finished",
            war_mean=53.5,
            war_std=1.0,
            uar_mean=42.7,
            uar_std=0.5,
        )
        from tests.conftest import PASSWORD

        client.login(username="admin", password=PASSWORD)
        html = client.get("/staff/benchmarks/").content.decode()
        assert "c3d" in html and "53.50 ± 1.00" in html and "42.70 ± 0.50" in html
        assert "<td>dfew</td>" in html

    def test_annotators_cannot_see_the_runs(self, client, alice):
        from tests.conftest import PASSWORD

        client.login(username="alice", password=PASSWORD)
        assert client.get("/staff/benchmarks/").status_code == 403


class TrainBenchmarkWithoutDatabaseTests:
    def test_a_fresh_checkout_trains_writes_files_and_says_no_record_was_made(
        self, faces, tmp_path
    ):
        # given: a var folder with no database at all, as on a GPU box with only the export
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SECRET_KEY")}
        env.update(VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="annotation_site.settings")
        code = (
            f"{TINY}\nfrom django.core.management import execute_from_command_line\n"
            "import sys\nexecute_from_command_line(['manage.py', *sys.argv[1:]])\n"
        )
        out = tmp_path / "run"
        args = ["train_benchmark", "--data", str(faces), "--out", str(out), "--model", "tiny"]
        args += ["--folds", "1", "--epochs", "1", "--frames", "4", "--input-size", "24"]
        args += ["--workers", "0", "--no-progress"]
        # when
        proc = subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        # then
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "protocol dfew" in proc.stdout
        lines = [line for line in proc.stderr.splitlines() if "no run record" in line]
        assert len(lines) == 1 and "python manage.py migrate" in lines[0], proc.stderr
        assert json.loads((out / "results.json").read_text())["protocol"] == "dfew"


@pytest.mark.usefixtures("tiny_model")
class DFEWLayoutTrainTests:
    def test_it_trains_on_dfews_release_layout(self, tmp_path):
        import numpy as np
        from PIL import Image

        from pipeline.emotions import EMOTION_NAMES
        from pipeline.synthetic import render_clip

        # given: 14 clips in DFEW's layout, fold 1's test set holding 4 of them
        rng = np.random.default_rng(0)
        (tmp_path / "label").mkdir()
        rows = []
        for clip_id in range(1, 15):
            label = (clip_id - 1) % 7 + 1
            folder = tmp_path / "data" / f"{clip_id:05d}"
            folder.mkdir(parents=True)
            for t, frame in enumerate(render_clip(EMOTION_NAMES[label - 1], 6, 32, rng), start=1):
                Image.fromarray(frame).save(folder / f"{clip_id:05d}_{t:05d}.jpg")
            rows.append(f"{clip_id},{label}")
        (tmp_path / "label" / "single_testset_1.csv").write_text(
            "video_name,label\n" + "\n".join(rows[:4]) + "\n"
        )
        (tmp_path / "label" / "single_trainset_1.csv").write_text(
            "video_name,label\n" + "\n".join(rows[4:]) + "\n"
        )
        # when: fold 1 tests only happy, sad, neutral and angry
        cfg = quick(tmp_path, tmp_path / "run", batch_size=4)
        with pytest.warns(metrics.AbsentClassWarning, match=r"classes \[4, 5, 6\]"):
            out = train(cfg)
        # then: the four test clips were evaluated, each once; absent classes have no recall
        result = json.loads((out / "results.json").read_text())
        assert sorted(result["folds"][0]["clip_ids"]) == [1, 2, 3, 4]
        assert result["folds"][0]["per_class_recall"][4:] == [None, None, None]
        assert "| – | – | – |" in (out / "results.md").read_text()
