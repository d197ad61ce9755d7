"""Loaded into the Celery worker of test_reliability (``--include``), never by the app.

After the first run of the watched task (``PROBE_TASK`` with ``PROBE_ARG``) has done its work,
and before the worker acknowledges it (tasks are acked late), it writes its process id to
``PROBE_DIR/paused`` and waits there to be killed. Every run is logged in ``PROBE_DIR/runs``.
"""

import os
import time
from pathlib import Path

from celery.signals import task_postrun


@task_postrun.connect
def _pause_after_the_first_run(task=None, args=None, **kwargs):
    folder = Path(os.environ["PROBE_DIR"])
    if task.name != os.environ["PROBE_TASK"] or list(args or []) != [int(os.environ["PROBE_ARG"])]:
        return
    with open(folder / "runs", "a") as log:
        log.write(f"{os.getpid()}\n")
    paused = folder / "paused"
    if not paused.exists():
        paused.write_text(str(os.getpid()))
        time.sleep(120)  # the test SIGKILLs this process now
