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

from django.core.management.base import BaseCommand, CommandError
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


class Command(BaseCommand):
    help = "Trains a DFEW benchmark model with k-fold cross-validation and records the run."

    def add_arguments(self, parser):
        from ml.config import add_arguments

        add_arguments(parser)

    def handle(self, *args, **options):
        from ml.config import configs_from_args
        from ml.report import markdown_table
        from ml.train import train

        try:
            configs = configs_from_args(argparse.Namespace(**options))
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not Path(configs[0].data).exists():
            raise CommandError(f"--data {configs[0].data}: no such folder")
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
    return BenchmarkRun.objects.create(
        protocol=cfg.protocol,
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
    run.results = {k: v for k, v in result.items() if k != "folds"}
    run.finished_at = timezone.now()
    run.save()
