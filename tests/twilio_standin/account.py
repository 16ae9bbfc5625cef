"""The account around the messages: its phone numbers, its Messaging Services, whether it is a subaccount.

`router twilio check` and `router twilio configure` read and set these, so the stand-in serves them in
the shapes of Twilio's OpenAPI description (tests/twilio_standin/openapi, schemas
``api.v2010.account`` and ``api.v2010.account.incoming_phone_number``; the Messaging Services resource
is messaging.twilio.com/v1, described in twilio-oai's ``spec/json/twilio_messaging_v1.json``:
https://www.twilio.com/docs/messaging/api/service-resource and .../phonenumber-resource). The v1 shapes
here (Service, its PhoneNumber, the list envelope's ``meta``) were checked field for field against that
file at twilio-oai commit d50069b (the commit of the vendored 2010 description); it is not vendored, so
tests/test_twilio_standin.py checks the 2010-04-01 bodies only.

Advanced Opt-Out is configured in the Console only (the tutorial
https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out sets it up there); no REST resource
shows it, so the stand-in keeps it beside the service (``opt_out``) and never serves it.
"""
from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass, field
from typing import Any

from .rules import OptOut

API_VERSION = "2010-04-01"
MESSAGING_BASE = "https://messaging.twilio.com/v1"


def _rfc2822(when: dt.datetime) -> str:
    import email.utils

    return email.utils.format_datetime(when)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@dataclass
class PhoneNumber:
    """One IncomingPhoneNumber: a number the account owns, with its webhooks and capabilities."""

    sid: str
    account_sid: str
    seq: int
    phone_number: str
    friendly_name: str
    capabilities: dict[str, bool]
    voice_url: str | None = None
    voice_method: str = "POST"
    voice_fallback_url: str | None = None
    voice_fallback_method: str = "POST"
    status_callback: str | None = None
    status_callback_method: str = "POST"
    sms_url: str | None = None
    sms_method: str = "POST"
    sms_fallback_url: str | None = None
    sms_fallback_method: str = "POST"
    date_created: dt.datetime = field(default_factory=_now)
    date_updated: dt.datetime = field(default_factory=_now)

    UPDATABLE = {"VoiceUrl": "voice_url", "VoiceMethod": "voice_method", "VoiceFallbackUrl": "voice_fallback_url",
                 "VoiceFallbackMethod": "voice_fallback_method", "StatusCallback": "status_callback",
                 "StatusCallbackMethod": "status_callback_method", "SmsUrl": "sms_url",
                 "SmsMethod": "sms_method", "SmsFallbackUrl": "sms_fallback_url",
                 "SmsFallbackMethod": "sms_fallback_method", "FriendlyName": "friendly_name"}

    @property
    def uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}/IncomingPhoneNumbers/{self.sid}.json"

    def resource(self) -> dict[str, Any]:
        """The JSON Twilio returns (schema ``api.v2010.account.incoming_phone_number``)."""
        return {
            "account_sid": self.account_sid, "address_sid": None, "address_requirements": "none",
            "api_version": API_VERSION, "beta": False, "capabilities": dict(self.capabilities),
            "date_created": _rfc2822(self.date_created), "date_updated": _rfc2822(self.date_updated),
            "friendly_name": self.friendly_name, "identity_sid": None, "phone_number": self.phone_number,
            "origin": "twilio", "sid": self.sid, "sms_application_sid": None,
            "sms_fallback_method": self.sms_fallback_method, "sms_fallback_url": self.sms_fallback_url or "",
            "sms_method": self.sms_method, "sms_url": self.sms_url or "",
            "status_callback": self.status_callback or "", "status_callback_method": self.status_callback_method,
            "trunk_sid": None, "uri": self.uri, "voice_receive_mode": "voice", "voice_application_sid": None,
            "voice_caller_id_lookup": False, "voice_fallback_method": self.voice_fallback_method,
            "voice_fallback_url": self.voice_fallback_url or "", "voice_method": self.voice_method,
            "voice_url": self.voice_url or "", "emergency_status": "Inactive", "emergency_address_sid": None,
            "emergency_address_status": "unregistered", "bundle_sid": None, "status": "in-use", "type": "mobile"
            if self.phone_number.startswith("+447") else "local",
        }


