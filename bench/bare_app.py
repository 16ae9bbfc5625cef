"""The baseline for bench/web.py: a bare Flask app answering every POST with one constant TwiML document.

Served by the very same gunicorn command line as the real app (the Procfile's web: line with only the
app swapped), so "our throughput / bare throughput" is what our own code costs on top of gunicorn and
Flask. It reads nothing of the request: no signature check, no form parsing, no Redis, no metrics.
"""
from __future__ import annotations

from flask import Flask, Response

# About the size of the real greeting (~1.3 kB), so bytes on the wire are comparable.
DOCUMENT = (
    '<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/voice/key?at=main&amp;lang=en" '
    'actionOnEmptyResult="false" input="dtmf" numDigits="1" timeout="7">'
    + "".join(f'<Say language="en-GB" voice="Polly.Amy">For option {n}, press {n}.</Say>' for n in range(1, 13))
    + '</Gather><Redirect>/voice/silence?at=main&amp;lang=en&amp;n=1</Redirect></Response>'
)


def create_app() -> Flask:
    app = Flask("bare")

    @app.post("/")
    @app.post("/<path:_path>")
    def twiml(_path: str = ""):
        return Response(DOCUMENT, mimetype="application/xml")

    @app.get("/healthz")
    def healthz():
        return {"status": "ok"}

    return app


app = create_app()
