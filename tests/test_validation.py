"""router/inspect/validation (what `router validate` runs): each rule, shown by a copy of the shipped
flows broken in exactly one way: the problem must name the right file, line and severity. And the
shipped flows must load with no errors.

Edits go through the YAML structure (change()), not the wording, so rewording a phrase does not break
these tests; the expected line is found independently, by searching the edited file's text."""
from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from router.inspect import validation
from router import engine
from router.definition.flowfile import FlowError, Problem, load_flows, read_flows
from router.inspect.validation import load_checked
from router.definition.model import Flows

REPO = Path(__file__).resolve().parent.parent
FLOWS = REPO / "flows"
TODAY = date(2026, 11, 21)
DELETE = object()


def copy_flows(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder, ignore=shutil.ignore_patterns("scenarios.yaml"))
    return folder


def change(folder: Path, name: str, path: tuple, value: Any = DELETE) -> None:
    """Set (or delete) the value at `path` of a flow file, which is rewritten as plain block YAML."""
    file = folder / name
    data = yaml.safe_load(file.read_text())
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    file.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100_000))


def get(name: str, path: tuple) -> Any:
    data = yaml.safe_load((FLOWS / name).read_text())
    for part in path:
        data = data[part]
    return data


def line_of(folder: Path, name: str, needle: str, after: str = "") -> int:
    """The line of the first `needle` (after the first `after`), found in the file's text."""
    text = (folder / name).read_text()
    start = text.index(after) if after else 0
    return text[: text.index(needle, start)].count("\n") + 1


def problems(folder: Path, today: date = TODAY, texts: bool = False) -> list[Problem]:
    """Lint a folder; rules that are not about texts are checked at one clock only, to keep tests fast."""
    return validation.lint_folder(folder, today, validation.CLOCKS if texts else validation.CLOCKS[:1])


def find(found: list[Problem], name: str, line: int, severity: str, words: str) -> Problem:
    for problem in found:
        if problem.file.endswith(name) and problem.line == line and problem.severity == severity \
                and words in problem.reason:
            return problem
    raise AssertionError(f"no {severity} at {name}:{line} saying {words!r}; got:\n" +
                         "\n".join(str(p) for p in found))


def errors(found: list[Problem]) -> list[Problem]:
    return [p for p in found if p.severity == "error"]


def add_node(folder: Path, node_id: str, node: dict, reached_by_key_8: bool = True) -> None:
    """Add a node to menu.yaml; by default option 9 of other_helplines ('the main menu') leads to it."""
    change(folder, "menu.yaml", ("nodes", node_id), node)
    if reached_by_key_8:
        options = get("menu.yaml", ("nodes", "other_helplines", "options"))
        index = [str(o["key"]) for o in options].index("9")
        change(folder, "menu.yaml", ("nodes", "other_helplines", "options", index, "next"), node_id)


BOTH = {"en": "Thanks.", "cy": "Diolch."}


# ------------------------------------------------------------------ the shipped flows
def test_shipped_flows_have_no_errors():
    found = validation.lint_folder(FLOWS, TODAY)
    assert errors(found) == [], "\n".join(str(p) for p in found)
    load_checked(FLOWS)  # what the app does at start: must not raise


def test_load_flows_refuses_lint_errors(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "config.yaml", ("emergency_service",), "mens_advice_line")
    with pytest.raises(FlowError) as caught:
        load_checked(folder)
    assert any("not open 24 hours" in p.reason for p in caught.value.problems)
    load_flows(folder)  # the schema alone is happy


def test_a_bug_in_lint_never_stops_the_flows_loading(tmp_path, monkeypatch):
    folder = copy_flows(tmp_path)
    change(folder, "config.yaml", ("dial_timeout_seconds",), 31)  # a new version: not cached

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(validation, "_lint", broken)
    load_checked(folder)
    assert any("could not finish" in p.reason and p.severity == "warning" for p in validation.lint_folder(folder, TODAY))


# ------------------------------------------------------------------ references
def test_option_next_to_an_undefined_node(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("nodes", "main", "options", 0, "next"), "domestic_abuses")
    problem = find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "next: domestic_abuses"), "error",
                   "'domestic_abuses', which is not defined")
    assert problem.where == "nodes.main.options[1].next"  # counted from 1, as operators count


def test_menu_start_undefined(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("start",), "mian")
    find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "start: mian"), "error",
         "the start node 'mian' is not defined")


