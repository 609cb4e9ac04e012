"""The 1Password Events API as a collector sees it: reset cursor then cursor, has_more, order, errors."""

from __future__ import annotations

import pytest

from harness import sandbox_fixtures
from sandbox import SandboxServer
from sandbox.onepassword import item_time, stream_of_item

TOKEN = "op-sandbox-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = 1772323200  # 2026-03-01T00:00:00Z
SCENARIO = {"seed": 4, "sources": {"onepassword": {"events_per_hour": 600, "token": TOKEN, "rate_limit_per_minute": 0}}}
WINDOW = {"start_time": "2026-02-28T20:00:00Z", "end_time": "2026-02-28T21:00:00Z"}


server, api = sandbox_fixtures(SCENARIO, NOW)


def post(http, api, stream, body, headers=AUTH):
    return http.post(f"{api.url}/api/v2/{stream}", json=body, headers=headers)


def test_paging_returns_the_inclusive_window_oldest_first_with_a_cursor_on_every_page(api, http):
    pages = [post(http, api, "itemusages", {"limit": 40, **WINDOW}).json()]
    while pages[-1]["has_more"]:
        pages.append(post(http, api, "itemusages", {"cursor": pages[-1]["cursor"]}).json())
    items = [i for p in pages for i in p["items"]]
    assert len(pages) > 3 and all(p["cursor"] for p in pages)
    assert {stream_of_item(i) for i in items} == {"itemusages"}
    times = [item_time(i) for i in items]
    assert times == sorted(times) and 1772308800 <= times[0] and times[-1] <= 1772312400
    # The last cursor is a tail position: re-posting it gives nothing new and no more.
    again = post(http, api, "itemusages", {"cursor": pages[-1]["cursor"]}).json()
    assert again["items"] == [] and again["has_more"] is False and again["cursor"]


@pytest.mark.parametrize(
    "body",
    [
        {"limit": 0},
        {"limit": 1001},
        {"start_time": "2026-02-28 20:00:00"},
        {"cursor": "not-ours"},
        {"start_time": "2026-02-28T21:00:00Z", "end_time": "2026-02-28T20:00:00Z"},
    ],
)
def test_bad_requests_are_400_with_the_error_body(api, http, body):
    resp = post(http, api, "auditevents", body)
    assert resp.status_code == 400 and set(resp.json()["Error"]) == {"Message"}


def test_a_cursor_of_another_stream_is_refused(api, http):
    cursor = post(http, api, "auditevents", {"limit": 1, **WINDOW}).json()["cursor"]
    assert post(http, api, "signinattempts", {"cursor": cursor}).status_code == 400


def test_401_without_the_token_and_429_over_the_limit(http):
    scenario = {"seed": 4, "sources": {"onepassword": {"token": TOKEN, "rate_limit_per_minute": 2}}}
    with SandboxServer(scenario) as server:
        assert post(http, server, "auditevents", {}, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert [post(http, server, "auditevents", {}).status_code for _ in range(3)] == [200, 200, 429]
        limited = post(http, server, "auditevents", {})
        assert limited.json() == {"Error": {"Message": "Too many requests"}} and "Retry-After" not in limited.headers
