"""The 1Password source's client against the sandbox: the requests it sends, paging by has_more, the
exact window, and the errors a user sees."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.errors import AuthError, MalformedResponseError
from auditlogs.window import Window
from harness import Connection, collect_window, sandbox_fixtures
from sandbox import ground_truth
from sandbox.onepassword import item_time, stream_of_item

TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJmZWF0dXJlcyI6WyJhdWRpdGV2ZW50cyJdfQ.c2FuZGJveC1zaWduYXR1cmU"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
SCENARIO = {
    "seed": 5,
    "sources": {
        "onepassword": {
            "events_per_hour": 900,
            "burst_fraction": 0.3,
            "token": TOKEN,
            "rate_limit_per_minute": 0,
            "retention_days": 120,
        }
    },
}
WINDOW = Window(datetime(2026, 3, 1, 4, 0, 0, 250000, tzinfo=UTC), datetime(2026, 3, 1, 5, 0, 0, 750000, tzinfo=UTC))
PATH = "/api/v2/signinattempts"


server, api = sandbox_fixtures(SCENARIO, NOW)


def expected_uuids(stream: str, window: Window) -> list[str]:
    items = ground_truth(
        "onepassword", window.start - timedelta(seconds=1), window.end + timedelta(seconds=1), SCENARIO, now=NOW
    )
    inside = [
        i
        for i in items
        if stream_of_item(i) == stream and window.start.timestamp() <= item_time(i) < window.end.timestamp()
    ]
    return [i["uuid"] for i in sorted(inside, key=item_time)]


def run(api, tmp_path, stream="signinattempts", window=WINDOW, options=None, **client_options):
    connection = Connection("onepassword_events", api.url, TOKEN)
    return collect_window(
        "onepassword", {"limit": 100, **(options or {})}, stream, connection, window, tmp_path, **client_options
    )


def test_reset_cursor_then_cursor_until_has_more_is_false(api, tmp_path):
    collected = run(api, tmp_path)
    assert [e["uuid"] for e in collected.events] == expected_uuids("signinattempts", WINDOW)
    assert any(not e["timestamp"].endswith("Z") for e in collected.events), "offset times must be kept at their instant"

    sent = api.admin.requests()
    assert [r["path"] for r in sent] == [PATH] * len(sent)
    assert all(r["method"] == "POST" and r["auth_scheme"] == "Bearer" and r["auth_ok"] for r in sent)
    bodies = [json.loads(r["body"]) for r in sent]
    assert bodies[0] == {"limit": 100, "start_time": "2026-03-01T04:00:00.249Z", "end_time": "2026-03-01T05:00:00.750Z"}
    assert all(list(body) == ["cursor"] for body in bodies[1:])
    # A cursor comes back on the last page too: paging stops on has_more, not one request later.
    assert len(sent) == collected.client.stats.requests == math.ceil(collected.result.fetched / 100) > 3


def test_each_stream_gets_only_its_own_events(api, tmp_path):
    window = Window(datetime(2026, 3, 1, 6, tzinfo=UTC), datetime(2026, 3, 1, 6, 20, tzinfo=UTC))
    for stream in ("auditevents", "itemusages"):
        collected = run(api, tmp_path / stream, stream=stream, window=window, options={"limit": 1000})
        assert [e["uuid"] for e in collected.events] == expected_uuids(stream, window)
    assert {r["path"] for r in api.admin.requests()} == {"/api/v2/auditevents", "/api/v2/itemusages"}


def test_a_bad_timestamp_is_a_clear_error_not_a_dropped_event(api, tmp_path):
    body = '{"cursor": "c1", "has_more": false, "items": [{"uuid": "AAAA", "timestamp": "2026-03-01 04:10:00"}]}'
    api.admin.add_faults({"kind": "status", "status": 200, "match": PATH, "body": body})
    with pytest.raises(MalformedResponseError, match=r"'timestamp' is '2026-03-01 04:10:00', expected an RFC 3339"):
        run(api, tmp_path)


def test_a_page_without_has_more_is_malformed(api, tmp_path):
    api.admin.add_faults({"kind": "status", "status": 200, "match": PATH, "body": '{"cursor": "c1", "items": []}'})
    with pytest.raises(MalformedResponseError, match="no boolean 'has_more'"):
        run(api, tmp_path)


def test_401_fails_at_once_naming_the_connection_and_the_permission(api, tmp_path):
    api.admin.add_faults(
        {"kind": "status", "status": 401, "match": PATH, "body": '{"Error": {"Message": "Unauthorized"}}'}
    )
    with pytest.raises(AuthError) as failure:
        run(api, tmp_path)
    message = str(failure.value)
    assert "'onepassword_events'" in message and "signinattempts" in message and "Events Reporting" in message
    assert TOKEN not in message
    assert len(api.admin.requests()) == 1


def test_429_without_retry_after_backs_off_and_retries_the_same_cursor(api, tmp_path):
    waits = []
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 429,
            "match": PATH,
            "after": 2,
            "headers": {},
            "body": '{"Error": {"Message": "Too many requests"}}',
        }
    )
    collected = run(api, tmp_path, sleep=waits.append)
    assert [e["uuid"] for e in collected.events] == expected_uuids("signinattempts", WINDOW)
    sent = api.admin.requests()
    assert [r["status"] for r in sent[:4]] == [200, 200, 429, 200]
    assert sent[2]["body"] == sent[3]["body"]
    assert len(waits) == 1 and 1 <= waits[0] <= 2.2