def test_say_next_undefined(tmp_path):
    folder = copy_flows(tmp_path)
    add_node(folder, "thanks", {"type": "say", "say": BOTH, "next": "nowhere"})
    find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "next: nowhere"), "error",
         "goes to 'nowhere', which is not defined")


def test_service_referenced_but_not_defined(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("nodes", "lgbt", "service"), "gallop")
    find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "service: gallop"), "error",
         "service 'gallop' is not defined in services.yaml")


def test_fallback_not_defined(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "fallback"), "refuge")
    find(problems(folder), "services.yaml", line_of(folder, "services.yaml", "fallback: refuge"), "error",
         "fallback 'refuge' is not a service")


# ------------------------------------------------------------------ the menu tree
def test_unreachable_node_is_a_warning(tmp_path):
    folder = copy_flows(tmp_path)
    add_node(folder, "spare", {"type": "end", "say": BOTH}, reached_by_key_8=False)
    problem = find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "  spare:"), "warning",
                   "no caller can reach this node")
    assert problem.where == "nodes.spare"


def test_say_node_without_next_is_a_dead_end(tmp_path):
    folder = copy_flows(tmp_path)
    add_node(folder, "thanks", {"type": "say", "say": BOTH})
    find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "  thanks:"), "error", "is a dead end")


def test_end_node_is_intended_and_not_a_dead_end(tmp_path):
    folder = copy_flows(tmp_path)
    add_node(folder, "bye", {"type": "end", "say": BOTH})
    assert not [p for p in problems(folder) if "dead end" in p.reason or "bye" in p.where]


def test_loop_with_no_way_out(tmp_path):
    folder = copy_flows(tmp_path)
    add_node(folder, "round_a", {"type": "menu", "options": [
        {"key": 1, "label": {"en": "more", "cy": "mwy"}, "next": "round_b"}]})
    add_node(folder, "round_b", {"type": "menu", "options": [
        {"key": 1, "label": {"en": "back", "cy": "yn ol"}, "next": "round_a"}]}, reached_by_key_8=False)
    found = problems(folder)
    find(found, "menu.yaml", line_of(folder, "menu.yaml", "  round_a:"), "error",
         "can only go round between round_a, round_b")
    find(found, "menu.yaml", line_of(folder, "menu.yaml", "  round_b:"), "error",
         "can only go round between round_a, round_b")


def test_say_nodes_in_a_circle(tmp_path):
    folder = copy_flows(tmp_path)
    add_node(folder, "say_a", {"type": "say", "say": BOTH, "next": "say_b"})
    add_node(folder, "say_b", {"type": "say", "say": BOTH, "next": "say_a"}, reached_by_key_8=False)
    find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "next: say_b"), "error",
         "say_a -> say_b -> say_a lead to each other")


def test_two_options_on_one_key(tmp_path):
    """Edited as text, to check the line against the file as an operator wrote it."""
    folder = copy_flows(tmp_path)
    text = (folder / "menu.yaml").read_text()
    at = text.index("      - key: 9\n", text.index("  other_helplines:"))  # the other helplines' "main menu"
    (folder / "menu.yaml").write_text(text[:at] + "      - key: 4\n" + text[at + len("      - key: 9\n"):])
    line = text[:at].count("\n") + 1
    problem = find(problems(folder), "menu.yaml", line, "error", "key 4 is already used by option 4 of this menu")
    assert problem.where == "nodes.other_helplines.options[8].key"  # counted from 1 (7: Samaritans)


def test_hash_key_cannot_be_pressed_on_a_call(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("nodes", "other_helplines", "options", 4, "key"), "#")
    find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "key: '#'"), "error",
         "# ends key input on a call, so callers cannot choose it")


def test_key_8_on_the_start_menu_clashes_with_sms_follow_up(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("nodes", "main", "options", 6, "key"), 8)
    find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "key: 8"), "warning",
         "a reply of 8 asks for a follow-up text")


# ------------------------------------------------------------------ languages
def language_option_index() -> int:
    return [i for i, o in enumerate(get("menu.yaml", ("nodes", "main", "options"))) if "language" in o][0]


def test_language_option_to_a_missing_language(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("nodes", "main", "options", language_option_index(), "language", "en"), "fr")
    find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "en: fr"), "error",
         "switches to 'fr', which is not a configured language")


def test_language_option_missing_for_one_language(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("nodes", "main", "options", language_option_index(), "language", "cy"))
    find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "language:"), "warning",
         "in Welsh key 9 is not offered")


