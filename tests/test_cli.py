"""The `router` command: validate's exit codes and JSON, simulate matching what the webhooks answer,
scenarios passing and failing (and `check`, their old name), graph showing every service and key."""
from __future__ import annotations

import json
import re
import shutil
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from twilio.request_validator import RequestValidator

from router.web.app import create_app
from router.cli import main
from router.definition.flowfile import load_flows
from router.definition.hours import LONDON
from router.settings import load_settings
from tests.support import SECRETS_ENV
from router.simulator.simulate import DEFAULT_FROM, ScriptInputs, SimulationError, Simulator, parse_script
from router.store.connection import make_redis

REPO = Path(__file__).resolve().parent.parent
FLOWS = REPO / "flows"


@pytest.fixture
def runner():
    return CliRunner()


def run(runner: CliRunner, *args: str, input: str | None = None):
    return runner.invoke(main, [str(a) for a in args], input=input, catch_exceptions=False)


def broken_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    menu = folder / "menu.yaml"
    menu.write_text(menu.read_text().replace("next: domestic_abuse", "next: domestic_abuses"))
    return folder


# ------------------------------------------------------------------ validate
def test_validate_shipped_flows_exits_0(runner):
    result = run(runner, "validate", FLOWS, "--today", "2026-11-21")
    assert result.exit_code == 0, result.output
    assert "0 errors" in result.output and "the app would accept these flows" in result.output


def test_validate_errors_exit_1_with_file_and_line(runner, tmp_path):
    folder = broken_copy(tmp_path)
    result = run(runner, "validate", folder)
    assert result.exit_code == 1
    line = [out for out in result.output.splitlines() if "domestic_abuses" in out][0]
    number = (folder / "menu.yaml").read_text().split("\n").index("        next: domestic_abuses") + 1
    assert line.startswith(f"{folder / 'menu.yaml'}:{number}: error: nodes.main.options[1].next: ")


def test_validate_schema_errors_are_reported_too(runner, tmp_path):
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    services = folder / "services.yaml"
    services.write_text(services.read_text().replace('number: "0800 999 5428"', 'number: "0909 879 0000"'))
    result = run(runner, "validate", folder, "--json")
    assert result.exit_code == 1
    problems = json.loads(result.output)
    number = services.read_text().split("\n").index('    number: "0909 879 0000"') + 1
    assert problems == [{"file": str(services), "line": number, "where": "services.galop.number",
                         "reason": "'0909 879 0000' is a premium-rate number; helplines must be free to call",
                         "severity": "error", "hint": ""}]


def test_validate_json_lists_warnings_and_strict_fails_on_them(runner):
    """A year on, every service's `checked:` date is stale: warnings, so exit 0 unless --strict."""
    result = run(runner, "validate", FLOWS, "--json", "--today", "2027-12-01")
    assert result.exit_code == 0
    problems = json.loads(result.output)
    assert problems and {p["severity"] for p in problems} == {"warning"}
    assert set(problems[0]) == {"file", "line", "where", "reason", "severity", "hint"}
    assert run(runner, "validate", FLOWS, "--strict", "--today", "2027-12-01").exit_code == 1


def test_validate_today_makes_checked_dates_stale(runner):
    result = run(runner, "validate", FLOWS, "--json", "--today", "2027-07-01")
    assert result.exit_code == 0
    stale = [p for p in json.loads(result.output) if "months ago" in p["reason"]]
    assert len(stale) == len(load_flows(FLOWS).services)


# ------------------------------------------------------------------ simulate
def signed_post(client, token: str, path: str, params: dict[str, str]) -> str:
    signature = RequestValidator(token).compute_signature(f"http://localhost{path}", params)
    response = client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def said(document: str) -> list[str]:
    return [" ".join("".join(say.itertext()).split()) for say in ET.fromstring(document).iter("Say")]


def test_simulate_voice_script(runner):
    result = run(runner, "simulate", "voice", "--at", "2026-12-25 03:00", "--script", "2,1", "--flows", FLOWS)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "HEARD: The Men's Advice Line is closed now." in out
    assert "> press 2" in out and "> press 1" in out
    assert "[dialling +448082000247 (0808 2000 247, National Domestic Abuse Helpline)]" in out
    assert out.index("closed now") < out.index("[dialling")


def test_simulator_hears_what_the_webhook_says(redis_url):
    """The simulator's first heard lines are exactly the <Say>s of a direct signed POST to /voice."""
    at = datetime(2026, 11, 18, 12, 0, tzinfo=LONDON)
    settings = load_settings({"TWILIO_AUTH_TOKEN": "test-token", "FLOWS_DIR": str(FLOWS), **SECRETS_ENV})
    app = create_app(settings, clock=lambda: at, redis_client=make_redis(redis_url))
    params = {"CallSid": "CA" + "1" * 32, "From": DEFAULT_FROM, "To": "+441632960000"}
    direct = said(signed_post(app.test_client(), "test-token", "/voice", params))
    after_3 = said(signed_post(app.test_client(), "test-token", "/voice/key?at=main&lang=en",
                               dict(params, Digits="3")))

    transcript = Simulator(FLOWS, settings=settings, at=at).call(ScriptInputs(parse_script("3")))
    assert transcript.heard[: len(direct)] == direct
    assert transcript.heard[len(direct): len(direct) + len(after_3)] == after_3
    assert transcript.dialled == ["+448009995428"]


