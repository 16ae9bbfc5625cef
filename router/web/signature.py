"""X-Twilio-Signature: the only proof a webhook came from Twilio, checked with twilio's RequestValidator.

Twilio signs the exact URL it called (query string included) plus the POST parameters. Behind a proxy
the URL the app sees is not that URL, so it is rebuilt from PUBLIC_BASE_URL or, when TRUST_PROXY is set,
from what the trusted proxies added to X-Forwarded-Proto / X-Forwarded-Host (router/web/proxy.py applies
Werkzeug's ProxyFix before any of this runs, so request.scheme and request.host already say so). There
is no switch to turn this off.

The header is compared as bytes: a header is whatever a client sends, and `hmac.compare_digest` raises
on a str that is not ASCII, which would turn a forged request into an error (and the safety TwiML)
instead of a 403.
"""
from __future__ import annotations

import hmac
import re
from functools import lru_cache
from urllib.parse import quote, urlparse, urlsplit

from flask import Request
from twilio.request_validator import RequestValidator, add_port, remove_port

from router.settings import Settings


def _path_and_query(request: Request) -> str:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return raw
    path = quote(request.environ.get("SCRIPT_NAME", "") + request.environ.get("PATH_INFO", ""))
    query = request.environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def host_allowed(request: Request, settings: Settings) -> bool:
    """The host the request names is ours: any, with PUBLIC_BASE_URL (the URL is rebuilt from it) or
    with neither setting (believed: the app says so at start and in /healthz); else one of
    ALLOWED_HOSTS (its name, without the port). A request Twilio signed for another app on the same
    account carries that app's host, and is refused."""
    if settings.public_base_url or not settings.allowed_hosts:
        return True
    host = request.host.lower()
    name = host[1:host.find("]")] if host.startswith("[") else host.rsplit(":", 1)[0]
    return name in settings.allowed_hosts


def signed_url(request: Request, settings: Settings) -> str:
    """The URL Twilio used to reach us, as Twilio signed it."""
    if settings.public_base_url:
        return settings.public_base_url + _path_and_query(request)
    return f"{request.scheme}://{request.host}{_path_and_query(request)}"


@lru_cache(maxsize=4)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)


def _as_bytes(header: str) -> bytes:
    """A header as the bytes the client sent (WSGI hands headers over decoded as latin-1); never raises."""
    try:
        return header.encode("latin-1")
    except UnicodeEncodeError:
        return header.encode("utf-8", "surrogatepass")


def is_from_twilio(request: Request, settings: Settings) -> bool:
    """True only when a token is configured and the signature matches this exact request."""
    signature = _as_bytes(request.environ.get("HTTP_X_TWILIO_SIGNATURE", ""))
    if not settings.auth_token or not signature or not host_allowed(request, settings):
        return False
    validator = _validator(settings.auth_token)
    url = signed_url(request, settings)
    form = request.form
    # The exact URL first (one HMAC); then, as RequestValidator.validate does, with and without its port.
    for candidate in _urls(url):
        if hmac.compare_digest(validator.compute_signature(candidate, form).encode("ascii"), signature):
            return True
    return False


def _urls(url: str):
    for form in _encoding_forms(url):
        yield form
        parsed = urlparse(form)
        for variant in (remove_port(parsed), add_port(parsed)):
            if variant != form:
                yield variant


# Characters Twilio may request percent-encoded while signing them plain, or the reverse: error 57012
# (https://www.twilio.com/docs/api/errors/57012) names "URL-encoded characters" among the causes of a
# signature that does not match. Our own action URLs never hold them (router/web/voice.py), but a URL
# configured at Twilio might. None of them delimits parameters (no & = ? # % + /), so either form names
# the same request.
_SUB_DELIMS = ":@,;!$'()*"
_ENCODED_SUB_DELIM = re.compile("%(" + "|".join(f"{ord(c):02X}" for c in _SUB_DELIMS) + ")", re.I)


def _encoding_forms(url: str) -> list[str]:
    """The URL as received, then with those characters decoded, then encoded (each once, if different)."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    rest = url[len(base):]
    decoded = _ENCODED_SUB_DELIM.sub(lambda m: chr(int(m.group(1), 16)), rest)
    encoded = "".join(quote(c, safe="") if c in _SUB_DELIMS else c for c in decoded)
    forms = [url]
    for form in (base + decoded, base + encoded):
        if form not in forms:
            forms.append(form)
    return forms


def public_base(request: Request, settings: Settings) -> str:
    """The base URL Twilio reaches us on, for callbacks we hand to Twilio (e.g. StatusCallback)."""
    url = signed_url(request, settings)
    path = _path_and_query(request)
    return url[: len(url) - len(path)] if path and url.endswith(path) else url
