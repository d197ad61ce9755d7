"""The lifecycle of a background job, written once.

A job row is a model with a ``JobStatus`` ``status`` and the fields ``started_at`` (when it
was claimed), ``progress`` (0 to 1), ``stage``, ``error`` and ``finished_at``: the agreement
report (``AgreementReport``) and the DFEW-format export (``LabelExport``). Its worker drives it:

    queued ──claim──▶ running ──step, step, …──▶ done (finish) | failed (fail)
    running, claimed before its stale threshold ──claim──▶ running (taken over)

Every write is one conditional UPDATE, its own statement: of two workers that claim a job one
wins, and a page polling the row sees the progress as it goes.

A job still running past its **stale threshold** was lost with its worker and may be claimed
again. Each threshold is a named setting in seconds (``settings.py``, ``.env.example``),
listed in ``STALE_SETTINGS`` with the task that runs the job, and must stay above that task's
hard time limit, past which no run is still going (`check_stale_thresholds`, a system check,
refuses one that is not). The clip extraction claim (``labeling/media/extraction.py``) keeps
its own fields and takeover rules on the clip row and takes its threshold from here too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.core import checks
from django.db import models
from django.db.models import Q
from django.utils import timezone

from labeling.models import JobStatus

# A job's progress callback: the fraction done (0 to 1) and what it is doing.
Progress = Callable[[float, str], None]

# Every stale threshold (a setting, in seconds) and the Celery task whose runs it covers.
STALE_SETTINGS: dict[str, str] = {
    "AGREEMENT_REPORT_STALE_SECONDS": "labeling.tasks.agreement_report_task",
    "LABEL_EXPORT_STALE_SECONDS": "labeling.tasks.label_export_task",
    "EXTRACTION_STALE_SECONDS": "labeling.tasks.clip_extract_task",
}

# A running job's progress stays below this: only `finish` says it is done.
RUNNING_MAX_PROGRESS = 0.99


def stale_after(setting: str) -> timedelta:
    """The stale threshold named ``setting`` (one of ``STALE_SETTINGS``)."""
    if setting not in STALE_SETTINGS:
        raise KeyError(f"{setting} is not a stale threshold (labeling.jobs.STALE_SETTINGS)")
    return timedelta(seconds=getattr(settings, setting))


def stale_before(setting: str, now: datetime | None = None) -> datetime:
    """A job claimed before this (``now`` less the threshold ``setting``) was lost."""
    return (now or timezone.now()) - stale_after(setting)


def claim(model: type[models.Model], job_id: int, *, stale: str) -> bool:
    """Takes job ``job_id`` for this worker: a queued one, or a running one claimed before
    the threshold ``stale`` (its worker was lost: the run is taken over and starts again).
    False when another worker has it, or it is done or failed."""
    now = timezone.now()
    return bool(
        model.objects.filter(
            Q(status=JobStatus.QUEUED)
            | Q(status=JobStatus.RUNNING, started_at__lt=stale_before(stale, now)),
            pk=job_id,
        ).update(status=JobStatus.RUNNING, started_at=now, progress=0.0, stage="starting")
    )


def step(model: type[models.Model], job_id: int, fraction: float, stage: str) -> None:
    """Records a running job's progress: ``fraction`` done (kept between 0 and
    ``RUNNING_MAX_PROGRESS``, to four places) and its ``stage`` (cut to the column)."""
    fraction = round(min(max(fraction, 0.0), RUNNING_MAX_PROGRESS), 4)
    model.objects.filter(pk=job_id).update(progress=fraction, stage=stage[:100])


def fail(model: type[models.Model], job_id: int, error: BaseException | str) -> None:
    """Ends the job as failed, keeping the error's message (its first 5,000 characters)."""
    model.objects.filter(pk=job_id).update(
        status=JobStatus.FAILED, error=str(error)[:5000], finished_at=timezone.now()
    )


def finish(model: type[models.Model], job_id: int, **results) -> None:
    """Ends the job as done, storing ``results`` (its own fields: figures, a file…)."""
    model.objects.filter(pk=job_id).update(
        status=JobStatus.DONE, progress=1.0, stage="done", finished_at=timezone.now(), **results
    )


@contextmanager
def failing(model: type[models.Model], job_id: int) -> Iterator[None]:
    """Runs the body of a claimed job: an exception raised in it is stored on the row
    (`fail`), then raised again."""
    try:
        yield
    except Exception as exc:
        fail(model, job_id, exc)
        raise


def check_stale_thresholds(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """System check: every stale threshold is a whole number of seconds above its task's hard
    time limit. At or below it, a run still going would be taken over and run twice at once."""
    errors: list[checks.CheckMessage] = []
    for setting, task_path in STALE_SETTINGS.items():
        module, name = task_path.rsplit(".", 1)
        limit = getattr(import_module(module), name).time_limit
        value = getattr(settings, setting, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > limit:
            continue
        errors.append(
            checks.Error(
                f"{setting} is {value!r}: it must be more seconds than {name}'s hard time "
                f"limit ({limit} s).",
                hint=(
                    f"A job is taken over once it has run {setting} seconds; at or below the "
                    "time limit, a run still going would be run twice at once. Set it above "
                    f"{limit} (.env.example shows the default)."
                ),
                obj=setting,
                id="labeling.E001",
            )
        )
    return errors
