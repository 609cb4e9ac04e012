"""The Slack Audit Logs API as a collector sees it: bounds, order, paging, errors, auth, rate limits."""

from __future__ import annotations

import base64
import time
from collections import Counter
from datetime import timedelta

import orjson
import pytest

from conftest import AUTH, NOW, SCENARIO, TOKEN, fetch_pages, ts
from sandbox import SandboxServer, ground_truth, truth_events

HOUR = timedelta(hours=1)
LOGS = "/audit/v1/logs"


def keys(entries: list[dict]) -> list[tuple[int, str]]:
    return [(e["date_create"], e["id"]) for e in entries]


def test_full_paging_returns_ground_truth_newest_first(server, http):
    pages = fetch_pages(http, server.url, {"oldest": ts(NOW - 3 * HOUR), "latest": ts(NOW) - 1, "limit": 500})
    entries = [e for page in pages for e in page]
    assert entries == ground_truth("slack", NOW - 3 * HOUR, NOW, SCENARIO, now=NOW)
    assert keys(entries) == sorted(keys(entries), reverse=True)
    assert len(set(keys(entries))) == len(entries)


def test_oldest_and_latest_are_both_inclusive(server, http):
    window = ground_truth("slack", NOW - 2 * HOUR, NOW, SCENARIO, now=NOW)
    latest, oldest = window[10]["date_create"], window[-10]["date_create"]
    entries = [
        e for page in fetch_pages(http, server.url, {"oldest": oldest, "latest": latest, "limit": 9999}) for e in page
    ]
    assert entries == ground_truth("slack", oldest, latest + 1, SCENARIO, now=NOW)
    assert entries[0]["date_create"] == latest and entries[-1]["date_create"] == oldest


def test_page_grows_past_limit_instead_of_splitting_a_same_second_group(server, http):
    window = ground_truth("slack", NOW - HOUR, NOW, SCENARIO, now=NOW)
    sizes = Counter(e["date_create"] for e in window)
    group_ts = next(e["date_create"] for e in window[20:] if sizes[e["date_create"]] >= 5)
    first = next(i for i, e in enumerate(window) if e["date_create"] == group_ts)
    params = {"oldest": ts(NOW - HOUR), "latest": ts(NOW) - 1, "limit": first + 1}

    page = http.get(server.url + LOGS, params=params, headers=AUTH).json()
    assert len(page["entries"]) == first + sizes[group_ts] > params["limit"]
    assert page["entries"][-1]["date_create"] == group_ts

    pages = fetch_pages(http, server.url, {**params, "limit": 7})
    page_of_second = {}
    for n, p in enumerate(pages):
        for e in p:
            assert page_of_second.setdefault(e["date_create"], n) == n, "same-second group split across pages"
    assert any(len(p) > 7 for p in pages)
    assert [e for p in pages for e in p] == window


def test_cursor_without_oldest_runs_past_the_window(server, http):
    """The real API's trap: a cursor does not carry the filters of the first request."""
    oldest, latest = ts(NOW - HOUR), ts(NOW) - 1
    first = http.get(server.url + LOGS, params={"oldest": oldest, "latest": latest, "limit": 500}, headers=AUTH).json()
    cursor = first["response_metadata"]["next_cursor"]
    assert base64.b64decode(cursor, validate=True)  # opaque, padded standard base64: clients must URL-encode it

    forgetful = http.get(server.url + LOGS, params={"cursor": cursor, "limit": 500}, headers=AUTH).json()
    assert min(e["date_create"] for e in forgetful["entries"]) < oldest
    assert forgetful["response_metadata"]["next_cursor"]

    correct = http.get(
        server.url + LOGS, params={"oldest": oldest, "latest": latest, "cursor": cursor, "limit": 500}, headers=AUTH
    ).json()
    assert all(oldest <= e["date_create"] <= latest for e in correct["entries"])
    assert correct["response_metadata"]["next_cursor"] == ""


def test_default_limit_is_100_and_large_limits_are_clamped(server, http):
    default = http.get(server.url + LOGS, headers=AUTH).json()
    assert 100 <= len(default["entries"]) < 150 and default["response_metadata"]["next_cursor"]
    window = {"oldest": ts(NOW - 24 * HOUR), "latest": ts(NOW) - 1}
    clamped = http.get(server.url + LOGS, params={**window, "limit": 20000}, headers=AUTH).json()
    assert 9999 <= len(clamped["entries"]) < 9999 + 60 and clamped["response_metadata"]["next_cursor"]


