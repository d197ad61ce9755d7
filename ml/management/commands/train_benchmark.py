"""python manage.py train_benchmark --data <export> --model c3d --loss ec-stfl --lambda 0.1 …

Parses the same arguments as ``python -m ml.train`` (generated from ``TrainConfig``) into
TrainConfigs, trains, and records each run (one per λ of a sweep) as a BenchmarkRun that the
staff page lists. Training needs only the export: on a box whose database has no ``ml``
tables (a fresh checkout, a GPU box) it writes its files, says in one line that no record was
made and how to get one, and succeeds. For several GPUs, launch
``torchrun --nproc_per_node=G -m ml.train`` with the same arguments.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter
from django.db import DatabaseError, connection
from django.utils import timezone

from ml.models import BenchmarkRun

NO_RECORD = (
    "no run record: the database has no {table} table ({why}); results are files only. "
    "Run `python manage.py migrate` to record runs."
)


def records_possible() -> str | None:
    """None when runs can be recorded, else why not (no such table, no database reachable)."""
    table = BenchmarkRun._meta.db_table
    try:
        with connection.cursor() as cursor:
            tables = connection.introspection.table_names(cursor)
    except DatabaseError as exc:
        return NO_RECORD.format(table=table, why=f"database unreachable: {exc}".strip())
    if table not in tables:
        return NO_RECORD.format(table=table, why="not migrated")
    columns = {
        c.name for c in connection.introspection.get_table_description(connection.cursor(), table)
    }
    missing = {f.column for f in BenchmarkRun._meta.concrete_fields} - columns
    if missing:
        return NO_RECORD.format(table=table, why=f"missing columns {sorted(missing)}")
    return None


class _HelpFormatter(DjangoHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Django's option order, with each option's default shown (unset ones say nothing: the
    protocol fills them in) and the example kept as written."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "%(default)" in text or action.default in (None, False, argparse.SUPPRESS):
            return text
        if not action.option_strings:
            return text
        return f"{text} (default: %(default)s)"


EXAMPLE = """example:
  python manage.py train_benchmark --data exports/campaign-1 --model r3d_18 --epochs 30 \\
      --no-progress --keep-checkpoints none

Before training it reads the export: its folds (all of them unless --folds is given), the
clips per class of each fold's train and test sets (printed first), and refuses what cannot
work (a fold the export lacks, a class with fewer clips than folds, frames smaller than the
input). Each fold's results are written to <out>/results.json as the fold finishes.
Unset hyper-parameters come from --protocol (see ml/config.py)."""


class Command(BaseCommand):
    help = "Trains a DFEW benchmark model with k-fold cross-validation and records the run."

    def create_parser(self, prog_name, subcommand, **kwargs):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        kwargs.setdefault("epilog", EXAMPLE)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        from ml.config import add_arguments

        add_arguments(parser)

    def handle(self, *args, **options):
        from ml.config import configs_from_args
        from ml.data import check_export, export_folds
        from ml.report import markdown_table
        from ml.train import train

        data = options.get("data")
        if not data or not Path(data).exists():
            raise CommandError(f"--data {data}: no such folder")
        if options.get("folds") is None:
            try:
                options["folds"] = ",".join(map(str, export_folds(data))) or None
            except FileNotFoundError as exc:
                raise CommandError(str(exc)) from exc
        try:
            configs = configs_from_args(argparse.Namespace(**options))
            first = configs[0].resolved()
            summary, warnings = check_export(
                first.data,
                first.folds,
                first.input_size,
                first.min_train_clips,
                model=first.model,
                upsample=first.upsample,
            )
        except (ValueError, FileNotFoundError) as exc:
            raise CommandError(f"{data}: {exc}") from exc
        self.stdout.write("Clips per class (single-labelled) of each fold's train and test sets:")
        for line in summary:
            self.stdout.write(line)
        for warning in warnings:
            self.stderr.write(f"warning: {warning}")
        why_not = records_possible()
        results = []
        for cfg in configs:
            cfg = cfg.resolved()
            run = None if why_not else _run_started(cfg)
            try:
                out = train(cfg)
            except Exception as exc:
                if run:
                    run.status, run.error = BenchmarkRun.Status.FAILED, str(exc)
                    run.finished_at = timezone.now()
                    run.save()
                raise
            result = json.loads((out / "results.json").read_text())
            if run:
                _run_finished(run, result)
            results.append(result)
        table = markdown_table(results)
        if len(results) > 1:
            summary_path = Path(configs[0].resolved().out).parent / "summary.md"
            summary_path.write_text(table)
        self.stdout.write(table)
        if why_not:
            self.stderr.write(why_not)


def _run_started(cfg) -> BenchmarkRun:
    """The run's record: its protocol, or "<protocol>, modified" with what differs, the
    recipe, the EC-STFL variant and every loss weight."""
    from ml.config import BatchPlan, batch_plan
    from ml.results import loss_weights

    changed = cfg.modifications()
    try:
        plan = batch_plan(cfg.global_batch, 1, cfg.batch_size)
    except ValueError:
        plan = BatchPlan(1, cfg.global_batch, cfg.batch_size or cfg.global_batch, 1, 0)
    return BenchmarkRun.objects.create(
        protocol=f"{cfg.protocol}, modified" if changed else cfg.protocol,
        recipe=cfg.recipe or "",
        modifications="; ".join(changed),
        ec_stfl_variant=cfg.ec_stfl_variant if cfg.loss == "ec-stfl" else "",
        loss_weights=loss_weights(cfg, plan),
        model=cfg.model,
        loss=cfg.loss,
        lam=cfg.lam if cfg.loss != "ce" else 0.0,
        target=cfg.target,
        data=cfg.data,
        out_dir=cfg.out,
        folds=",".join(map(str, cfg.folds)),
        epochs=cfg.epochs,
    )


def _run_finished(run: BenchmarkRun, result: dict) -> None:
    summary = result["summary"]
    run.status = BenchmarkRun.Status.FINISHED
    run.war_mean, run.war_std = summary["war"]["mean"], summary["war"]["std"]
    run.uar_mean, run.uar_std = summary["uar"]["mean"], summary["uar"]["std"]
    best = summary.get("best")
    if best:
        run.best_war_mean, run.best_war_std = best["war"]["mean"], best["war"]["std"]
        run.best_uar_mean, run.best_uar_std = best["uar"]["mean"], best["uar"]["std"]
        run.best_epochs = ",".join(map(str, best["epochs"]))[:100]
    batch = result.get("batch") or {}
    run.world_size = batch.get("world_size")
    run.per_process_batch = batch.get("per_process_batch")
    run.accumulation = batch.get("accumulation")
    run.global_batch = batch.get("global_batch")
    run.loss_weights = result.get("loss_weights", run.loss_weights)
    run.results = {k: v for k, v in result.items() if k != "folds"}
    run.finished_at = timezone.now()
    run.save()
