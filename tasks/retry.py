"""Exponential backoff with full jitter, capped: how a task waits before asking Twilio again."""
from __future__ import annotations

import os
import random

BASE_SECONDS = float(os.environ.get("TASK_RETRY_BASE_SECONDS", "1.0"))
# Below the broker's visibility timeout (30 s): a retry waits in its worker unacknowledged, and one
# held longer than that would be handed to a second worker as well.
CAP_SECONDS = 15.0


def backoff_seconds(attempt: int, base: float = BASE_SECONDS, cap: float = CAP_SECONDS) -> float:
    """attempt 0 -> up to 1 s, 1 -> up to 2 s, ... never more than `cap` (full jitter, AWS-style)."""
    return random.uniform(base / 2, min(cap, base * (2 ** attempt)))
