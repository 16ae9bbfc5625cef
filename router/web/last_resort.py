"""The answer of last resort: TwiML that depends on nothing (no flows, no Redis, no engine).

When anything fails while answering a signed request, the person still hears or reads the 999 advice
and the 24-hour National Domestic Abuse Helpline, and a caller is put through to it by pressing 1 or by
staying on the line. The
documents are rendered once at import, so answering them cannot fail in turn.
"""
from __future__ import annotations

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

HELPLINE_E164 = "+448082000247"
SAFETY_CONNECT_PATH = "/voice/safety-connect"
_VOICE = {"voice": "Polly.Amy", "language": "en-GB"}

# The police's Silent Solution, as in flows/phrases.yaml: on a mobile, press 55 when asked.
SPOKEN = (
    "If you are in danger, hang up and call 9 9 9. On a mobile, if you cannot speak, press 5 5 when "
    "asked. The National Domestic Abuse Helpline is free and open 24 hours, on "
    "oh eight oh eight, two thousand, two four seven."
)
TEXT = (
    "In danger now? Call 999. Can't speak? On a mobile, press 55 when asked. The National Domestic "
    "Abuse Helpline is free, 24 hours: 0808 2000 247"
)


def _voice_document() -> str:
    """The advice and the number, a key to be put through, and silence puts the caller through too (as
    the menu does): someone who cannot press anything is never left with a goodbye. Twilio goes on to
    the verbs after a <Gather> that got no key (https://www.twilio.com/docs/voice/twiml/gather)."""
    response = VoiceResponse()
    gather = response.gather(input="dtmf", num_digits=1, timeout=8, action=SAFETY_CONNECT_PATH)
    gather.say(SPOKEN, **_VOICE)
    gather.say("To be put through to the helpline now, press 1, or stay on the line.", **_VOICE)
    response.say("Putting you through now. Please hold.", **_VOICE)  # names nobody: someone may be listening
    dial = response.dial(timeout=30, answer_on_bridge=True)
    dial.number(HELPLINE_E164)
    return str(response)


def _connect_document() -> str:
    response = VoiceResponse()
    response.say("Putting you through to the National Domestic Abuse Helpline.", **_VOICE)
    dial = response.dial(timeout=30, answer_on_bridge=True)
    dial.number(HELPLINE_E164)
    return str(response)


def _sms_document() -> str:
    response = MessagingResponse()
    response.message(TEXT)
    return str(response)


VOICE_TWIML = _voice_document()
CONNECT_TWIML = _connect_document()
SMS_TWIML = _sms_document()
EMPTY_TWIML = str(VoiceResponse())
