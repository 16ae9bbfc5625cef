"""The schema of the flow files, as pydantic models: what an operator may write, checked field by field.

Models are frozen so a loaded set of flows can be shared by every request and swapped atomically on
reload. Cross-file rules (a service referenced but not defined, unreachable nodes, ...) live in router/inspect/validation/;
here each file is checked on its own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from datetime import date, timedelta
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from router.definition import hours as hours_mod
from router.definition import phone

Text = dict[str, str]
"""Wording given once per language code, e.g. {"en": "...", "cy": "..."}."""

ID_PATTERN = r"^[a-z][a-z0-9_]*$"
# Keys a person can press or reply. 0 and * are kept for "hear the options again" everywhere.
OPTION_KEY_PATTERN = r"^[1-9]$"  # # ends key input on a call (Twilio <Gather>)
Weekday = hours_mod.Weekday


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# ---------------------------------------------------------------- services.yaml
MAX_CLOSURE_DAYS = 366


class Closure(_Strict):
    """A one-off change to a service's hours: one `date`, or `from` .. `to` (both included); `hours`
    for shorter hours those days (default: closed all day); `note` says why (shown by the tools)."""

    date_: date | None = Field(default=None, alias="date")
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    hours: str = "closed"
    note: str | None = None

    @field_validator("hours")
    @classmethod
    def _hours_parse(cls, value: str) -> str:
        hours_mod.parse_day(value)  # raises ValueError with the reason
        return value

    @model_validator(mode="after")
    def _one_day_or_a_range(self) -> "Closure":
        if self.date_ is not None and (self.from_ is not None or self.to is not None):
            raise ValueError("give either `date:` (one day) or `from:` and `to:` (a range), not both")
        if self.date_ is None and (self.from_ is None or self.to is None):
            raise ValueError("give `date:` (one day), or both `from:` and `to:` (a range of days)")
        start, end = self.from_, self.to
        if self.date_ is None and start is not None and end is not None:   # both given: checked above
            if end < start:
                raise ValueError(f"`to: {end}` is before `from: {start}`")
            if (end - start).days >= MAX_CLOSURE_DAYS:
                raise ValueError("a closure of more than a year is not a closure: change the service's hours")
        return self

    def days(self) -> list[date]:
        if self.date_ is not None:
            return [self.date_]
        start, end = self.from_, self.to
        assert start is not None and end is not None, "the validator above requires both without `date:`"
        return [start + timedelta(days=n) for n in range((end - start).days + 1)]


class Service(_Strict):
    id: str = ""
    name: Text
    run_by: str | None = None
    number: str = Field(description="As the service publishes it, e.g. '0808 2000 247'.")
    open_24_hours: bool = False
    hours: dict[Weekday, str] = Field(default_factory=dict)
    bank_holidays: Literal["closed", "open"] = "closed"
    website: str
    for_: Text = Field(alias="for")
    said_as: Text | None = Field(
        default=None, description="The name as said mid-sentence, e.g. 'the Men's Advice Line'; default: name.")
    audience: Literal["adults", "children", "own_behaviour"] = Field(
        "adults", description="Who the line is for; a fallback must serve the same people.")
    fallback: str | None = None
    name_in_followup: bool = False
    # The number really is shorter than most of its kind (Childline's 0800 1111): checked, not a typo.
    short_number: bool = False
    closures: list[Closure] = Field(default_factory=list)
    checked: date
    source: str

    @field_validator("fallback", mode="before")
    @classmethod
    def _deliberately_none(cls, value: object) -> object:
        """`fallback: none` says on purpose that no other line fits these callers (kept in fields_set)."""
        return None if isinstance(value, str) and value.strip().lower() == "none" else value

    @field_validator("number")
    @classmethod
    def _number_is_free_and_valid(cls, value: str) -> str:
        phone.check_service_number(value)  # raises ValueError with the reason
        return value

    @field_validator("hours")
    @classmethod
    def _hours_parse(cls, value: dict[str, str]) -> dict[str, str]:
        for day, spec in value.items():
            try:
                hours_mod.parse_day(spec)
            except ValueError as exc:
                raise ValueError(f"{day}: {exc}") from None
        return value

    @field_validator("website", "source")
    @classmethod
    def _https_url(cls, value: str) -> str:
        if not re.match(r"^https://[^\s/]+\.[^\s]+$", value):
            raise ValueError("must be a full https:// address")
        return value

    @model_validator(mode="after")
    def _has_hours(self) -> "Service":
        if not self.open_24_hours and not self.hours:
            raise ValueError("give opening 'hours' per weekday, or set 'open_24_hours: true'")
        if self.open_24_hours and self.hours:
            raise ValueError("'open_24_hours: true' and 'hours' contradict each other; keep one")
        return self

    @cached_property
    def e164(self) -> str:
        """The number to dial, worked out once per loaded service (a parse costs ~0.1 ms a call)."""
        return phone.to_e164(self.number)

    @cached_property
    def schedule(self) -> hours_mod.Schedule:
        """Parsed once per loaded service (the model is frozen, so it cannot go stale)."""
        exceptions = {day: hours_mod.parse_day(closure.hours) for closure in self.closures for day in closure.days()}
        return hours_mod.Schedule.from_spec(self.open_24_hours, self.hours, self.bank_holidays == "open", exceptions)


class ServicesFile(_Strict):
    services: dict[Annotated[str, Field(pattern=ID_PATTERN)], Service]


# ---------------------------------------------------------------- menu.yaml
class Option(_Strict):
    key: Annotated[str, Field(pattern=OPTION_KEY_PATTERN)]
    label: Text | None = None
    sms_label: Text | None = Field(default=None, description="A shorter label for texts.")
    next: str | None = None
    language: dict[str, str] | None = Field(
        default=None, description="Switch language: current language -> new language."
    )

    @field_validator("key", mode="before")
    @classmethod
    def _key_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value

    @model_validator(mode="after")
    def _one_action(self) -> "Option":
        if (self.next is None) == (self.language is None):
            raise ValueError("an option needs exactly one of 'next' (a node) or 'language'")
        if self.next is not None and not self.label:
            raise ValueError("an option with 'next' needs a 'label' per language")
        return self


class MenuNode(_Strict):
    type: Literal["menu"]
    prompt: Text | None = None
    options: list[Option] = Field(min_length=1)


class ConnectNode(_Strict):
    type: Literal["connect"]
    service: str
    by_language: dict[str, str] | None = Field(
        default=None, description="Another service for callers in a language, e.g. {cy: live_fear_free}.")

    def service_for(self, lang: str) -> str:
        """The service this node connects a caller in `lang` to (Welsh callers may have their own line)."""
        return (self.by_language or {}).get(lang, self.service)


class SayNode(_Strict):
    type: Literal["say"]
    say: Text
    next: str | None = None


class EndNode(_Strict):
    type: Literal["end"]
    say: Text | None = None


Node = Annotated[Union[MenuNode, ConnectNode, SayNode, EndNode], Field(discriminator="type")]


class MenuFile(_Strict):
    start: str
    nodes: dict[Annotated[str, Field(pattern=ID_PATTERN)], Node]


# ---------------------------------------------------------------- config.yaml
class Voice(_Strict):
    voice: str
    language: str


class FollowupConfig(_Strict):
    later_minutes: int = Field(60, ge=5, le=24 * 60)
    morning: str = Field("09:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class Limits(_Strict):
    """How much one phone, one sender and everyone together can make the helpline send (issue 12).
    flows/config.yaml says why each default is what it is. The same service is never texted to one
    number twice in 24 hours: that is the runtime contract, not a setting."""

    followups_per_number_per_day: int = Field(3, ge=1, le=20)
    followups_per_minute: int = Field(60, ge=1, le=10_000)
    replies_per_sender: int = Field(30, ge=3, le=1000)
    advice_replies_per_sender: int = Field(10, ge=0, le=100)
    reply_window_minutes: int = Field(30, ge=1, le=24 * 60)
    replies_per_minute: int = Field(600, ge=10, le=100_000)
    # 999 / 55 / help / a stop / crisis words past every other limit: this many answers a minute, never 0
    urgent_replies_per_minute: int = Field(6, ge=1, le=60)
    discreet_days: int = Field(7, ge=1, le=31)  # no longer used (issue 18: discreet answers go by sender)


SENDER_PATTERN = r"^(|MG[0-9a-fA-F]{32}|\+[1-9][0-9]{6,14})$"


class Config(_Strict):
    languages: list[Annotated[str, Field(pattern=r"^[a-z]{2,3}$")]] = Field(min_length=1)
    default_language: str
    voices: dict[str, Voice]
    emergency_service: str
    # The 24-hour line for callers in another language (Welsh callers: Live Fear Free). A silent caller
    # is put through to the one for their language.
    emergency_service_by_language: dict[str, str] = Field(default_factory=dict)
    dial_timeout_seconds: int = Field(30, ge=5, le=120)
    gather_timeout_seconds: int = Field(7, ge=3, le=30)
    sms_state_ttl_minutes: int = Field(30, ge=1, le=24 * 60)
    bank_holiday_region: str = "ENG"
    followup: FollowupConfig = FollowupConfig()
    limits: Limits = Limits()
    # Who follow-ups come from: a Messaging Service SID (MG...), a number in E.164, or empty for the
    # number the person called. The FOLLOWUP_SENDER environment variable, if set, wins.
    sender: str = Field("", pattern=SENDER_PATTERN)

    @field_validator("bank_holiday_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        regions = hours_mod.uk_regions()
        if value not in regions:
            raise ValueError(f"{value!r} is not a UK bank-holiday region; use one of {', '.join(regions)}")
        return value

    def emergency_lines(self) -> list[tuple[tuple, str]]:
        """(where in config.yaml, service id) of every 24-hour line silent callers are put through to:
        `emergency_service` and each of `emergency_service_by_language`."""
        return [(("emergency_service",), self.emergency_service)] + [
            (("emergency_service_by_language", lang), sid) for lang, sid in self.emergency_service_by_language.items()]

    @model_validator(mode="after")
    def _languages_consistent(self) -> "Config":
        if self.default_language not in self.languages:
            raise ValueError(f"default_language {self.default_language!r} is not in languages")
        missing = [lang for lang in self.languages if lang not in self.voices]
        if missing:
            raise ValueError(f"no voice for language(s): {', '.join(missing)}")
        return self


# ---------------------------------------------------------------- phrases.yaml
class PhrasesFile(_Strict):
    phrases: dict[str, Text]
    # Whether a fluent speaker has reviewed each phrase, per language other than the default:
    # review: {cy: {voice_safety: "reviewed 2026-11-30 by <name>", no_input: unreviewed, ...}}.
    # `router validate` lists what is unreviewed (a warning: wording may go live, but someone must know).
    review: dict[str, dict[str, str]] = Field(default_factory=dict)


# ---------------------------------------------------------------- the loaded bundle
@dataclass(frozen=True)
class Flows:
    """One consistent, validated set of flow files: what every request reads, never mutated."""

    config: Config
    services: dict[str, Service]
    start: str
    nodes: dict[str, MenuNode | ConnectNode | SayNode | EndNode]
    phrases: dict[str, Text]
    version: str
    phrase_review: dict[str, dict[str, str]] = field(default_factory=dict, compare=False)  # lang -> id -> status
    # Steps that depend only on these flows (menus: no clock, no caller), worked out once per version by
    # the engine. Not part of the flows' identity; a new version starts with an empty one.
    memo: dict = field(default_factory=dict, init=False, compare=False, repr=False)

    def phrase(self, phrase_id: str, lang: str, /, **values: object) -> str:
        """Wording `phrase_id` in `lang` with its {placeholders} filled (default language if missing)."""
        texts = self.phrases[phrase_id]
        template = texts.get(lang) or texts[self.config.default_language]
        return template.format(**values)

    def emergency_for(self, lang: str) -> Service:
        """The 24-hour line for a caller in `lang`: where silence and the safety answer lead."""
        sid = self.config.emergency_service_by_language.get(lang, self.config.emergency_service)
        return self.services.get(sid) or self.services[self.config.emergency_service]

    def text(self, text: Text | None, lang: str) -> str:
        if not text:
            return ""
        return text.get(lang) or text.get(self.config.default_language, "")
