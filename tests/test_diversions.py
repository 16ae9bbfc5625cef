"""Diversions that cannot take the 24-hour line away (router/live/diversion_rules.py, `router divert`): the
fallback rules over the diversion's time, the emergency lines only to a 24-hour line, a true note,
and, when one gets in anyway, /healthz degraded, the metric, `router status` and the web ignoring it."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from router import live
from router.live import redis_keys
from router.inspect.validation import load_checked
from router.definition.hours import LONDON
from tests.conftest import FLOWS
from tests.test_releases import place, router  # noqa: F401 - the fixture and the CLI helper


@pytest.mark.parametrize("service, to, refusal", [
    ("galop", "childline", "galop is for adults experiencing abuse (or worried about someone) but childline is "
                           "for children: a diversion, like a fallback, must serve the same people"),
    ("galop", "respect_phoneline", "but respect_phoneline is for people worried about their own behaviour: a "
                                   "diversion, like a fallback, must serve the same people"),
    ("national_domestic_abuse_helpline", "galop", "national_domestic_abuse_helpline is the 24-hour line that "
                                                  "silent callers and the 999 path reach (emergency_service in "
                                                  "config.yaml): it can be diverted only to a line open 24 hours"),
    ("live_fear_free", "galop", "(emergency_service_by_language.cy in config.yaml)"),
])
def test_a_diversion_to_a_wrong_audience_or_away_from_the_24_hour_line_is_refused(place, service, to, refusal):
    result = router(place, "divert", service, "--to", to, "--until", "2h")
    assert result.exit_code == 1
    assert refusal in result.output and "nothing changed" in result.output
    assert place["redis"].exists(redis_keys.DIVERSIONS_KEY) == 0


def test_a_diversion_to_a_line_closed_when_callers_reach_it_is_refused_with_the_hours_that_clash():
    from router.live.diversion_rules import check_diversion

    flows = load_checked(FLOWS)
    monday_8am = datetime(2026, 12, 7, 8, 0, tzinfo=LONDON)
    problems = check_diversion(flows, "karma_nirvana", "mens_advice_line", monday_8am + timedelta(hours=26),
                               monday_8am)
    assert problems == [
        "mens_advice_line is closed while karma_nirvana's callers would reach it (Mon 07 Dec 09:00-10:00, "
        "Tue 08 Dec 09:00-10:00, London time): they would hear that mens_advice_line is closed. Divert to a line "
        "open then (open 24 hours for the same people: national_domestic_abuse_helpline, fgm_helpline, "
        "fcdo_global_response_centre, live_fear_free, scotland_helpline, northern_ireland_helpline), or end the "
        "diversion before the first of those times with --until"]
    assert check_diversion(flows, "karma_nirvana", "mens_advice_line", monday_8am + timedelta(minutes=59),
                           monday_8am) == [], "over before Karma Nirvana opens: nobody meets a closed line"


def test_the_note_a_diversion_prints_is_true(place):
    result = router(place, "divert", "karma_nirvana", "--to", "national_domestic_abuse_helpline", "--until", "2h")
    assert result.exit_code == 0, result.output
    assert ("While it lasts, callers who choose Karma Nirvana Honour-Based Abuse Helpline are put through to "
            "National Domestic Abuse Helpline (0808 2000 247), and texters get its details, at any hour.") \
        in result.output
    assert "offered its fallback" not in result.output


def test_until_a_time_that_has_passed_today_is_refused_with_the_time_it_would_mean():
    from click import BadParameter

    from router.cli.divert import parse_until

    now = datetime(2026, 12, 7, 9, 32, tzinfo=LONDON)
    with pytest.raises(BadParameter) as refused:
        parse_until("09:29", now)
    assert ("09:29 has passed today (it is 09:32 now), so it would mean tomorrow, Tue 08 Dec 2026 09:29 (London), "
            "23 h 57 min from now. If you meant that, write --until '2026-12-08 09:29'") in refused.value.message
    assert parse_until("07:30", datetime(2026, 12, 7, 23, 0, tzinfo=LONDON)) == \
        datetime(2026, 12, 8, 7, 30, tzinfo=LONDON), "at night, 07:30 is the next morning"
    with pytest.raises(BadParameter) as past:
        parse_until("2026-12-07 09:00", now)
    assert "Mon 07 Dec 2026 09:00 (London) is in the past: it is Mon 07 Dec 2026 09:32 now" in past.value.message


def test_a_diverted_24_hour_line_forced_in_through_redis_makes_healthz_degraded_and_the_metric_say_so(place):
    from router.web.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(place["env"]["REDIS_URL"], flows_dir=place["live"], flows_watch_seconds=3600,
                                   flows_history_dir=place["history"].home))
    client = app.test_client()
    token = app.extensions["router"].settings.metrics_token
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/healthz").json["status"] == "ok"
    assert "helpline_emergency_lines_down 0.0" in client.get("/metrics", headers=auth).text
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    live.divert(place["redis"], "national_domestic_abuse_helpline", "galop", until)  # what divert refuses
    store = app.extensions["router"].flows
    store.tick()
    public = client.get("/healthz").json
    assert public["status"] == "degraded"
    assert "the 24-hour line national_domestic_abuse_helpline is diverted against the rules, so the diversion " \
           "is ignored" in public["why"], "the public answer: the first clause only"
    body = client.get("/healthz", headers=auth).json
    assert "the 24-hour line national_domestic_abuse_helpline is diverted against the rules, so the diversion " \
           "is ignored: callers still reach national_domestic_abuse_helpline, not galop" in body["why"]
    assert "helpline_emergency_lines_down 1.0" in client.get("/metrics", headers=auth).text
    status = router(place, "status")
    assert status.exit_code == 1
    assert "callers still reach national_domestic_abuse_helpline, not galop. If that is not meant, end it now: " \
           "`router undivert national_domestic_abuse_helpline`" in status.output
    live.undivert(place["redis"], "national_domestic_abuse_helpline")
    store.tick()
    assert client.get("/healthz").json["status"] == "ok"


def test_a_diversion_against_the_rules_forced_into_redis_is_ignored_and_shown(place):
    from router.live.flowstore import FlowStore

    until = datetime.now(timezone.utc) + timedelta(hours=1)
    live.divert(place["redis"], "national_domestic_abuse_helpline", "galop", until)
    live.divert(place["redis"], "galop", "respect_phoneline", until)
    store = FlowStore(place["live"], history=place["history"], client=place["redis"])
    served = store.current()
    assert served.services["national_domestic_abuse_helpline"].id == "national_domestic_abuse_helpline"
    assert served.services["galop"].id == "galop", "never a perpetrators' line to victims"
    body = store.status()
    assert body["status"] == "degraded"
    assert ("the 24-hour line national_domestic_abuse_helpline is diverted against the rules, so the diversion "
            "is ignored: callers still reach national_domestic_abuse_helpline, not galop") in body["why"]
    assert ("a diversion against the rules is ignored: galop to respect_phoneline, which is for people worried "
            "about their own behaviour, not adults experiencing abuse (or worried about someone)") in body["why"]
    assert len(store.emergency_lines_down()) == 1, "the metric and alert still count it"


def test_a_24_hour_line_diverted_by_the_rules_still_makes_healthz_degraded(place):
    from router.web.app import public_reason
    from router.live.flowstore import FlowStore

    result = router(place, "divert", "national_domestic_abuse_helpline", "--to", "live_fear_free", "--until", "1h")
    assert result.exit_code == 0, result.output
    assert "Silent callers are put through to Live Fear Free Helpline too; /healthz says degraded" in result.output
    store = FlowStore(place["live"], history=place["history"], client=place["redis"])
    assert store.current().emergency_for("en").id == "live_fear_free"
    body = store.status()
    assert body["status"] == "degraded"
    reason = "the 24-hour line national_domestic_abuse_helpline is diverted to live_fear_free"
    assert reason in body["why"] and public_reason(reason) == "the 24-hour line national_domestic_abuse_helpline is diverted"
    assert store.emergency_lines_down() == [reason]


def test_diverts_and_undiverts_at_once_lose_nothing_and_write_no_ended_diversion_back(redis_url):
    """Issue 22: divert and undivert read the set and write it back whole; done at once by several
    operators (threads, each with its own connection), none may lose another's diversion or put back one
    that was ended. The set is WATCHed while read and written in MULTI/EXEC, and retried."""
    import threading

    import redis

    client = redis.Redis.from_url(redis_url)
    client.delete(redis_keys.DIVERSIONS_KEY)
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    services = [f"service_{n}" for n in range(4)]
    start = threading.Barrier(len(services))
    failures: list[BaseException] = []

    def operator(service: str) -> None:
        own = redis.Redis.from_url(redis_url)
        try:
            start.wait()
            for n in range(15):
                live.divert(own, service, "national_domestic_abuse_helpline", until, f"op-{n}")
                assert service in live.diversions(own), "a diversion just made is in force"
                live.undivert(own, service)
            live.divert(own, service, "national_domestic_abuse_helpline", until)
            live.divert(own, f"{service}_ended", "national_domestic_abuse_helpline", until)
            assert live.undivert(own, f"{service}_ended") is True
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)

    threads = [threading.Thread(target=operator, args=(service,)) for service in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures, failures
    assert sorted(live.diversions(client)) == services, "every operator's last diversion, and no ended one"
