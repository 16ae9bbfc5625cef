"""Markdown tables for docs/performance.md from bench/results/*.json.

    python bench/report.py                     # web, profile, instructions, inprocess, followups, soak
    python bench/report.py web-prototype followups-beb5d2d   # any result file, by name
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def web(report: dict) -> str:
    t = report["targets"]
    lines = [
        f"Commit {report['commit']}, {report['when']}; wrk {report['duration_s']:g} s x {report.get('repeats', 1)} "
        f"per app and cell (best run shown), {report['wrk_threads']} wrk thread.",
        "",
        "| endpoint | conns | ours req/s | bare req/s | ours / bare | ours p50 ms | ours p99 ms | ours max ms "
        "| bare p99 ms | CPU ms/req ours | CPU ms/req bare | floor req/s | floor p99 ms | load | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in report["results"]:
        o, b = r["ours"], r["bare"]
        floor = r.get("floor")  # bench/web.py --floor: a plain WSGI app under the same gunicorn
        floor_cells = f"{floor['rps']:.0f} | {floor['p99_ms']:.2f}" if floor else "– | –"
        misses = []
        if r["ratio"] < t["ratio_to_bare_min"]:
            misses.append(f"ratio < {t['ratio_to_bare_min']}")
        if r["connections"] == 64 and o["p99_ms"] >= t["p99_ms_at_64_max"]:
            misses.append(f"p99 ≥ {t['p99_ms_at_64_max']:g} ms")
        if o["non_2xx"] or o["socket_errors"]:
            misses.append(f"{o['non_2xx']} non-2xx, {o['socket_errors']} socket errors")
        lines.append(
            f"| {r['endpoint']} | {r['connections']} | {o['rps']:.0f} | {b['rps']:.0f} | **{r['ratio']:.2f}** | "
            f"{o['p50_ms']:.2f} | {o['p99_ms']:.2f} | {o['max_ms']:.1f} | {b['p99_ms']:.2f} | "
            f"{o['server_cpu_ms_per_request']:.2f} | {b['server_cpu_ms_per_request']:.2f} | {floor_cells} | "
            f"{r.get('loadavg_1m_before', 0):.1f} | {'miss: ' + '; '.join(misses) if misses else 'meets'} |")
    return "\n".join(lines)


def instructions(report: dict) -> str:
    lines = ["| endpoint | ours (M instr./req) | bare | ours − bare | ours / bare |", "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in report["results"].items():
        lines.append(f"| {name} | {r['ours'] / 1e6:.2f} | {r['bare'] / 1e6:.2f} | {r['ours_minus_bare'] / 1e6:.2f} | "
                     f"{r['ratio']:.2f}x |")
    return "\n".join(lines)


def inprocess(report: dict) -> str:
    lines = ["| endpoint | ours CPU µs/req | bare | ours − bare | Redis round trips/req |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, r in report["results"].items():
        lines.append(f"| {name} | {r['ours']['cpu_us_min']:.0f} | {r['bare']['cpu_us_min']:.0f} | "
                     f"{r['ours_minus_bare_cpu_us']:.0f} | {r['ours']['redis_round_trips_per_request']} |")
    return "\n".join(lines)


def profile(report: dict) -> str:
    names = list(report["endpoints"])
    lines = ["| part of a request (inclusive) | " + " | ".join(names) + " |",
             "| --- | " + " | ".join("---:" for _ in names) + " |"]
    parts = list(next(iter(report["endpoints"].values()))["parts"])
    lines.append("| CPU ms per request (gunicorn master + workers) | "
                 + " | ".join(f"{report['endpoints'][n]['cpu_ms_per_request']:.2f}" for n in names) + " |")
    for part in parts:
        cells = []
        for n in names:
            p = report["endpoints"][n]["parts"][part]
            cells.append(f"{100 * p['share']:.1f}% / {p['ms_per_request']:.3f} ms")
        label = part.strip()
        indent = (len(part) - len(part.lstrip())) // 2
        lines.append(f"| {'&nbsp;&nbsp;' * indent}{label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def followups(report: dict) -> str:
    lines = ["| worker processes | follow-ups | deleted | sent/s | deleted/s (trigger → last DELETE) | "
             "trigger → sent p50 / p99 ms | deletion lag p50 / p99 / max ms | trigger → deleted p50 / p99 ms |",
             "| ---: | ---: | ---: | ---: | ---: | --- | --- | --- |"]
    for r in report["results"]:
        s, d, e = r["trigger_to_send_ms"], r["deletion_lag_ms"], r["trigger_to_delete_ms"]
        lines.append(f"| {r['worker_processes']} | {r['count']} | {r['deleted']} | {r['sent_per_second']} | "
                     f"**{r['deleted_per_second']}** | {s['p50']} / {s['p99']} | {d['p50']} / {d['p99']} / {d['max']} | "
                     f"{e['p50']} / {e['p99']} |")
    lines += ["", "CPU per follow-up, by process (ms):", "",
              "| worker processes | " + " | ".join(report["results"][0]["cpu_ms_per_followup"]) + " | total |",
              "| ---: | " + " | ".join("---:" for _ in report["results"][0]["cpu_ms_per_followup"]) + " | ---: |"]
    for r in report["results"]:
        cpu = r["cpu_ms_per_followup"]
        lines.append(f"| {r['worker_processes']} | " + " | ".join(f"{v:.1f}" for v in cpu.values())
                     + f" | {sum(cpu.values()):.1f} |")
    lines += ["", "Celery task run times (ms, from the worker's log):", "",
              "| worker processes | task | n | p50 | p99 | mean |", "| ---: | --- | ---: | ---: | ---: | ---: |"]
    for r in report["results"]:
        for task, t in r["task_run_ms"].items():
            lines.append(f"| {r['worker_processes']} | {task} | {t['n']} | {t['p50']} | {t['p99']} | {t['mean']} |")
    return "\n".join(lines)


def soak(report: dict) -> str:
    """Errors and left-overs, then memory and keys at the start, after the first minute and at the end."""
    summary, samples = report["summary"], report["samples"]
    lines = ["| job | count | errors | p50 ms | p99 ms | max ms |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for kind, k in summary["by_kind"].items():
        lines.append(f"| {kind} | {k['jobs']} | {k['errors']} | {k['p50_ms']} | {k['p99_ms']} | {k['max_ms']} |")
    left = summary["left_over"] or "none"
    lines += ["", f"Error lines in the web, worker and beat logs: {summary['log_error_lines']}; left over at the end: "
              f"{left}; app keys without a TTL: {summary['app_keys_without_ttl'] or 'none'}; processes restarted: "
              f"{summary['processes_restarted'] or 'none'}; "
              + "; ".join(f"{k}: {v}" for k, v in report["deliveries"].items()) + ".", ""]
    picks = [samples[0], samples[1], samples[len(samples) // 2], samples[-1]] if len(samples) > 3 else samples
    lines += ["| | " + " | ".join(f"minute {s['minute']:.0f}" for s in picks) + " | change after minute 1 |",
              "| --- | " + " | ".join("---:" for _ in picks) + " | ---: |"]
    for role in samples[-1]["rss_mib"]:
        values = [s["rss_mib"].get(role) for s in picks]
        lines.append(f"| RSS {role} (MiB) | " + " | ".join(f"{v:.1f}" if v is not None else "-" for v in values)
                     + f" | {report['growth_after_first_minute']['rss_mib'].get(role, 0):+.2f} |")
    growth = report["growth_after_first_minute"]
    for label, key, change in (("Redis used_memory (MiB)", "redis_used_memory_mib", growth["redis_used_memory_mib"]),
                               ("Redis keys", "keys", growth["keys"])):
        lines.append(f"| {label} | " + " | ".join(f"{s[key]}" for s in picks) + f" | {change:+} |")
    for bucket in samples[-1]["by_ttl"]:
        lines.append(f"| keys, {bucket} | " + " | ".join(str(s["by_ttl"][bucket]) for s in picks) + " | |")
    lines += ["", "| key kind | keys at the end | longest TTL left (s) |", "| --- | ---: | ---: |"]
    for kind, count in samples[-1]["by_kind"].items():
        lines.append(f"| {kind} | {count} | {samples[-1]['longest_ttl_s'].get(kind, 'no TTL')} |")
    return "\n".join(lines)


RENDERERS = {"web": web, "profile": profile, "instructions": instructions, "inprocess": inprocess,
             "followups": followups, "soak": soak}


def main(argv: list[str] | None = None) -> int:
    names = (sys.argv[1:] if argv is None else argv) or list(RENDERERS)
    for name in names:
        report = load(name)
        if report is not None:
            print(f"### {name} ({report.get('commit')})\n\n{RENDERERS[report['benchmark']](report)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