def test_label_missing_a_language(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("nodes", "main", "options", 0, "label", "cy"))
    problem = find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "label:"), "error",
                   "has no 'cy' wording: Welsh callers would get the English instead")
    assert problem.where == "nodes.main.options[1].label"


def test_sms_label_missing_a_language(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("nodes", "main", "options", 1, "sms_label", "cy"))
    problem = find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "sms_label:", after="key: 2"),
                   "error", "has no 'cy' wording")
    assert problem.where == "nodes.main.options[2].sms_label"


def test_prompt_missing_a_language(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("nodes", "other_helplines", "prompt", "cy"), "")
    find(problems(folder), "menu.yaml", line_of(folder, "menu.yaml", "cy: ''"), "error", "is empty")


def test_phrase_missing_a_translation(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "goodbye", "cy"))
    problem = find(problems(folder), "phrases.yaml", line_of(folder, "phrases.yaml", "  goodbye:"), "error",
                   "has no 'cy' wording")
    assert problem.where == "phrases.goodbye"


def test_service_name_missing_a_translation(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "childline", "name", "cy"))
    find(problems(folder), "services.yaml", line_of(folder, "services.yaml", "name:", after="  childline:"),
         "error", "has no 'cy' wording")


def test_wording_in_a_language_nobody_configured(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "goodbye", "fr"), "Au revoir.")
    find(problems(folder), "phrases.yaml", line_of(folder, "phrases.yaml", "fr: Au revoir."), "warning",
         "'fr' is not one of the configured languages")


# ------------------------------------------------------------------ phrases
def test_required_phrase_missing(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "goodbye"))
    find(problems(folder), "phrases.yaml", line_of(folder, "phrases.yaml", "phrases:"), "error",
         "the router needs a phrase 'goodbye'")


def test_unknown_placeholder(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "connecting", "en"), "Putting you through to the {nmae}.")
    problem = find(problems(folder), "phrases.yaml", line_of(folder, "phrases.yaml", "{nmae}"), "error",
                   "uses {nmae}, which the router does not fill in")
    assert "{name}" in problem.reason and problem.where == "phrases.connecting.en"


def test_placeholders_differ_between_languages(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "connecting", "cy"), "Rydyn ni'n eich trosglwyddo.")
    find(problems(folder), "phrases.yaml", line_of(folder, "phrases.yaml", "Rydyn ni'n eich trosglwyddo."),
         "error", "has placeholders none but the English has {name}")


def test_brace_that_is_not_a_placeholder(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "goodbye", "en"), "Goodbye {.")
    find(problems(folder), "phrases.yaml", line_of(folder, "phrases.yaml", "Goodbye {."), "error",
         "does not make a placeholder")


def test_day_names_must_be_seven(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "days_short", "en"), "Mon,Tue,Wed,Thu,Fri,Sat")
    find(problems(folder), "phrases.yaml", line_of(folder, "phrases.yaml", "Mon,Tue,Wed,Thu,Fri,Sat"), "error",
         "must list the seven days")


def test_required_phrases_table_matches_the_engine(monkeypatch):
    """Every phrase the engine asks for while answering every place is in REQUIRED_PHRASES with exactly
    the placeholders it fills: the table cannot silently fall behind engine.py."""
    flows = load_flows(FLOWS)
    used: dict[str, set[frozenset[str]]] = {}
    original = Flows.phrase

    def record(self, phrase_id, lang, /, **values):
        used.setdefault(phrase_id, set()).add(frozenset(values))
        return original(self, phrase_id, lang, **values)

    monkeypatch.setattr(Flows, "phrase", record)
    for _ in validation.voice_walk(flows):
        pass
    list(validation.sms_replies(flows))
    list(validation.followup_texts(flows))
    for when in ("now", "later", "morning"):
        ctx = engine.Context(flows, engine.VOICE, "en", validation.CLOCKS[0], True)
        engine.schedule_followup(ctx, flows.services["galop"], when)
    engine.followup_not_arranged(ctx, "galop")
    engine.cancelled_by_key(ctx)  # issues 12 and 18's steps, said outside the menu walk
    engine.cancel_not_recorded(ctx)
    from router.engine import texts as textsteps  # the text channel's own steps (issues 12, 18, 19)
    sms = engine.Context(flows, engine.SMS, "en", validation.CLOCKS[0], True)
    textsteps.discreet(sms), textsteps.stopped(sms), textsteps.stopped(sms, neutral=True)
    textsteps.stop_not_recorded(sms)
    textsteps.first_reply(sms), textsteps.crisis(sms), textsteps.not_understood(sms, "main"), textsteps.landline(sms)
    for phrase_id, calls in used.items():
        assert phrase_id in validation.REQUIRED_PHRASES, phrase_id
        assert calls == {validation.REQUIRED_PHRASES[phrase_id]}, (phrase_id, calls)
    # followup_name and clock_midnight: only for a service
    # with `name_in_followup: true` or hours ending at 24:00, which the shipped flows do not have.
    # all_day_* and day_pair_long: only for hours like "00:00-24:00" on a day, or two days alone.
    assert set(validation.REQUIRED_PHRASES) - set(used) <= {"followup_name", "clock_midnight",
                                                      "all_day_long", "all_day_short", "day_pair_long"}, \
        set(validation.REQUIRED_PHRASES) - set(used)


