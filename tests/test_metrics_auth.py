"""/metrics answers only Prometheus with the bearer token: aggregate counts still say who called what."""
from __future__ import annotations

import pytest

from tests.support import METRICS_AUTH, METRICS_TOKEN


def test_metrics_with_the_token_are_served(client):
    response = client.get("/metrics", headers=METRICS_AUTH)
    assert response.status_code == 200 and "helpline_" in response.get_data(as_text=True)


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Basic {METRICS_TOKEN}"},
    {"Authorization": "Bearer"},
    {"Authorization": f"Bearer {METRICS_TOKEN}x"},
    {"Authorization": "Bearer é€"},
])
def test_metrics_without_the_token_are_refused(client, headers):
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 403 and "helpline_" not in response.get_data(as_text=True)


def test_no_token_configured_means_nobody_gets_metrics(app_at):
    client = app_at(metrics_token=None)
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", headers=METRICS_AUTH).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403


def test_healthz_needs_no_token(client):
    assert client.get("/healthz").status_code == 200


def test_make_run_keeps_its_metrics_token_private_and_stable(tmp_path):
    """`make run` (router/dev/run.py) makes the local token 0600 from its first byte, and reuses it."""
    import os
    import stat

    import secrets

    from router.dev.run import secret_file, tighten

    path = tmp_path / "metrics-token"
    first = secret_file(path, lambda: secrets.token_hex(24))
    assert len(first) >= 32 and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    os.chmod(path, 0o644)
    tighten(tmp_path)  # what make run does to .data at every start
    assert secret_file(path, lambda: "other") == first and stat.S_IMODE(os.stat(path).st_mode) == 0o600
