"""A stateful local stand-in for Twilio's REST API, for tests (see ``server.py``)."""

from .server import (
    DEFAULT_SERVICE_NUMBER,
    DEFAULT_SERVICE_SID,
    StandinControl,
    TwilioError,
    TwilioStandin,
    client_for,
    wait_for,
)

__all__ = ["DEFAULT_SERVICE_NUMBER", "DEFAULT_SERVICE_SID", "StandinControl", "TwilioError", "TwilioStandin", "client_for", "wait_for"]
