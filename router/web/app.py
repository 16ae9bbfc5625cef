"""create_app(): the Flask app factory: settings, flows, Redis, the channels, and the safety net.

Order of a webhook: signature (403 if not Twilio's) -> channel blueprint -> engine -> TwiML. Any error
after the signature check is answered with the safety TwiML (999 advice, the 24-hour helpline), so a
signed request can never get a 500 or silence.
"""
from __future__ import annotations

import logging
import os
import re
import signal
import time
from datetime import datetime
from typing import Callable

import redis
from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from router.web import followups, last_resort as safety, sms, voice
from router import logs, metrics
from router.web.body_deadline import read_body_within
from router.live import FlowStore, FlowsUnavailable, History, Keyring
from router.web.jobs import Jobs
from router.definition.model import Flows
from router.store.own_numbers import OwnNumbers
from router.web.proxy import behind_proxies
from router.web.request import WebhookRequest
from router.web.runtime import Runtime, runtime, system_clock
from router.settings import Settings, load_settings
from router.web.signature import is_from_twilio
from router.store.conversations import ConversationStore
from router.store.connection import make_redis

log = logging.getLogger("router.web.app")
WEBHOOK_PREFIXES = ("/voice", "/sms")
HOST_NOT_PINNED = ("neither PUBLIC_BASE_URL nor ALLOWED_HOSTS is set: the Host header of each webhook is "
                   "believed, so a request Twilio signed for another app on this account would be accepted")


def create_app(settings: Settings | None = None, *, flows: Flows | None = None,
               clock: Callable[[], datetime] | None = None, redis_client: redis.Redis | None = None) -> Flask:
    settings = settings or load_settings()
    settings.require_secrets()  # never a key derived from another secret (router/settings.py)
    logs.configure()
    logs.set_correlation_key(settings.correlation_key())
    client = redis_client or make_redis(settings.redis_url)
    store = _flow_store(settings, flows, client)
    app = Flask("router")
    app.request_class = WebhookRequest
    # WSGI middleware wraps the app as Flask documents it (mypy sees a method assigned)
    app.wsgi_app = read_body_within(behind_proxies(app.wsgi_app, settings.trust_proxy),  # type: ignore[method-assign]
                                    settings.request_body_seconds, settings.max_request_bytes)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.extensions["router"] = Runtime(
        settings=settings, flows=store,
        conversations=ConversationStore(client, settings.state_key_secret(),
                                        first_delete_after_seconds=settings.deletion_wait_seconds),
        jobs=Jobs(settings, client), clock=clock or system_clock)
    app.register_blueprint(voice.bp)
    app.register_blueprint(sms.bp)
    app.before_request(_check_signature)
    app.after_request(_observe)
    app.register_error_handler(Exception, _safety_net)
    app.add_url_rule("/healthz", view_func=healthz)
    app.add_url_rule("/metrics", view_func=metrics_view)
    if not settings.auth_token:
        log.warning("TWILIO_AUTH_TOKEN is not set: every webhook will answer 403")
    if not settings.host_pinned():
        log.warning(HOST_NOT_PINNED)
    _reload_on_sighup(store)
    return app


def _flow_store(settings: Settings, flows: Flows | None, client: redis.Redis) -> FlowStore:
    """Never fails over flows: a broken live folder is served from the history, or by the safety answer.
    Given `flows` (tests, the simulator), exactly those are served and nothing is followed."""
    if flows is not None:
        return FlowStore(settings.flows_dir, flows=flows)
    follow = settings.flows_watch_seconds > 0
    keys = Keyring(settings.flows_signing_keys)
    if follow and not keys:
        log.warning("FLOWS_SIGNING_KEY is not set: releases and diversions published in Redis are not "
                    "followed by this instance (docs/deployment.md)")
    store = FlowStore(settings.flows_dir, history=History(settings.history_dir()),
                      client=client if follow else None, keys=keys)
    store.watch(settings.flows_watch_seconds)
    return store


def _is_webhook() -> bool:
    return request.path.startswith(WEBHOOK_PREFIXES)


def _check_signature():
    req = request._get_current_object()  # type: ignore[attr-defined]  # werkzeug LocalProxy  # one context lookup for everything below
    logs.CORRELATION.set(None)
    if not req.path.startswith(WEBHOOK_PREFIXES):
        return None
    settings = runtime().settings
    if (req.content_length or 0) > settings.max_request_bytes:
        metrics.ERRORS.labels("too_large").inc()
        return Response("Request too large\n", status=413, mimetype="text/plain")
    if req.method != "POST" or not is_from_twilio(req, settings):
        metrics.ERRORS.labels("bad_signature").inc()
        return Response("Forbidden\n", status=403, mimetype="text/plain")
    form = req.form
    logs.CORRELATION.set(logs.correlation_for(form.get("CallSid") or form.get("MessageSid")))
    if req.path in ("/voice", "/sms"):  # a call or text coming in: its To is one of our numbers
        own = _own_numbers()
        if own is not None:
            own.note(form.get("To"))
    return None


