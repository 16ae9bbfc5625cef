"""The flow files: the shipped ones validate; a broken one is refused with its file, line and reason."""
from __future__ import annotations

import pytest

from router.definition.flowfile import FlowError, load_flows
from router.live.flowstore import FlowStore
from tests.conftest import FLOWS, copy_flows


def test_shipped_flows_validate():
    flows = load_flows(FLOWS)
    assert set(flows.config.languages) == {"en", "cy"}
    assert flows.services["national_domestic_abuse_helpline"].e164 == "+448082000247"
    for service in flows.services.values():
        assert service.checked and service.source.startswith("https://")
        # every service falls back, or says on purpose that no line for the same people fits
        assert service.fallback or service.open_24_hours or "fallback" in service.model_fields_set


def _break(folder, name, old, new):
    path = folder / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if new.strip().splitlines()[0] in line)


@pytest.mark.parametrize("name, old, new, reason", [
    ("services.yaml", '"0800 999 5428"', '"0800 999"', "not a valid phone number"),
    ("services.yaml", '"0800 999 5428"', '"09012 345678"', "premium-rate"),
    ("services.yaml", '"0800 999 5428"', '"+1 202 555 0143"', "not a UK number"),
    ("services.yaml", 'mon: "10:00-17:00"', 'mon: "10:00-17:00, 16:00-18:00"', "overlap"),
    ("services.yaml", 'mon: "10:00-17:00"', 'mon: "10am till 5"', "not a time range"),
    ("menu.yaml", "type: menu", "type: meny", "type"),
    ("config.yaml", "dial_timeout_seconds: 30", "dial_timout_seconds: 30", "not a known field"),
])
def test_broken_file_is_refused_with_file_line_and_reason(tmp_path, name, old, new, reason):
    folder = copy_flows(tmp_path)
    line = _break(folder, name, old, new)
    with pytest.raises(FlowError) as caught:
        load_flows(folder)
    problems = caught.value.problems
    assert any(p.file.endswith(name) and p.line == line and reason in p.reason for p in problems), problems
    assert "Traceback" not in str(caught.value)
    assert f"{name}:{line}:" in str(caught.value)


def test_yaml_syntax_error_is_reported_with_its_line(tmp_path):
    folder = copy_flows(tmp_path)
    path = folder / "menu.yaml"
    lines = path.read_text().splitlines()
    at = lines.index("    type: menu")  # the first menu's type, a few lines below the comments
    lines[at] = lines[at] + ' "unclosed'
    path.write_text("\n".join(lines))
    with pytest.raises(FlowError) as caught:
        load_flows(folder)
    assert any(p.file.endswith("menu.yaml") and at <= p.line <= at + 3 for p in caught.value.problems)


def test_duplicate_key_in_a_mapping_is_refused(tmp_path):
    folder = copy_flows(tmp_path)
    path = folder / "config.yaml"
    path.write_text(path.read_text() + "\ndial_timeout_seconds: 45\n")
    with pytest.raises(FlowError) as caught:
        load_flows(folder)
    assert any("given twice" in p.reason for p in caught.value.problems)


def test_missing_file_is_refused(tmp_path):
    folder = copy_flows(tmp_path)
    (folder / "services.yaml").unlink()
    with pytest.raises(FlowError) as caught:
        load_flows(folder)
    assert any("services.yaml" in p.file for p in caught.value.problems)


def test_store_keeps_the_last_good_flows_when_a_change_is_invalid(tmp_path):
    folder = copy_flows(tmp_path)
    store = FlowStore(folder, check_interval=0)
    good = store.current().version
    (folder / "services.yaml").write_text((folder / "services.yaml").read_text().replace('"0800 1111"', '"0800 11"'))
    assert store.reload_if_changed() is False
    assert store.current().version == good and store.last_error is not None
    (folder / "services.yaml").write_text((folder / "services.yaml").read_text().replace('"0800 11"', '"0800 1111"'))
    store.reload_if_changed(force=True)
    assert store.last_error is None


def test_store_switches_to_a_valid_change(tmp_path):
    folder = copy_flows(tmp_path)
    store = FlowStore(folder, check_interval=0)
    old = store.current()
    text = (folder / "phrases.yaml").read_text().replace("Putting you through", "Connecting you")
    (folder / "phrases.yaml").write_text(text)
    assert store.reload_if_changed() is True
    new = store.current()
    assert new.version != old.version and "Connecting you" in new.phrases["connecting"]["en"]
    assert "Putting you through" in old.phrases["connecting"]["en"], "the old object is never mutated"


# ------------------------------------------------------------------ errors in plain English, at the right line
def _refusal(folder, name):
    with pytest.raises(FlowError) as caught:
        load_flows(folder)
    found = [p for p in caught.value.problems if p.file.endswith(name)]
    assert found, caught.value.problems
    return found


def _edit_line(folder, name, old, new):
    """Replace the first line containing `old` by `new`; returns that line's number (from 1)."""
    path = folder / name
    lines = path.read_text().split("\n")
    index = next(i for i, line in enumerate(lines) if old in line)
    lines[index] = new
    path.write_text("\n".join(lines))
    return index + 1