# ------------------------------------------------------------------ services
def test_service_defined_but_never_used_is_a_warning(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "menu.yaml", ("nodes", "other_helplines", "options", 3, "next"), "main")
    change(folder, "menu.yaml", ("nodes", "stop_it_now"))
    find(problems(folder), "services.yaml", line_of(folder, "services.yaml", "  stop_it_now:"), "warning",
         "is not offered by any menu node")


def test_service_used_only_as_a_fallback_counts_as_used(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "backup"), {
        "name": {"en": "Backup Line", "cy": "Llinell Wrth Gefn"}, "number": "0808 2000 248",
        "open_24_hours": True, "website": "https://backup.example.org", "for": {"en": "all", "cy": "pawb"},
        "checked": TODAY, "source": "https://backup.example.org"})
    change(folder, "services.yaml", ("services", "mens_advice_line", "fallback"), "backup")
    assert not [p for p in problems(folder) if p.where == "services.backup" and "nobody is ever sent" in p.reason]


def test_fallback_chain_ending_at_a_closed_service(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "fallback"), "karma_nirvana")
    change(folder, "services.yaml", ("services", "karma_nirvana", "fallback"))
    found = problems(folder)
    find(found, "services.yaml", line_of(folder, "services.yaml", "fallback: karma_nirvana"), "error",
         "the fallback chain galop -> karma_nirvana ends at 'karma_nirvana'")
    find(found, "services.yaml", line_of(folder, "services.yaml", "  karma_nirvana:"), "warning",
         "has opening hours but no `fallback`")


def test_fallback_cycle(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "fallback"), "karma_nirvana")
    change(folder, "services.yaml", ("services", "karma_nirvana", "fallback"), "galop")
    found = [p for p in problems(folder) if "circle" in p.reason]
    assert len(found) == 1 and found[0].severity == "error" and found[0].file.endswith("services.yaml")
    assert found[0].line in (line_of(folder, "services.yaml", "fallback: karma_nirvana"),
                             line_of(folder, "services.yaml", "fallback: galop"))


def test_emergency_service_must_be_open_24_hours(tmp_path):
    """Edited as text: the line must be the one the operator wrote, in a file that keeps its comments."""
    folder = copy_flows(tmp_path)
    config = folder / "config.yaml"
    text = config.read_text()
    config.write_text(text.replace("emergency_service: national_domestic_abuse_helpline",
                                   "emergency_service: mens_advice_line"))
    line = text[: text.index("emergency_service:")].count("\n") + 1
    problem = find(problems(folder), "config.yaml", line, "error", "is not open 24 hours")
    assert problem.where == "emergency_service"


def test_service_closed_every_day(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "mens_advice_line", "hours"), {"mon": "closed"})
    find(problems(folder), "services.yaml", line_of(folder, "services.yaml", "hours:", after="  mens_advice_line:"),
         "error", "is closed every day")


def test_stale_checked_date_is_a_warning(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "checked"), date(2026, 5, 20))
    line = line_of(folder, "services.yaml", "checked: 2026-05-20")
    problem = find(problems(folder, today=date(2026, 11, 21)), "services.yaml", line, "warning",
                   "more than 6 months ago")
    assert get("services.yaml", ("services", "galop", "source")) in problem.reason
    assert not [p for p in problems(folder, today=date(2026, 11, 19)) if "months ago" in p.reason]


def test_personal_number_is_refused_and_premium_rate_message_is_clear(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "number"), "0700 123 4567")
    line = line_of(folder, "services.yaml", "0700 123 4567")
    find(problems(folder), "services.yaml", line, "error", "personal or paging number (070/076)")
    change(folder, "services.yaml", ("services", "galop", "number"), "0909 879 0000")
    problem = find(problems(folder), "services.yaml", line, "error", "is a premium-rate number; helplines must be free")
    assert problem.where == "services.galop.number"


