"""The operators' scenarios: the shipped ones cover what matters and pass; a wrong one fails clearly;
a badly written file is reported with file and line like the flow files."""
from __future__ import annotations

from pathlib import Path

import pytest

from router.definition import phone
from router.definition.flowfile import FILES, load_flows
from router.simulator.scenarios import Scenario, load_scenarios, run, run_all
from router.simulator.simulate import Simulator

REPO = Path(__file__).resolve().parent.parent
FLOWS = REPO / "flows"


@pytest.fixture(scope="module")
def simulator():
    return Simulator(FLOWS, assume_sender=True)  # as `router scenarios` runs them


@pytest.fixture(scope="module")
def shipped():
    scenarios, problems = load_scenarios(FLOWS / "scenarios.yaml")
    assert problems == []
    return scenarios


def test_shipped_scenarios_all_pass(simulator, shipped):
    failed = [(r.scenario.name, r.failures) for r in run_all(simulator, shipped) if not r.passed]
    assert failed == []


def test_shipped_scenarios_cover_every_service_both_languages_and_closed_hours(shipped):
    flows = load_flows(FLOWS)
    promised = {phone.to_e164(n) for s in shipped for n in s.dials}
    promised |= {phone.to_e164(svc.number) for s in shipped for svc in flows.services.values()
                 if any(svc.number in r for r in s.reads)}
    assert promised >= {svc.e164 for svc in flows.services.values()}
    assert {(s.channel, s.lang) for s in shipped if s.lang} >= {("voice", "cy"), ("sms", "cy")}
    assert any("closed" in " ".join(s.hears).lower() and s.at.startswith("2026-12-25 03:00") for s in shipped)
    assert any(s.at.startswith("2027-03-29") for s in shipped)  # Easter Monday
    text_4 = [s for s in shipped if s.name == "A text saying 4 gets 0800 5999 247"][0]
    assert text_4.replies == ["hi", "4"]


def test_scenarios_file_is_not_a_flow_file():
    assert "scenarios.yaml" not in FILES


def test_a_wrong_expectation_fails_with_a_reason(simulator):
    scenario = Scenario(name="wrong", channel="voice", at="2026-12-25 03:00", presses=["2", "1"],
                        hears=["is open now, press 1", "the Men's Advice Line is open"],
                        dials=["0808 801 0327"], not_dials=["0808 2000 247"])
    result = run(simulator, scenario)
    assert not result.passed
    assert result.failures == [
        "did not hear \"the Men's Advice Line is open\"",
        "did not dial 0808 801 0327 (dialled: 0808 2000 247, National Domestic Abuse Helpline)",
        "dialled 0808 2000 247, which it should not",
    ]


def test_follow_up_and_text_expectations(simulator):
    scenario = Scenario(name="later", channel="sms", at="2026-11-18 22:00", replies=["hi", "3", "8", "1"],
                        reads=["Galop"], not_reads=["Karma"], follow_up=["0800 999 5428"])
    assert run(simulator, scenario).passed
    withheld = Scenario(name="withheld", channel="voice", at="2026-12-25 03:00", presses=["2", "2"],
                        from_="anonymous", follow_up=["0808 801 0327"])
    result = run(simulator, withheld)
    assert result.failures and "no follow-up text was kept" in result.failures[0]


def test_each_scenario_starts_afresh(simulator):
    """Conversation state from one scenario never leaks into the next (same number, same simulator)."""
    first = Scenario(name="a", channel="sms", at="2026-11-18 12:00", replies=["hi", "7"], reads=["Childline"])
    second = Scenario(name="b", channel="sms", at="2026-11-18 12:00", replies=["1"], reads=["1 Domestic abuse"],
                      not_reads=["0808 2000 247"])
    assert run(simulator, first).passed
    assert run(simulator, second).passed  # a first text of any content gets the menu again


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenarios.yaml"
    path.write_text(text)
    return path


GOOD = """\
scenarios:
  - name: one
    channel: voice
    at: "2026-11-18 12:00"
    presses: [1]
    dials: "0808 2000 247"
"""


@pytest.mark.parametrize("old,new,line,words", [
    ('at: "2026-11-18 12:00"', 'at: "18/11/2026 12:00"', 4, "is not a time like '2026-12-25 03:00'"),
    ("presses: [1]", "presses: [1, 1x]", 5, "'1x' is not a key"),  # "12" is a burst of keys
    ('dials: "0808 2000 247"', "dials: +448082000247", 6, "write phone numbers in quotes"),
    ('dials: "0808 2000 247"', 'dials: "0808 2000"', 6, "'0808 2000' is not a phone number"),
    ("channel: voice", "channel: fax", 3, "Input should be 'voice' or 'sms'"),
    ("presses: [1]", "presses: [1]\n    replies: [hi]", 2, "a voice scenario uses presses, hears and dials"),
    ('    dials: "0808 2000 247"\n', "", 2, "says nothing to check"),
    ("    channel: voice\n", "    channel: voice\n    from: +447400123456\n", 4, "write phone numbers in quotes"),
])
def test_bad_scenarios_are_reported_with_file_and_line(tmp_path, old, new, line, words):
    path = write(tmp_path, GOOD.replace(old, new))
    scenarios, problems = load_scenarios(path)
    assert scenarios == []
    assert any(p.line == line and words in p.reason and p.file == str(path) for p in problems), problems


def test_yaml_syntax_error_has_a_line(tmp_path):
    _, problems = load_scenarios(write(tmp_path, GOOD.replace("presses: [1]", "presses: [1")))
    assert problems and problems[0].line == 5 and "opened with '[' on this line is not closed" in problems[0].reason


def test_duplicate_names_are_refused(tmp_path):
    text = GOOD + GOOD.split("\n", 1)[1]
    _, problems = load_scenarios(write(tmp_path, text))
    assert any("given twice: one" in p.reason for p in problems)


# ------------------------------------------------------------------ the simulator's doubles (issue 22)
def _public_methods(cls) -> dict:
    import inspect

    return {name: inspect.signature(member) for name, member in vars(cls).items()
            if callable(member) and not name.startswith("_")}


def test_the_recorder_of_background_work_is_exactly_the_jobs_it_stands_for():
    """The simulator's stand-in for router/web/jobs.Jobs has the same public methods with the same
    parameters, and nothing accepts what it does not know: a new kind of background work fails here,
    not silently in every simulation."""
    from router.simulator.recording_jobs import RecordingJobs
    from router.web.jobs import Jobs

    jobs, recorder = _public_methods(Jobs), _public_methods(RecordingJobs)
    recorder.pop("clear")  # the simulator's own reset
    assert {name: list(sig.parameters) for name, sig in recorder.items()} == \
        {name: list(sig.parameters) for name, sig in jobs.items()}
    assert not hasattr(RecordingJobs(), "schedule_text_later")  # no catch-all: an unknown call fails loudly
    assert RecordingJobs.client is None  # no Redis of its own: the app notes none of its numbers


def test_the_simulator_keeps_state_with_the_store_s_own_code_in_a_real_redis(simulator):
    """No copy of the store's Lua scripts: conversation state goes through router/store in a private
    Redis, and every key it writes there has a TTL, as in production."""
    from router.simulator.script_inputs import ScriptInputs

    simulator.reset()
    simulator.texts(ScriptInputs(["hi", "2"]))
    keys = simulator.redis.keys("*")
    assert keys, "nothing was stored: the conversation did not go through the store"
    assert all(simulator.redis.ttl(key) > 0 for key in keys)
    simulator.reset()
    assert simulator.redis.keys("*") == []
