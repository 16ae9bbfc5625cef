"""router/web/request.py reads Twilio's form bodies itself: it must read them exactly as Werkzeug would.

Whatever the body, the parameters the signature is checked over and the handlers read are the ones that
were sent (repeated fields, UTF-8, percent-escapes, empty values), and every body it does not take
(multipart, another content type, over the size limit) still goes through Werkzeug's own parser.
"""
from __future__ import annotations

import io
from urllib.parse import urlencode

from flask import Request
from werkzeug.datastructures import MultiDict
from werkzeug.test import EnvironBuilder

from router.web.request import WebhookRequest
from tests.support import MOBILE, TOKEN, parse, signature

TRICKY = [("From", MOBILE), ("Body", "caf\u00e9 \U0001F600 <b>&amp;</b> 100%"), ("Body", "second"),
          ("Empty", ""), ("Plus", "a+b c"), ("Digits", "1"), ("Weird=Key", "x&y=z")]


def environ_for(body: bytes, content_type: str = "application/x-www-form-urlencoded") -> dict:
    environ = EnvironBuilder(method="POST", path="/sms").get_environ()
    environ.update({"wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type})
    return environ


def test_form_bodies_read_exactly_as_werkzeug_reads_them():
    body = urlencode(TRICKY).encode()
    ours, theirs = WebhookRequest(environ_for(body)), Request(environ_for(body))
    assert list(ours.form.items(multi=True)) == list(theirs.form.items(multi=True)) == TRICKY


def test_invalid_utf8_is_replaced_not_an_error():
    ours = WebhookRequest(environ_for(b"Body=%FF%FEhi&From=x"))
    assert ours.form["Body"] == "\ufffd\ufffdhi" and ours.form["From"] == "x"


def test_other_content_types_go_through_werkzeug():
    multipart = (b'--XX\r\nContent-Disposition: form-data; name="Body"\r\n\r\nhello\r\n--XX--\r\n')
    ours = WebhookRequest(environ_for(multipart, "multipart/form-data; boundary=XX"))
    assert ours.form["Body"] == "hello"
    assert not WebhookRequest(environ_for(b'{"Body": "x"}', "application/json")).form


def test_a_signed_request_with_repeated_and_unicode_fields_is_answered(client):
    params = [("MessageSid", "SM" + "7" * 32), ("From", MOBILE), ("Body", "helo \u00e2 <x>"), ("Body", "2")]
    url = "http://localhost/sms"
    response = client.post("/sms", data=urlencode(params), base_url="http://localhost",
                           content_type="application/x-www-form-urlencoded",
                           headers={"X-Twilio-Signature": signature(url, _multi(params), TOKEN)})
    assert response.status_code == 200
    assert parse(response.data).find("Message") is not None


def test_a_body_over_the_limit_is_refused_without_being_read(client):
    response = client.post("/voice", data="Body=" + "x" * (200 * 1024),
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 413


def _multi(pairs):
    """Twilio signs every value of a repeated parameter."""
    return MultiDict(pairs)
