"""The process manager of `make run` stops web, worker and beat on SIGHUP as on SIGINT, and
leaves nothing running (issue 21, item 8). The tests run the manager line of the Makefile's
`run` target, as make would, on the real Procfile.dev (on a free port) or on stand-ins."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
# A guard against a hang, never a measure: generous for a loaded two-core machine.
READY_DEADLINE_S = 180


def manager_argv(procfile: Path) -> list[str]:
    """The Makefile's `run` line that starts Procfile.dev, with ``procfile`` in its place."""
    target = (ROOT / "Makefile").read_text().split("\nrun: setup\n")[1].split("\n\n")[0]
    (line,) = [line for line in target.splitlines() if "Procfile.dev" in line]
    line = line.strip().replace("$(PY)", "$(VENV)/bin/python")
    line = line.replace("$(VENV)", str(Path(sys.prefix)))
    return [str(procfile) if arg == "Procfile.dev" else arg for arg in shlex.split(line)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Running:
    """A process manager started as make starts it, with its output collected."""

    def __init__(self, argv: list[str], env: dict[str, str], parent: bool = False):
        if parent:
            # A stand-in for make: a parent that starts the manager and waits.
            argv = [sys.executable, "-c", _PARENT, *argv]
        self.proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        self.seen: dict[int, psutil.Process] = {}

    def _read(self) -> None:
        for line in iter(self.proc.stdout.readline, b""):
            self.lines.append(line.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def descendants(self) -> list[psutil.Process]:
        try:
            found = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            found = []
        for p in found:
            self.seen.setdefault(p.pid, p)
        return found

    def wait_for(self, ready, what: str) -> None:
        deadline = time.monotonic() + READY_DEADLINE_S
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"never {what}; output:\n{self.output[-6000:]}")
            time.sleep(0.2)

    def commands(self) -> list[str]:
        out = []
        for p in self.descendants():
            try:
                out.append(" ".join(p.cmdline()))
            except psutil.Error:
                pass
        return out

    def cleanup(self) -> None:
        self.descendants()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for p in self.seen.values():
            try:
                p.kill()
            except psutil.Error:
                pass


_PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen(sys.argv[1:])\n"
    "print(f'manager pid {child.pid}', flush=True)\n"
    "time.sleep(3600)\n"
)


def leftovers(processes: list[psutil.Process]) -> list[str]:
    """The processes of ``processes`` still running once they have had time to stop."""
    _, alive = psutil.wait_procs(processes, timeout=30)
    out = []
    for p in alive:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(" ".join(p.cmdline()))
        except psutil.Error:
            pass
    return out


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def stand_in_env(tmp_path) -> dict[str, str]:
    return {**os.environ, "VAR_DIR": str(tmp_path / "var")}


STAND_INS = (
    "web: python3 -c \"import subprocess, time; subprocess.Popen(['sleep', '3601']); "
    "print('web ready', flush=True); time.sleep(3600)\"\n"
    "worker: echo worker ready; sleep 3602\n"
    "beat: echo beat ready; exec sleep 3603\n"
)


class DevServerTests:
    def test_sighup_stops_web_worker_and_beat_of_procfile_dev(self, tmp_path):
        # given the real Procfile.dev on a free port, in a var folder of its own
        port = free_port()
        text = (ROOT / "Procfile.dev").read_text()
        assert "127.0.0.1:8000" in text
        procfile = tmp_path / "Procfile.dev"
        procfile.write_text(text.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "MEDIA_ROOT", "CI"}
        }
        env.update(VAR_DIR=str(tmp_path / "var"), DEBUG="1")
        running = Running(manager_argv(procfile), env)
        try:
            # when all three are up
            running.wait_for(lambda: port_open(port), "served the web app")
            running.wait_for(lambda: " ready." in running.output, "started the worker")
            running.wait_for(lambda: any(" beat" in c for c in running.commands()), "started beat")
            processes = running.descendants()
            commands = running.commands()
            for role in ("runserver", " worker", " beat"):
                assert any(role in c for c in commands), commands
            # and the process manager gets SIGHUP
            running.proc.send_signal(signal.SIGHUP)
            running.proc.wait(timeout=60)
            # then nothing it started is left running, as after Ctrl-C
            assert leftovers(processes) == [], running.output[-6000:]
            assert not port_open(port)
        finally:
            running.cleanup()

    def test_every_stop_signal_stops_every_process_and_its_children(self, tmp_path):
        procfile = tmp_path / "Procfile"
        procfile.write_text(STAND_INS)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            running = Running(manager_argv(procfile), stand_in_env(tmp_path))
            try:
                running.wait_for(
                    lambda r=running: (
                        all(f"{n} ready" in r.output for n in ("web", "worker", "beat"))
                        and sum("sleep 36" in c for c in r.commands()) == 4
                    ),
                    "started the stand-ins",
                )
                processes = running.descendants()
                running.proc.send_signal(signum)
                running.proc.wait(timeout=60)
                assert leftovers(processes) == [], (signum, running.output)
            finally:
                running.cleanup()

    def test_the_processes_stop_when_make_dies(self, tmp_path):
        procfile = tmp_path / "Procfile"
        procfile.write_text(STAND_INS)
        running = Running(manager_argv(procfile), stand_in_env(tmp_path), parent=True)
        try:
            running.wait_for(
                lambda: sum("sleep 36" in c for c in running.commands()) == 4,
                "started the stand-ins",
            )
            processes = running.descendants()
            # when the parent (make) is killed outright, the manager notices and stops all
            running.proc.kill()
            running.proc.wait()
            assert leftovers(processes) == [], running.output
        finally:
            running.cleanup()
