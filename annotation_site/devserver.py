"""The process manager of `make run`: ``python annotation_site/devserver.py Procfile.dev``.

Starts every ``name: command`` line of the Procfile, each in a session of its own, relays
their output line by line behind the name, and stops all of them when one exits, when its
parent (make) dies, or when it receives SIGINT (Ctrl-C), SIGTERM or SIGHUP (a closed terminal,
``kill -HUP``): SIGTERM to every process group, SIGKILL to what is left after
``GRACE_SECONDS`` (at once on a second signal). It returns only once
every process group is empty, so no web server, worker or beat outlives it.

It replaces honcho, which dies on SIGHUP and leaves its children running. Run it by path (as
the Makefile does), not with ``-m``: it needs nothing of the project, and importing the
``annotation_site`` package would load Celery.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# Longer than a Celery worker's warm shutdown of a short task; a stuck process is killed after.
GRACE_SECONDS = 10.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def read_procfile(path: Path) -> list[tuple[str, str]]:
    entries = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        if not sep or not name.strip() or not command.strip():
            raise SystemExit(f"{path}:{number}: expected `name: command`, got {line!r}")
        entries.append((name.strip(), command.strip()))
    if not entries:
        raise SystemExit(f"{path}: no processes")
    return entries


class Manager:
    def __init__(self, entries: list[tuple[str, str]]):
        self.entries = entries
        self.width = max(len(name) for name, _ in entries + [("system", "")])
        self.procs: dict[str, subprocess.Popen] = {}
        self.readers: list[threading.Thread] = []
        self.stop_reason: str | None = None
        self.returncode: int | None = None
        self.stopping = False
        self.hurry = False
        self.empty: set[str] = set()
        self.lock = threading.Lock()

    def say(self, name: str, text: bytes) -> None:
        stamp = time.strftime("%H:%M:%S").encode()
        line = b"%s %s | %s" % (stamp, name.ljust(self.width).encode(), text.rstrip(b"\n"))
        with self.lock:
            try:
                sys.stdout.buffer.write(line + b"\n")
                sys.stdout.buffer.flush()
            except (OSError, ValueError):
                pass  # the terminal is gone (SIGHUP): stopping matters more than printing

    def _relay(self, name: str, stream) -> None:
        for line in iter(stream.readline, b""):
            self.say(name, line)
        stream.close()

    def _on_signal(self, signum, frame) -> None:
        if self.stop_reason is None:
            self.stop_reason = f"{signal.Signals(signum).name} received"
            self.returncode = 128 + signum
        elif self.stopping:
            self.hurry = True

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for name, command in self.entries:
            if self.stop_reason is not None:
                break
            proc = subprocess.Popen(
                command,
                shell=True,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Its own process group and session: a terminal's signals reach this manager,
                # which stops the group (the shell, the server, its reloader, a worker's pool).
                start_new_session=True,
            )
            self.procs[name] = proc
            self.say("system", f"{name} started (pid={proc.pid})".encode())
            reader = threading.Thread(target=self._relay, args=(name, proc.stdout), daemon=True)
            reader.start()
            self.readers.append(reader)

    def watch(self) -> None:
        """Returns once a stop signal came, any process exited, or the parent (make) died."""
        parent = os.getppid()
        while self.stop_reason is None:
            if os.getppid() != parent:
                self.stop_reason = "parent process exited"
                self.returncode = 1
                return
            for name, proc in self.procs.items():
                code = proc.poll()
                if code is not None:
                    self.stop_reason = f"{name} stopped (rc={code})"
                    self.returncode = code
                    return
            time.sleep(0.1)

    def _signal_groups(self, signum: int) -> list[str]:
        """Sends ``signum`` to every process group with a member left; returns their names.
        A group once found empty is never signalled again (its number may be reused)."""
        alive = []
        for name, proc in self.procs.items():
            if name in self.empty:
                continue
            proc.poll()  # reaps the leader, so an empty group answers ESRCH
            try:
                os.killpg(proc.pid, signum)
            except ProcessLookupError:
                self.empty.add(name)
                continue
            alive.append(name)
        return alive

    def stop(self) -> None:
        self.say("system", f"{self.stop_reason}: stopping all".encode())
        self.stopping = True
        for name in self._signal_groups(signal.SIGTERM):
            self.say("system", f"sending SIGTERM to {name}".encode())
        deadline = time.monotonic() + GRACE_SECONDS
        while self._signal_groups(0):
            # A second Ctrl-C (or any stop signal) does not wait out the grace period.
            if self.hurry or time.monotonic() > deadline:
                for name in self._signal_groups(signal.SIGKILL):
                    self.say("system", f"sending SIGKILL to {name}".encode())
                deadline, self.hurry = float("inf"), False
            time.sleep(0.1)
        for proc in self.procs.values():
            proc.wait()
        for reader in self.readers:
            reader.join(timeout=1)

    def run(self) -> int:
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_signal)
        try:
            self.start()
            self.watch()
        finally:
            if self.stop_reason is None:
                self.stop_reason = "error"
            self.stop()
        return self.returncode or 0


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        raise SystemExit("usage: python annotation_site/devserver.py PROCFILE")
    return Manager(read_procfile(Path(argv[0]))).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
