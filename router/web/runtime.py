"""What every request handler shares: settings, the flow store, conversation state, jobs and the clock.

Built once by create_app() and passed in rather than imported, so a test can hand in its own clock
(Christmas morning) or a Redis that is down, and run the very same handlers.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from flask import current_app

from router.live import FlowStore
from router.web.jobs import Jobs
from router.settings import Settings
from router.store.conversations import ConversationStore


def system_clock() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Runtime:
    settings: Settings
    flows: FlowStore
    conversations: ConversationStore
    jobs: Jobs
    clock: Callable[[], datetime] = system_clock


def runtime() -> Runtime:
    return current_app.extensions["router"]
