"""The simulator's stand-in for the background work (router/web/jobs.py `Jobs`): it records the follow-up
texts and history deletions the app asks for, and sends or queues nothing.

Why it fails loudly: a stand-in that accepted any call (it used to, through `__getattr__`) drifts from
what it stands for without anyone noticing: a new kind of background work would silently do nothing in
every simulation and scenario. This one has exactly the public methods of `Jobs`, with the same
signatures and answers (tests/test_scenarios.py checks that the two match); anything else is an
AttributeError. It has no Redis of its own (`client` is None), so the app keeps no record of its
numbers in a simulation.
"""
from __future__ import annotations

from router.definition import phone
from router.definition.model import Limits
from router.engine import Followup
from router.simulator.transcript import RecordedFollowup
from router.store.limits import Booking


class RecordingJobs:
    """Takes the place of router.web.jobs.Jobs: records what the app asks for, sends and queues nothing."""

    client = None  # no Redis of its own (router/web/app.py `_own_numbers` reads it)

    def __init__(self) -> None:
        self.followups: list[RecordedFollowup] = []
        self.cancelled = 0
        self.deleted: list[str] = []

    def clear(self) -> None:
        """Forget everything recorded (a simulator's reset)."""
        self.followups, self.cancelled, self.deleted = [], 0, []

    def schedule_followup(self, *, to: str, from_: str, trigger: str, followup: Followup, callback: str,
                          lang: str = "en", limits: Limits | None = None) -> Booking:
        if not phone.can_receive_texts(to):
            return Booking.FAILED
        number = phone.normalise_sender(to) or to
        self.followups.append(RecordedFollowup(number, followup.send_at, followup.when, followup.body,
                                               followup.service_id))
        return Booking.KEPT

    def cancel_followups(self, number: str) -> int | None:
        mine = phone.normalise_sender(number) or number
        before = len(self.followups)
        self.followups = [f for f in self.followups if f.to != mine]
        self.cancelled += before - len(self.followups)
        return before - len(self.followups)

    def release_followup_limits(self, number: str, service_ids) -> None:
        """Nothing to release: no limits are kept for recorded follow-ups."""

    def message_reported(self, followup: str) -> None:
        """Nothing to settle: recorded follow-ups are never sent."""

    def delete_message(self, sid: str) -> bool:
        self.deleted.append(sid)
        return True

    def delete_call(self, sid: str) -> bool:
        self.deleted.append(sid)
        return True