@dataclass
class MessagingService:
    """One Messaging Service (messaging.twilio.com/v1/Services/MG...) and the numbers in its pool."""

    sid: str
    account_sid: str
    seq: int
    friendly_name: str
    number_sids: list[str] = field(default_factory=list)
    inbound_request_url: str | None = None
    use_inbound_webhook_on_number: bool = True
    status_callback: str | None = None
    validity_period: int = 36000
    fallback_to_long_code: bool = False
    opt_out: OptOut = field(default_factory=OptOut)
    date_created: dt.datetime = field(default_factory=_now)

    def resource(self) -> dict[str, Any]:
        """The JSON Twilio returns for a Service (messaging v1)."""
        url = f"{MESSAGING_BASE}/Services/{self.sid}"
        stamp = self.date_created.strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "sid": self.sid, "account_sid": self.account_sid, "friendly_name": self.friendly_name,
            "date_created": stamp, "date_updated": stamp, "inbound_request_url": self.inbound_request_url,
            "inbound_method": "POST", "fallback_url": None, "fallback_method": "POST",
            "status_callback": self.status_callback, "sticky_sender": True, "mms_converter": True,
            "smart_encoding": True, "scan_message_content": "inherit",
            "fallback_to_long_code": self.fallback_to_long_code, "area_code_geomatch": True,
            "synchronous_validation": False, "validity_period": self.validity_period, "url": url,
            "links": {name: f"{url}/{path}" for name, path in (
                ("phone_numbers", "PhoneNumbers"), ("short_codes", "ShortCodes"), ("alpha_senders", "AlphaSenders"),
                ("messages", "Messages"), ("us_app_to_person", "Compliance/Usa2p"),
                ("us_app_to_person_usecases", "Compliance/Usa2p/Usecases"), ("channel_senders", "ChannelSenders"))},
            "usecase": "notifications", "us_app_to_person_registered": False,
            "use_inbound_webhook_on_number": self.use_inbound_webhook_on_number,
        }

    def number_resource(self, number: PhoneNumber) -> dict[str, Any]:
        """A pool number as .../Services/MG.../PhoneNumbers lists it."""
        return {
            "sid": number.sid, "account_sid": self.account_sid, "service_sid": self.sid,
            "date_created": number.date_created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "date_updated": number.date_updated.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "phone_number": number.phone_number, "country_code": "GB",
            "capabilities": [name.upper() for name, on in number.capabilities.items() if on],
            "url": f"{MESSAGING_BASE}/Services/{self.sid}/PhoneNumbers/{number.sid}",
        }


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def account_resource(account_sid: str, owner_account_sid: str, created: dt.datetime) -> dict[str, Any]:
    """GET /2010-04-01/Accounts/{Sid}.json (schema ``api.v2010.account``). A subaccount's
    owner_account_sid is its parent's; a main account's is its own."""
    base = f"/{API_VERSION}/Accounts/{account_sid}"
    names = ("addresses", "conferences", "signing_keys", "transcriptions", "connect_apps", "sip", "authorized_connect_apps",
             "usage", "keys", "applications", "recordings", "short_codes", "calls", "notifications",
             "incoming_phone_numbers", "queues", "messages", "outgoing_caller_ids", "available_phone_numbers",
             "balance")
    return {
        "auth_token": None, "date_created": _rfc2822(created), "date_updated": _rfc2822(created),
        "friendly_name": "helpline" if owner_account_sid == account_sid else "helpline subaccount",
        "owner_account_sid": owner_account_sid, "sid": account_sid, "status": "active",
        "subresource_uris": {name: f"{base}/{name.title().replace('_', '')}.json" for name in names},
        "type": "Full", "uri": f"{base}.json",
    }


def v1_page(base_url: str, request_path: str, query: dict[str, str], key: str, items: list[dict]) -> dict[str, Any]:
    """A messaging v1 list page (``{key: [...], "meta": {...}}``), Page/PageSize only. Its links are
    absolute (twilio-python follows meta.next_page_url as given), so they name the server answering."""
    size = max(1, min(int(query.get("PageSize") or 50), 1000))
    page = max(0, int(query.get("Page") or 0))
    chunk = items[page * size:(page + 1) * size]
    url = f"{base_url}{request_path}"

    def link(number: int) -> str:
        return f"{url}?PageSize={size}&Page={number}"

    return {key: chunk, "meta": {
        "page": page, "page_size": size, "first_page_url": link(0),
        "previous_page_url": link(page - 1) if page > 0 else None, "url": link(page),
        "next_page_url": link(page + 1) if len(items) > (page + 1) * size else None, "key": key}}


