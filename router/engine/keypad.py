"""What each key means, and the places of the engine's own a person can be at.

Why a module of its own: one meaning per key wherever a service was chosen is a promise to callers
(issue 19: someone who learnt "2 books a text" must never book something else with it), and the places
("closed:galop", "police") are the vocabulary the channels write into URLs and Redis. Both are read by
the steps (router/engine/presenting.py, walking.py, booking.py), the channels and the inspections.

Where a person is ("at") is a short string: a node id of the menu tree, or one of the engine's own
places after a service was chosen ("closed:galop", "consent:galop", ...). Unknown places (a stale URL
after a flow reload, a tampered one) fall back to the start menu: never an error.
"""
from __future__ import annotations

from router.definition.model import Flows, MenuNode, Option
from router.engine.context import SMS, VOICE
from router.engine.inputs import Keys

REPEAT_KEYS = frozenset({"0", "*"})
# One meaning per key wherever a service was chosen on a call: 1 puts you through (the open fallback of a
# closed line, or the same line again after it was busy), 2 says yes to a text (the safety warning is in
# that one question), 3 the open fallback of a busy line, 9 the main menu, 0 hear this again.
CONNECT_KEY, FOLLOWUP_KEY, OTHER_LINE_KEY, MENU_KEY = "1", "2", "3", "9"
FALLBACK_KEY = CONNECT_KEY
SMS_FOLLOWUP_KEY = "8"
WHEN_CHOICES = {VOICE: ("now", "later", "morning"), SMS: ("later", "morning")}
# Someone following the 999 advice may press 5 5 (the Silent Solution) or 9 9 9 at our menu. The first
# key does what it always does, but the adapter listens briefly for the same key again (a "window");
# the same key again means the advice was being followed: say how to reach the police, in the language
# the caller was in when they started.
WINDOW_KEYS = frozenset({"5", "9"})
POLICE = "police"
POLICE_TEXTS = frozenset({"55", "999", "5 5", "9 9 9"})

# Caller ID is not proof (issue 18): nothing here depends on what is stored for the number. Key 8 cancels
# on every call, unannounced, with the same words whether or not a text was pending. Only a failure to
# record a cancellation is said differently: it depends on Redis, not the number. (The text channel's
# answers that must not give a person away are in router/engine/texts.py.)
VOICE_CANCEL_KEY = "8"   # free on the shipped main menu; cancels only while no option uses it

PLACES = frozenset({"closed", "unanswered", "after", "consent", "when", "info", "dial"})


def known_place(flows: Flows, at: str) -> bool:
    if at == POLICE:
        return True
    kind, _, service_id = at.partition(":")
    if service_id:
        return kind in PLACES and service_id in flows.services
    return at in flows.nodes


def find_option(node: MenuNode, key: str) -> Option | None:
    return next((option for option in node.options if option.key == key), None)


def cancels_texts(flows: Flows, at: str | None, keys: Keys) -> bool:
    """Is this the cancel key on the main menu (while no option uses it)? The channel then cancels every
    text due to the caller before the engine says so (router/engine/walking.py `cancelled_by_key`)."""
    return keys.digits == VOICE_CANCEL_KEY and at == flows.start and cancel_key_free(flows)


def cancel_key_free(flows: Flows) -> bool:
    """The start menu does not use VOICE_CANCEL_KEY itself (an operator may give it an option)."""
    node = flows.nodes[flows.start]
    return isinstance(node, MenuNode) and find_option(node, VOICE_CANCEL_KEY) is None