def test_non_uk_and_invalid_numbers(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "number"), "+33 1 23 45 67 89")
    line = line_of(folder, "services.yaml", "+33 1 23 45 67 89")
    find(problems(folder), "services.yaml", line, "error", "is not a UK number")
    change(folder, "services.yaml", ("services", "galop", "number"), "0800 999")
    find(problems(folder), "services.yaml", line, "error", "'0800 999' is not a valid phone number")


def test_hours_that_do_not_parse_or_overlap(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "hours", "mon"), "10:00-17:00, 16:00-18:00")
    find(problems(folder), "services.yaml", line_of(folder, "services.yaml", "hours:", after="  galop:"), "error",
         "mon: time ranges overlap")
    change(folder, "services.yaml", ("services", "galop", "hours", "mon"), "10am-5pm")
    find(problems(folder), "services.yaml", line_of(folder, "services.yaml", "hours:", after="  galop:"), "error",
         "mon: '10am-5pm' is not a time range")


def test_bank_holiday_region_must_exist(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "config.yaml", ("bank_holiday_region",), "WAL")
    find(problems(folder), "config.yaml", line_of(folder, "config.yaml", "bank_holiday_region:"), "error",
         "is not a UK bank-holiday region")


# ------------------------------------------------------------------ texts
def test_sms_over_two_segments(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "sms_safety", "en"), "In danger now? Call 999. " * 8)
    problem = find(problems(folder, texts=True), "menu.yaml", line_of(folder, "menu.yaml", "  main:"), "error",
                   "the text reply to a first text (English")
    assert "3 text messages long" in problem.reason and "phrase sms_safety" in problem.reason


def test_follow_up_text_over_two_segments(tmp_path):
    folder = copy_flows(tmp_path)
    long = get("phrases.yaml", ("phrases", "followup_text", "en")) + " This is a long sentence." * 8
    change(folder, "phrases.yaml", ("phrases", "followup_text", "en"), long)
    find(problems(folder, texts=True), "phrases.yaml", line_of(folder, "phrases.yaml", "This is a long sentence."),
         "error", "the follow-up text for")


def test_curly_quote_forcing_ucs2_is_an_error(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "sms_safety", "en"), "In danger? Call 999. Can\u2019t speak? Press 55.")
    problem = find(problems(folder, texts=True), "phrases.yaml", line_of(folder, "phrases.yaml", "Can\u2019t speak"),
                   "error", "forces the text reply")
    assert problem.where == "phrases.sms_safety.en" and "write \"'\" instead" in problem.reason


def test_welsh_letter_in_a_short_text_is_a_warning(tmp_path):
    """A correctly spelt Welsh word that keeps its text within two messages: worth knowing, not refused."""
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "sms_stopped", "cy"), "Ni chewch ragor o negeseuon gennym â'r rhif hwn.")
    found = problems(folder, texts=True)
    problem = find(found, "phrases.yaml", line_of(folder, "phrases.yaml", "gennym â'r"), "warning",
                   "is not in the GSM-7 alphabet")
    assert problem.where == "phrases.sms_stopped.cy" and "UCS-2" in problem.reason
    assert errors(found) == []


def test_welsh_letter_making_a_text_over_two_messages_is_an_error(tmp_path):
    """The guide says over two messages is an error: so it is, also when an accent is what makes it so."""
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "respect_phoneline", "name", "cy"), "Llinell Ffôn Respect")
    found = errors(problems(folder, texts=True))
    assert found, "an accent that makes a text 3+ messages long must be refused"
    assert all("text messages long because of 'ô'" in p.reason for p in found), found
    assert all("spell 'ô' without accents" in p.hint for p in found)


def test_the_stop_reply_is_checked(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "sms_stopped", "en"), "You won\u2019t get more texts. " + "x" * 480)
    found = errors(problems(folder, texts=True))
    line = line_of(folder, "phrases.yaml", "You won")
    find(found, "phrases.yaml", line, "error", "the reply to STOP (English) is 8 text messages long")
    find(found, "phrases.yaml", line, "error", "forces the reply to STOP (English) into UCS-2")


