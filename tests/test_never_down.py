"""The live line stays up through every operator change, with the web process started from the
Procfile's line (gunicorn) as a platform runs it:

- started on an invalid flow folder, it answers signed calls from the last good release, or with the
  safety answer when there is none, and /healthz says `degraded` (still 200) with the problems;
- `router apply` / `router rollback` reach every worker of every instance within seconds, with no
  traffic at all; a broken edit leaves every worker on the same last good version.
"""
from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET

import pytest
import requests
from click.testing import CliRunner

from router import live
from router.web import last_resort as safety
from router.inspect.validation import load_checked
from router.cli import main
from tests.conftest import FLOWS
from tests.processes import GunicornWeb, start_together, stop_together, wait_until
from tests.support import METRICS_AUTH, METRICS_TOKEN, MOBILE, TOKEN, signature


def healthz(web) -> dict:
    response = requests.get(web.url + "/healthz", timeout=5, headers=METRICS_AUTH)  # the details too
    assert response.status_code == 200
    return response.json()


def greeting(web) -> str:
    params = {"CallSid": "CA" + "5" * 32, "From": MOBILE, "To": "+443300000111"}
    response = requests.post(web.url + "/voice", data=params, timeout=10,
                             headers={"X-Twilio-Signature": signature(web.url + "/voice", params)})
    assert response.status_code == 200 and response.headers["Content-Type"].startswith(("application/xml", "text/xml"))
    return response.text


def said(document: str) -> list[str]:
    return [" ".join("".join(say.itertext()).split()) for say in ET.fromstring(document).iter("Say")]


def press_3(web) -> str:
    """What a caller pressing 3 (Galop) on the main menu gets now (the instance's own clock)."""
    params = {"CallSid": "CA" + "6" * 32, "From": MOBILE, "To": "+443300000111", "Digits": "3"}
    url = web.url + "/voice/key?at=main&lang=en"
    response = requests.post(url, data=params, timeout=10, headers={"X-Twilio-Signature": signature(url, params)})
    assert response.status_code == 200
    return response.text


def reloads(web, version: str) -> set[str]:
    """The pids of workers that logged switching to `version`."""
    return set(re.findall(rf"flows reloaded: version \w+ -> {version} \(pid (\d+)\)", web.log()))


def break_services(folder) -> None:
    path = folder / "services.yaml"
    path.write_text(path.read_text().replace('number: "0800 999 5428"', "number: +448009995428"))


@pytest.fixture
def place(tmp_path, redis_url):
    live_dir = tmp_path / "live"
    shutil.copytree(FLOWS, live_dir)
    env = dict(os.environ, TWILIO_AUTH_TOKEN=TOKEN, REDIS_URL=redis_url, FLOWS_DIR=str(live_dir), METRICS_TOKEN=METRICS_TOKEN,
               FLOWS_HISTORY_DIR=str(tmp_path / "history"), WEB_CONCURRENCY="2", ROUTER_OPERATOR="tester")
    return {"live": live_dir, "env": env, "tmp": tmp_path, "history": live.History(tmp_path / "history")}


def router(place, *args):
    cli_env = {k: place["env"][k] for k in ("FLOWS_DIR", "FLOWS_HISTORY_DIR", "REDIS_URL", "ROUTER_OPERATOR")}
    result = CliRunner().invoke(main, [str(a) for a in args], env=cli_env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def draft_of(place, old: str, new: str, name: str = "phrases.yaml"):
    draft = place["tmp"] / f"draft-{len(list(place['tmp'].glob('draft-*')))}"
    shutil.copytree(place["live"], draft)
    path = draft / name
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new))
    return draft


# ------------------------------------------------------------------ never down
def test_an_invalid_folder_at_start_serves_the_last_good_release(place):
    router(place, "apply", draft_of(place, 'en: "men experiencing abuse"', 'en: "men facing abuse"', "menu.yaml"), "--yes")
    good = load_checked(place["live"]).version
    break_services(place["live"])
    web = GunicornWeb(place["env"]).start()
    try:
        body = healthz(web)
        assert body["status"] == "degraded" and body["flows_version"] == good
        assert body["flows_source"] == "release 2 from the history"
        assert any("services.yaml" in p and "put the phone number in quotes" in p for p in body["problems"])
        assert "Men facing abuse, press 2." in said(greeting(web))
        refusals = [line for line in web.log().splitlines() if "flow change refused:" in line]
        assert refusals and all("services.yaml" in line for line in refusals), "one readable line per problem"
    finally:
        web.stop()


