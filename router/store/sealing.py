"""The fields of a pending follow-up, encrypted before they reach Redis, with a key Redis never sees.

Redis writes what it holds to disk (the append-only file, RDB snapshots) and a rewrite is what removes
a deleted key from those files; a replica or a backup copies them again. So the number, the text and
the callback URL of a follow-up are stored only as AES-256-GCM ciphertext (`cryptography`'s AESGCM:
a random 96-bit nonce per message, the follow-up's id as associated data so a ciphertext cannot be
moved to another id). Whatever copy of Redis' files survives, it holds no readable number without the
key, which lives only in the processes' environment (FOLLOWUP_ENCRYPTION_KEY; `make run` keeps one in
.data/followup-key, mode 0600). Several keys may be given for a rotation: the first seals, each is tried
to open.

Only what opens is ever sent: AES-GCM authenticates as well as encrypts, so a record written into Redis
by anyone without the key (plain fields, or a ciphertext made with another key) cannot be opened, and
router/store/pending.py drops it (counted as `unsealed` or `unreadable`, and alerted on).
"""
from __future__ import annotations

import base64
import json
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

FIELDS = ("to", "from", "body", "callback")
NONCE_BYTES = 12


class Unreadable(Exception):
    """A sealed follow-up that this key cannot open (another key, or tampered with)."""


def derive_key(secret: bytes, purpose: bytes = b"helpline-router/followup-fields/v1") -> bytes:
    """A 256-bit key from any secret (an operator's string, the state secret), for one purpose only."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


MAX_SEALED_CHARS = 8192   # a follow-up is one short text: anything longer was not written by us


class Sealer:
    """keys: one key, or several newest first (a rotation): the first seals, every one is tried to open."""

    def __init__(self, keys: bytes | tuple[bytes, ...] | list[bytes]):
        keys = (keys,) if isinstance(keys, bytes) else tuple(keys)
        if not keys:
            raise ValueError("a Sealer needs a key")
        self._aeads = [AESGCM(derive_key(key)) for key in keys]

    def seal(self, fid: str, fields: dict[str, str]) -> str:
        nonce = os.urandom(NONCE_BYTES)
        plain = json.dumps({name: fields[name] for name in FIELDS}, separators=(",", ":")).encode()
        return base64.b64encode(nonce + self._aeads[0].encrypt(nonce, plain, fid.encode())).decode()

    def open(self, fid: str, sealed: str) -> dict[str, str]:
        if not isinstance(sealed, str) or len(sealed) > MAX_SEALED_CHARS:
            raise Unreadable("size")
        try:
            raw = base64.b64decode(sealed, validate=True)
        except ValueError as exc:
            raise Unreadable(type(exc).__name__) from None
        for aead in self._aeads:
            try:
                plain = aead.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], fid.encode())
            except (InvalidTag, ValueError):
                continue
            data = json.loads(plain)
            return {name: str(data[name]) for name in FIELDS}
        raise Unreadable("InvalidTag")
