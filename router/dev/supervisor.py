"""Keep `make run`'s processes running on one machine: a crashed one is started again, the rest carry on.

honcho (and foreman) stop every process as soon as one exits, which on a laptop turns one crash (or one
`kill`) into an outage, where a Procfile platform or systemd would simply start that process again.
This is that small piece of supervision and no more: each program runs in a session of its own; one
that exits when nobody asked it to is logged and started again after a backoff (1 s, doubling to 30 s,
back to 1 s once it has run for a while); stop() ends them all, last started first, with SIGTERM and
then SIGKILL after a grace period. Each output line is prefixed with the program's name, as honcho did.

In production use the platform's process manager or systemd instead (docs/deployment.md): they add
what a laptop does not need (resource limits, journald, start at boot, restart across machines).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, TextIO


@dataclass
class Program:
    name: str
    command: list[str]
    ready: Callable[[], bool] | None = None   # start() of the next program waits until this holds
    env: dict[str, str] | None = None          # its own environment (default: the supervisor's)
    process: subprocess.Popen | None = field(default=None, repr=False)
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    restart_at: float | None = None


class Supervisor:
    def __init__(self, programs: list[Program], *, env: dict[str, str], cwd: str | os.PathLike,
                 out: TextIO = sys.stdout, min_backoff: float = 1.0, max_backoff: float = 30.0,
                 stable_after: float = 30.0, grace: float = 20.0):
        self.programs = programs
        self.env, self.cwd, self.out = env, cwd, out
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.stable_after, self.grace = stable_after, grace
        self.stopping = threading.Event()
        self._write = threading.Lock()
        width = max(len(p.name) for p in programs + [Program("supervisor", [])])
        self._width = width

    # ------------------------------------------------------------------ output
    def say(self, name: str, text: str) -> None:
        with self._write:
            self.out.write(f"{time.strftime('%H:%M:%S')} {name:<{self._width}} | {text.rstrip()}\n")
            self.out.flush()

    def _relay(self, program: Program, stream) -> None:
        for line in iter(stream.readline, ""):
            self.say(program.name, line)
        stream.close()

    # ------------------------------------------------------------------ running
    def _start(self, program: Program) -> None:
        program.process = subprocess.Popen(
            program.command, env=self.env if program.env is None else program.env, cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)
        program.started_at = time.monotonic()
        program.restart_at = None
        threading.Thread(target=self._relay, args=(program, program.process.stdout), daemon=True).start()
        self.say("supervisor", f"started {program.name} (pid {program.process.pid})")

    def start(self, ready_timeout: float = 30.0) -> None:
        """Start every program in order; a program with `ready` is waited for before the next starts."""
        for program in self.programs:
            self._start(program)
            deadline = time.monotonic() + ready_timeout
            while program.ready and not program.ready() and not self.stopping.is_set():
                if program.process is None or program.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{program.name} did not start")
                time.sleep(0.05)

    def check(self, now: float | None = None) -> None:
        """One round of supervision: notice programs that exited, start those whose backoff is over."""
        now = time.monotonic() if now is None else now
        for program in self.programs:
            if self.stopping.is_set():
                return
            if program.restart_at is not None:
                if now >= program.restart_at:
                    program.restarts += 1
                    self._start(program)
                continue
            process = program.process
            code = process.poll() if process else None
            if process is None or code is None:
                continue
            ran = now - program.started_at
            program.backoff = (self.min_backoff if ran >= self.stable_after or not program.backoff
                               else min(program.backoff * 2, self.max_backoff))
            program.restart_at = now + program.backoff
            self.say("supervisor", f"{program.name} (pid {process.pid}) exited with status {code} "
                                   f"after {ran:.1f} s; starting it again in {program.backoff:.1f} s")

    def run(self, interval: float = 0.2) -> None:
        """Supervise until stop() is called (from a signal handler or another thread)."""
        while not self.stopping.wait(interval):
            self.check()

    def stop(self) -> None:
        """End every program, last started first: SIGTERM to each (its main process, which stops its own
        children: gunicorn's and Celery's warm shutdowns), SIGKILL to the whole process group of any
        still running after the grace period."""
        self.stopping.set()
        running = [(p, p.process) for p in reversed(self.programs) if p.process and p.process.poll() is None]
        for program, process in running:
            self.say("supervisor", f"stopping {program.name}")
            process.send_signal(signal.SIGTERM)
            if program is not running[-1][0]:
                _wait(process, self.grace)  # the last one (Redis) outlives the others
        deadline = time.monotonic() + self.grace
        for program, process in running:
            if not _wait(process, max(0.0, deadline - time.monotonic())):
                self.say("supervisor", f"{program.name} did not stop in {self.grace:.0f} s: killing it")
            _signal_group(process, signal.SIGKILL)  # and anything of its group left behind
            _wait(process, 5)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def _wait(process: subprocess.Popen, timeout: float) -> bool:
    try:
        process.wait(timeout=timeout)
        return True
    except subprocess.TimeoutExpired:
        return False