def test_action_actor_and_entity_filters(server, http):
    window = {"oldest": ts(NOW - 2 * HOUR), "latest": ts(NOW) - 1, "limit": 9999}
    truth = ground_truth("slack", NOW - 2 * HOUR, NOW, SCENARIO, now=NOW)

    logins = fetch_pages(http, server.url, {**window, "action": "user_login,user_logout"})[0]
    assert logins == [e for e in truth if e["action"] in {"user_login", "user_logout"}]

    actor = truth[0]["actor"]["user"]["id"]
    assert fetch_pages(http, server.url, {**window, "actor": actor})[0] == [
        e for e in truth if e["actor"]["user"]["id"] == actor
    ]

    channel = next(e["entity"]["channel"]["id"] for e in truth if e["entity"]["type"] == "channel")
    by_entity = fetch_pages(http, server.url, {**window, "entity": channel})[0]
    assert by_entity and all(e["entity"]["channel"]["id"] == channel for e in by_entity)


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"oldest": "yesterday"}, "invalid_range"),
        ({"latest": "1.5"}, "invalid_range"),
        ({"oldest": 200, "latest": 100}, "invalid_range"),
        ({"limit": 0}, "invalid_limit"),
        ({"limit": "ten"}, "invalid_limit"),
        ({"cursor": "not-a-cursor!"}, "invalid_cursor"),
        ({"cursor": base64.b64encode(b"user:U123").decode()}, "invalid_cursor"),
    ],
)
def test_bad_parameters_are_400(server, http, params, error):
    resp = http.get(server.url + LOGS, params=params, headers=AUTH)
    assert resp.status_code == 400
    assert resp.json() == {"ok": False, "error": error}


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, "missing_authentication"),
        ({"Authorization": f"Basic {TOKEN}"}, "missing_authentication"),
        ({"Authorization": "Bearer "}, "missing_authentication"),
        ({"Authorization": "Bearer xoxp-wrong"}, "invalid_authentication"),
    ],
)
def test_logs_require_the_scenario_token(server, http, headers, error):
    resp = http.get(server.url + LOGS, headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"ok": False, "error": error}


def test_schemas_and_actions_need_no_auth(server, http):
    schemas = http.get(server.url + "/audit/v1/schemas")
    assert schemas.status_code == 200 and {s["type"] for s in schemas.json()["schemas"]} >= {
        "user",
        "channel",
        "file",
        "app",
    }
    actions = http.get(server.url + "/audit/v1/actions")
    assert actions.status_code == 200 and "user_login" in actions.json()["actions"]["user"]


def test_unknown_paths_are_404(server, http):
    assert http.get(server.url + "/api/conversations.list", headers=AUTH).status_code == 404


def test_rate_limit_429_with_retry_after(http):
    scenario = {"seed": 1, "sources": {"slack": {"token": TOKEN, "rate_limit_per_minute": 3}}}
    with SandboxServer(scenario) as srv:
        assert [http.get(srv.url + LOGS, params={"limit": 1}, headers=AUTH).status_code for _ in range(3)] == [200] * 3
        limited = http.get(srv.url + LOGS, params={"limit": 1}, headers=AUTH)
        assert limited.status_code == 429
        assert limited.json() == {"ok": False, "error": "ratelimited"}
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # Authentication is checked first, and unauthenticated calls do not use up the quota.
        assert http.get(srv.url + LOGS, headers={"Authorization": "Bearer nope"}).status_code == 401
        srv.reset()
        assert http.get(srv.url + LOGS, params={"limit": 1}, headers=AUTH).status_code == 200


def test_a_200k_event_window_pages_out_exactly_the_ground_truth_in_order_at_the_9999_limit(http):
    scenario = {
        "seed": 3,
        "sources": {"slack": {"events_per_hour": 100_000, "token": TOKEN, "rate_limit_per_minute": 0}},
    }
    start, end = NOW - 2 * HOUR, NOW
    with SandboxServer(scenario) as srv:
        srv.clock.set(NOW.timestamp())
        got, cursor = [], ""
        while True:
            params = {
                "oldest": ts(start),
                "latest": ts(end) - 1,
                "limit": 9999,
                **({"cursor": cursor} if cursor else {}),
            }
            resp = http.get(srv.url + LOGS, params=params, headers=AUTH)
            body = orjson.loads(resp.content)
            got += [e["id"] for e in body["entries"]]
            cursor = body["response_metadata"]["next_cursor"]
            if not cursor:
                break
    assert got == [e.id for e in truth_events("slack", start, end, scenario, now=NOW)]
    assert len(got) == 200_000


def test_server_uses_real_time_without_clock_override(http):
    with SandboxServer(SCENARIO) as srv:
        body = http.get(srv.url + LOGS, params={"limit": 5}, headers=AUTH).json()
    assert time.time() - 3600 < body["entries"][0]["date_create"] <= time.time()
