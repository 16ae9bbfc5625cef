"""Run the Twilio stand-in as its own process.

    python -m tests.twilio_standin --port 0 --account-sid AC... --auth-token ...

Prints one line ``LISTENING http://127.0.0.1:PORT`` (flushed) once it accepts requests, so a parent
process can read the port it was given, then serves until SIGTERM or SIGINT. Steer it from other
processes with ``StandinControl(url)``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from . import rules
from .server import DEFAULT_SERVICE_SID, TwilioStandin


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.twilio_standin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--step-delay", type=float, default=0.05,
                        help="seconds between message lifecycle steps")
    parser.add_argument("--manual", action="store_true",
                        help="messages move only when advanced through the control API")
    parser.add_argument("--messaging-service", action="append", default=[], metavar="MG...",
                        help="a Messaging Service of the account (besides the default one), with a UK mobile "
                             "in its pool; FOLLOWUP_SENDER in the environment, if it is one, is added too")
    parser.add_argument("--message-redaction", action="store_true",
                        help="the account has Message Redaction (retention parameters are accepted)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    done = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: done.set())
    standin = TwilioStandin(args.account_sid, args.auth_token, host=args.host, port=args.port,
                            step_delay=args.step_delay, auto_advance=not args.manual,
                            message_redaction=args.message_redaction)
    services = list(args.messaging_service)
    if rules.MESSAGING_SERVICE_SID.match(os.environ.get("FOLLOWUP_SENDER", "")):
        services.append(os.environ["FOLLOWUP_SENDER"])
    for number, sid in enumerate(dict.fromkeys(services), start=2):
        if sid != DEFAULT_SERVICE_SID:
            standin.add_messaging_service([f"+4477009{number:05d}"], sid=sid)
    with standin:
        print(f"LISTENING {standin.url}", flush=True)
        while not done.wait(0.5):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
