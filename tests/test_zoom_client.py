"""The Zoom source's client against the sandbox: day-granular requests padded a day each side, trimmed to
the exact window on `time`, keyed by the record's content (no ids), the token exchanged with Basic client
auth and the account id, and the errors a user sees."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.errors import AuthError
from auditlogs.sources import SPECS
from auditlogs.window import Window
from harness import Connection, collect_window, sandbox_fixtures
from sandbox import ground_truth
from sandbox import zoom as fake

CLIENT_ID, SECRET = "zoomClientIdSandbox", "zoom-client-secret-Jj3~value"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, 6, tzinfo=UTC)
SCENARIO = {
    "seed": 29,
    "sources": {
        "zoom": {
            "events_per_hour": 120,
            "burst_fraction": 0.4,
            "token": f"{CLIENT_ID}:{SECRET}",
            "rate_limit_per_minute": 0,
        }
    },
}
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
REPORT = {
    "activities": ("/v2/report/activities", "activity_logs"),
    "operation_logs": ("/v2/report/operationlogs", "operation_logs"),
}

server, api = sandbox_fixtures(SCENARIO, NOW)


def expected(stream: str, window: Window = WINDOW) -> list[str]:
    spec = SPECS["zoom"]
    events = ground_truth("zoom", window.start - timedelta(days=2), window.end + timedelta(days=2), SCENARIO, now=NOW)
    keys = [
        spec.event_id(e)
        for e in events
        if fake.report_of(e) == REPORT[stream][1] and window.contains(spec.event_time(e))
    ]
    return list(dict.fromkeys(keys))


def connection(url: str, secret: str = SECRET, account: str = fake.ACCOUNT) -> Connection:
    return Connection(
        "zoom_reports",
        url,
        secret,
        login=CLIENT_ID,
        extra_dejson={"account_id": account, "token_url": f"{url}/oauth/token"},
    )


def run(url, tmp_path, stream: str, window: Window = WINDOW, **kwargs):
    return collect_window("zoom", {"page_size": 100}, stream, connection(url, **kwargs), window, tmp_path)


@pytest.mark.parametrize("stream", ["activities", "operation_logs"])
def test_padded_days_are_asked_for_and_trimmed_to_the_exact_window(api, tmp_path, stream):
    collected = run(api.url, tmp_path, stream)
    spec = SPECS["zoom"]
    assert [spec.event_id(e) for e in collected.events] == expected(stream) and len(collected.events) > 20
    assert collected.result.outside_window > 10 * collected.result.written  # three days asked for, one hour kept
    token, *pages = api.requests.entries()
    assert token["path"] == "/oauth/token" and token["auth_scheme"] == "Basic" and token["status"] == 200
    assert token["query"] == {"grant_type": ["account_credentials"], "account_id": [fake.ACCOUNT]}
    assert SECRET not in str(token["query"]) and SECRET not in (token["body"] or "")
    first = {"from": ["2026-02-28"], "to": ["2026-03-02"], "page_size": ["100"]}
    if stream == "operation_logs":
        first["category_type"] = ["all"]
    assert [p["path"] for p in pages] == [REPORT[stream][0]] * len(pages) and len(pages) > 3
    assert pages[0]["query"] == first
    for page in pages[1:]:  # the token, with the same filters re-sent
        assert page["query"] == {**first, "next_page_token": page["query"]["next_page_token"]}


def test_records_without_ids_are_keyed_by_their_content_once_over_a_whole_day(api, tmp_path):
    day = Window(WINDOW.start, WINDOW.start + timedelta(days=1))
    keys = [SPECS["zoom"].event_id(e) for e in run(api.url, tmp_path, "activities", window=day).events]
    assert len(keys) == len(set(keys)) and set(keys) == set(expected("activities", day))


def test_a_wrong_account_id_fails_once_naming_the_connection(api, tmp_path):
    with pytest.raises(AuthError, match="connection 'zoom_reports'") as raised:
        run(api.url, tmp_path, "activities", account="notTheAccount")
    assert SECRET not in str(raised.value) and "Invalid account_id" in str(raised.value)
    assert [r["path"] for r in api.requests.entries()] == ["/oauth/token"]


def test_a_long_window_is_asked_for_in_pieces_of_at_most_a_month_of_days(api, tmp_path):
    window = Window(datetime(2026, 1, 20, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC))
    collected = run(api.url, tmp_path, "operation_logs", window=window)
    assert {SPECS["zoom"].event_id(e) for e in collected.events} == set(expected("operation_logs", window))
    firsts = [
        (r["query"]["from"], r["query"]["to"])
        for r in api.requests.entries()
        if "from" in r["query"] and "next_page_token" not in r["query"]
    ]
    assert firsts == [(["2026-01-19"], ["2026-02-16"]), (["2026-02-15"], ["2026-03-01"])]


def test_a_retry_after_timestamp_is_waited_for_and_the_page_retried(api, tmp_path):
    from sandbox.faults import parse_fault

    until = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=200)
    api.faults.add(
        [
            parse_fault(
                {
                    "kind": "status",
                    "match": "/v2/report/",
                    "status": 429,
                    "count": 1,
                    "headers": {"Retry-After": until.strftime("%Y-%m-%dT%H:%M:%SZ")},
                    "body": '{"code": 429, "message": "You have reached the maximum daily rate limit"}',
                }
            )
        ]
    )
    waits: list[float] = []
    collected = collect_window(
        "zoom", {"page_size": 100}, "activities", connection(api.url), WINDOW, tmp_path, sleep=waits.append
    )
    assert [SPECS["zoom"].event_id(e) for e in collected.events] == expected("activities")
    assert len(waits) == 1 and 100 < waits[0] < 300  # Zoom's absolute Retry-After, not a backoff guess
