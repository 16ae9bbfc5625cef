"""`router simulate --url`: the simulator's caller or texter, against a running instance over HTTP.

Why: an operator must be able to check what is live (after `router apply`, at 2am), not only a folder
on their laptop. The requests are the simulator's own, signed with the instance's auth token, and the
TwiML is followed the same way (router/simulator/simulate.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from twilio.request_validator import RequestValidator

from router.inspect.validation import load_checked
from router.definition.hours import LONDON
from router.simulator.recording_jobs import RecordingJobs
from router.simulator.simulate import SimulationError, Simulator
from router.simulator.transcript import display_number
from router.store.connection import redacted_url


@dataclass(frozen=True)
class _Answer:
    """What Simulator.post reads of an answer (as of Flask's test response): the status and the body."""

    status_code: int
    text: str

    def get_data(self, as_text: bool = True) -> str:
        return self.text


class _HttpClient:
    """The one call Simulator.post makes of Flask's test client, over HTTP to a running instance."""

    def __init__(self, timeout: float = 15.0):
        import requests

        self.session = requests.Session()
        self.timeout = timeout

    def post(self, path: str, base_url: str, data: dict, headers: dict) -> _Answer:
        """One request; what goes wrong is said in one sentence with the fix, never a traceback."""
        import requests

        shown = redacted_url(base_url)  # an address with user:password@ never printed whole
        try:
            response = self.session.post(base_url + path, data=data, headers=headers, timeout=self.timeout,
                                         allow_redirects=False)
        except (requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema,
                requests.exceptions.InvalidURL):
            raise SimulationError(f"{shown!r} is not a web address: write --url with http:// or https://, "
                                  "e.g. --url http://localhost:5000") from None
        except requests.exceptions.Timeout:
            raise SimulationError(f"the instance at {shown} did not answer within {self.timeout:.0f} s: it may be "
                                  "overloaded or stuck; look at its /healthz and logs (docs/operators.md, "
                                  "'At 2am')") from None
        except requests.exceptions.ConnectionError:
            raise SimulationError(f"nothing answers at {shown}: the instance is not running there, or the "
                                  "address or port in --url is wrong. Start it (`make run` on a laptop) or "
                                  "check --url against the address Twilio is given") from None
        if response.status_code == 403:
            raise SimulationError(f"the instance at {shown} refused the signature (HTTP 403): set "
                                  "TWILIO_AUTH_TOKEN to that instance's auth token, and give --url exactly as "
                                  "Twilio calls it (behind a proxy, the instance's PUBLIC_BASE_URL)")
        if response.status_code == 404:
            raise SimulationError(f"{shown}{path} does not exist (HTTP 404): --url is the instance's address "
                                  "alone, e.g. https://helpline.example.org, without /voice; is it this app?")
        if response.status_code in (301, 302, 307, 308):
            raise SimulationError(f"{shown} redirects to {response.headers.get('Location')}: give that address "
                                  "as --url (Twilio does not follow redirects on webhooks either)")
        return _Answer(response.status_code, response.text)


class RemoteSimulator(Simulator):
    """The same caller or texter, against a running instance at `url` (`router simulate --url`): what
    is live there, as Twilio would drive it, signed with that instance's auth token.

    The instance's clock and Redis are its own (no --at); follow-up texts are queued by it for real,
    so the default sender is a number from Ofcom's range for drama, which no phone has."""

    DEFAULT_SENDER = "+447700900123"

    def __init__(self, url: str, token: str, flows_dir: Path | str | None = None):
        self.base_url = url.rstrip("/")
        self.notes = [f"playing against the running instance at {redacted_url(self.base_url)}"]
        self.client = _HttpClient()  # type: ignore[assignment]  # the test client's post(), over HTTP
        self.validator = RequestValidator(token)
        self.jobs = RecordingJobs()  # nothing is recorded here: the instance does its own work
        self.now = datetime.now(LONDON)
        self._sids = 0
        self._flows = None
        if flows_dir is not None:
            try:
                self._flows = load_checked(flows_dir)  # only to name dialled numbers and find the Welsh key
            except Exception:  # noqa: BLE001 - naming numbers is a nicety
                self._flows = None

    @property
    def flows(self):
        if self._flows is None:
            raise SimulationError("no local flows to look this up in (--flows)")
        return self._flows

    def display(self, e164: str) -> str:
        return super().display(e164) if self._flows is not None else display_number(e164)

    def reset(self, at: datetime | None = None) -> None:
        if at is not None:
            raise SimulationError("a running instance keeps its own clock: --at cannot be used with --url")
