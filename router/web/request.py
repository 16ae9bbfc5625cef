"""The request class of the app: Flask's Request, with a quick way through Twilio's form bodies.

Every webhook is a small `application/x-www-form-urlencoded` POST with a Content-Length, and every one
is read in full (the signature covers all its parameters). Werkzeug's general form parser (stream
wrappers, limits, multipart machinery) costs about three times what parsing such a body takes, which
was the largest single cost of answering a keypress (docs/performance.md). For exactly that kind of
body, read it and parse it with the standard library; anything else (multipart, chunked, no length,
over the size limit) goes through Werkzeug unchanged, so its limits and errors still apply.
"""
from __future__ import annotations

import time
from urllib.parse import parse_qsl

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict

FORM_TYPE = "application/x-www-form-urlencoded"


class WebhookRequest(Request):
    def __init__(self, environ, *args, **kwargs):
        super().__init__(environ, *args, **kwargs)
        self.started = time.perf_counter()  # for the webhook latency histogram

    def _load_form_data(self) -> None:
        if "form" in self.__dict__:
            return
        environ = self.environ
        length = environ.get("CONTENT_LENGTH")
        if (environ.get("CONTENT_TYPE", "").startswith(FORM_TYPE) and length and length.isdecimal()
                and "stream" not in self.__dict__
                and (self.max_content_length is None or int(length) <= self.max_content_length)):
            body = environ["wsgi.input"].read(int(length)) if int(length) else b""
            self.__dict__["form"] = ImmutableMultiDict(
                parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            self.__dict__["files"] = ImmutableMultiDict()
            return
        super()._load_form_data()
