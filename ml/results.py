"""What a run writes: per-epoch scores, each fold's last and best epoch, the summary over
folds, and the files (``results.json``, ``results.md``, ``epochs.csv``, ``confusion.png``).

The authors test the test fold after every epoch and keep every checkpoint with its test
UAR/WAR in the file name; the 2024 EC-STFL release reports the best test epoch. Both are
recorded here: the **last** epoch (no selection on the test fold) and the **best** epoch by
test WAR (the first on ties), which is optimistic, since the test fold chose it.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from ml import metrics
from ml.config import ECSTFL_RELEASE_BATCH, PROTOCOL_TITLES, BatchPlan, TrainConfig

BEST_LABEL = "best on the test fold (optimistic; the authors' release reports this)"
FILES = ("results.md", "results.json", "epochs.csv", "confusion.png")


def epoch_scores(predictions: dict, num_classes: int) -> dict:
    """WAR, UAR, per-class recall (None for a class with no test clip) and the confusion
    matrix of one evaluation."""
    y_true, y_pred = predictions["y_true"], predictions["y_pred"]
    recalls = metrics.per_class_recall(y_true, y_pred, num_classes)
    return {
        "war": metrics.war(y_true, y_pred),
        "uar": metrics.uar(y_true, y_pred, num_classes),
        "per_class_recall": [None if np.isnan(r) else float(r) for r in recalls],
        "confusion": metrics.confusion(y_true, y_pred, num_classes).tolist(),
    }


def fold_result(fold: int, labels: list[str], predictions: dict, history, best) -> dict:
    """The last epoch's scores at the top level (with its predictions' clip ids), the best
    epoch's under ``best``, and every epoch's record under ``history``."""
    return {
        "fold": fold,
        "test_clips": len(predictions["y_true"]),
        "clip_ids": predictions["clip_ids"],
        "last_epoch": history[-1]["epoch"] if history else None,
        **epoch_scores(predictions, len(labels)),
        "best": best,
        "history": history,
        "labels": labels,
    }


def _stats(values) -> dict:
    values = np.asarray(values, dtype=float) * 100
    values = values[~np.isnan(values)]
    if len(values) == 0:  # a class with no test clip in any fold
        return {"mean": None, "std": None}
    return {"mean": float(values.mean()), "std": float(values.std(ddof=0))}


def _summary_of(parts: list[dict]) -> dict:
    recalls = np.asarray(
        [[np.nan if r is None else r for r in p["per_class_recall"]] for p in parts], dtype=float
    )
    return {
        "war": _stats([p["war"] for p in parts]),
        "uar": _stats([p["uar"] for p in parts]),
        "per_class_recall": [_stats(recalls[:, c]) for c in range(recalls.shape[1])],
        "confusion": np.sum([p["confusion"] for p in parts], axis=0).tolist(),
    }


def summarize(folds: list[dict]) -> dict:
    """Mean and population standard deviation (ddof 0) over folds of WAR, UAR and each
    class's recall, in %: of the last epoch (top level) and of the best (``best``)."""
    summary = _summary_of(folds)
    with_best = [f["best"] for f in folds if f.get("best")]
    if len(with_best) == len(folds):
        summary["best"] = {
            **_summary_of(with_best),
            "epochs": [b["epoch"] for b in with_best],
            "label": BEST_LABEL,
        }
    summary["std"] = "population (ddof=0) over folds"
    return summary


def loss_weights(cfg: TrainConfig, plan: BatchPlan) -> dict:
    """Every weight of the loss, as the run used it."""
    weights: dict = {"loss": cfg.loss, "lambda": cfg.lam if cfg.loss != "ce" else 0.0}
    if cfg.loss == "ec-stfl":
        weights["ec_stfl_variant"] = cfg.ec_stfl_variant
    if cfg.loss == "ec-stfl" and cfg.ec_stfl_variant == "release":
        seen = plan.micro * plan.world
        weights["lambda_scaling"] = (
            f"λ × clips seen / {ECSTFL_RELEASE_BATCH}: the release divides by its batch, so "
            f"λ·L means what it does at the release's batch of {ECSTFL_RELEASE_BATCH} "
            "whatever the number of processes"
        )
        weights["lambda_effective"] = cfg.lam * seen / ECSTFL_RELEASE_BATCH
    if cfg.loss == "center":
        weights["center_alpha"] = cfg.center_alpha
        weights["center_update"] = "Wen et al. (ECCV 2016), eq. 4, over the global batch"
    return weights


def epochs_csv(folds: list[dict]) -> str:
    """One row per fold and epoch: loss, learning rate, optimiser steps, test WAR/UAR (%)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["fold", "epoch", "loss", "lr", "optimizer_steps", "test_war", "test_uar"])
    for fold in folds:
        for e in fold["history"]:
            writer.writerow(
                [
                    fold["fold"],
                    e["epoch"],
                    f"{e['loss']:.6f}",
                    f"{e.get('lr', float('nan')):.6g}",
                    e.get("optimizer_steps", ""),
                    f"{e['test_war'] * 100:.2f}" if "test_war" in e else "",
                    f"{e['test_uar'] * 100:.2f}" if "test_uar" in e else "",
                ]
            )
    return out.getvalue()


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_results(cfg: TrainConfig, plan: BatchPlan, out: Path, folds: list[dict], complete):
    """results.json (``complete`` false while folds remain), results.md, epochs.csv and
    confusion.png over the folds finished so far; each written aside, then renamed."""
    out.mkdir(parents=True, exist_ok=True)
    modifications = cfg.modifications()
    result = {
        "protocol": cfg.protocol,
        "recipe": cfg.recipe,
        "setting": cfg.setting,
        "label": cfg.label(),
        "modifications": modifications,
        "protocol_title": PROTOCOL_TITLES[cfg.setting],
        "config": cfg.record(),
        "world_size": plan.world,
        "batch": plan.record(),
        "loss_weights": loss_weights(cfg, plan),
        "complete": complete,
        "folds_finished": [f["fold"] for f in folds],
        "folds": folds,
        "summary": summarize(folds),
        "labels": folds[0]["labels"],
        "files": list(FILES),
    }
    _write(out / "results.json", json.dumps(result, indent=2))
    from ml.report import confusion_plot, markdown_table

    _write(out / "results.md", markdown_table([result]))
    _write(out / "epochs.csv", epochs_csv(folds))
    confusion_plot(result, out / "confusion.png")
    return result