@pytest.mark.parametrize("old, new, reason, hint", [
    ('    number: "0800 999 5428"', "    number: +448009995428", "YAML read this phone number as a number",
     'put the phone number in quotes, e.g. number: "0808 2000 247"'),
    ("    open_24_hours: true", "    open_24_hours: true\n\topen: 1", "indented with a tab; YAML needs spaces",
     "replace the tab with spaces"),
    ('      en: "Galop National', '      en: "Galop National LGBT+ Domestic Abuse Helpline', "a quote opened on this line is never closed",
     "end the text with the same quote"),
    ("    run_by: Galop", "    run_by: Galop: the LGBT+ charity", "has a ': ' inside a text",
     "put the whole text in double quotes"),
    ('    number: "0800 999 5428"', '      number: "0800 999 5428"', "indented more than the line above",
     "line it up with the line above"),
])
def test_yaml_mistakes_are_explained_at_their_line(tmp_path, old, new, reason, hint):
    folder = copy_flows(tmp_path)
    line = _edit_line(folder, "services.yaml", old, new)
    if "\t" in new:
        line += 1  # the tab is on the added line
    problems = _refusal(folder, "services.yaml")
    assert [(p.line, reason in p.reason, hint in p.hint) for p in problems] == [(line, True, True)], problems
    assert "mapping values" not in str(problems[0]) and "<block end>" not in str(problems[0])


def test_a_list_item_out_of_line_is_explained(tmp_path):
    folder = copy_flows(tmp_path)
    line = _edit_line(folder, "menu.yaml", "      - key: 2", "     - key: 2")
    problems = _refusal(folder, "menu.yaml")
    assert [p.line for p in problems] == [line], problems
    assert "not lined up" in problems[0].reason and "same number of spaces" in problems[0].hint


def test_a_key_outside_1_to_9_is_explained(tmp_path):
    folder = copy_flows(tmp_path)
    line = _edit_line(folder, "menu.yaml", "      - key: 2", "      - key: 0")
    problems = _refusal(folder, "menu.yaml")
    assert [(p.line, p.where) for p in problems] == [(line, "nodes.main.options[2].key")]
    assert f"'0': {KEY_HELP}" in problems[0].reason and "should match pattern" not in problems[0].reason


KEY_HELP = ("a key is one of 1 to 9 (0 and * always mean 'hear the options again', and # ends key input on a "
            "call, so callers cannot choose it)")


@pytest.mark.parametrize("key", ["10", "'#'"])
def test_key_help_and_the_keys_refused_agree(tmp_path, key):
    """The help says which keys there are; every key it excludes is refused with that same help."""
    folder = copy_flows(tmp_path)
    _edit_line(folder, "menu.yaml", "      - key: 2", f"      - key: {key}")
    problems = _refusal(folder, "menu.yaml")
    assert len(problems) == 1 and KEY_HELP in problems[0].reason


def test_closures_are_read_and_a_bad_one_is_explained(tmp_path):
    folder = copy_flows(tmp_path)
    _edit_line(folder, "services.yaml", "    run_by: Galop",
               '    run_by: Galop\n    closures:\n      - {date: 2026-12-24, hours: "10:00-13:00", note: Christmas Eve}\n'
               '      - {from: 2026-12-29, to: 2026-12-31}')
    schedule = load_flows(folder).services["galop"].schedule
    from datetime import date
    assert schedule.spans_on(date(2026, 12, 24), "ENG") == ((600, 780),)
    assert schedule.spans_on(date(2026, 12, 30), "ENG") == ()
    assert schedule.spans_on(date(2027, 1, 5), "ENG") == ((600, 1020),)
    line = _edit_line(folder, "services.yaml", "{from: 2026-12-29", "      - {from: 2026-12-31, to: 2026-12-29}")
    problems = _refusal(folder, "services.yaml")
    assert [(p.line, p.where) for p in problems] == [(line, "services.galop.closures[2]")]
    assert "`to: 2026-12-29` is before `from: 2026-12-31`" in problems[0].reason


@pytest.mark.parametrize("old, new, where, reason, hint", [
    ("    checked: 2026-11-21", "    checked: 21/11/2026", "checked", "is not a date", "year-month-day"),
    ("    open_24_hours: true", "    open_24_hours: yes please", "open_24_hours", "must be true or false",
     "write true or false"),
])
def test_a_wrong_kind_of_value_is_explained(tmp_path, old, new, where, reason, hint):
    folder = copy_flows(tmp_path)
    line = _edit_line(folder, "services.yaml", old, new)
    problems = _refusal(folder, "services.yaml")
    assert [(p.line, p.where.rsplit(".", 1)[-1], p.reason, hint in p.hint) for p in problems] == \
        [(line, where, reason, True)]


def test_a_key_among_list_items_is_explained(tmp_path):
    """The parser says "expected <block end>, but found '?'"; the operator reads what to do."""
    folder = copy_flows(tmp_path)
    line = _edit_line(folder, "menu.yaml", "      - key: 2", "      key: 2")
    problems = _refusal(folder, "menu.yaml")
    assert [p.line for p in problems] == [line], problems
    assert "mixes a list item (- ...) and a `key:`" in problems[0].reason and "'?'" not in str(problems[0])


def test_a_bug_while_loading_never_stops_the_store_starting(tmp_path, monkeypatch):
    """As test_validation's bug in the checks: an unexpected failure is a refusal, not a worker that cannot boot."""
    import router.live.flowstore as flowstore

    def broken(folder):
        raise RecursionError("bug")

    monkeypatch.setattr(flowstore, "load_checked", broken)
    store = FlowStore(copy_flows(tmp_path), check_interval=0)
    assert store.base is None and store.status()["status"] == "degraded"
    assert "could not be loaded (RecursionError)" in store.status()["problems"][0]
