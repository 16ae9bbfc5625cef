"""Validation: the cross-file checks of a flow folder that `router validate` runs (and `router apply`
and the app before serving): what the schema cannot see, but would strand, confuse or cost a caller or
texter.

The schema (model.py, read by flowfile.py) checks each file on its own. Here the files are checked
together and against what the engine actually does, one concern per module:

- structure.py: every reference exists, every node is reachable and can be left, a key does one thing
- languages.py: every wording in every language; language switches that go somewhere
- phrases.py: the phrases the engine needs, with the placeholders it fills
- services.py: services used, numbers free to call, hours that open, details checked recently
- fallback_chains.py: fallback chains end at a 24-hour service; the emergency service is open 24 hours
- what_callers_hear.py: what a caller in danger hears: a short first menu, fallbacks for the same people, names
  that read naturally, no hours in labels, Welsh reviewed
- rendering.py + sizes.py: every text the router can send, rendered through the engine, fits in two
  SMS segments without needless UCS-2

Imports go one way: these modules import the model, the loader and the engine; nothing below them
imports the checks. load_checked() is what the app serves from: schema and checks, errors refused.
*Warnings* are shown by `router validate` and fail only `--strict`.
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

from router.inspect.validation.what_callers_hear import check_what_callers_hear
from router.inspect.validation.languages import check_languages, text_fields
from router.inspect.validation.locate import ERROR, LANGUAGE_NAMES, WARNING, Locator, lang_name
from router.inspect.validation.phrases import REQUIRED_PHRASES, WEEKDAY_LISTS, check_phrases, placeholders
from router.inspect.validation.rendering import (CLOCKS, VOICE_CLOCKS, Reply, followup_texts, keys_to_try, sms_replies,
                                     sms_text, tracing, voice_walk)
from router.inspect.validation.fallback_chains import check_fallback_chains
from router.inspect.validation.services import STALE_AFTER_MONTHS, check_services, months_before
from router.inspect.validation.sizes import (MAX_SMS_SEGMENTS, PLAIN_EQUIVALENTS, SizeReport, SmsSize, check_rendering,
                                 is_gsm7, plain_text, sms_size)
from router.inspect.validation.values import check_numbers, check_voices, check_welsh_is_welsh
from router.inspect.validation.structure import check_menu_tree, check_references, node_edges, reachable
from router.definition.flowfile import FlowError, Path_, Problem, read_flows
from router.definition.model import Flows

log = logging.getLogger("router.inspect.validation")

__all__ = [
    "CLOCKS", "ERROR", "LANGUAGE_NAMES", "MAX_SMS_SEGMENTS", "PLAIN_EQUIVALENTS", "REQUIRED_PHRASES",
    "STALE_AFTER_MONTHS", "VOICE_CLOCKS", "WARNING", "WEEKDAY_LISTS", "Locator", "Reply", "SizeReport", "SmsSize",
    "followup_texts", "is_gsm7", "keys_to_try", "lang_name", "lint_flows", "lint_folder", "load_checked",
    "months_before", "node_edges", "placeholders", "plain_text", "reachable", "sms_replies", "sms_size",
    "sms_text", "text_fields", "tracing", "voice_walk",
]

_CACHE: dict[tuple, tuple[Problem, ...]] = {}


def lint_flows(flows: Flows, folder: Path | str, lines: dict[str, dict[Path_, int]], *,
               today: date | None = None, clocks: tuple[datetime, ...] = CLOCKS, editing: bool = False,
               base: Flows | None = None) -> list[Problem]:
    """Every problem of a schema-valid set of flows, errors and warnings, sorted by file and line.

    The result is cached by the flows' content hash: the app checks on every start and reload, tests
    start many apps, and rendering every text takes a noticeable fraction of a second.
    """
    today = today or date.today()
    key = (flows.version, str(Path(folder).resolve()), today, clocks, editing, base.version if base else None)
    if key not in _CACHE:
        if len(_CACHE) > 32:
            _CACHE.clear()
        loc = Locator(Path(folder), lines)
        try:
            found = _lint(flows, loc, today, clocks, editing, base)
        except Exception as exc:  # noqa: BLE001 - a bug here must never stop the helpline from loading
            log.exception("lint failed")
            found = [loc.problem("config.yaml", (), f"the checks could not finish ({type(exc).__name__}: "
                                 f"{exc}); the schema checks passed", WARNING)]
        _CACHE[key] = tuple(sorted(set(found)))
    return list(_CACHE[key])


def lint_folder(folder: Path | str, today: date | None = None,
                clocks: tuple[datetime, ...] = CLOCKS, base: Flows | None = None) -> list[Problem]:
    """What `router validate` and `router apply` show for a change: the schema problems if the files do
    not validate, else every problem the checks find (errors and warnings), judged as a change (a
    closure in the past is an error) against `base`, the flows live now (the line a problem is
    reported at is the one that changed)."""
    folder = Path(folder)
    try:
        flows, lines = read_flows(folder)
    except FlowError as exc:
        return exc.problems
    return lint_flows(flows, folder, lines, today=today, clocks=clocks, editing=True, base=base)


def load_checked(folder: Path | str) -> Flows:
    """Load a flow folder as the app serves it: schema and checks. Raises FlowError listing every error."""
    flows, lines = read_flows(folder)
    errors = [p for p in lint_flows(flows, folder, lines) if p.severity == ERROR]
    if errors:
        raise FlowError(errors)
    return flows


def _lint(flows: Flows, loc: Locator, today: date, clocks: tuple[datetime, ...], editing: bool = False,
          base: Flows | None = None) -> list[Problem]:
    problems: list[Problem] = []
    problems += check_references(flows, loc)
    problems += check_menu_tree(flows, loc)
    problems += check_languages(flows, loc)
    problems += check_phrases(flows, loc)
    problems += check_services(flows, loc, today, editing)
    # Judgements of values (a number's usual length, a voice list, Welsh that looks English) refuse a
    # change, but never flows the app is serving: an upgrade that tightens them must not turn every
    # call into the safety answer. The running app warns, as it does for a closure that has passed.
    values = check_numbers(flows, loc, base) + check_voices(flows, loc) + check_welsh_is_welsh(flows, loc)
    problems += values if editing else [replace(p, severity=WARNING) if p.severity == ERROR else p for p in values]
    problems += check_fallback_chains(flows, loc)
    if any(p.severity == ERROR for p in problems):
        return problems  # rendering broken flows would only repeat these errors, or crash
    problems += check_rendering(flows, loc, clocks)
    problems += check_what_callers_hear(flows, loc)
    return problems