def test_simulate_sms_script(runner):
    result = run(runner, "simulate", "sms", "--at", "2026-11-18 12:00", "--script", "hi,4", "--flows", FLOWS)
    assert result.exit_code == 0, result.output
    assert "> you text: 4" in result.output
    assert "  | Karma Nirvana Honour-Based Abuse Helpline: 0800 5999 247" in result.output
    assert "conversation state is kept in memory" in result.output


def test_simulate_sms_matches_the_webhook(redis_url):
    at = datetime(2026, 11, 18, 12, 0, tzinfo=LONDON)
    settings = load_settings({"TWILIO_AUTH_TOKEN": "test-token", "FLOWS_DIR": str(FLOWS), **SECRETS_ENV})
    app = create_app(settings, clock=lambda: at, redis_client=make_redis(redis_url))
    client = app.test_client()
    first = signed_post(client, "test-token", "/sms", {"From": DEFAULT_FROM, "Body": "hi", "MessageSid": "SM1"})
    second = signed_post(client, "test-token", "/sms", {"From": DEFAULT_FROM, "Body": "4", "MessageSid": "SM2"})
    replies = ["".join(m.itertext()) for doc in (first, second) for m in ET.fromstring(doc).iter("Message")]

    transcript = Simulator(FLOWS, settings=settings, at=at).texts(ScriptInputs(["hi", "4"]))
    assert transcript.replies == replies


def test_simulate_welsh_and_interactive_input(runner):
    result = run(runner, "simulate", "voice", "--at", "2026-11-18 12:00", "--lang", "cy", "--flows", FLOWS,
                 input="1\n\n")
    assert result.exit_code == 0, result.output
    assert "> press 9" in result.output  # choosing Welsh, as a caller does
    assert "HEARD: Rydyn ni'n eich trosglwyddo i Linell Gymorth Byw Heb Ofn" in result.output
    assert "[dialling +448088010800" in result.output  # Welsh callers' key 1: Live Fear Free


def test_simulate_silence_and_a_dial_outcome(runner):
    result = run(runner, "simulate", "voice", "--at", "2026-11-18 12:00", "--script", "7,,3,dial:no-answer,1",
                 "--flows", FLOWS)
    assert result.exit_code == 0, result.output
    assert "HEARD: We did not hear a key." in result.output
    assert "HEARD: Sorry, nobody was free to answer." in result.output
    assert "HEARD: To try again, press 1." in result.output
    assert result.output.count("[dialling") == 2


def test_simulate_bad_script_and_refused_flows(runner, tmp_path):
    result = run(runner, "simulate", "voice", "--script", "dial:busy", "--flows", FLOWS)
    assert result.exit_code == 1 and "a key was expected" in result.output
    result = run(runner, "simulate", "voice", "--script", "1", "--flows", broken_copy(tmp_path))
    assert result.exit_code == 1 and "domestic_abuses" in result.output


def test_simulator_signs_like_twilio():
    """A request signed with another token is refused: the simulator goes through the real check."""
    simulator = Simulator(FLOWS, settings=load_settings({"TWILIO_AUTH_TOKEN": "right"}))
    simulator.validator = RequestValidator("wrong")
    with pytest.raises(SimulationError, match="403"):
        simulator.call(ScriptInputs([]))


def test_unreachable_redis_is_noted_and_texts_still_answered():
    simulator = Simulator(FLOWS, redis_url="redis://127.0.0.1:1/0",
                          at=datetime(2026, 11, 18, 12, 0, tzinfo=LONDON))
    transcript = simulator.texts(ScriptInputs(["4"]))
    assert "not reachable" in transcript.text()
    assert "0800 5999 247" in transcript.replies[0]


# ------------------------------------------------------------------ check
SCENARIOS = """\
scenarios:
  - name: weekday 1 goes to the helpline
    channel: voice
    at: "2026-11-18 12:00"
    presses: [1]
    dials: "0808 2000 247"
  - name: a text saying 4
    channel: sms
    at: "2026-11-18 12:00"
    replies: [hi, "4"]
    reads: "0800 5999 247"
"""


def test_scenarios_pass(runner, tmp_path):
    path = tmp_path / "scenarios.yaml"
    path.write_text(SCENARIOS)
    result = run(runner, "scenarios", FLOWS, "--scenarios", path)
    assert result.exit_code == 0, result.output
    assert "PASS  weekday 1 goes to the helpline" in result.output
    assert "2 scenarios: 2 passed, 0 failed" in result.output


