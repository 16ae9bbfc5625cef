"""gunicorn's settings for the web process (`gunicorn --config python:router.web.gunicorn_conf`, Procfile).

Why gevent: a sync worker is one connection at a time, from its first byte to its last, so two clients
that trickle their headers stalled both default workers (and every health check) until gunicorn killed
them. gevent workers wait on each connection in a greenlet: a slow client costs a little memory, not a
worker, and everyone else is answered meanwhile (tests/test_slow_clients.py: 50 trickling connections,
/healthz and signed calls still answered within a second). gthread was considered: its threads read a
request's headers blocking, with no deadline, so N slow clients take N threads.

A body has its own deadline, in the app (router/web/body_deadline.py, REQUEST_BODY_SECONDS): gunicorn puts
none on it. What is still needed in front (docs/deployment.md): a proxy that buffers whole requests and drops
clients slower than a few seconds, and caps connections per client; this process caps only what one
worker holds at once (worker_connections).

Nothing but router.settings (the one reader of the environment: WEB_CONNECTIONS) is imported here: gevent
patches the standard library in each worker before the app is loaded, and a module imported into the
master first (ssl, socket, threading above all) would be left unpatched. router.settings loads none of
them (tests/test_gunicorn_conf.py checks).
"""
from router.settings import load_settings

worker_class = "gevent"
worker_connections = load_settings().web_connections   # per worker, slow clients included
timeout = 30             # a worker whose loop has not checked in for this long is restarted
graceful_timeout = 20
# Seconds a kept-alive connection may idle (a proxy's keep-alive to us should be shorter); in a gevent
# worker also the deadline for each request's line and headers: a client that has not sent them all
# by then is dropped. Never 0: that would turn the deadline off.
keepalive = 5
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
# No runtime control socket (gunicorn 25+ opens one at ~/.gunicorn/gunicorn.ctl by default): nothing here
# uses it, and every instance run by one user would share that path. Flows reload on SIGHUP.
control_socket_disable = True
# gunicorn itself believes X-Forwarded-Proto (and -Ssl, -Protocol) from 127.0.0.1 by default, which
# changes the scheme of the URL a signature is checked against. Forwarded headers are the app's to
# judge, only under TRUST_PROXY (router/web/proxy.py, Werkzeug's ProxyFix): gunicorn believes them from
# no address.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}


def on_starting(server):
    """The master's own log handlers get the number filter too (router/logs.py); each worker's are
    covered when create_app configures logging."""
    from router import logs

    logs.protect_all()
