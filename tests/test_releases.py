"""router apply / rollback / versions / divert and the pieces under them (router/live/: releases, history, following, diversions), in one
process with a real Redis: the history, the whole-folder switch, the record every worker follows, and
diversions and closures as a simulated caller hears them."""
from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from router import live
from router.live import published, redis_keys
from router.inspect.validation import load_checked
from router.cli import main
from router.definition.hours import LONDON
from router.simulator.simulate import ScriptInputs, Simulator
from tests.conftest import FLOWS
from tests.processes import wait_until

WEEKDAY_NOON = datetime(2026, 11, 24, 12, 0, tzinfo=LONDON)


@pytest.fixture
def place(tmp_path, redis_url):
    """A live folder, a draft copy, a history folder and the environment the CLI reads."""
    live_dir, draft = tmp_path / "live", tmp_path / "draft"
    shutil.copytree(FLOWS, live_dir)
    shutil.copytree(FLOWS, draft)
    env = {"FLOWS_DIR": str(live_dir), "FLOWS_HISTORY_DIR": str(tmp_path / "history"), "REDIS_URL": redis_url,
           "ROUTER_OPERATOR": "night-operator", "TWILIO_AUTH_TOKEN": ""}
    return {"live": live_dir, "draft": draft, "env": env, "history": live.History(tmp_path / "history"),
            "redis": redis.Redis.from_url(redis_url)}


def router(place, *args):
    return CliRunner().invoke(main, [str(a) for a in args], env=place["env"], catch_exceptions=False)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


# ------------------------------------------------------------------ the switch
def test_replace_folder_swaps_the_whole_folder(tmp_path):
    live_dir = tmp_path / "live"
    live_dir.mkdir()
    (live_dir / "menu.yaml").write_text("old")
    (live_dir / "stray.txt").write_text("not a flow file")
    live.replace_folder(live_dir, {"menu.yaml": b"new", "services.yaml": b"new too"})
    assert sorted(p.name for p in live_dir.iterdir()) == ["menu.yaml", "services.yaml"]
    assert (live_dir / "menu.yaml").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["live"], "nothing staged is left behind"