def test_scenarios_fail_on_the_wrong_number(runner, tmp_path):
    path = tmp_path / "scenarios.yaml"
    path.write_text(SCENARIOS.replace('dials: "0808 2000 247"', 'dials: "0808 801 0327"'))
    result = run(runner, "scenarios", FLOWS, "--scenarios", path)
    assert result.exit_code == 1
    assert "FAIL  weekday 1 goes to the helpline" in result.output
    assert "did not dial 0808 801 0327 (dialled: 0808 2000 247, National Domestic Abuse Helpline)" in result.output
    assert "HEARD: Putting you through to the National Domestic Abuse Helpline" in result.output  # transcript
    assert "2 scenarios: 1 passed, 1 failed" in result.output


def test_scenarios_report_a_bad_scenarios_file_with_its_line(runner, tmp_path):
    path = tmp_path / "scenarios.yaml"
    path.write_text(SCENARIOS.replace("    presses: [1]\n", "    presses: [1]\n    heard: x\n"))
    result = run(runner, "scenarios", FLOWS, "--scenarios", path)
    assert result.exit_code == 1
    assert f"{path}:6: error: scenarios[1].heard: is not a known field" in result.output


def test_scenarios_runs_the_shipped_scenarios(runner):
    result = run(runner, "scenarios", FLOWS)
    assert result.exit_code == 0, result.output
    assert "FAIL" not in result.output


def test_check_is_the_hidden_old_name_of_scenarios(runner, tmp_path):
    """Runbooks and habits that say `router check` keep working, with the same output; --help lists
    only `scenarios`, the name that says what it runs."""
    path = tmp_path / "scenarios.yaml"
    path.write_text(SCENARIOS.replace('dials: "0808 2000 247"', 'dials: "0808 801 0327"'))
    new, old = (run(runner, name, FLOWS, "--scenarios", path) for name in ("scenarios", "check"))

    def printed(result):  # what the command printed; the app's JSON log lines (some warn once) aside
        return [line for line in result.output.splitlines() if not line.startswith('{"ts"')]
    assert (old.exit_code, printed(old)) == (new.exit_code, printed(new)) == (1, printed(new))
    assert "2 scenarios: 1 passed, 1 failed" in old.output
    listed = [line.split()[0] for line in run(runner, "--help").output.split("Commands:")[1].splitlines() if line.strip()]
    assert "scenarios" in listed and "validate" in listed and "check" not in listed


def test_every_command_the_guides_name_is_a_command():
    """The README, the docs, the alert rules and the flow files' comments name only commands that exist,
    by the names --help shows (a rename that forgets a runbook fails here); `check` only as the old name."""
    guides = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "deploy").glob("*.yml")),
              *sorted(FLOWS.glob("*.yaml"))]
    named = {m.group(1): path.name for path in guides
             for m in re.finditer(r"(?:`|\.venv/bin/)router ([a-z][a-z-]*)", path.read_text(encoding="utf-8"))}
    assert {"validate", "simulate", "scenarios", "graph", "apply", "divert", "status"} <= set(named)
    assert not {word: where for word, where in named.items() if word not in main.commands}
    assert {word for word in named if main.commands[word].hidden} <= {"check"}
    old = [line for line in (REPO / "docs" / "operators.md").read_text(encoding="utf-8").splitlines()
           if "router check" in line]
    assert all("old name" in line for line in old), old


# ------------------------------------------------------------------ graph
def expected_bits():
    flows = load_flows(FLOWS)
    bits = []
    for service in flows.services.values():
        bits += [service.name["en"], service.number]
    for node in flows.nodes.values():
        for option in getattr(node, "options", []):
            bits.append(f"{option.key}: " + (option.label["en"] if option.label else "Cymraeg"))
    return bits


@pytest.mark.parametrize("fmt", ["mermaid", "dot"])
def test_graph_text_formats_show_every_service_and_key(runner, fmt):
    result = run(runner, "graph", "--format", fmt, FLOWS)
    assert result.exit_code == 0, result.output
    for bit in expected_bits():
        assert bit in result.output, bit
    assert "if closed or no answer" in result.output
    assert result.output.startswith("flowchart LR" if fmt == "mermaid" else "digraph flows {")


@pytest.mark.parametrize("renderer", ["builtin", "auto"])
def test_graph_svg_is_xml(runner, tmp_path, renderer):
    out = tmp_path / "flow.svg"
    result = run(runner, "graph", "--format", "svg", "--renderer", renderer, "--out", out, FLOWS)
    assert result.exit_code == 0, result.output
    root = ET.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = " ".join(" ".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for service in load_flows(FLOWS).services.values():
        assert service.number in text


def test_graph_in_welsh(runner):
    result = run(runner, "graph", "--lang", "cy", FLOWS)
    assert "Byw Heb Ofn" in result.output and "9: English" in result.output


def test_shipped_diagram_is_up_to_date(runner):
    """docs/flow.mmd is the output of `router graph` for the shipped flows: regenerate it after a change."""
    result = run(runner, "graph", FLOWS)
    assert (REPO / "docs" / "flow.mmd").read_text() == result.output, (
        "docs/flow.mmd is out of date: run `router graph --out docs/flow.mmd` and "
        "`router graph --format svg --out docs/flow.svg`")
