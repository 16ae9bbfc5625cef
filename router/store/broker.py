"""Celery's broker on the store's Redis: how the web tier and the workers reach it (broker_config), and
kombu's Redis transport with the one fix that keeps a Celery worker alive when Redis goes away.

broker_config is the one description of the broker both sides use: the web tier's producer
(router/web/jobs.py) sends tasks by name with it, and the workers' app (tasks.create_celery) consumes
with it, so the two cannot drift apart (a Sentinel URL, TLS options, the visibility timeout).

The crash (kombu 5.7, celery 5.7; `tests/test_broker_reconnect.py` reproduces it with the plain
transport): Redis dies while the worker holds tasks it has not acknowledged yet (acks late). Celery's
`on_connection_error_after_connected` calls `connection.collect()`, which asks the transport to close
every channel of the connection. Closing a channel first restores its unacknowledged messages, which
needs Redis; Redis is gone, so that channel's close raises a connection error, and kombu's
`close_connection` loop stops right there: the connection's other channels stay open. `collect()` then
drops the transport's client (`transport.client = None`). When Celery restarts the consumer it closes
those channels itself; their `restore_unacked` builds a new connection pool from `transport.client`,
which is None: `AttributeError("'NoneType' object has no attribute 'hostname'")`. An AttributeError
is not a connection error, so Celery calls it unrecoverable and the worker process exits.

Two small guards, each where kombu goes wrong:
- close_connection closes every channel even if one of them cannot restore its messages;
- a channel that could still not be closed then (its close failed before it was marked closed, e.g.
  reading a BRPOP answer from the dead socket) and is closed later does not try to restore through a
  transport that has lost its client: there is nothing it could reach.
Nothing is lost by a restore that does not happen: the Redis transport keeps each delivered message in
its `unacked` hash in Redis until it is acknowledged, and any worker's restore sweep puts it back on the
queue once the visibility timeout has passed (the same path a `kill -9` takes).

Chosen over the alternatives: disabling restore at shutdown would slow every warm shutdown's hand-back
of prefetched tasks; disabling remote control and gossip (fewer channels) only makes the bug rarer; no
released kombu has a fix. broker_config selects these classes by the URL's scheme.
"""
from __future__ import annotations

import logging
import ssl
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kombu.transport import redis as kombu_redis

from router.store.connection import parse_sentinel_url

log = logging.getLogger("router.store.broker")


class QoS(kombu_redis.QoS):
    def restore_unacked(self, client: Any = None) -> None:
        """kombu's restore, unless the channel's connection has been collected (its transport has no
        client left to build a connection from): then the messages stay in Redis' unacked hash."""
        transport = self.channel.connection
        if client is None and (transport is None or transport.client is None):
            delivered: Any = self._delivered
            if delivered:
                log.info("%d unacknowledged message(s) left for the restore sweep: the broker connection "
                         "is gone", len(delivered))
            delivered.clear()
            return
        super().restore_unacked(client)  # type: ignore[no-untyped-call]


class Channel(kombu_redis.Channel):
    QoS = QoS


class SentinelChannel(kombu_redis.SentinelChannel):
    QoS = QoS


class _ClosesEveryChannel:
    connection_errors: Any  # the transport's (kombu)

    def close_connection(self, connection: Any) -> None:
        """kombu's close_connection, continued past a channel whose close failed: kombu pops each
        channel before closing it, so trying again closes the ones that are left."""
        while True:
            try:
                super().close_connection(connection)  # type: ignore[misc]
                return
            except self.connection_errors:
                # That channel's unacked messages stay in Redis' unacked hash: restored after the
                # visibility timeout by the restore sweep.
                continue


class Transport(_ClosesEveryChannel, kombu_redis.Transport):
    """`redis://` and `rediss://`."""

    Channel = Channel


class SentinelTransport(_ClosesEveryChannel, kombu_redis.SentinelTransport):
    """`sentinel://`."""

    Channel = SentinelChannel


_SSL_REQS = {"required": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "none": ssl.CERT_NONE,
             "CERT_REQUIRED": ssl.CERT_REQUIRED, "CERT_OPTIONAL": ssl.CERT_OPTIONAL, "CERT_NONE": ssl.CERT_NONE}


def broker_options(url: str) -> dict[str, Any]:
    """Celery settings that select the transport above for a broker URL (and, for `rediss://`, the
    TLS options kombu would otherwise take from the scheme name: with a transport class given, it no
    longer sees 'rediss', so they are passed explicitly; certificates are required unless the URL says
    otherwise)."""
    scheme = urlsplit(url).scheme
    if scheme == "sentinel":
        return {"broker_transport": f"{__name__}:SentinelTransport"}
    if scheme not in {"redis", "rediss"}:
        return {}
    options: dict[str, Any] = {"broker_transport": f"{__name__}:Transport"}
    if scheme == "rediss":
        query = dict(parse_qsl(urlsplit(url).query))
        use_ssl: dict[str, Any] = {key: value for key, value in query.items()
                   if key in {"ssl_ca_certs", "ssl_certfile", "ssl_keyfile"}}
        use_ssl["ssl_cert_reqs"] = _SSL_REQS.get(query.get("ssl_cert_reqs", "required"), ssl.CERT_REQUIRED)
        options["broker_use_ssl"] = use_ssl
    return options


def broker_config(redis_url: str, visibility_timeout: float) -> dict[str, Any]:
    """Celery settings for the broker on `redis_url`, for the app that sends tasks and the one that runs
    them alike: the URL (a Sentinel URL as kombu takes it: the master's name as an option), the
    transport above, timeouts that fail fast, and JSON messages only.

    visibility_timeout: a task taken by a worker that then died is handed to another after this long
    (Settings.celery_visibility_timeout)."""
    transport: dict[str, Any] = {"visibility_timeout": visibility_timeout,
                       "unacked_restore_throttle": 1,  # look for tasks of dead workers every ~10 s, not ~100 s
                       "socket_connect_timeout": 1, "socket_timeout": 5}
    broker_url = redis_url
    sentinel = parse_sentinel_url(redis_url)
    if sentinel is not None:  # kombu takes the master's name as an option, not in the URL
        broker_url = sentinel.broker_url
        transport.update(master_name=sentinel.master_name,
                         sentinel_kwargs={"password": sentinel.sentinel_password, "socket_timeout": 1})
    return {"broker_url": broker_url,
            "broker_transport_options": transport,
            "broker_connection_timeout": 1,
            "broker_connection_retry_on_startup": True,
            "task_serializer": "json",
            "accept_content": ["json"],
            **broker_options(broker_url)}
