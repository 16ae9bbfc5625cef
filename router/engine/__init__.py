"""The flow engine: pure functions from (flows, where the person is, what they gave, time, language,
channel) to the next Step, as plain data.

It knows nothing of Flask, Twilio or Redis, so the voice and text channels, the simulator, the lint and
the operators' scenarios all run exactly this code: a bug fixed here is fixed on every channel.

This package owns, one job a module:
- context.py: the types (Context, Step, Line, Dial, Followup) every other module builds on;
- inputs.py: what a person gives (Keys, Silence, DialResult, Text), typed by the channels;
- keypad.py: what each key means, and the engine's own places ("closed:galop", "police");
- presenting.py: what is said on arriving somewhere (a menu, a service, the police advice);
- walking.py: what a key, a silence or a dial result does next (`resume`, the channels' entry point);
- booking.py: booking a text for later (when, what it says, what the person is told);
- texting.py: the text channel's rules (what a reply means, which answer a text gets), texts.py: the
  steps only the text channel gives; stopwords.py and crisis.py: what a stop and words of crisis are;
- wording.py and grammar.py: hours, times, names and Welsh grammar in words; fallbacks.py: which
  other lines a caller is offered.

This face re-exports what the channels, the inspections and the simulator use; modules inside the
package import each other directly, never this face (no import circle).
"""
from __future__ import annotations

from router.engine.booking import followup_not_arranged, followup_time, schedule_followup
from router.engine.context import SMS, VOICE, Context, Dial, Followup, Line, Step
from router.engine.fallbacks import after_call_line, open_fallback, open_fallbacks
from router.engine.inputs import DialResult, Input, Keys, Silence, Text
from router.engine.keypad import (CONNECT_KEY, FALLBACK_KEY, FOLLOWUP_KEY, MENU_KEY, OTHER_LINE_KEY, PLACES, POLICE,
                                  POLICE_TEXTS, REPEAT_KEYS, SMS_FOLLOWUP_KEY, VOICE_CANCEL_KEY, WHEN_CHOICES,
                                  WINDOW_KEYS, cancel_key_free, cancels_texts, known_place)
from router.engine.presenting import connect, police, present, start
from router.engine.walking import cancel_not_recorded, cancelled_by_key, resume
from router.engine.wording import describe_hours

__all__ = [
    "CONNECT_KEY", "FALLBACK_KEY", "FOLLOWUP_KEY", "MENU_KEY", "OTHER_LINE_KEY", "PLACES", "POLICE", "POLICE_TEXTS",
    "REPEAT_KEYS", "SMS", "SMS_FOLLOWUP_KEY", "VOICE", "VOICE_CANCEL_KEY", "WHEN_CHOICES", "WINDOW_KEYS",
    "Context", "Dial", "DialResult", "Followup", "Input", "Keys", "Line", "Silence", "Step", "Text",
    "after_call_line", "cancel_key_free", "cancels_texts", "cancel_not_recorded", "cancelled_by_key", "connect", "describe_hours",
    "followup_not_arranged", "followup_time", "known_place", "open_fallback", "open_fallbacks",
    "police", "present", "resume", "schedule_followup", "start",
]
