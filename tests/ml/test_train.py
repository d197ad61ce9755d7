"""The training loop on generated drawn-face clips, on the CPU."""

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
from django.core.management import call_command

from ml import metrics
from ml.data import CompactDataset
from ml.models import BenchmarkRun
from ml.train import TrainConfig, parse_folds, train
from pipeline.synthetic import generate_dataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """280 clips (40 per emotion) of 4 frames at 40×40, five folds."""
    return generate_dataset(
        tmp_path_factory.mktemp("faces"),
        clips_per_class=40,
        seed=3,
        size=40,
        frames=4,
        progress=False,
    )


def quick(faces, out, **overrides) -> TrainConfig:
    cfg = TrainConfig(
        data=str(faces),
        out=str(out),
        model="resnet18_lstm",
        folds=[1],
        epochs=1,
        batch_size=16,
        lr=0.02,
        input_size=40,
        workers=0,
        progress=False,
    )
    return replace(cfg, **overrides)


class TrainTests:
    def test_it_learns_the_drawn_expressions_well_above_chance(self, faces, tmp_path):
        # Chance is 1/7 ≈ 14.3% for both WAR and UAR; 8 epochs reach about 55% WAR here.
        out = train(quick(faces, tmp_path, epochs=8))
        result = json.loads((out / "results.json").read_text())
        fold = result["folds"][0]
        assert fold["test_clips"] == len(CompactDataset(faces, [1]))
        assert fold["war"] > 0.35, fold
        assert fold["uar"] > 0.30, fold
        assert fold["history"][-1]["loss"] < fold["history"][0]["loss"]
        table = (out / "results.md").read_text()
        assert "| resnet18_lstm | softmax |" in table and "UAR" in table
        assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
        checkpoint = torch.load(out / "fold1" / "last.pt", weights_only=False)
        assert set(checkpoint) >= {"model", "optimizer", "config", "epoch", "best_metric"}

    def test_it_resumes_from_the_last_checkpoint(self, faces, tmp_path):
        train(quick(faces, tmp_path, epochs=1))
        out = train(quick(faces, tmp_path, epochs=2, resume=True))
        history = json.loads((out / "results.json").read_text())["folds"][0]["history"]
        assert [h["epoch"] for h in history] == [2]  # epoch 1 came from the checkpoint
        assert torch.load(out / "fold1" / "last.pt", weights_only=False)["epoch"] == 1

    @pytest.mark.parametrize(
        "overrides",
        [
            {"loss": "ec-stfl", "lam": 0.1},
            {"loss": "center", "lam": 0.01},
            {"target": "distribution"},
            # bf16 with a 2D backbone: the CPU build of torch 2.13 aborts in the backward of
            # bf16 Conv3d here; the switch is meant for GPUs.
            {"bf16": True},
            {"channels_last": True, "model": "resnet3d_18"},
        ],
        ids=["ec-stfl", "center", "distribution", "bf16", "channels-last"],
    )
    def test_each_loss_and_target_trains(self, faces, tmp_path, overrides):
        out = train(quick(faces, tmp_path, **overrides))
        fold = json.loads((out / "results.json").read_text())["folds"][0]
        assert math.isfinite(fold["history"][0]["loss"])
        assert 0.0 <= fold["war"] <= 1.0

    def test_it_fine_tunes_from_a_checkpoint(self, faces, tmp_path):
        first = train(quick(faces, tmp_path / "a", epochs=1))
        start = torch.load(first / "fold1" / "last.pt", weights_only=False)["model"]
        cfg = quick(
            faces, tmp_path / "b", epochs=1, lr=0.0, init_from=str(first / "fold1" / "last.pt")
        )
        second = train(cfg)
        tuned = torch.load(second / "fold1" / "last.pt", weights_only=False)["model"]
        # lr 0: fine-tuning changed nothing, so the weights are the ones loaded.
        assert torch.equal(tuned["backbone.conv1.weight"], start["backbone.conv1.weight"])

    def test_it_rejects_unknown_choices(self, faces):
        with pytest.raises(ValueError, match="unknown model 'vgg19'"):
            TrainConfig(data=str(faces), model="vgg19")
        assert parse_folds("1-3,5") == [1, 2, 3, 5]


class DistributedTrainTests:
    def test_two_processes_evaluate_every_test_clip_exactly_once(self, faces, tmp_path):
        out = tmp_path / "ddp"
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                "--nproc_per_node=2",
                "-m",
                "ml.train",
                "--data",
                str(faces),
                "--out",
                str(out),
                "--model",
                "resnet18_lstm",
                "--folds",
                "1",
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--input-size",
                "40",
                "--workers",
                "0",
                "--device",
                "cpu",
                "--no-progress",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        result = json.loads((out / "results.json").read_text())
        assert result["world_size"] == 2
        expected = sorted(CompactDataset(faces, [1]).clip_ids.tolist())
        assert sorted(result["folds"][0]["clip_ids"]) == expected  # none twice, none missed


@pytest.mark.django_db
class TrainBenchmarkCommandTests:
    def test_it_sweeps_lambda_and_records_each_run(self, faces, tmp_path, capsys):
        call_command(
            "train_benchmark",
            data=str(faces),
            out=str(tmp_path / "sweep"),
            model="resnet18_lstm",
            loss="ec-stfl",
            lam="0.01,1",
            folds="1",
            epochs=1,
            batch_size=16,
            input_size=40,
            workers=0,
            no_progress=True,
        )
        runs = list(BenchmarkRun.objects.order_by("lam"))
        assert [(r.loss, r.lam, r.status) for r in runs] == [
            ("ec-stfl", 0.01, "finished"),
            ("ec-stfl", 1.0, "finished"),
        ]
        assert all(r.war_mean is not None and 0 <= r.war_mean <= 100 for r in runs)
        summary = (tmp_path / "sweep" / "summary.md").read_text()
        assert "EC-STFL (λ=0.01)" in summary and "EC-STFL (λ=1)" in summary
        assert "EC-STFL (λ=1)" in capsys.readouterr().out

    def test_it_says_when_the_data_folder_is_missing(self, tmp_path):
        from django.core.management.base import CommandError

        with pytest.raises(CommandError, match="no such folder"):
            call_command("train_benchmark", data=str(tmp_path / "nope"), epochs=1)
        assert not BenchmarkRun.objects.exists()

    def test_staff_see_the_runs(self, client, admin_user):
        BenchmarkRun.objects.create(
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

    def test_annotators_cannot_see_the_runs(self, client, alice):
        from tests.conftest import PASSWORD

        client.login(username="alice", password=PASSWORD)
        assert client.get("/staff/benchmarks/").status_code == 403


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
        cfg = quick(tmp_path, tmp_path / "run", batch_size=4, input_size=32)
        with pytest.warns(metrics.AbsentClassWarning, match=r"classes \[4, 5, 6\]"):
            out = train(cfg)
        # then: the four test clips were evaluated, each once; absent classes have no recall
        result = json.loads((out / "results.json").read_text())
        assert sorted(result["folds"][0]["clip_ids"]) == [1, 2, 3, 4]
        assert result["folds"][0]["per_class_recall"][4:] == [None, None, None]
        assert "| – | – | – |" in (out / "results.md").read_text()