def test_one_over_long_phrase_is_one_error_at_the_phrase(tmp_path):
    """An over-long sms_service_info makes every service's reply too long: one short error, at the phrase."""
    folder = copy_flows(tmp_path)
    long_info = get("phrases.yaml", ("phrases", "sms_service_info", "en")) + " " + "Please read this. " * 12
    change(folder, "phrases.yaml", ("phrases", "sms_service_info", "en"), long_info)
    found = [p for p in errors(problems(folder, texts=True)) if "messages" in p.reason]
    assert len(found) == 1, "\n".join(map(str, found))
    problem = find(found, "phrases.yaml", line_of(folder, "phrases.yaml", "en:", after="sms_service_info:"),
                   "error", "this phrase makes")
    assert problem.where == "phrases.sms_service_info.en" and "shorten this phrase by at least" in problem.hint
    assert len(str(problem)) < 400


def test_voice_only_wording_may_use_any_character(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "phrases.yaml", ("phrases", "goodbye", "en"), "Thank you for calling \u2014 goodbye.")
    assert errors(problems(folder, texts=True)) == []


def test_segment_counting():
    assert validation.sms_size("a" * 160) == validation.SmsSize("GSM-7", 160, 1)
    assert validation.sms_size("a" * 161).segments == 2
    assert validation.sms_size("a" * 306).segments == 2 and validation.sms_size("a" * 307).segments == 3
    assert validation.sms_size("{" * 80).units == 160  # extension characters count twice
    assert validation.sms_size("\u0175" * 70) == validation.SmsSize("UCS-2", 70, 1)
    assert validation.sms_size("\u0175" * 71).segments == 2 and validation.sms_size("\u0175" * 135).segments == 3
    assert validation.plain_text("Can\u2019t \u2014 \u0175\u2026") == "Can't - w..."


# ------------------------------------------------------------------ hours, closures and 24-hour lines
def test_midnight_to_midnight_every_day_suggests_open_24_hours(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "hours"),
           {day: "00:00-24:00" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    problem = find(problems(folder), "services.yaml", line_of(folder, "services.yaml", "hours:", after="galop:"),
                   "error", "is 00:00-24:00 every day")
    assert "open_24_hours: true" in problem.hint


def test_a_24_hour_service_without_a_fallback_is_a_warning(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "hours"), DELETE)
    change(folder, "services.yaml", ("services", "galop", "fallback"), DELETE)
    change(folder, "services.yaml", ("services", "galop", "open_24_hours"), True)
    problem = find(problems(folder), "services.yaml", line_of(folder, "services.yaml", "galop:"), "warning",
                   "is open 24 hours but has no `fallback`")
    assert "fallback: national_domestic_abuse_helpline" in problem.hint
    assert not errors(problems(folder))


def test_closing_the_emergency_service_is_an_error_and_a_closure_in_the_past_or_years_ahead_too(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "national_domestic_abuse_helpline", "closures"),
           [{"date": date(2026, 12, 25)}])
    change(folder, "services.yaml", ("services", "galop", "closures"),
           [{"date": date(2026, 1, 2)}, {"date": date(2062, 12, 24)}])
    found = problems(folder)
    problem = find(found, "services.yaml", line_of(folder, "services.yaml", "date: 2026-12-25"), "error",
                   "closes national_domestic_abuse_helpline")
    assert "router divert" in problem.hint
    find(found, "services.yaml", line_of(folder, "services.yaml", "date: 2026-01-02"), "error",
         "this closure ended on Fri 02 Jan 2026, in the past")
    find(found, "services.yaml", line_of(folder, "services.yaml", "date: 2062-12-24"), "error",
         "this closure starts on Sun 24 Dec 2062, more than a year ahead")
    flows, lines = read_flows(folder)
    served = validation.lint_flows(flows, folder, lines, today=TODAY, clocks=validation.CLOCKS[:1])
    find(served, "services.yaml", line_of(folder, "services.yaml", "date: 2026-01-02"), "warning",
         "this closure ended on Fri 02 Jan 2026"), "the running app never refuses flows because a date passed"


def test_closure_notes_say_when_and_how(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "closures"),
           [{"date": date(2026, 12, 24), "hours": "10:00-13:00", "note": "Christmas Eve"},
            {"from": date(2026, 12, 29), "to": date(2026, 12, 31)}])
    from router.inspect.validation.services import closure_notes
    notes = closure_notes(load_flows(folder), date(2026, 12, 1))
    assert notes == [
        "Galop National LGBT+ Domestic Abuse Helpline (galop): Thu 24 Dec 2026: open only 10am-1pm (Christmas Eve)",
        "Galop National LGBT+ Domestic Abuse Helpline (galop): Tue 29 Dec 2026 to Thu 31 Dec 2026: closed all day"]
    assert not errors(problems(folder, texts=True))
