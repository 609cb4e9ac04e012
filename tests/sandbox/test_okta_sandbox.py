"""The Okta System Log as a collector sees it: bounded and polling requests, Link next, errors."""

from __future__ import annotations

import pytest

from harness import sandbox_fixtures
from sandbox import SandboxServer
from sandbox.vendor import parse_rfc3339

TOKEN = "00oktaSandboxToken"
NOW = 1772323200
SCENARIO = {"seed": 4, "sources": {"okta": {"events_per_hour": 600, "token": TOKEN, "rate_limit_per_minute": 0}}}
BOUNDED = {"since": "2026-02-28T20:00:00Z", "until": "2026-02-28T21:00:00Z", "limit": 100}


server, api = sandbox_fixtures(SCENARIO, NOW)


@pytest.mark.parametrize("scheme", ["SSWS", "Bearer"])
def test_bounded_request_ends_without_next_and_is_ascending(api, http, scheme):
    headers = {"Authorization": f"{scheme} {TOKEN}"}
    response = http.get(f"{api.url}/api/v1/logs", params=BOUNDED, headers=headers)
    events = []
    while True:
        assert response.status_code == 200 and "self" in response.links
        events += response.json()
        if "next" not in response.links:
            break
        response = http.get(response.links["next"]["url"], headers=headers)
    times = [parse_rfc3339(e["published"]) for e in events]
    assert len(events) > 300 and times == sorted(times) and 1772308800 <= times[0] and times[-1] <= 1772312400


def test_polling_request_always_has_a_next_link(api, http):
    headers = {"Authorization": f"SSWS {TOKEN}"}
    response = http.get(f"{api.url}/api/v1/logs", params={"since": "2026-02-28T23:59:00Z"}, headers=headers)
    for _ in range(3):
        assert "next" in response.links
        response = http.get(response.links["next"]["url"], headers=headers)
    assert response.json() == [] and "next" in response.links


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"since": "yesterday"}, "E0000001"),
        ({"limit": 1001}, "E0000001"),
        ({"since": "2025-06-01T00:00:00Z"}, "E0000053"),
        ({"since": "2026-02-28T20:00:00Z", "after": "x"}, "E0000001"),
    ],
)
def test_bad_parameters_are_400_with_okta_error_codes(api, http, params, code):
    response = http.get(f"{api.url}/api/v1/logs", params=params, headers={"Authorization": f"SSWS {TOKEN}"})
    assert response.status_code == 400 and response.json()["errorCode"] == code


def test_401_and_429_with_rate_limit_headers(http):
    scenario = {"seed": 4, "sources": {"okta": {"token": TOKEN, "rate_limit_per_minute": 1}}}
    with SandboxServer(scenario) as server:
        url = f"{server.url}/api/v1/logs"
        assert http.get(url, headers={"Authorization": "SSWS wrong"}).json()["errorCode"] == "E0000011"
        first, second = (http.get(url, headers={"Authorization": f"SSWS {TOKEN}"}) for _ in range(2))
        assert first.status_code == 200 and first.headers["X-Rate-Limit-Remaining"] == "0"
        assert (
            second.status_code == 429
            and second.json()["errorCode"] == "E0000047"
            and int(second.headers["X-Rate-Limit-Reset"]) > NOW
        )
