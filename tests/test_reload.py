"""Flows change under a running web tier (gunicorn, as the Procfile runs it) without a restart:
a good change is picked up with no failed request, a bad one is refused and the old flows serve on."""
from __future__ import annotations

import os
import signal
import threading
import xml.etree.ElementTree as ET

import pytest
import requests

from tests.conftest import copy_flows
from tests.processes import GunicornWeb, wait_until
from tests.support import METRICS_AUTH, METRICS_TOKEN, MOBILE, TOKEN, signature


class Load:
    """Signed greetings sent continuously from a few threads (bounded in count), every answer kept."""

    def __init__(self, base: str, threads: int = 3, limit: int = 3000):
        self.base, self.limit = base, limit
        self.answers: list[tuple[int, bytes]] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self):
        params = {"CallSid": "CA" + "7" * 32, "From": MOBILE, "To": "+443300000111"}
        headers = {"X-Twilio-Signature": signature(self.base + "/voice", params)}
        session = requests.Session()
        while not self.stop.is_set() and len(self.answers) < self.limit:
            response = session.post(self.base + "/voice", data=params, headers=headers, timeout=10)
            self.answers.append((response.status_code, response.content))

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=20)

    def greetings(self) -> list[str]:
        return [ET.fromstring(body).find("Gather/Say[2]").text for _, body in self.answers]


def version(web) -> str:
    return requests.get(web.url + "/healthz", timeout=5, headers=METRICS_AUTH).json()["flows_version"]


def all_workers_on(web, expected: str) -> bool:
    """Each gunicorn worker reloads on its own: several answers in a row must agree."""
    return all(version(web) == expected for _ in range(8))


@pytest.fixture
def web(tmp_path, redis_url):
    flows = copy_flows(tmp_path)
    env = dict(os.environ, TWILIO_AUTH_TOKEN=TOKEN, REDIS_URL=redis_url, FLOWS_DIR=str(flows), METRICS_TOKEN=METRICS_TOKEN,
               WEB_CONCURRENCY="2")
    server = GunicornWeb(env).start()
    server.flows = flows
    yield server
    server.stop()


def edit(path, old, new):
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_a_good_change_is_picked_up_under_load_without_a_failed_request(web):
    before = version(web)
    with Load(web.url) as load:
        wait_until(lambda: len(load.answers) > 20, message="load to be running")
        edit(web.flows / "menu.yaml", 'en: "domestic abuse"', 'en: "abuse at home"')
        wait_until(lambda: version(web) != before and all_workers_on(web, version(web)), 20,
                   message="the new flows in every worker")
        seen = len(load.answers)
        wait_until(lambda: len(load.answers) > seen + 20, message="more load after the switch")
    assert load.answers and all(status == 200 for status, _ in load.answers)
    greetings = load.greetings()
    assert set(greetings) == {"Domestic abuse, press 1, or stay on the line to be put through.", "Abuse at home, press 1, or stay on the line to be put through."}
    first_new = greetings.index("Abuse at home, press 1, or stay on the line to be put through.")
    assert "Abuse at home, press 1, or stay on the line to be put through." in greetings[first_new:]


def test_a_bad_change_is_refused_and_the_old_flows_keep_serving(web):
    before = version(web)
    with Load(web.url) as load:
        edit(web.flows / "services.yaml", '"0800 5999 247"', '"0800 5999"')
        wait_until(lambda: "flow change refused" in web.log(), 20, message="the refusal in the log")
        seen = len(load.answers)
        wait_until(lambda: len(load.answers) > seen + 20, message="load after the refusal")
    assert all(status == 200 for status, _ in load.answers)
    assert set(load.greetings()) == {"Domestic abuse, press 1, or stay on the line to be put through."}
    assert version(web) == before
    assert "services.yaml" in web.log() and "not a valid phone number" in web.log()


def test_a_change_made_file_by_file_is_served_only_once_it_is_whole(web):
    """A menu option naming a service not yet written is refused; adding the service completes it."""
    before = version(web)
    menu = web.flows / "menu.yaml"
    edit(menu, "  stop_it_now: {type: connect, service: stop_it_now}",
         "  stop_it_now: {type: connect, service: stop_it_now}\n  new_line: {type: connect, service: new_service}")
    edit(menu, "        next: main\n", "        next: main\n      - key: 7\n        label: {en: a new line, cy: llinell newydd}\n        next: new_line\n")
    wait_until(lambda: version(web) and "flow change refused" in web.log(), 20, message="the half change refused")
    assert version(web) == before
    services = web.flows / "services.yaml"
    services.write_text(services.read_text() + '''
  new_service:
    name: {en: A New Line, cy: Llinell Newydd}
    number: "0808 808 0000"
    open_24_hours: true
    website: https://www.example.org.uk
    for: {en: testing, cy: profi}
    fallback: national_domestic_abuse_helpline
    checked: 2026-11-01
    source: https://www.example.org.uk
''')
    wait_until(lambda: version(web) != before and all_workers_on(web, version(web)), 20,
               message="the whole change served")


def test_sighup_to_a_worker_makes_it_look_at_once(web):
    pids = [int(p) for p in os.popen(f"pgrep -P {web.process.pid}").read().split()]
    assert pids, "gunicorn workers"
    before = version(web)
    edit(web.flows / "phrases.yaml", "Putting you through", "Connecting you")
    for pid in pids:
        os.kill(pid, signal.SIGHUP)
    wait_until(lambda: version(web) != before and all_workers_on(web, version(web)), 10,
               message="the change after SIGHUP")
