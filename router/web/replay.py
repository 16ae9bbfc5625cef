"""Bind a call's state-changing keys (cancel by 8, yes to a text) to the call that offered them.

Why: a signed webhook can be captured (a proxy log, a shared screen) and replayed later; its signature
stays valid forever. Replayed, "press 8" from an old call would cancel a text booked in a newer one, and
"press 1 for a text now" would text the phone again. So every keypad action URL on a call carries
`b=<issued>-<tag>`: when the document was made (seconds) and an HMAC of the CallSid and that time with
the deployment's secret. A key press changes state only when the request's own CallSid matches the tag
and the document is younger than BIND_SECONDS (no menu is listened to for that long: a Gather waits
seconds). The tag is hex and digits only, so the URL needs no percent-encoding (issue 17 item 8).

A URL without `b` cannot come from a captured request of ours (every document carries one, and Twilio's
signature covers the URL), so router/web/voice.py lets it through: calls across the upgrade keep working.

A call that has ended (its status callback said so) is marked for BIND_SECONDS (`hr:call-ended:<hash>`,
no number in it): a request replayed within those minutes, into the caller's next call, changes nothing
either. Without Redis the mark cannot be read; the 15 minutes still bound the replay.

The action URLs are rendered once per Step and cached (router/web/voice.py); the binding is put in
afterwards by `bind_actions`, a string substitution, so the cache still serves every call.
"""
from __future__ import annotations

import hashlib
import hmac
import re

import redis

from router.store import keys

BIND_SECONDS = 15 * 60
_TAG_CHARS = 16
_KEY_ACTION = re.compile(r'(action="[^"]*/voice/key)\?')


def token(secret: bytes, call_sid: str, issued: float) -> str:
    """The binding of a document made at `issued` (epoch seconds) for call `call_sid`."""
    at = int(issued)
    return f"{at}-{_tag(secret, call_sid, at)}"


def _tag(secret: bytes, call_sid: str, at: int) -> str:
    mac = hmac.new(secret, f"replay\0{call_sid}\0{at}".encode(), hashlib.sha256)
    return mac.hexdigest()[:_TAG_CHARS]


def is_bound(secret: bytes, call_sid: str, value: str | None, now: float) -> bool:
    """True when `value` (the b= of the URL) was made for this CallSid less than BIND_SECONDS ago."""
    at_text, _, tag = (value or "").partition("-")
    if not call_sid or not at_text.isdecimal() or len(at_text) > 12 or len(tag) != _TAG_CHARS:
        return False
    at = int(at_text)
    if not 0 <= now - at <= BIND_SECONDS:
        return False
    return hmac.compare_digest(tag, _tag(secret, call_sid, at))


def bind_actions(document: str, binding: str) -> str:
    """Every keypad action URL in a TwiML document, with `b=<binding>` as its first query parameter."""
    return _KEY_ACTION.sub(lambda m: f"{m.group(1)}?b={binding}&amp;", document)


class EndedCalls:
    """Calls whose status callback said they ended: no key press of theirs changes anything any more."""

    def __init__(self, client: redis.Redis, secret: bytes):
        self.client, self.secret = client, secret

    def _key(self, call_sid: str) -> str:
        return keys.call_ended(self.secret, call_sid)  # every key is named in router/store/keys.py

    def mark(self, call_sid: str) -> None:
        try:
            self.client.set(self._key(call_sid), "1", ex=BIND_SECONDS)
        except (redis.RedisError, OSError):
            pass  # the 15 minutes of the binding still hold

    def has_ended(self, call_sid: str) -> bool:
        try:
            return bool(self.client.get(self._key(call_sid)))
        except (redis.RedisError, OSError):
            return False
