"""router/twilio_rest.py builds the REST client: its HTTP session reads the environment (proxies: requests'
own reading; the CA bundle: from Settings) once, when it is built, and must end up with exactly what
requests would have worked out from the environment on every request."""
from __future__ import annotations

import pytest
import requests

from router.settings import load_settings
from router.twilio_rest import make_client, read_environment_once
from tests.conftest import make_settings

API = "https://api.twilio.com"
REQUEST_URL = API + "/2010-04-01/Accounts/AC00000000000000000000000000000001/Messages.json"
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy",
                   "NO_PROXY", "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture
def environment(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def per_request(url: str) -> dict:
    """What a session that trusts the environment merges for one request, as twilio's client asks it."""
    return requests.Session().merge_environment_settings(url, {}, None, None, None)


@pytest.mark.parametrize("variables", [
    {},
    {"HTTPS_PROXY": "http://proxy.example:3128", "REQUESTS_CA_BUNDLE": "/etc/ssl/certs/helpline-ca.pem"},
    {"https_proxy": "http://proxy.example:3128", "NO_PROXY": "api.twilio.com", "CURL_CA_BUNDLE": "/ca.pem"},
    {"ALL_PROXY": "http://proxy.example:3128", "no_proxy": ".example.org"},
])
def test_the_session_settles_on_what_requests_reads_from_the_environment(environment, variables):
    for name, value in variables.items():
        environment.setenv(name, value)
    session = requests.Session()
    read_environment_once(session, API, load_settings().ca_bundle)
    assert session.trust_env is False, "nothing is read from the environment per request any more"
    assert session.merge_environment_settings(REQUEST_URL, {}, None, None, None) == per_request(REQUEST_URL)


def test_the_clients_the_workers_use_are_built_that_way(environment):
    environment.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/helpline-ca.pem")
    environment.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    session = make_client(make_settings(ca_bundle=load_settings().ca_bundle)).http_client.session
    assert session.trust_env is False
    assert session.merge_environment_settings(REQUEST_URL, {}, None, None, None) == per_request(REQUEST_URL)
