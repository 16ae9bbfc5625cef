"""What each worker process makes once and then shares between its tasks and threads.

Made lazily, so after the prefork pool forks (a connection or thread made in the parent would be shared
by every child): one Redis client for the process (a new connection costs ~5 ms: TCP connect, HELLO,
CLIENT SETINFO), the stores built on it, and the thread pools that send texts and delete history.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from router.settings import Settings
from router.store.connection import make_redis

T = TypeVar("T")
_made: dict[str, object] = {}


def once(name: str, make: Callable[[], T]) -> T:
    """The process's one `name`, made by `make` the first time it is asked for."""
    value = _made.get(name)
    if value is None:
        value = _made.setdefault(name, make())
    return value  # type: ignore[return-value]


def worker_redis(settings: Settings):
    """The process's Redis client (state, pending work, queues); the broker has its own."""
    return once("redis", lambda: make_redis(settings.redis_url, timeout=5))
