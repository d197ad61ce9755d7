"""Django's SQLite backend, with its writers queued on a file lock.

Every transaction of the embedded default is ``BEGIN IMMEDIATE`` (settings: the read-then-write
of a lease must not interleave), so SQLite lets one transaction at a time hold its write lock.
A connection that finds it taken waits in SQLite's busy handler, which sleeps between tries
(1, 2, 5, 10, … up to 100 ms) and does not wake when the lock frees: measured with
``bench/annotation_load.py`` (50 annotators, gunicorn 3 × 4 threads, 2 cores), the server used
under half of the machine while requests waited.

Here each connection first takes an exclusive ``flock`` on ``<database>.writer-lock`` (one
open file per connection, so the threads of one process queue on it as the processes do),
trying every millisecond, so the next writer starts within about a millisecond of the lock
being let go: at COMMIT, ROLLBACK or when the connection closes (or its process dies). A wait
ends, as SQLite's would, with "database is locked" after the connection's ``timeout``.
SQLite's own locking still guards the file; this only decides who asks next. An in-memory
database, which one process alone can open, is left as it is.
"""

from __future__ import annotations

import fcntl
import os
import time

from django.db import OperationalError
from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_lock_fd: int | None = None

    def _writer_lock_path(self) -> str | None:
        name = str(self.settings_dict["NAME"])
        return None if self.is_in_memory_db() else f"{name}.writer-lock"

    def _writer_lock_take(self) -> None:
        path = self._writer_lock_path()
        if path is None:
            return
        if self._writer_lock_fd is None:
            self._writer_lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        # Tried every millisecond, not waited for in the kernel: a wait must end after the
        # connection's timeout as SQLite's own does (a thread that opened a second connection
        # to the file would otherwise wait for itself forever).
        deadline = time.monotonic() + float(self.settings_dict["OPTIONS"].get("timeout", 5))
        while True:
            try:
                fcntl.flock(self._writer_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OperationalError(
                        "database is locked (another writer's transaction)"
                    ) from None
                time.sleep(0.001)

    def _writer_lock_release(self) -> None:
        if self._writer_lock_fd is not None:
            fcntl.flock(self._writer_lock_fd, fcntl.LOCK_UN)

    def _start_transaction_under_autocommit(self):
        self._writer_lock_take()
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._writer_lock_release()
            raise

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._writer_lock_release()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._writer_lock_release()

    def _close(self):
        try:
            return super()._close()
        finally:
            if self._writer_lock_fd is not None:
                os.close(self._writer_lock_fd)  # closing the file lets its lock go
                self._writer_lock_fd = None
