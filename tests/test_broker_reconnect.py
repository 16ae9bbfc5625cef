"""The kombu crash that ended Celery workers when Redis went away, reproduced at the transport level.

What Celery does on a lost broker connection, step by step, on a real Redis: two channels of one
connection hold delivered, unacknowledged messages (acks late); Redis is killed; Celery's
`on_connection_error_after_connected` calls `connection.collect()`; later, restarting the consumer, it
closes the channels that are still open. With kombu's own transport that last step raises
AttributeError ('NoneType' object has no attribute 'hostname'), which Celery treats as unrecoverable.
With ours (router/store/broker.py) nothing raises (collect() closes every channel it can, and one closed later
does not try to restore through the collected connection); the messages come back from Redis' unacked
hash once Redis is up again. Which channel's close fails first varies from run to run (a channel
waiting on BRPOP fails before it is marked closed): the test covers whichever happens.
"""
from __future__ import annotations

import ssl
import time

import pytest
import redis
from kombu import Connection, Consumer, Exchange, Producer, Queue

from router.dev.embedded_redis import RedisServer
from router.settings import Settings
from router.store.broker import Transport, broker_options
from router.web.jobs import producer
from tasks import create_celery

OPTIONS = {"visibility_timeout": 1, "socket_connect_timeout": 0.5, "socket_timeout": 0.5,
           "unacked_restore_throttle": 0}


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path / "redis", persist=True).start()
    yield server
    server.stop(kill=True)


def connection_holding_unacked(url: str, transport) -> tuple[Connection, list]:
    """A connection with two channels, each holding one delivered, unacknowledged message."""
    connection = Connection(url, transport=transport, transport_options=OPTIONS)
    connection.connect()
    channels = [connection.default_channel, connection.channel()]
    received = []
    for n, channel in enumerate(channels):
        queue = Queue(f"q{n}", Exchange(f"q{n}"), f"q{n}")
        Producer(channel).publish({"n": n}, exchange=queue.exchange, routing_key=queue.routing_key,
                                  declare=[queue])
        Consumer(channel, [queue], callbacks=[lambda body, message: received.append(body)]).consume()
    while len(received) < 2:
        connection.drain_events(timeout=5)
    assert all(channel.qos._delivered for channel in channels), "each channel holds an unacked message"
    return connection, channels


def lose_redis_and_clean_up_as_celery_does(server: RedisServer, connection: Connection, channels: list) -> None:
    server.stop(kill=True)
    connection.collect(socket_timeout=0.5)      # Consumer.on_connection_error_after_connected
    for channel in channels:                    # blueprint.restart: the consumer's channels closed
        channel.close()


def test_kombus_own_transport_crashes_where_celery_cleans_up_after_redis_went_away(own_redis):
    connection, channels = connection_holding_unacked(own_redis.url, "redis")
    with pytest.raises(AttributeError, match="hostname"):
        lose_redis_and_clean_up_as_celery_does(own_redis, connection, channels)


def test_our_transport_raises_nothing_and_loses_no_message(own_redis):
    connection, channels = connection_holding_unacked(own_redis.url, Transport)
    lose_redis_and_clean_up_as_celery_does(own_redis, connection, channels)  # raises nothing
    assert all(channel.closed for channel in channels)

    own_redis.start()  # same port and data: the unacked messages are still in Redis
    client = redis.Redis.from_url(own_redis.url)
    assert client.hlen("unacked") == 2
    # a new connection's restore sweep (as any worker's) puts them back once the visibility timeout passed
    fresh = Connection(own_redis.url, transport=Transport, transport_options=OPTIONS)
    back = []
    with fresh:
        for n in range(2):
            Consumer(fresh.default_channel, [Queue(f"q{n}", Exchange(f"q{n}"), f"q{n}")],
                     callbacks=[lambda body, message: (back.append(body), message.ack())]).consume()
        deadline = time.monotonic() + 15
        while len(back) < 2 and time.monotonic() < deadline:
            fresh.default_channel.qos.restore_visible()
            try:
                fresh.drain_events(timeout=0.5)
            except TimeoutError:
                pass
    assert sorted(body["n"] for body in back) == [0, 1]


def workers_app(url: str):
    return create_celery(Settings(redis_url=url))


def web_producer(url: str):
    return producer(Settings(redis_url=url))


@pytest.mark.parametrize("make_app", [workers_app, web_producer])
def test_the_celery_apps_use_our_transport_for_every_redis_url_form(make_app):
    """The workers' app and the web tier's producer take the broker from one place (broker_config)."""
    for url, expected in [("redis://127.0.0.1:6379/0", Transport),
                          ("rediss://:pw@redis.internal:6380/0?ssl_cert_reqs=required", Transport)]:
        app = make_app(url)
        assert app.connection_for_write().transport_cls is expected or \
            app.connection_for_write().transport.__class__ is expected
    sentinel = make_app("sentinel://:pw@s1:26379/0;sentinel://s2:26379?master_name=helpline")
    assert sentinel.conf.broker_transport == "router.store.broker:SentinelTransport"
    assert sentinel.conf.broker_transport_options["master_name"] == "helpline"
    assert sentinel.conf.broker_url == "sentinel://:pw@s1:26379/0;sentinel://s2:26379"
    # rediss: TLS is still on, with certificates required unless the URL says otherwise
    assert broker_options("rediss://h:6380/0")["broker_use_ssl"]["ssl_cert_reqs"] == ssl.CERT_REQUIRED
    assert make_app("rediss://h:6380/0?ssl_cert_reqs=required").connection_for_write().ssl
    assert make_app("redis://h:6379/0").conf.broker_transport_options["visibility_timeout"] == 30.0
