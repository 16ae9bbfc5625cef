"""router/dev/supervisor.py with real processes: a program that keeps crashing is started again with a
growing backoff and a log line each time, while a steady one runs on untouched; stop() ends both."""
from __future__ import annotations

import io
import os
import re
import threading

from router.settings import REPO_ROOT
from router.dev.supervisor import Program, Supervisor
from tests.processes import wait_until


def test_a_crashing_program_is_restarted_with_backoff_and_the_others_run_on():
    crasher = Program("crasher", ["/bin/sh", "-c", "echo trying; exit 3"])
    steady = Program("steady", ["/bin/sh", "-c", "echo up; exec sleep 60"])
    out = io.StringIO()
    supervisor = Supervisor([steady, crasher], env=dict(os.environ), cwd=REPO_ROOT, out=out,
                            min_backoff=0.1, max_backoff=0.4, stable_after=30)
    supervisor.start()
    steady_pid = steady.process.pid
    thread = threading.Thread(target=supervisor.run, kwargs={"interval": 0.02}, daemon=True)
    thread.start()
    try:
        wait_until(lambda: crasher.restarts >= 4, 20, message="the crasher to be restarted four times")
        log = out.getvalue()
        backoffs = re.findall(r"crasher \(pid \d+\) exited with status 3 after [0-9.]+ s; starting it again in ([0-9.]+) s", log)
        assert backoffs[:4] == ["0.1", "0.2", "0.4", "0.4"], log
        assert log.count("exited with status 3") >= 4 and "starting it again in 0.4 s" in log
        assert "crasher    | trying" in log and "steady     | up" in log
        assert steady.process.pid == steady_pid and steady.process.poll() is None and steady.restarts == 0
    finally:
        supervisor.stop()
        thread.join(5)
    assert steady.process.poll() is not None and "stopping steady" in out.getvalue()
