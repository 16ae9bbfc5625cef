"""Values checked for what they are (router/inspect/validation/values.py, router/inspect/validation/review.py): numbers valid
for their kind and length, one number per service, voices Twilio has, Welsh that is Welsh, and reviews
that vouch only for the text reviewed. Table-driven: one edit of the shipped flows, one refusal each."""
from __future__ import annotations

import pytest

from router.inspect import validation
from router.inspect.validation.review import fingerprint
from router.definition.flowfile import load_flows
from tests.test_validation import TODAY, change, copy_flows, find, get, line_of, problems


@pytest.mark.parametrize("file, path, value, needle, severity, words", [
    ("services.yaml", ("services", "galop", "number"), "O800 999 5428", "O800 999 5428", "error",
     "'O800 999 5428' has the letter O in it: callers would hear it and texters read it as written"),
    ("services.yaml", ("services", "galop", "number"), "0800 999 542", "0800 999 542", "error",
     "'0800 999 542' has 10 digits, but numbers of this kind usually have 11: check that no digit is missing"),
    ("config.yaml", ("voices", "cy", "voice"), "Polly.Gwenyth", "Polly.Gwenyth", "error",
     "'Polly.Gwenyth' is not a voice Twilio offers for cy-GB"),
    ("config.yaml", ("voices", "cy", "language"), "cy-CY", "cy-CY", "error",
     "'cy-CY' is not a language Twilio's voices speak"),
    ("config.yaml", ("voices", "cy", "voice"), "Polly.Joanna", "Polly.Joanna", "error",
     "'Polly.Joanna' is not a voice Twilio offers for cy-GB"),
    ("phrases.yaml", ("phrases", "voice_repeat", "cy"), "To hear these options again, press 0.",
     "cy: To hear these", "error", "the cy text is the English text unchanged"),
    ("phrases.yaml", ("phrases", "voice_repeat", "cy"), "If you want to hear the options, please press 0.",
     "cy: If you want", "error", "the cy text looks like English"),
])
def test_a_wrong_but_well_formed_value_is_refused_at_its_line(tmp_path, file, path, value, needle, severity, words):
    folder = copy_flows(tmp_path)
    change(folder, file, path, value)
    find(problems(folder), file, line_of(folder, file, needle), severity, words)


def test_childlines_number_pasted_onto_galop_is_an_error_at_galops_line(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "number"), "0800 1111")
    change(folder, "services.yaml", ("services", "galop", "short_number"), True)
    base = load_flows(copy_flows(tmp_path / "base"))
    found = validation.lint_folder(folder, TODAY, validation.CLOCKS[:1], base=base)
    problem = find(found, "services.yaml", line_of(folder, "services.yaml", "0800 1111"), "error",
                   "'0800 1111' is also the number of childline: callers choosing galop would be put through to "
                   "childline")
    assert "copy galop's own number" in problem.hint
    assert not [p for p in found if "is also the number of galop" in p.reason], "Childline was not edited"


def test_shipped_voices_and_welsh_pass():
    assert not [p for p in problems(copy_flows.__globals__["FLOWS"]) if p.severity == "error"]


def _unreviewed(folder) -> int:
    """How many Welsh phrases validate lists as not reviewed (the shipped flows' count changes with them)."""
    summary = [p for p in problems(folder) if "have not been reviewed" in p.reason]
    return int(summary[0].reason.split(" ", 1)[0]) if summary else 0


