"""The one place that builds twilio's REST client, so the API base URL is decided here and only here.

TWILIO_API_BASE_URL points the client at another host (tests use a local stand-in); region and edge
are cleared so TWILIO_REGION / TWILIO_EDGE in the environment cannot rewrite it behind our back.

A failed Twilio call is described by its type and Twilio's error code only (describe): the text of the
exception can quote the request's URL (`Messages.json?To=%2B44...`) or Twilio's message ("The 'To'
number +44... is not valid"). tasks/quiet_task.py (QuietTask, the base of every task) makes sure no such
exception leaves a task for Celery to log.

Used by the workers (tasks/) and by operators' `router twilio check|configure` (router/cli/twilio_account.py):
it lives beside router.settings, not in tasks, so the router never imports the Celery app.
"""
from __future__ import annotations

import logging
import threading
from functools import lru_cache

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from router.settings import DEFAULT_API_BASE_URL, Settings

log = logging.getLogger("router.twilio_rest")
# twilio-python logs every request's URL and query at INFO (e.g. To=+44...): never let that through.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)
REQUEST_TIMEOUT_SECONDS = 10


class NotConfigured(Exception):
    """No Twilio account: outbound texts and deletions are refused."""


def make_client(settings: Settings) -> Client:
    """The REST client for these settings, built once per process (its HTTP session keeps connections).
    For one thread at a time: see make_thread_client."""
    return _client(*_credentials(settings))


_per_thread = threading.local()


def make_thread_client(settings: Settings) -> Client:
    """A REST client of this thread's own, built once per thread. twilio's HTTP client keeps the response
    it is returning on the instance (`_test_only_last_response`) between setting and returning it, so
    threads sharing one client can be handed each other's answers: never share one across threads."""
    key = _credentials(settings)
    cached = getattr(_per_thread, "client", None)
    if cached is None or cached[0] != key:
        cached = _per_thread.client = (key, _build(*key))
    return cached[1]


def is_configured(settings: Settings) -> bool:
    """Whether make_client would build a client (without logging anything when it would not)."""
    return bool(settings.account_sid and settings.auth_token)


def _credentials(settings: Settings) -> tuple[str, str, str, str | None]:
    if not settings.account_sid or not settings.auth_token:
        log.error("TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN are not both set: outbound Twilio calls refused")
        raise NotConfigured("TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN not set")
    return settings.account_sid, settings.auth_token, settings.api_base_url, settings.ca_bundle


def _build(account_sid: str, auth_token: str, api_base_url: str, ca_bundle: str | None = None) -> Client:
    client = Client(account_sid, auth_token, region=None, edge=None)
    client.region = None
    client.edge = None
    client.http_client.timeout = REQUEST_TIMEOUT_SECONDS
    client.api.base_url = api_base_url
    # Messaging Services (messaging.twilio.com) are asked by the sweep and `router twilio check`; a test's
    # TWILIO_API_BASE_URL serves both
    if api_base_url != DEFAULT_API_BASE_URL:
        client.messaging.base_url = api_base_url
    read_environment_once(client.http_client.session, api_base_url, ca_bundle)
    return client


def read_environment_once(session: requests.Session | None, url: str, ca_bundle: str | None) -> None:
    """Take the proxy settings (HTTPS_PROXY, NO_PROXY, ...: requests' own reading of them) for `url` now,
    and the CA bundle from Settings (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE), as requests would on every
    request, and stop requests from looking again: with trust_env it re-reads them (and walks the whole
    environment) on every request, about 1 ms of a worker's CPU per follow-up (a create and a delete). A
    process's environment does not change under it, and every URL this client asks is on `url`'s host."""
    if session is None:
        return
    session.proxies.update(requests.utils.get_environ_proxies(url))
    session.verify = ca_bundle or True
    session.trust_env = False


_client = lru_cache(maxsize=4)(_build)


QUEUE_FULL = 21611   # the sender's queue at Twilio is full: not final (errors/21611)


def is_retryable(exc: TwilioRestException) -> bool:
    """429 and 5xx are Twilio asking us to come back later; 20009 means 'still being processed'
    (errors/20009); 21611 that the sender's queue is full for now."""
    return exc.status == 429 or exc.status >= 500 or exc.code in (20009, QUEUE_FULL)


def is_gone(exc: TwilioRestException) -> bool:
    return exc.status == 404 or exc.code == 20404


def describe(exc: BaseException) -> str:
    """A failed Twilio call for a log line: the exception's type, and Twilio's error code and HTTP
    status when Twilio answered; never the exception's text."""
    if isinstance(exc, TwilioRestException):
        return f"{type(exc).__name__} (error {exc.code}, HTTP {exc.status})"
    return type(exc).__name__

