"""TRUST_PROXY: believe X-Forwarded-Proto / -Host / -Port / -For only as far as our own proxies set them.

A client can send X-Forwarded-Host itself; a proxy that appends (rather than replaces) leaves the
client's value leftmost. Werkzeug's ProxyFix takes, for a configured number N of proxies in front, the
N-th value from the right: the one our outermost proxy added, never one the client wrote. Anything
beyond that is ignored. The app is wrapped once, in create_app, so every request (and signed_url)
sees the corrected scheme and host.
"""
from __future__ import annotations

from werkzeug.middleware.proxy_fix import ProxyFix


def behind_proxies(wsgi_app, proxies: int):
    """`wsgi_app` as it should run behind `proxies` trusted proxies (0: as it is, headers ignored)."""
    proxies = int(proxies)
    if proxies <= 0:
        return wsgi_app
    return ProxyFix(wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies, x_port=proxies, x_prefix=0)
