"""Instructions per request, counted by valgrind: a figure that does not move with machine load.

    apt-get install -y valgrind
    python bench/instructions.py [--requests 100]

Wall-clock benchmarks on a shared 2-core machine swing by 20% or more from run to run; an instruction
count does not. This runs the three signed requests of bench/web.py through Flask's test client (no
gunicorn) under `valgrind --tool=callgrind` with instrumentation switched on only while `--requests`
requests of one endpoint run, for our app and for bench/bare_app.py, and reports user-space
instructions per request (Redis server work and kernel time are not counted). A fourth row, sms-new,
is a first text in earnest: a new MessageSid from a new number each request (signed before counting). Use it to check that a
change to router/ pays: "ours - bare" is what router/ adds per request. Writes
bench/results/instructions.json. Takes about a minute.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO, RESULTS, SECRETS, TOKEN, report_header, signature, write_report  # noqa: E402
from bench.web import ENDPOINTS  # noqa: E402

BASE = "http://127.0.0.1:5000"
WARMUP = 30


def child(requests: int) -> None:
    """Runs under valgrind: each phase waits for a go line on stdin, so the parent can switch
    instrumentation on exactly around it."""
    import logging

    from bench.bare_app import create_app as bare_app
    from router.web.app import create_app

    apps = {"ours": create_app().test_client(), "bare": bare_app().test_client()}
    logging.getLogger().setLevel(logging.WARNING)
    for which, client in apps.items():
        for name, (path, params, _) in ENDPOINTS.items():
            headers = {"X-Twilio-Signature": signature(BASE + path, params)}
            for _ in range(WARMUP):
                assert client.post(path, data=params, headers=headers, base_url=BASE).status_code == 200
            print(f"READY {which} {name}", flush=True)
            sys.stdin.readline()
            for _ in range(requests):
                client.post(path, data=params, headers=headers, base_url=BASE)
            print("DONE", flush=True)
            sys.stdin.readline()
        # a first text in earnest: a new MessageSid from a new number each time (signed before counting)
        path, params, _ = ENDPOINTS["sms-first"]
        texts = [dict(params, MessageSid=f"SM{which[0]}{n:031x}", SmsSid=f"SM{which[0]}{n:031x}",
                      From=f"+4474005{n:05d}") for n in range(WARMUP + requests)]
        signed = [(t, {"X-Twilio-Signature": signature(BASE + path, t)}) for t in texts]
        for form, headers in signed[:WARMUP]:
            assert client.post(path, data=form, headers=headers, base_url=BASE).status_code == 200
        print(f"READY {which} sms-new", flush=True)
        sys.stdin.readline()
        for form, headers in signed[WARMUP:]:
            client.post(path, data=form, headers=headers, base_url=BASE)
        print("DONE", flush=True)
        sys.stdin.readline()
    print("EXIT", flush=True)


def control(pid: int, *args: str) -> str:
    return subprocess.run(["callgrind_control", *args, str(pid)], capture_output=True, text=True,
                          timeout=120).stdout


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--output", type=Path, default=RESULTS / "instructions.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.requests)
        return 0
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")

    from router.dev.embedded_redis import RedisServer

    workdir = Path(tempfile.mkdtemp(prefix="bench-instructions-"))
    server = RedisServer(workdir / "redis", persist=False).start()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "PROMETHEUS_", "PUBLIC_BASE_URL"))}
    env.update({"TWILIO_AUTH_TOKEN": TOKEN, "REDIS_URL": server.url, "PYTHONHASHSEED": "0", **SECRETS})
    python = sys.executable
    if Path(python).read_bytes()[:2] == b"#!":  # a pyenv shim: valgrind must run Python itself
        python = os.path.realpath(python)
    # (not realpath for a virtualenv's python: its pyvenv.cfg, found beside the link, is what selects
    # the environment's packages)
    counts: dict[str, dict[str, int]] = {}
    try:
        process = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={workdir}/cg.out",
             python, str(Path(__file__).resolve()), "--child", "--requests", str(args.requests)],
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True)
        phase = None
        for line in process.stdout:
            if line.startswith("READY"):
                _, which, name = line.split()
                phase = (which, name)
                control(process.pid, "--zero")
                control(process.pid, "--instr=on")
                process.stdin.write("\n")
                process.stdin.flush()
            elif line.startswith("DONE"):
                text = control(process.pid, "-e", "Ir")
                control(process.pid, "--instr=off")
                total = sum(int(n.replace(",", "")) for n in re.findall(r"Th\s+\d+\s+([\d,]+)", text))
                counts.setdefault(phase[1], {})[phase[0]] = total // args.requests
                process.stdin.write("\n")
                process.stdin.flush()
            elif line.startswith("EXIT"):
                break
        process.wait(timeout=120)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    results = {}
    for name, row in counts.items():
        results[name] = {"ours": row["ours"], "bare": row["bare"], "ours_minus_bare": row["ours"] - row["bare"],
                         "ratio": round(row["ours"] / row["bare"], 2)}
        print(f"{name:<15} ours {row['ours'] / 1e6:6.2f} M instructions/request, bare {row['bare'] / 1e6:5.2f} M, "
              f"ours - bare {(row['ours'] - row['bare']) / 1e6:6.2f} M ({row['ours'] / row['bare']:.2f}x)")
    report = {**report_header("instructions"), "requests": args.requests, "results": results}
    write_report(args.output, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
