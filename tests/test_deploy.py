"""deploy/: the Prometheus alert rules and the Grafana dashboard an on-call person relies on.

Prometheus' own promtool checks the rules and runs their unit tests (deploy/alerts_test.yml: each alert
fires on its trouble and not in normal running). And every metric the rules and the dashboard name must
be one the code exports, so renaming a metric breaks the build instead of silencing an alert. promtool
comes from Debian's `prometheus` package (.ci/run installs it); without it these skip locally, but not
in CI (CI=1).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest
import redis
import yaml

from router import metrics
from router.settings import REPO_ROOT
from router.store import counters as worker_metrics

DEPLOY = REPO_ROOT / "deploy"
METRIC = re.compile(r"\bhelpline_[a-z_]+\b")


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing in CI: .ci/run installs Debian's prometheus package")
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def test_promtool_accepts_the_rules():
    result = subprocess.run([promtool(), "check", "rules", str(DEPLOY / "alerts.yml")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_fires_on_its_trouble_and_not_in_normal_running():
    result = subprocess.run([promtool(), "test", "rules", "alerts_test.yml"], cwd=DEPLOY,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    rules = {rule["alert"] for group in yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]
             for rule in group["rules"]}
    tested = {test["alertname"] for case in yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())["tests"]
              for test in case["alert_rule_test"] if test.get("exp_alerts")}
    assert rules == tested, f"alerts never shown firing in alerts_test.yml: {rules - tested}"


def exported_samples(client: redis.Redis) -> set[str]:
    """Names of every sample /metrics can show: the web tier's own families, and those read from Redis
    (worker counters under the names router/store/counters.py writes, backlogs, heartbeat, deletion lag)."""
    client.hincrbyfloat("hr:stats", f"{worker_metrics.FOLLOWUPS.name}|failed", 1)
    client.hincrbyfloat("hr:stats", f"{worker_metrics.DELETIONS.name}|gave_up", 1)
    client.hincrbyfloat("hr:stats", "deletion_lag_bucket|+Inf", 1)
    client.hincrbyfloat("hr:stats", "deletion_lag_sum|", 1.5)
    client.set("hr:heartbeat", "1700000000.0")
    families = list(metrics.REGISTRY.collect()) + list(metrics.WorkerStats(client).collect()) + \
        list(metrics.EmergencyLines(0).collect())
    names = set()
    for family in families:
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"]}.get(family.type, [""])
        names.update(family.name + suffix for suffix in suffixes)
    return names


def test_rules_and_dashboard_name_only_metrics_the_code_exports(redis_url):
    exported = exported_samples(redis.Redis.from_url(redis_url, decode_responses=True))
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    expressions += [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    named = {name for expr in expressions for name in METRIC.findall(expr)}
    assert named, "the rules name our metrics"
    assert named <= exported, f"named but not exported: {sorted(named - exported)}"
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
