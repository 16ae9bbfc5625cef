"""Operators' scenarios: plain-language promises about the helpline, checked against the real app.

Why: after a change to the flow files, an operator needs to know the journeys that matter still work
("a call at 03:00 on Christmas Day pressing 2 hears the Men's Advice Line is closed and is offered the
24-hour helpline"). Each scenario is played through router/simulator/simulate.py (signed webhooks, real TwiML)
and its expectations are checked on what was heard, read and dialled.

scenarios.yaml is read here only; it is not one of the flow files the app loads (flowfile.FILES).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from router.definition import phone
from router.definition.flowfile import Problem, parse_yaml, read_limited, validate_file
from router.simulator.simulate import DEFAULT_FROM, ScriptInputs, SimulationError, Simulator, Transcript, parse_clock

SCENARIOS_FILE = "scenarios.yaml"
KEY_TOKENS = set("0123456789*#") | {"", "-", "silence", "wait", "hangup"}
Texts = list[str]


def _as_list(value: object) -> object:
    """Let an operator write one expectation without a list: `dials: 0808 2000 247`."""
    if value is None:
        return []
    if isinstance(value, (str, int)):
        return [str(value)]
    return value


class Scenario(BaseModel):
    """One journey: who, when, what they press or text, and what must (not) happen."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    channel: Literal["voice", "sms"]
    at: str = Field(description="London time, 'YYYY-MM-DD HH:MM'.")
    from_: str = Field(DEFAULT_FROM, alias="from")
    lang: str | None = None
    presses: list[str] = Field(default_factory=list)
    replies: list[str] = Field(default_factory=list)
    hears: Texts = Field(default_factory=list)
    not_hears: Texts = Field(default_factory=list)
    reads: Texts = Field(default_factory=list)
    not_reads: Texts = Field(default_factory=list)
    dials: Texts = Field(default_factory=list)
    not_dials: Texts = Field(default_factory=list)
    follow_up: Texts = Field(default_factory=list, description="Words in the follow-up text kept to send.")

    @field_validator("at", mode="before")
    @classmethod
    def _clock(cls, value: object) -> object:
        if isinstance(value, datetime):
            value = value.strftime("%Y-%m-%d %H:%M")
        parse_clock(str(value))  # raises ValueError with the reason
        return str(value)

    @field_validator("presses", "replies", mode="before")
    @classmethod
    def _items_as_text(cls, value: object) -> object:
        value = _as_list(value)
        return ["" if v is None else str(v) for v in value] if isinstance(value, list) else value

    @field_validator("presses")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for token in value:
            outcome = token.lower().removeprefix("dial:")
            burst = len(token) > 1 and all(key in "0123456789*#" for key in token)  # keys typed fast: 999
            if token.lower() not in KEY_TOKENS and not burst and not (
                    token.lower().startswith("dial:") and outcome in
                    ("completed", "busy", "no-answer", "failed", "canceled")):
                raise ValueError(f"{token!r} is not a key: use 0-9, * or #, several keys typed fast (\"999\"), "
                                 "'' for silence, 'hangup', or dial:completed / dial:busy / dial:no-answer "
                                 "after a service is dialled")
        return value

    @field_validator("hears", "not_hears", "reads", "not_reads", "dials", "not_dials", "follow_up", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return _as_list(value)

    @field_validator("dials", "not_dials", "from_", mode="before")
    @classmethod
    def _quoted_numbers(cls, value: object) -> object:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, int):
                raise ValueError(f"write phone numbers in quotes (YAML read {item} as a number): "
                                 f'e.g. "0808 2000 247" or "+447400123456"')
        return value

    @field_validator("dials", "not_dials")
    @classmethod
    def _numbers(cls, value: list[str]) -> list[str]:
        for number in value:
            if phone.normalise_sender(number) is None:
                raise ValueError(f"{number!r} is not a phone number")
        return value

    @field_validator("from_")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not phone.is_withheld(value) and phone.normalise_sender(value) is None:
            raise ValueError(f"{value!r} is not a phone number (or 'anonymous' for a withheld number)")
        return value

    @model_validator(mode="after")
    def _fits_channel(self) -> "Scenario":
        if self.channel == "voice" and (self.replies or self.reads or self.not_reads):
            raise ValueError("a voice scenario uses presses, hears and dials (replies and reads are for texts)")
        if self.channel == "sms" and (self.presses or self.hears or self.not_hears or self.dials or self.not_dials):
            raise ValueError("a text scenario uses replies and reads (presses, hears and dials are for calls)")
        if not (self.hears or self.not_hears or self.reads or self.not_reads or self.dials or self.not_dials
                or self.follow_up):
            raise ValueError("says nothing to check: give hears, reads, dials, not_... or follow_up")
        return self


class ScenariosFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    scenarios: list[Scenario] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> "ScenariosFile":
        names = [s.name for s in self.scenarios]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError("scenario names must be unique; given twice: " + ", ".join(twice))
        return self


def load_scenarios(path: Path, label: str | None = None) -> tuple[list[Scenario], list[Problem]]:
    """Read and validate a scenarios file; problems carry file and line like the flow files'."""
    label = label or str(path)
    try:
        text = read_limited(path).decode("utf-8")   # a huge file is refused by parse_yaml, never read whole
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(label, 1, "", f"cannot be read: {exc}")]
    data, lines, problems = parse_yaml(text, label)
    if problems or data is None:
        return [], problems
    model, problems = validate_file(ScenariosFile, data, lines, label)
    return (list(model.scenarios) if model else []), problems


# ------------------------------------------------------------------ running them
@dataclass
class Result:
    scenario: Scenario
    failures: list[str] = field(default_factory=list)
    transcript: Transcript | None = None

    @property
    def passed(self) -> bool:
        return not self.failures


def _norm(text: str) -> str:
    return " ".join(text.casefold().replace("\u2019", "'").split())


def run(simulator: Simulator, scenario: Scenario) -> Result:
    """Play one scenario from a fresh start and compare what happened with what it expects."""
    result = Result(scenario)
    simulator.reset(at=parse_clock(scenario.at))
    try:
        if scenario.channel == "voice":
            transcript = simulator.call(ScriptInputs(scenario.presses), caller=scenario.from_, lang=scenario.lang)
        else:
            transcript = simulator.texts(ScriptInputs(scenario.replies), sender=scenario.from_, lang=scenario.lang)
    except SimulationError as exc:
        result.failures.append(f"could not be played: {exc}")
        return result
    result.transcript = transcript
    heard = _norm(" ".join(transcript.heard))
    read = _norm(" ".join(transcript.replies))
    later = _norm(" ".join(f.body for f in transcript.followups))
    checks = ((scenario.hears, heard, True, "did not hear {!r}"),
              (scenario.not_hears, heard, False, "heard {!r}, which it should not"),
              (scenario.reads, read, True, "no reply said {!r}"),
              (scenario.not_reads, read, False, "a reply said {!r}, which it should not"))
    for expected, found, wanted, failure in checks:
        result.failures += [failure.format(words) for words in expected if (_norm(words) in found) != wanted]
    dialled = transcript.dialled
    shown = "; ".join(simulator.display(n) for n in dialled) or "nothing"
    for number in scenario.dials:
        if phone.to_e164(number) not in dialled:
            result.failures.append(f"did not dial {number} (dialled: {shown})")
    for number in scenario.not_dials:
        if phone.to_e164(number) in dialled:
            result.failures.append(f"dialled {number}, which it should not")
    for words in scenario.follow_up:
        if _norm(words) not in later:
            kept = "; ".join(f.body for f in transcript.followups) or "no follow-up text was kept"
            result.failures.append(f"the follow-up text does not say {words!r} ({kept})")
    return result


def run_all(simulator: Simulator, scenarios: list[Scenario]) -> list[Result]:
    return [run(simulator, scenario) for scenario in scenarios]