def _own_numbers() -> OwnNumbers | None:
    """The web process's record of the helpline's numbers (router/store/own_numbers.py), on the jobs' Redis;
    None where the jobs have no Redis of their own (the simulator's recorder)."""
    extensions = current_app.extensions
    if "own_numbers" not in extensions:
        client = getattr(runtime().jobs, "client", None)
        extensions["own_numbers"] = OwnNumbers(client) if client is not None else None
    return extensions["own_numbers"]


def _observe(response: Response) -> Response:
    req = request._get_current_object()  # type: ignore[attr-defined]  # werkzeug LocalProxy
    if req.url_rule is not None and req.path.startswith(WEBHOOK_PREFIXES):
        metrics.WEBHOOK_SECONDS.labels(req.url_rule.rule).observe(time.perf_counter() - req.started)
    return response


def _safety_net(error: Exception):
    """Whatever failed, a signed caller or texter gets the 999 advice and the 24-hour helpline."""
    if isinstance(error, HTTPException) and (error.code or 500) < 500:
        return error
    if not _is_webhook():
        log.error("error outside the webhooks", exc_info=error)
        return Response("Internal error\n", status=500, mimetype="text/plain")
    metrics.ERRORS.labels("safety_twiml").inc()
    if isinstance(error, FlowsUnavailable):
        log.error("answered with the safety TwiML: no valid flows (see /healthz)")
        _delete_answered_text()
    else:
        log.error("answered with the safety TwiML after an error", exc_info=error)
    if request.path.startswith("/sms/status") or request.path.startswith("/voice/status"):
        return Response(safety.EMPTY_TWIML, status=200, mimetype="application/xml")
    document = safety.SMS_TWIML if request.path.startswith("/sms") else safety.VOICE_TWIML
    return Response(document, status=200, mimetype="application/xml")


def _delete_answered_text() -> None:
    """An inbound text answered with the safety text is deleted from Twilio like any answered text."""
    sid = request.form.get("MessageSid") if request.path.rstrip("/") == "/sms" else None
    if sid:
        try:
            runtime().jobs.delete_message(sid)
        except Exception:  # noqa: BLE001 - the answer matters more; the history sweep deletes it later
            log.warning("could not queue the deletion of an answered text")


def healthz():
    """200 whenever the app can answer (the safety answer counts): `status` is `degraded`, with `why`,
    when it serves anything but the live folder's flows as applied.

    Anyone can ask, so the public answer is only `status`, `why` (short reasons) and, when the signed
    host is not pinned, a `note` saying so. The details (flows_version, the applied release, diversions
    in force, refused problems, Redis, the pid) are for operators: `Authorization: Bearer
    $METRICS_TOKEN`, as for /metrics."""
    rt = runtime()
    try:
        flows = rt.flows.current()  # a request's look at the folder, as webhooks do
    except FlowsUnavailable:
        flows = None
    body = rt.flows.status()
    why = followups.why_not_offered(rt.settings, flows)
    if why:  # not degraded: the app answers safely, but operators must know texts are not offered
        body["followups"] = why
    if not rt.settings.host_pinned():
        body["note"] = "host not pinned: set PUBLIC_BASE_URL or ALLOWED_HOSTS"
    if not metrics.authorised(request.headers.get("Authorization"), rt.settings.metrics_token):
        public = {name: body[name] for name in PUBLIC_HEALTH if name in body}
        if "why" in public:
            public["why"] = [public_reason(reason) for reason in public["why"]]
        return jsonify(public)
    body["pid"] = os.getpid()
    body["redis"] = "ok" if rt.conversations.ping() else "unavailable"
    return jsonify(body)


PUBLIC_HEALTH = ("status", "why", "note")   # what /healthz tells anyone; the rest needs the metrics token


def public_reason(reason: str) -> str:
    """A reason for `degraded` as anyone may read it: up to its first ':', ' to ' or ' (' (which
    service a line is diverted to, which release serves, the refused problems are details)."""
    return re.split(r":| to | \(", reason, maxsplit=1)[0].strip()


def metrics_view():
    rt = runtime()
    if not metrics.authorised(request.headers.get("Authorization"), rt.settings.metrics_token):
        return Response("Forbidden\n", status=403, mimetype="text/plain")
    down = len(rt.flows.emergency_lines_down())
    return Response(metrics.exposition(rt.conversations.client, down, rt.settings.prometheus_multiproc_dir),
                    mimetype="text/plain; version=0.0.4")


def _reload_on_sighup(store: FlowStore) -> None:
    """`kill -HUP <web pid>` makes the flows be looked at now (gunicorn: `kill -HUP` reloads workers)."""
    try:
        signal.signal(signal.SIGHUP, lambda *_: store.reload_if_changed(force=True))
    except ValueError:
        pass  # not the main thread (e.g. under a threaded test server): mtime checks still apply
