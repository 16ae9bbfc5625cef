"""docs/performance.png from bench/results/web.json: throughput and p99 latency against concurrency,
our app (solid) against the bare Flask app (dashed), per endpoint; optionally a second run's app
(e.g. a prototype of the recommended changes) dotted.

    pip install matplotlib
    python bench/plot.py [--input bench/results/web.json] [--output docs/performance.png]
                         [--compare bench/results/web-prototype.json --compare-label prototype]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=REPO / "bench" / "results" / "web.json")
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "performance.png")
    parser.add_argument("--compare", type=Path, default=None,
                        help="another web.json (e.g. a prototype) whose 'ours' is drawn dotted")
    parser.add_argument("--compare-label", default="prototype")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    report = json.loads(args.input.read_text())
    rows = report["results"]
    endpoints = list(dict.fromkeys(r["endpoint"] for r in rows))
    colours = dict(zip(endpoints, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]))
    fig, (ax_rps, ax_p99) = plt.subplots(1, 2, figsize=(12, 4.8))
    for endpoint in endpoints:
        mine = sorted((r for r in rows if r["endpoint"] == endpoint), key=lambda r: r["connections"])
        conns = [r["connections"] for r in mine]
        colour = colours[endpoint]
        ax_rps.plot(conns, [r["ours"]["rps"] for r in mine], "o-", color=colour, label=f"{endpoint} (ours)")
        ax_rps.plot(conns, [r["bare"]["rps"] for r in mine], "s--", color=colour, alpha=0.6,
                    label=f"{endpoint} (bare)")
        ax_p99.plot(conns, [r["ours"]["p99_ms"] for r in mine], "o-", color=colour, label=f"{endpoint} (ours)")
        ax_p99.plot(conns, [r["bare"]["p99_ms"] for r in mine], "s--", color=colour, alpha=0.6,
                    label=f"{endpoint} (bare)")
        if all("floor" in r for r in mine):  # bench/web.py --floor: a plain WSGI app, no Flask
            ax_rps.plot(conns, [r["floor"]["rps"] for r in mine], "x:", color=colour, alpha=0.5,
                        label=f"{endpoint} (WSGI floor)")
            ax_p99.plot(conns, [r["floor"]["p99_ms"] for r in mine], "x:", color=colour, alpha=0.5,
                        label=f"{endpoint} (WSGI floor)")
    if args.compare is not None:
        other = json.loads(args.compare.read_text())["results"]
        for endpoint in endpoints:
            mine = sorted((r for r in other if r["endpoint"] == endpoint), key=lambda r: r["connections"])
            if not mine:
                continue
            conns = [r["connections"] for r in mine]
            label = f"{endpoint} ({args.compare_label})"
            ax_rps.plot(conns, [r["ours"]["rps"] for r in mine], "^:", color=colours[endpoint], label=label)
            ax_p99.plot(conns, [r["ours"]["p99_ms"] for r in mine], "^:", color=colours[endpoint], label=label)
    target = report.get("targets", {}).get("p99_ms_at_64_max")
    if target:
        ax_p99.axhline(target, color="grey", linestyle=":", label=f"target p99 < {target:g} ms at 64")
    for ax in (ax_rps, ax_p99):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted({r["connections"] for r in rows}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.set_xlabel("concurrent connections (wrk -c)")
        ax.grid(True, alpha=0.3)
    ax_rps.set_ylabel("requests / second")
    ax_rps.set_ylim(bottom=0)
    ax_rps.set_title("Throughput: ours (solid) vs bare Flask (dashed)"
                     + (f", {args.compare_label} (dotted)" if args.compare else ""), fontsize=10)
    ax_p99.set_ylabel("p99 latency, ms (log)")
    ax_p99.set_yscale("log")
    ax_p99.set_title("p99 latency")
    ax_p99.legend(fontsize=7, loc="upper left")
    m = report.get("machine", {})
    fig.suptitle(f"helpline-router web tier, gunicorn {report.get('gunicorn_workers', {}).get('ours', '?')} "
                 f"sync workers, {m.get('nproc')} x {m.get('cpu_model')}, commit {report.get('commit')}",
                 fontsize=9)
    fig.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
