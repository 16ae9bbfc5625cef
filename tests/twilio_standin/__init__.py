"""A stateful local stand-in for Twilio's REST API, for tests (see ``server.py``)."""

from .server import (
    StandinControl,
    TwilioError,
    TwilioStandin,
    client_for,
    wait_for,
)

__all__ = ["StandinControl", "TwilioError", "TwilioStandin", "client_for", "wait_for"]