class AccountMixin:
    """TwilioStandin's account: numbers, Messaging Services, features, and their REST resources."""

    FEATURES = ("message_redaction", "sms_countries", "sent_final_after", "delete_grace", "owner_account_sid",
                "queue_limit", "strict_services")

    def configure(self, **features: Any) -> None:
        """Change account features (see TwilioStandin's constructor), e.g. configure(message_redaction=True)."""
        unknown = set(features) - set(self.FEATURES)
        if unknown:
            raise ValueError(f"unknown features: {sorted(unknown)}")
        with self._cond:
            for name, value in features.items():
                if name == "sms_countries":
                    value = frozenset(value)
                if name == "owner_account_sid":
                    value = value or self.account_sid
                setattr(self, name, value)

    def add_phone_number(self, phone_number: str, *, sms: bool | None = None, voice: bool = True,
                         friendly_name: str | None = None, **webhooks: str) -> str:
        """A number the account owns (its sid). SMS capability by default only for a UK mobile or a
        non-UK number (a UK 0808 or geographic number cannot text: rules.py). webhooks: voice_url,
        sms_url, status_callback, ... as PhoneNumber fields."""
        if sms is None:
            sms = bool(rules_uk_mobile(phone_number)) or not phone_number.startswith("+44")
        with self._cond:
            number = PhoneNumber(sid=new_sid("PN"), account_sid=self.account_sid, seq=next(self._seq),
                                 phone_number=phone_number, friendly_name=friendly_name or phone_number,
                                 capabilities={"voice": voice, "sms": sms, "mms": False, "fax": False}, **webhooks)
            self._numbers[number.sid] = number
            return number.sid

    def add_messaging_service(self, numbers: list[str], *, sid: str | None = None, friendly_name: str = "service",
                              **options: Any) -> str:
        """A Messaging Service with these numbers in its pool (each added to the account if new)."""
        with self._cond:
            sids = [self._number_by_phone(n).sid if self._number_by_phone(n) else self.add_phone_number(n)
                    for n in numbers]
            service = MessagingService(sid=sid or new_sid("MG"), account_sid=self.account_sid, seq=next(self._seq),
                                       friendly_name=friendly_name, number_sids=sids, **options)
            self._services[service.sid] = service
            return service.sid

    def phone_number(self, phone_number: str) -> dict[str, Any] | None:
        with self._cond:
            number = self._number_by_phone(phone_number)
            return number.resource() if number else None

    def _number_by_phone(self, phone_number: str | None) -> PhoneNumber | None:
        return next((n for n in self._numbers.values() if n.phone_number == phone_number), None)

    def _service_of_number(self, phone_number: str | None) -> MessagingService | None:
        number = self._number_by_phone(phone_number)
        if number is None:
            return None
        return next((s for s in self._services.values() if number.sid in s.number_sids), None)

    def _pool_number(self, service: MessagingService) -> str | None:
        for sid in service.number_sids:
            if sid in self._numbers and self._numbers[sid].capabilities.get("sms"):
                return self._numbers[sid].phone_number
        return None

    # -- REST -----------------------------------------------------------------------------------

    def _fetch_account(self, request) -> Any:
        from .server import Response

        return Response(200, account_resource(self.account_sid, self.owner_account_sid, self.created))

    def _list_numbers(self, request) -> Any:
        numbers = list(self._numbers.values())
        if "PhoneNumber" in request.query:
            numbers = [n for n in numbers if n.phone_number == request.query["PhoneNumber"]]
        return self._page(request, "incoming_phone_numbers", numbers, ("PhoneNumber", "FriendlyName"), self._numbers)

    def _live_number(self, request, sid: str) -> PhoneNumber:
        from .server import not_found

        if sid not in self._numbers:
            raise not_found(request.path)
        return self._numbers[sid]

    def _fetch_number(self, request, sid: str) -> Any:
        from .server import Response

        return Response(200, self._live_number(request, sid).resource())

    def _update_number(self, request, sid: str) -> Any:
        """POST IncomingPhoneNumbers/PN....json: the webhooks `router twilio configure` sets."""
        from .server import Response, TwilioError, first_values

        number = self._live_number(request, sid)
        form = first_values(request.form)
        for name, value in form.items():
            attribute = PhoneNumber.UPDATABLE.get(name)
            if attribute is None:
                continue
            if attribute.endswith("_method") and value.upper() not in ("GET", "POST"):
                raise TwilioError(400, 21219, f"{name} is not valid: {value}")
            if attribute.endswith("_url") or attribute == "status_callback":
                if value and not value.startswith(("http://", "https://")):
                    raise TwilioError(400, 21502, f"{name} is not a valid URL: {value}")
            setattr(number, attribute, value.upper() if attribute.endswith("_method") else value)
        number.date_updated = _now()
        return Response(200, number.resource())

    def _list_services(self, request) -> Any:
        from .server import Response

        items = [s.resource() for s in sorted(self._services.values(), key=lambda s: s.seq)]
        return Response(200, v1_page(self.url, request.path, request.query, "services", items))

    def _live_service(self, request, sid: str) -> MessagingService:
        from .server import not_found

        if sid not in self._services:
            raise not_found(request.path)
        return self._services[sid]

    def _fetch_service(self, request, sid: str) -> Any:
        from .server import Response

        return Response(200, self._live_service(request, sid).resource())

    def _list_service_numbers(self, request, sid: str) -> Any:
        from .server import Response

        service = self._live_service(request, sid)
        items = [service.number_resource(self._numbers[n]) for n in service.number_sids if n in self._numbers]
        return Response(200, v1_page(self.url, request.path, request.query, "phone_numbers", items))


def rules_uk_mobile(number: str) -> bool:
    from .rules import UK_MOBILE

    return bool(UK_MOBILE.match(number))
