"""The flow files: the shipped ones validate; a broken one is refused with its file, line and reason."""
from __future__ import annotations

import pytest

from router.flowfile import FlowError, load_flows
from router.flowstore import FlowStore
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