# ------------------------------------------------------------------ apply, versions, rollback
def test_apply_shows_the_changes_records_switches_and_publishes(place):
    before = load_checked(place["live"]).version
    edit(place["draft"] / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please stay on the line.")
    result = router(place, "apply", place["draft"], "--yes", "--note", "gentler wording")
    assert result.exit_code == 0, result.output
    assert "What callers and texters will get differently" in result.output
    assert "before: Putting you through to the National Domestic Abuse Helpline. Please hold." in result.output
    assert "after:  Putting you through to the National Domestic Abuse Helpline. Please stay on the line." \
        in result.output
    new = load_checked(place["live"])
    assert new.version != before and "Please stay on the line." in new.phrases["connecting"]["en"]
    releases = place["history"].releases()
    assert [(r.number, r.version, r.action) for r in releases] == [(1, before, "found live"),
                                                                   (2, new.version, "apply")]
    assert (releases[1].who, releases[1].note) == ("night-operator", "gentler wording")
    applied = json.loads(place["redis"].get(redis_keys.APPLIED_KEY))
    assert (applied["number"], applied["version"]) == (2, new.version)
    assert 0 < place["redis"].ttl(redis_keys.APPLIED_KEY) and 0 < place["redis"].ttl(redis_keys.RELEASE_KEY.format(2))

    listed = router(place, "versions")
    assert "gentler wording" in listed.output and "night-operator" in listed.output
    assert "*    2" in listed.output and f"holds flows_version {new.version}" in listed.output

    back = router(place, "rollback", "--yes")
    assert back.exit_code == 0, back.output
    assert "rolling back to release 1" in back.output and "after:  Putting you through" in back.output
    assert load_checked(place["live"]).version == before
    assert [(r.number, r.action) for r in place["history"].releases()][-1] == (3, "rollback to 1")


def test_apply_refuses_a_draft_with_errors_and_changes_nothing(place):
    before = (place["live"] / "services.yaml").read_bytes()
    edit(place["draft"] / "services.yaml", 'number: "0800 999 5428"', "number: +448009995428")
    result = router(place, "apply", place["draft"], "--yes")
    assert result.exit_code == 1
    assert "YAML read this phone number as a number" in result.output
    assert "put the phone number in quotes" in result.output
    assert "refused: 1 error" in result.output and "nothing changed" in result.output
    assert (place["live"] / "services.yaml").read_bytes() == before
    assert place["history"].releases() == [] and place["redis"].get(redis_keys.APPLIED_KEY) is None


def test_apply_refuses_when_a_scenario_fails(place):
    edit(place["draft"] / "phrases.yaml", "Putting you through", "Connecting you")
    result = router(place, "apply", place["draft"], "--yes")
    assert result.exit_code == 1
    assert "FAIL  A weekday call pressing 1 is put through" in result.output and "nothing changed" in result.output
    assert place["history"].releases() == []


def test_apply_without_yes_outside_a_terminal_or_as_a_dry_run_changes_nothing(place):
    edit(place["draft"] / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please stay on the line.")
    before = (place["live"] / "phrases.yaml").read_bytes()
    result = router(place, "apply", place["draft"])
    assert result.exit_code == 1 and "not confirmed" in result.output
    dry = router(place, "apply", place["draft"], "--dry-run")
    assert dry.exit_code == 0 and "Please stay on the line." in dry.output and "dry run: nothing changed" in dry.output
    assert place["history"].releases() == [] and (place["live"] / "phrases.yaml").read_bytes() == before


def test_follow_installs_a_release_applied_by_another_instance(place, tmp_path):
    """Into the history, served from there: the other instance's live folder (a git checkout of flows/,
    often) is never rewritten by a web worker; an edit made in it afterwards is served as before."""
    edit(place["draft"] / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please stay on the line.")
    assert router(place, "apply", place["draft"], "--yes").exit_code == 0
    other_live = tmp_path / "other-live"
    shutil.copytree(FLOWS, other_live)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in other_live.iterdir()}
    other_history = live.History(tmp_path / "other-history")
    assert live.served_folder(other_live, other_history) == other_live
    applied = live.follow(place["redis"], other_history)
    assert applied.number == 2
    assert [r.number for r in other_history.releases()] == [2]
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in other_live.iterdir()} == before
    assert live.followed_release(other_history, other_live) == applied
    served = live.served_folder(other_live, other_history)
    assert served == other_history.folder(2) and load_checked(served).version == load_checked(place["live"]).version
    assert live.install(other_history, applied, live.release_files(place["redis"], 2)) is False, "installed once only"
    edit(other_live / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please wait.")  # an edit in place
    assert live.followed_release(other_history, other_live) is None
    assert live.served_folder(other_live, other_history) == other_live


def test_follow_never_overwrites_good_live_flows_with_a_release_this_instance_refuses(place, tmp_path):
    """A release applied by another instance (newer code, mid-deploy) that these checks refuse is not
    installed: the live folder and the history here stay as they were."""
    assert router(place, "apply", place["draft"], "--yes").exit_code == 0
    applied = live.applied_release(place["redis"])
    files = live.release_files(place["redis"], applied.number)
    files["services.yaml"] = files["services.yaml"].replace(b'"0808 2000 247"', b'"0808 2000 24"')
    live.publish(place["redis"], live.Release(**{**applied.__dict__, "number": applied.number + 1}),
                      files)
    other_live = tmp_path / "other-live"
    shutil.copytree(FLOWS, other_live)
    before = load_checked(other_live).version
    other_history = live.History(tmp_path / "other-history")
    assert live.follow(place["redis"], other_history).number == applied.number + 1
    assert load_checked(other_live).version == before and other_history.releases() == []


# ------------------------------------------------------------------ diversions
def test_divert_and_undivert(place):
    result = router(place, "divert", "galop", "--to", "national_domestic_abuse_helpline", "--until", "2h")
    assert result.exit_code == 0, result.output
    assert "diverted: galop -> national_domestic_abuse_helpline until" in result.output
    ttl = place["redis"].ttl(redis_keys.DIVERSIONS_KEY)
    assert 7000 < ttl <= 7201, "the hash expires by itself with the diversion"
    assert "galop -> national_domestic_abuse_helpline" in router(place, "divert").output
    played = router(place, "simulate", "voice", "--at", "2026-11-24 12:00", "--script", "3")
    assert "[diversion in force, played here: galop -> national_domestic_abuse_helpline until" in played.output
    assert "[dialling +448082000247 (0808 2000 247, National Domestic Abuse Helpline)]" in played.output
    assert "diversion in force now (router divert): galop -> national" in router(place, "validate").output
    refused = router(place, "divert", "gallop", "--to", "national_domestic_abuse_helpline")
    assert refused.exit_code == 1 and "'gallop' is not a service in the live flows" in refused.output
    assert router(place, "undivert", "galop").exit_code == 0
    assert place["redis"].exists(redis_keys.DIVERSIONS_KEY) == 0
    assert "no diversions in force" in router(place, "divert").output


def test_a_diversion_changes_what_a_caller_hears_and_expires(redis_url):
    client = redis.Redis.from_url(redis_url)
    simulator = Simulator(FLOWS, at=WEEKDAY_NOON)  # first: it starts its own Redis, which takes a while under load
    until = datetime.now(timezone.utc) + timedelta(seconds=5)  # long enough for the first call under load
    live.divert(client, "galop", "national_domestic_abuse_helpline", until)
    simulator.app.extensions["router"].flows.set_diversions(live.diversions(client))
    diverted = simulator.call(ScriptInputs(["3"]))
    assert diverted.dialled == ["+448082000247"]
    assert any("National Domestic Abuse Helpline" in line for line in diverted.heard)
    wait_until(lambda: simulator.call(ScriptInputs(["3"])).dialled == ["+448009995428"], 20, 0.2,
               message="the diversion to end by itself")
    wait_until(lambda: client.exists(redis_keys.DIVERSIONS_KEY) == 0, 5, message="its Redis key to expire")


# ------------------------------------------------------------------ closures
def test_a_closure_changes_what_a_caller_hears_and_ends_with_its_dates(tmp_path):
    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    edit(folder / "services.yaml", "    run_by: Galop\n",
         '    run_by: Galop\n    closures:\n      - {date: 2026-12-23, hours: "10:00-13:00", note: staff training}\n')
    simulator = Simulator(folder)

    def call(at: datetime):
        simulator.reset(at=at)
        return simulator.call(ScriptInputs(["3"]))

    assert call(datetime(2026, 12, 23, 11, 0, tzinfo=LONDON)).dialled == ["+448009995428"]
    closed = call(datetime(2026, 12, 23, 14, 0, tzinfo=LONDON))
    assert closed.dialled == []
    assert any("is closed now" in line and "opens tomorrow at 10am" in line for line in closed.heard), closed.heard
    assert call(datetime(2026, 12, 30, 14, 0, tzinfo=LONDON)).dialled == ["+448009995428"], "a Wednesday after"


def test_validate_and_simulate_show_closures(place):
    edit(place["draft"] / "services.yaml", "    run_by: Galop\n",
         '    run_by: Galop\n    closures:\n      - {date: 2026-12-23, note: staff training}\n')
    result = router(place, "simulate", "voice", "--flows", place["draft"], "--at", "2026-12-23 11:00", "--script", "3")
    assert result.exit_code == 0, result.output
    assert "[closure: Galop National LGBT+ Domestic Abuse Helpline (galop): Wed 23 Dec 2026: closed all day " \
           "(staff training)]" in result.output
    assert "HEARD: Galop" in result.output and "is closed now" in result.output


# ------------------------------------------------------------------ simulate --url
def test_simulate_url_plays_against_a_running_instance(redis_url):
    from router.web.app import create_app
    from router.dev.embedded_redis import free_port
    from tests.conftest import make_settings
    from tests.processes import WebServer
    from tests.support import TOKEN

    web = WebServer(create_app(make_settings(redis_url)), free_port()).start()
    try:
        env = {"TWILIO_AUTH_TOKEN": TOKEN, "FLOWS_DIR": str(FLOWS), "REDIS_URL": redis_url}
        result = CliRunner().invoke(main, ["simulate", "voice", "--url", web.url, "--script", "1"], env=env,
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        assert "HEARD (slowly): If you are in danger" in result.output
        assert "[dialling +448082000247 (0808 2000 247, National Domestic Abuse Helpline)]" in result.output
        texts = CliRunner().invoke(main, ["simulate", "sms", "--url", web.url, "--script", "hi"], env=env,
                                   catch_exceptions=False)
        assert texts.exit_code == 0 and "REPLY:" in texts.output and "running instance" in texts.output
        wrong = CliRunner().invoke(main, ["simulate", "voice", "--url", web.url, "--script", "1"],
                                   env=dict(env, TWILIO_AUTH_TOKEN="not-the-token"), catch_exceptions=False)
        assert wrong.exit_code == 1 and wrong.output.strip().endswith(
            f"simulation stopped: the instance at {web.url} refused the signature (HTTP 403): set TWILIO_AUTH_TOKEN "
            "to that instance's auth token, and give --url exactly as Twilio calls it (behind a proxy, the "
            "instance's PUBLIC_BASE_URL)"), wrong.output
        down = CliRunner().invoke(main, ["simulate", "voice", "--url", "http://127.0.0.1:1", "--script", "1"],
                                  env=env, catch_exceptions=False)
        assert down.exit_code == 1 and "simulation stopped: nothing answers at http://127.0.0.1:1: the instance " \
            "is not running there, or the address or port in --url is wrong." in down.output
        assert "Traceback" not in down.output and len(down.output.splitlines()) <= 2
        bare = CliRunner().invoke(main, ["simulate", "voice", "--url", "localhost:5000"], env=env)
        assert bare.exit_code == 2 and "is not a web address: write it with http:// or https://" in bare.output
        late = CliRunner().invoke(main, ["simulate", "voice", "--url", web.url, "--at", "2026-12-25 03:00"], env=env)
        assert late.exit_code != 0 and "--at cannot be used with --url" in late.output
    finally:
        web.stop()


def test_applying_what_is_live_records_it_once_and_then_has_nothing_to_do(place):
    first = router(place, "apply", place["draft"], "--yes", "--note", "first record")
    assert first.exit_code == 0 and "will hear and read exactly what they do now" in first.output
    assert [(r.number, r.action) for r in place["history"].releases()] == [(1, "apply")]
    again = router(place, "apply", place["draft"], "--yes")
    assert again.exit_code == 0 and "release 1 already has these flows: nothing to apply" in again.output
    assert len(place["history"].releases()) == 1


def test_a_replaced_release_keeps_its_files_in_redis_a_week_only(place):
    assert router(place, "apply", place["draft"], "--yes").exit_code == 0
    edit(place["draft"] / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please stay on the line.")
    assert router(place, "apply", place["draft"], "--yes").exit_code == 0
    client = place["redis"]
    assert 0 < client.ttl(redis_keys.RELEASE_KEY.format(1)) <= published.SUPERSEDED_TTL_SECONDS
    assert client.ttl(redis_keys.RELEASE_KEY.format(2)) > published.SUPERSEDED_TTL_SECONDS


def test_a_broken_instance_with_no_history_starts_on_the_release_another_applied(place, tmp_path):
    from router.live.flowstore import FlowStore

    edit(place["draft"] / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please stay on the line.")
    assert router(place, "apply", place["draft"], "--yes").exit_code == 0
    applied = load_checked(place["live"]).version
    broken = tmp_path / "broken-live"
    shutil.copytree(FLOWS, broken)
    edit(broken / "services.yaml", 'number: "0800 999 5428"', "number: +448009995428")
    store = FlowStore(broken, history=live.History(tmp_path / "new-history"), client=place["redis"])
    assert store.current().version == applied and store.last_error is None
    assert store.status()["status"] == "ok" and store.status()["matches_applied"] is True


def test_a_worker_serves_a_followed_release_from_the_history_never_rewriting_its_live_folder(place, tmp_path):
    """Issue 22: following a release must not rewrite the live folder (flows/ under `make run`, a git
    checkout): the release is served from the history; an edit made in the live folder afterwards is
    served as any edit in place is."""
    from router.live.flowstore import FlowStore

    other_live = tmp_path / "other-live"
    shutil.copytree(FLOWS, other_live)
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in other_live.iterdir()}
    store = FlowStore(other_live, history=live.History(tmp_path / "other-history"), client=place["redis"])
    first = store.current().version
    edit(place["draft"] / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please stay on the line.")
    assert router(place, "apply", place["draft"], "--yes").exit_code == 0
    second = load_checked(place["live"]).version
    store.tick()
    assert store.current().version == second != first
    status = store.status()
    assert (status["status"], status["flows_source"], status["matches_applied"]) == \
        ("ok", "release 2, followed from the history", True)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in other_live.iterdir()} == before
    other = {"env": dict(place["env"], FLOWS_DIR=str(other_live), FLOWS_HISTORY_DIR=str(tmp_path / "other-history"))}
    served = tmp_path / "other-history" / "releases" / "0002"
    assert f"The web workers here serve it from the history ({served}), which holds flows_version {second}" \
        in router(other, "versions").output
    assert f"Live folder here ({served}: a release applied elsewhere, newer than {other_live}): flows_version " \
        f"{second}" in router(other, "status").output
    edit(other_live / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please wait.")  # an edit in place
    assert store.reload_if_changed() and store.current().version not in (first, second)
    assert store.status()["flows_source"] == "live folder"


def test_a_worker_starting_during_a_diversion_serves_it_from_the_first_request(place):
    from router.live.flowstore import FlowStore

    until = datetime.now(timezone.utc) + timedelta(hours=1)
    live.divert(place["redis"], "galop", "national_domestic_abuse_helpline", until)
    store = FlowStore(place["live"], history=place["history"], client=place["redis"])
    assert store.current().services["galop"].id == "national_domestic_abuse_helpline"
    assert store.base.services["galop"].id == "galop"
    assert store.status()["diversions"] == {"galop": {"to": "national_domestic_abuse_helpline",
                                                      "until": until.isoformat()}}


def test_the_token_comes_from_the_environment_else_from_make_runs_file(tmp_path):
    from router.dev.local import local_auth_token
    from router.settings import load_settings

    env = {"HELPLINE_DATA_DIR": str(tmp_path)}
    assert local_auth_token(load_settings({"TWILIO_AUTH_TOKEN": "from-env"}), env) == "from-env"
    assert local_auth_token(load_settings({}), env) is None
    (tmp_path / "dev-auth-token").write_text("from-make-run\n")
    assert local_auth_token(load_settings({"TWILIO_AUTH_TOKEN": ""}), env) == "from-make-run"


# ------------------------------------------------------------------ drafts, stale drafts, one apply at a time
def test_a_stale_draft_is_refused_and_shows_what_it_would_undo(place, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    assert router(place, "draft", first).exit_code == 0
    made = router(place, "draft", second)
    assert "draft" in made.output and "made from the live folder" in made.output
    edit(first / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please stay on the line.")
    assert router(place, "apply", first, "--yes", "--note", "hold wording").exit_code == 0
    edit(second / "phrases.yaml", "Goodbye.", "Goodbye for now.")
    stale = router(place, "apply", second, "--yes")
    assert stale.exit_code == 1
    assert "refused: this draft was made from the flows before any release, but release 2 (apply by " \
           'night-operator, "hold wording") has been applied since. Putting it live would undo the changes made ' \
           "since; nothing changed." in stale.output
    assert "It would undo (" in stale.output and "Please stay on the line." in stale.output
    assert "Make a fresh draft (router draft NEWDIR)" in stale.output
    assert len(place["history"].releases()) == 2
    fresh = tmp_path / "fresh"
    assert "made from release 2" in router(place, "draft", fresh).output
    edit(fresh / "phrases.yaml", "Goodbye.", "Goodbye for now.")
    assert router(place, "apply", fresh, "--yes").exit_code == 0
    assert "Please stay on the line." in (place["live"] / "phrases.yaml").read_text(), "nothing was undone"


def test_an_apply_whose_base_moved_while_it_was_checked_changes_nothing(place, tmp_path):
    """The compare-and-swap: a second instance (its own history) applied while this one was confirming."""
    flows = load_checked(place["draft"])
    files = live.read_files(place["draft"])
    other = live.History(tmp_path / "other-history")
    live.put_live(files, flows, live=tmp_path / "other-live", history=other, client=place["redis"],
                       who="elsewhere", note="", expected=None)
    before = (place["live"] / "phrases.yaml").read_bytes()
    with pytest.raises(live.StaleBase) as stale:
        live.put_live(files, flows, live=place["live"], history=place["history"], client=place["redis"],
                           who="here", note="", expected=None)
    assert stale.value.current.who == "elsewhere"
    assert place["history"].releases() == [] and (place["live"] / "phrases.yaml").read_bytes() == before
    assert live.applied_release(place["redis"]).who == "elsewhere"


def test_two_applies_at_once_leave_one_applied_release_and_one_clear_refusal(place, tmp_path):
    import os
    import subprocess
    import sys

    drafts_ = [tmp_path / "a", tmp_path / "b"]
    for folder, words in zip(drafts_, ("Please stay on the line.", "Please wait.")):
        assert router(place, "draft", folder).exit_code == 0
        edit(folder / "phrases.yaml", "to {name}. Please hold.", f"to {{name}}. {words}")
    env = dict(os.environ, **place["env"])
    runs = [subprocess.Popen([sys.executable, "-m", "router.cli", "apply", str(folder), "--yes"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for folder in drafts_]
    results = [(run.wait(timeout=120), run.stdout.read()) for run in runs]
    assert sorted(code for code, _ in results) == [0, 1], results
    refusal = next(out for code, out in results if code == 1)
    assert "refused:" in refusal and "nothing changed" in refusal
    applied = [r for r in place["history"].releases() if r.action == "apply"]
    assert len(applied) == 1 and live.applied_release(place["redis"]).number == applied[0].number


def test_apply_while_redis_is_unreachable_is_explained_by_status_and_finished_by_publish(place, tmp_path):
    from router.live.flowstore import FlowStore

    edit(place["draft"] / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please stay on the line.")
    away = dict(place, env=dict(place["env"], REDIS_URL="redis://:hunter2-secret@127.0.0.1:1/0"))
    result = router(away, "apply", place["draft"], "--yes")
    assert result.exit_code == 3, "not a success: not done everywhere"
    assert "hunter2" not in result.output and "redis://:***@127.0.0.1:1/0" in result.output
    assert "NOT DONE: Redis could not be reached" in result.output and "run `router publish`" in result.output
    worker = FlowStore(place["live"], history=place["history"], client=place["redis"])
    worker.tick()
    status = router(place, "status")
    assert status.exit_code == 1
    assert "was applied here while Redis was unreachable, so other instances do not serve it: run " \
           "`router publish`" in status.output
    assert "hunter2" not in router(away, "status").output
    published = router(place, "publish")
    assert published.exit_code == 0 and "published release" in published.output
    worker.tick()
    assert worker.status()["status"] == "ok"
    final = router(place, "status")
    assert final.exit_code == 0 and "All agree: nothing to do." in final.output, final.output


# ------------------------------------------------------------------ the preview
def test_the_preview_lists_a_closures_and_a_bank_holidays_differences(tmp_path):
    from datetime import date

    from router.inspect import journeys

    folder = tmp_path / "flows"
    shutil.copytree(FLOWS, folder)
    edit(folder / "services.yaml", "    run_by: Galop\n",
         "    run_by: Galop\n    bank_holidays: open\n    closures:\n      - {date: 2026-12-23, note: staff training}\n")
    changes = journeys.diff(load_checked(FLOWS), load_checked(folder), today=date(2026, 12, 1))
    galop = [c for c in changes if c.journey == "a call in English, pressing 3"]
    assert galop, "a closure and bank-holiday hours change what callers pressing 3 hear"
    moments = {m for c in galop for m in c.moments}
    assert "Wed 23 Dec (a closure) at 12:00" in moments
    assert any("(bank holiday)" in m for m in moments), moments
    closed = next(c for c in galop if "Wed 23 Dec (a closure) at 12:00" in c.moments)
    assert "[puts the caller through to +448009995428]" in closed.before and "is closed now" in closed.after


def test_first_menu_changes_come_first_and_are_never_cut_and_all_shows_every_change(place):
    edit(place["draft"] / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please stay on the line.")
    edit(place["draft"] / "phrases.yaml", "{name} is closed now.", "{name} is closed at the moment.")
    (place["draft"] / "scenarios.yaml").unlink()  # they check the old wording word for word
    edit(place["draft"] / "menu.yaml", 'en: "men experiencing abuse"', 'en: "men facing abuse"')
    shown = router(place, "apply", place["draft"], "--dry-run")
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    head = lines.index(next(line for line in lines if line.startswith("  The first menu, silent callers")))
    assert "a call in English, at the start" in lines[head + 1]
    assert "men facing abuse" in "\n".join(lines[head:head + 6]).lower()
    assert "add --all to list them all" in shown.output
    everything = router(place, "apply", place["draft"], "--dry-run", "--all")
    assert "add --all" not in everything.output
    assert everything.output.count("is closed at the moment") > shown.output.count("is closed at the moment")





def test_apply_that_cannot_write_this_machines_history_says_what_is_not_done(place):
    place["history"].home.mkdir(parents=True)
    (place["history"].home / "releases").write_text("not a folder: the disk is not as it should be")
    edit(place["draft"] / "phrases.yaml", "to {name}. Please hold.", "to {name}. Please stay on the line.")
    result = router(place, "apply", place["draft"], "--yes")
    assert result.exit_code == 3
    assert "NOT DONE: release 2 is recorded as applied, but this machine's history or live folder" in result.output
    assert "the web workers then install it by themselves within seconds" in result.output
    assert "Traceback" not in result.output
    assert live.applied_release(place["redis"]).number == 2, "every other instance follows it"