def test_an_invalid_folder_and_no_history_gets_the_safety_answer(place):
    break_services(place["live"])
    web = GunicornWeb(place["env"]).start()
    try:
        assert greeting(web).strip() == safety.VOICE_TWIML.strip()
        body = healthz(web)
        assert body["status"] == "degraded" and body["flows_version"] is None
        assert "every call and text gets the safety answer" in " ".join(body["why"])
        assert "Traceback" not in web.log()
    finally:
        web.stop()


# ------------------------------------------------------------------ one version everywhere
def test_apply_and_rollback_reach_every_worker_of_every_instance_without_traffic(place, redis_url):
    other_live = place["tmp"] / "other-live"
    shutil.copytree(FLOWS, other_live)
    other_env = dict(place["env"], FLOWS_DIR=str(other_live), FLOWS_HISTORY_DIR=str(place["tmp"] / "other-history"),
                     WEB_CONCURRENCY="1")
    untouched = {p.name: p.read_bytes() for p in other_live.iterdir()}
    web, other = start_together(GunicornWeb(place["env"]), GunicornWeb(other_env))
    try:
        first = load_checked(place["live"]).version
        router(place, "apply", draft_of(place, "to {name}. Please hold.", "to {name}. Please stay on the line."), "--yes")
        second = load_checked(place["live"]).version
        # No request is made until every worker has logged the switch by itself.
        wait_until(lambda: len(reloads(web, second)) == 2 and len(reloads(other, second)) == 1, 15,
                   interval=0.1, message="both workers and the other instance on the applied release")
        for server in (web, other):
            for _ in range(6):
                body = healthz(server)
                assert (body["flows_version"], body["matches_applied"], body["status"]) == (second, True, "ok")

        break_services(place["live"])  # a broken edit in the live folder itself
        wait_until(lambda: web.log().count("flow change refused:") >= 2, 15, interval=0.1,
                   message="the refusal in both workers")
        versions = {healthz(web)["flows_version"] for _ in range(8)}
        assert versions == {second}
        assert healthz(web)["status"] == "degraded" and healthz(other)["flows_version"] == second

        listed = router(place, "versions").output
        assert "found live" in listed and "apply" in listed
        router(place, "rollback", "1", "--yes")
        wait_until(lambda: len(reloads(web, first)) == 2 and len(reloads(other, first)) == 1, 15,
                   interval=0.1, message="every worker back on release 1's flows")
        assert {(healthz(server)["flows_version"], healthz(server)["applied_release"])
                for server in (web, other, web, other)} == {(first, 3)}
        assert {p.name: p.read_bytes() for p in other_live.iterdir()} == untouched, \
            "the other instance served both releases from its history, never rewriting its live folder"

        def logged(server, words: str) -> set[str]:
            return set(re.findall(rf"{words} \(pid (\d+)\)", server.log()))

        router(place, "divert", "galop", "--to", "national_domestic_abuse_helpline", "--until", "2h")
        wait_until(lambda: len(logged(web, "diversion in force: galop -> national_domestic_abuse_helpline until "
                                          r"[^(]+\(London\)")) == 2 and len(logged(other, "diversion in force: galop"
                                          r" -> national_domestic_abuse_helpline until [^(]+\(London\)")) == 1,
                   15, interval=0.1, message="the diversion on every worker")
        for answer in (press_3(other), press_3(web), press_3(web)):
            assert "+448082000247" in answer and "Galop" not in answer, answer
        router(place, "undivert", "galop")
        wait_until(lambda: len(logged(web, "diversion ended: galop")) == 2
                   and len(logged(other, "diversion ended: galop")) == 1, 15, interval=0.1,
                   message="the diversion ended on every worker")
        assert "Galop" in press_3(other)  # put through, or told it is closed: the real clock decides
    finally:
        stop_together(web, other)


def test_with_no_valid_flows_a_stop_still_cancels_and_the_text_is_deleted(tmp_path, redis_url):
    """The safety answer is not an excuse to skip the promises: STOP cancels, answered texts go."""
    from router.web.app import create_app
    from router.simulator.simulate import RecordedFollowup, RecordingJobs
    from tests.conftest import make_settings
    from tests.support import Texter

    broken = tmp_path / "flows"
    shutil.copytree(FLOWS, broken)
    break_services(broken)
    app = create_app(make_settings(redis_url, flows_dir=broken))
    jobs = app.extensions["router"].jobs = RecordingJobs()
    jobs.followups.append(RecordedFollowup(MOBILE, None, "later", "a follow-up", "galop"))
    texter = Texter(app.test_client())
    reply = texter.send("Stop", message_sid="SM" + "9" * 32)
    assert reply == safety.TEXT
    assert jobs.followups == [] and jobs.cancelled == 1
    assert jobs.deleted == ["SM" + "9" * 32]