def test_a_welsh_phrase_changed_since_its_review_counts_as_unreviewed_again(tmp_path):
    folder = copy_flows(tmp_path)
    before = _unreviewed(folder)
    assert before > 0, "voice_repeat is among the shipped unreviewed phrases"
    text = get("phrases.yaml", ("phrases", "voice_repeat"))["cy"]
    change(folder, "phrases.yaml", ("review", "cy", "voice_repeat"),
           f"reviewed 2026-12-01 by Ann Jones, fingerprint {fingerprint(text)}")
    assert _unreviewed(folder) == before - 1, "reviewed, and the text is the one reviewed"
    change(folder, "phrases.yaml", ("phrases", "voice_repeat", "cy"), "I glywed y dewisiadau eto, pwyswch 0.")
    found = problems(folder)
    problem = find(found, "phrases.yaml", line_of(folder, "phrases.yaml", "voice_repeat: reviewed"), "warning",
                   "voice_repeat in cy has changed since it was reviewed (reviewed 2026-12-01 by Ann Jones, "
                   "fingerprint")
    new = fingerprint("I glywed y dewisiadau eto, pwyswch 0.")
    assert problem.hint == f"once they have, write `voice_repeat: reviewed <date> by <name>, fingerprint {new}`"
    assert _unreviewed(folder) == before, "changed since its review: unreviewed again"


def test_a_service_whose_hours_make_its_text_too_long_is_told_to_shorten_its_name_or_hours(tmp_path):
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "hours"), {
        "mon": "09:00-10:00, 10:30-11:00, 11:30-12:00, 12:30-13:00, 13:30-17:00",
        "tue": "10:00-11:00, 11:30-12:00, 12:30-17:00", "wed": "10:00-20:00", "thu": "10:00-20:00",
        "fri": "10:00-17:00", "sat": "10:00-11:00, 12:00-13:00"})
    too_long = [p for p in problems(folder, texts=True) if p.severity == "error" and "text messages long" in p.reason]
    assert too_long and all(p.where == "services.galop" for p in too_long)
    assert f"or a shorter said_as/name for galop (services.yaml:{line_of(folder, 'services.yaml', 'name:', 'galop:')})" \
        f" or fewer hour ranges (services.yaml:{line_of(folder, 'services.yaml', 'hours:', 'galop:')})" \
        in too_long[0].hint


def test_a_closure_that_has_passed_is_refused_by_apply_but_the_running_app_only_warns(tmp_path):
    from click.testing import CliRunner

    from router.cli import main

    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "closures"), [{"date": "2026-01-02"}])
    result = CliRunner().invoke(main, ["validate", str(folder), "--today", "2026-11-21"],
                                env={"FLOWS_DIR": str(folder), "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.exit_code == 1
    assert "this closure ended on Fri 02 Jan 2026, in the past" in result.output
    assert "(router apply would refuse these flows; the running app only warns about them)" in result.output


def test_router_fingerprint_prints_the_review_line_that_validate_then_accepts(tmp_path):
    from click.testing import CliRunner

    from router.cli import main

    folder = copy_flows(tmp_path)
    before = _unreviewed(folder)
    out = CliRunner().invoke(main, ["fingerprint", "voice_repeat", "--flows", str(folder)]).output
    line = out.strip().replace("<name>", "Ann Jones")
    assert line.startswith("voice_repeat: reviewed ") and line.endswith(
        fingerprint(get("phrases.yaml", ("phrases", "voice_repeat"))["cy"]))
    change(folder, "phrases.yaml", ("review", "cy", "voice_repeat"), line.split(": ", 1)[1])
    assert _unreviewed(folder) == before - 1
    listed = CliRunner().invoke(main, ["fingerprint", "--flows", str(folder)]).output
    assert "voice_repeat:" not in listed and listed.count("fingerprint") == before - 1


def test_a_value_judgement_refuses_a_change_but_never_flows_the_app_serves(tmp_path):
    """An upgrade that tightens a value check must not turn every call into the safety answer: the app
    keeps serving (with a warning) what `router validate` / `apply` now refuse."""
    folder = copy_flows(tmp_path)
    change(folder, "services.yaml", ("services", "galop", "number"), "0800 999 542")
    assert any(p.severity == "error" and "usually have 11" in p.reason for p in problems(folder))
    served = validation.load_checked(folder)
    assert served.services["galop"].number == "0800 999 542"
