"""python manage.py train_benchmark --data <export> --model c3d --loss ec-stfl --lambda 0.1 …

Parses the same arguments as ``python -m ml.train`` into TrainConfigs, trains, and records
each run (one per λ of a sweep) as a BenchmarkRun that the staff page lists. For several
GPUs, launch ``torchrun --nproc_per_node=G -m ml.train`` with the same arguments.
"""

from __future__ import annotations

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from ml.models import BenchmarkRun


class Command(BaseCommand):
    help = "Trains a DFEW benchmark model with k-fold cross-validation and records the run."

    def add_arguments(self, parser):
        from ml.train import add_arguments

        add_arguments(parser)

    def handle(self, *args, **options):
        import argparse

        from ml.report import markdown_table
        from ml.train import configs_from_args, train

        namespace = argparse.Namespace(**options)
        try:
            configs = configs_from_args(namespace)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        if not Path(namespace.data).exists():
            raise CommandError(f"--data {namespace.data}: no such folder")
        results = []
        for cfg in configs:
            run = BenchmarkRun.objects.create(
                model=cfg.model,
                loss=cfg.loss,
                lam=cfg.lam if cfg.loss != "ce" else 0.0,
                target=cfg.target,
                data=cfg.data,
                out_dir=cfg.out,
                folds=",".join(map(str, cfg.folds)),
                epochs=cfg.epochs,
            )
            try:
                out = train(cfg)
            except Exception as exc:
                run.status, run.error, run.finished_at = (
                    BenchmarkRun.Status.FAILED,
                    str(exc),
                    timezone.now(),
                )
                run.save()
                raise
            result = json.loads((out / "results.json").read_text())
            summary = result["summary"]
            run.status = BenchmarkRun.Status.FINISHED
            run.war_mean, run.war_std = summary["war"]["mean"], summary["war"]["std"]
            run.uar_mean, run.uar_std = summary["uar"]["mean"], summary["uar"]["std"]
            run.results = {k: v for k, v in result.items() if k != "folds"}
            run.finished_at = timezone.now()
            run.save()
            results.append(result)
        table = markdown_table(results)
        if len(results) > 1:
            summary_path = Path(configs[0].out).parent / "summary.md"
            summary_path.write_text(table)
        self.stdout.write(table)
