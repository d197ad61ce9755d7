"""Benchmark results as people read them: DFEW's Table 3/4 layout and a confusion matrix."""

from __future__ import annotations

from pathlib import Path


def _cell(stat: dict) -> str:
    if stat["mean"] is None:
        return "–"  # no test clip of this class
    return f"{stat['mean']:.2f} ± {stat['std']:.2f}"


def _loss_name(cfg: dict) -> str:
    name = {"ce": "softmax", "center": "center loss", "ec-stfl": "EC-STFL"}[cfg["loss"]]
    if cfg["loss"] == "ec-stfl" and cfg.get("ec_stfl_variant", "poster") != "poster":
        name += f" {cfg['ec_stfl_variant']}"
    if cfg["loss"] == "center":
        name += f" (λ={cfg['lam']:g}, α={cfg.get('center_alpha', 0.5):g})"
    elif cfg["loss"] != "ce":
        name += f" (λ={cfg['lam']:g})"
    if cfg.get("target") == "distribution":
        name += ", vote distribution"
    if cfg.get("init_from"):
        name += ", fine-tuned"
    return name


def title(results: list[dict]) -> str:
    """The title line: the protocol(s) the table's runs followed and what ± means."""
    from ml.config import PROTOCOL_TITLES

    named = []
    for r in results:
        setting = r.get("setting") or r.get("protocol") or r["config"].get("protocol", "modern")
        label = r.get("label") or setting
        text = f"protocol {label}"
        if label == setting:
            text += f": {PROTOCOL_TITLES.get(setting, setting)}"
        if text not in named:
            named.append(text)
    return f"# DFEW benchmark, {'; '.join(named)} (mean ± population std over folds, %)"


def _batch(result: dict) -> str:
    b = result.get("batch")
    if not b:
        return f"batch {result['config']['batch_size']} per process"
    return (
        f"global batch {b['global_batch']} = {b['world_size']} process(es) × "
        f"{b['per_process_batch']} per process ({b['accumulation']} micro-batch(es) of "
        f"{b['micro_batch']})"
    )


def _hyper_parameters(cfg: dict) -> str:
    schedule = cfg["schedule"]
    if schedule == "step":
        schedule = f"step ×0.1 every {cfg.get('lr_step', 50)} epochs"
    return (
        f"{cfg['optimizer']} lr {cfg['lr']:g} {schedule}, "
        f"{cfg['epochs']} epochs, {cfg['frames']}×{cfg['input_size']}², "
        f"{'augmented' if cfg['augment'] else 'no augmentation'}, "
        f"frames {cfg['train_sampling']} in training"
    )


def _table(results: list[dict], which: str) -> list[str]:
    labels = results[0]["labels"]
    header = ["Model", "Loss", *[name.capitalize() for name in labels], "UAR", "WAR", "Folds"]
    if which == "best":
        header.append("Epochs")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in results:
        cfg = result["config"]
        summary = result["summary"] if which == "last" else result["summary"].get("best")
        if summary is None:
            continue
        row = [
            cfg["model"],
            _loss_name(cfg),
            *[_cell(s) for s in summary["per_class_recall"]],
            _cell(summary["uar"]),
            _cell(summary["war"]),
            ",".join(str(f["fold"]) for f in result["folds"]),
        ]
        if which == "best":
            row.append(",".join(map(str, summary["epochs"])))
        lines.append("| " + " | ".join(row) + " |")
    return lines


def markdown_table(results: list[dict]) -> str:
    """A title naming the protocol (or "…, modified: <what>"), the batch (world size,
    per-process batch, accumulation, global batch), then one row per run (model, loss):
    per-class recall, UAR, WAR in %, mean ± std over folds, for the last epoch and for the
    best epoch on the test fold, and the run's hyper-parameters."""
    from ml.results import BEST_LABEL

    lines = [title(results), ""]
    for r in results:
        lines.append(f"- {r['config']['model']}: {_batch(r)}")
    lines += ["", "**Last epoch** (no selection on the test fold):", ""]
    lines += _table(results, "last")
    if any(r["summary"].get("best") for r in results):
        lines += ["", f"**Best epoch**, {BEST_LABEL}:", ""]
        lines += _table(results, "best")
    if all("optimizer" in r["config"] for r in results):
        lines.append("")
        lines += [f"- {r['config']['model']}: {_hyper_parameters(r['config'])}" for r in results]
    for r in results:
        weights = r.get("loss_weights") or {}
        if "lambda_scaling" in weights:
            lines.append(
                f"- {r['config']['model']}: release EC-STFL λ {weights['lambda']:g} used as "
                f"{weights['lambda_effective']:g} ({weights['lambda_scaling']})"
            )
    return "\n".join(lines) + "\n"


def confusion_plot(result: dict, path: Path) -> Path:
    """The confusion matrix summed over folds, each row normalised to the class's clips."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    matrix = np.asarray(result["summary"]["confusion"], dtype=float)
    rows = matrix.sum(1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    labels = [name.capitalize() for name in result["labels"]]
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{share[i, j] * 100:.0f}",
                ha="center",
                va="center",
                color="white" if share[i, j] > 0.5 else "black",
                fontsize=8,
            )
    cfg = result["config"]
    ax.set_title(f"{cfg['model']}, {_loss_name(cfg)}: recall per class (%)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
