"""Moved (issue 22): router/store/connection.py (clients), keys.py (every key name, `hashed`) and
conversations.py (texters' state). These names stay importable from here only until every branch's
imports point at their new homes. TODO(#22 merge): the lead removes this module."""
from __future__ import annotations

from router.store.connection import SentinelURL, StateUnavailable, make_redis, parse_sentinel_url, redacted_url
from router.store.conversations import (GLOBAL_WINDOW_SECONDS, SEEN_TTL_SECONDS, Arrival, Conversation,
                                        ConversationStore, global_counter_key)
from router.store.keys import hashed

__all__ = ["GLOBAL_WINDOW_SECONDS", "SEEN_TTL_SECONDS", "Arrival", "Conversation", "ConversationStore",
           "SentinelURL", "StateUnavailable", "global_counter_key", "hashed", "make_redis",
           "parse_sentinel_url", "redacted_url"]
