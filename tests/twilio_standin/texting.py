"""Texts that reach the account and the answers to them: inbound webhooks, Twilio's own opt-out handling,
and the replies Twilio makes from a webhook's TwiML.

A mixin of TwilioStandin (server.py), kept apart so each file has one job. The rules and the pages they
follow are in rules.py; the numbers and Messaging Services in account.py.

What Twilio posts to the messaging webhook (https://www.twilio.com/docs/messaging/guides/webhook-request):
MessageSid, SmsSid, SmsMessageSid, AccountSid, MessagingServiceSid (when the number is in a Messaging
Service; then ``To`` is the pool's number), From, To, Body, NumMedia, NumSegments, ApiVersion; and
``OptOutType`` (STOP, START, HELP) when Advanced Opt-Out acted on the text
(https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out).

A TwiML reply to a phone that has opted out is not sent: Twilio records it as failed with error 21610
(https://www.twilio.com/docs/api/errors/21610), and reports that to the <Message> ``action`` URL.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any
from urllib.parse import urljoin

from . import rules


class TextingMixin:
    """Inbound texts, opt-out keywords and TwiML replies (uses TwilioStandin's lock and records)."""

    # -- opt-out scope and configuration --------------------------------------------------------

    def _scope(self, our_number: str | None, service_sid: str | None = None) -> str | None:
        """Who an opt-out binds: the Messaging Service the number is in, else the number itself."""
        if service_sid:
            return service_sid
        service = self._service_of_number(our_number)
        return service.sid if service else our_number

    def _opt_out_rules(self, scope: str | None) -> rules.OptOut:
        service = self._services.get(scope or "")
        if service is not None:
            return service.opt_out
        return self._number_opt_out.get(scope or "", rules.OptOut())

    def set_opt_out(self, scope: str, *, handled: bool = True, advanced: bool = False,
                    stop: list[str] | None = None, start: list[str] | None = None, help: list[str] | None = None,
                    replies: dict[str, str] | None = None) -> None:
        """Configure Twilio's keyword handling for a number or a Messaging Service (Advanced Opt-Out:
        own keywords and replies; handled=False: Twilio leaves keywords alone, as a short code may)."""
        words = lambda given, default: frozenset(w.upper() for w in given) if given else default  # noqa: E731
        config = rules.OptOut(handled=handled, advanced=advanced, stop=words(stop, rules.DEFAULT_STOP),
                              start=words(start, rules.DEFAULT_START), help=words(help, rules.DEFAULT_HELP),
                              replies={**rules.DEFAULT_REPLIES, **(replies or {})})
        with self._cond:
            if scope in self._services:
                self._services[scope].opt_out = config
            else:
                self._number_opt_out[scope] = config

    def is_opted_out(self, person: str, our_number_or_service: str) -> bool:
        with self._cond:
            return (person, self._scope(our_number_or_service)) in self._opted_out

    # -- inbound --------------------------------------------------------------------------------

    def add_inbound_message(self, from_: str, to: str, body: str) -> str:
        """A text someone sent to one of our numbers: ``received``, so deletable at once. Twilio's own
        keyword handling applies (see receive_text, which also gives the webhook's parameters)."""
        return self.receive_text(from_, to, body)["MessageSid"]

    def receive_text(self, from_: str, to: str, body: str) -> dict[str, str]:
        """A text arrives: the inbound record, Twilio's own answer to a keyword (and the opt-out it
        records), and the form Twilio posts to the messaging webhook, which the caller sends on."""
        with self._cond:
            service = self._service_of_number(to)
            kind = self._apply_opt_keyword(from_, to, body)
            sid = self._add_settled_message(from_, to, body, "inbound", "received")
            record = self._messages[sid]
            record.messaging_service_sid = service.sid if service else None
            record.opt_out_type = kind
            params = {"MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid, "AccountSid": self.account_sid,
                      "From": from_, "To": to, "Body": body, "NumMedia": "0",
                      "NumSegments": str(record.num_segments), "ApiVersion": "2010-04-01"}
            if service is not None:
                params["MessagingServiceSid"] = service.sid
            if kind and self._opt_out_rules(self._scope(to)).advanced:
                params["OptOutType"] = kind
            if self.message_redaction:  # the webhook had the text; the record keeps neither it nor the number
                record.body, record.from_ = "", rules.obfuscate(from_)
            return params

    def _apply_opt_keyword(self, person: str, our_number: str, body: str) -> str | None:
        """Twilio's own handling of a keyword text (must hold the lock): the opt-out or opt-in, and
        Twilio's reply, a message record of its own. The kind acted on, or None."""
        scope = self._scope(our_number)
        config = self._opt_out_rules(scope)
        kind = config.kind(body)
        if kind == "STOP":
            self._opted_out.add((person, scope))
        elif kind == "START":
            self._opted_out.discard((person, scope))
        if kind:
            self._add_settled_message(our_number, person, config.replies[kind], "outbound-reply", "delivered")
        return kind

    # -- replies made from TwiML --------------------------------------------------------------

    def add_reply_message(self, from_: str, to: str, body: str) -> str:
        """The answer Twilio creates from a webhook's TwiML <Message>: ``outbound-reply``, ``delivered``
        (not created through the REST API, so not one of :meth:`sent_messages`); ``failed`` with error
        21610 when the phone has opted out of texts from that number or its Messaging Service."""
        with self._cond:
            if (to, self._scope(from_)) in self._opted_out:
                sid = self._add_settled_message(from_, to, body, "outbound-reply", "failed")
                record = self._messages[sid]
                record.error_code, record.error_message = 21610, "Attempt to send to unsubscribed recipient"
                record.date_sent = None
                return sid
            return self._add_settled_message(from_, to, body, "outbound-reply", "delivered")

    def reply_with_twiml(self, inbound: dict[str, str], twiml: str, webhook_url: str) -> list[dict[str, Any]]:
        """Do what Twilio does with the TwiML a messaging webhook answered: each <Message> becomes a reply
        to the texter (refused with 21610 after an opt-out), and one with an ``action`` has its status
        posted there, signed, as Twilio posts it. The replies' snapshots, in order."""
        root = ET.fromstring(twiml)
        replies = []
        for element in root.iter("Message"):
            body = "".join(element.itertext())
            sid = self.add_reply_message(inbound["To"], inbound["From"], body)
            record = self._messages[sid]
            action = element.get("action")
            if action:
                params = {"AccountSid": self.account_sid, "ApiVersion": "2010-04-01", "MessageSid": sid,
                          "SmsSid": sid, "MessageStatus": record.status, "SmsStatus": record.status,
                          "From": record.from_ or "", "To": record.to}
                if record.error_code is not None:
                    params["ErrorCode"] = str(record.error_code)
                if inbound.get("MessagingServiceSid"):
                    params["MessagingServiceSid"] = inbound["MessagingServiceSid"]
                self._callbacks.put((urljoin(webhook_url, action), params, sid, record.status))
            replies.append(record.snapshot())
        return replies
