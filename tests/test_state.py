"""Redis addressing: keyed-hash keys, and the Sentinel form of REDIS_URL."""
from __future__ import annotations

import pytest

from router.store.broker import broker_config
from router.store.state import hashed, make_redis, parse_sentinel_url


def test_keys_are_keyed_hashes_not_numbers():
    key = hashed(b"secret", "conv", "+447400123456")
    assert key.startswith("hr:conv:") and "7400123456" not in key
    assert key != hashed(b"other secret", "conv", "+447400123456")


def test_sentinel_url_is_parsed_for_redis_py_and_kombu():
    url = "sentinel://:p%40ss@s1:26379/2;sentinel://s2:26380?master_name=helpline&sentinel_password=x"
    parsed = parse_sentinel_url(url)
    assert parsed.hosts == [("s1", 26379), ("s2", 26380)] and parsed.master_name == "helpline"
    assert parsed.password == "p@ss" and parsed.db == 2 and parsed.sentinel_password == "x"
    assert parsed.broker_url == "sentinel://:p%40ss@s1:26379/2;sentinel://s2:26380"
    broker = broker_config(url, visibility_timeout=30)
    assert broker["broker_transport_options"]["master_name"] == "helpline"
    assert "master_name" not in broker["broker_url"]
    assert make_redis(url).connection_pool.service_name == "helpline"


def test_sentinel_url_without_a_master_name_is_refused():
    with pytest.raises(ValueError, match="master_name"):
        parse_sentinel_url("sentinel://s1:26379")


def test_plain_urls_are_not_sentinel_urls():
    assert parse_sentinel_url("redis://127.0.0.1:6379/0") is None
