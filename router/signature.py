"""X-Twilio-Signature: the only proof a webhook came from Twilio, checked with twilio's RequestValidator.

Twilio signs the exact URL it called (query string included) plus the POST parameters. Behind a proxy
the URL the app sees is not that URL, so it is rebuilt from PUBLIC_BASE_URL or, when TRUST_PROXY is set,
from one trusted proxy's X-Forwarded-Proto / X-Forwarded-Host. There is no switch to turn this off.
"""
from __future__ import annotations

import hmac
from functools import lru_cache
from urllib.parse import quote

from flask import Request
from twilio.request_validator import RequestValidator

from router.settings import Settings


def _path_and_query(request: Request) -> str:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return raw
    path = quote(request.environ.get("SCRIPT_NAME", "") + request.environ.get("PATH_INFO", ""))
    query = request.environ.get("QUERY_STRING", "")
    return f"{path}?{query}" if query else path


def signed_url(request: Request, settings: Settings) -> str:
    """The URL Twilio used to reach us, as Twilio signed it."""
    if settings.public_base_url:
        return settings.public_base_url + _path_and_query(request)
    scheme = request.scheme
    host = request.host
    if settings.trust_proxy:
        scheme = request.headers.get("X-Forwarded-Proto", scheme).split(",")[0].strip() or scheme
        host = request.headers.get("X-Forwarded-Host", host).split(",")[0].strip() or host
    return f"{scheme}://{host}{_path_and_query(request)}"


@lru_cache(maxsize=4)
def _validator(auth_token: str) -> RequestValidator:
    return RequestValidator(auth_token)


def is_from_twilio(request: Request, settings: Settings) -> bool:
    """True only when a token is configured and the signature matches this exact request."""
    signature = request.environ.get("HTTP_X_TWILIO_SIGNATURE", "")
    if not settings.auth_token or not signature:
        return False
    validator = _validator(settings.auth_token)
    url = signed_url(request, settings)
    # The exact URL first (one HMAC); validate() also tries the URL with and without its port.
    if hmac.compare_digest(validator.compute_signature(url, request.form), signature):
        return True
    return validator.validate(url, request.form, signature)


def public_base(request: Request, settings: Settings) -> str:
    """The base URL Twilio reaches us on, for callbacks we hand to Twilio (e.g. StatusCallback)."""
    url = signed_url(request, settings)
    path = _path_and_query(request)
    return url[: len(url) - len(path)] if path and url.endswith(path) else url
