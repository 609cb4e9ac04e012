"""The Slack source's client path (ApiClient + the paging loop + the collector) against the in-thread
sandbox: the exact requests sent, paging across same-second bursts, inclusive bounds, and what 429, 5xx,
timeouts, broken bodies and 401 do."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timezone

import pytest
import requests

from auditlogs.client.api import ApiClient, RetryBudget
from auditlogs.collector import collect
from auditlogs.errors import AuthError, TransientError
from auditlogs.sink.parts import PartWriter
from auditlogs.sources.slack import SPEC, SlackConfig
from auditlogs.window import Window
from harness import sandbox_fixtures
from sandbox import ground_truth

TOKEN = "xoxp-client-test-token-9f8e"
UTC = timezone.utc
NOW = datetime(2026, 5, 1, tzinfo=UTC)
SCENARIO = {
    "seed": 5,
    "sources": {"slack": {"events_per_hour": 1200, "burst_fraction": 0.4, "token": TOKEN, "rate_limit_per_minute": 0}},
}
WINDOW = Window(datetime(2026, 4, 30, 10, tzinfo=UTC), datetime(2026, 4, 30, 11, 30, tzinfo=UTC))


server, api = sandbox_fixtures(SCENARIO, NOW)


class Sleeps(list):
    """Records the client's waits instead of sleeping them."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def make_client(api, token=TOKEN, timeout=10.0, budget=None):
    session = requests.Session()
    session.trust_env = False
    session.headers["Authorization"] = f"Bearer {token}"
    sleeps = Sleeps()
    client = ApiClient(
        base_url=api.url + "/",
        session=session,
        timeout=timeout,
        where="source 'slack' stream 'audit'",
        conn_id="slack_audit",
        permission=SPEC.permission,
        secrets=(token,),
        budget=budget,
        sleep=sleeps,
    )
    return client, sleeps


def run_collect(api, tmp_path, window=WINDOW, limit=100, **client_kwargs):
    client, sleeps = make_client(api, **client_kwargs)
    config = SlackConfig(
        name="slack", type="slack", conn_id="slack_audit", bucket="bucket", start_date=NOW, limit=limit
    )
    writer = PartWriter(tmp_path, part_size=64 * 1024)
    result = collect(SPEC, config, "audit", client, window, writer, max_pages=10_000)
    events = [json.loads(line) for part in writer.close() for line in gzip.open(part.path).read().splitlines()]
    return result, events, client, sleeps


def truth_ids(window: Window) -> set[str]:
    return {event["id"] for event in ground_truth("slack", window.start, window.end, SCENARIO, now=NOW)}


def api_requests(api):
    return [entry for entry in api.admin.requests() if entry["path"] == "/audit/v1/logs"]


def test_every_page_re_sends_both_bounds_and_the_window_is_collected_exactly_once(api, tmp_path):
    result, events, client, _ = run_collect(api, tmp_path, limit=100)
    ids = [event["id"] for event in events]
    assert len(ids) == len(set(ids)) == result.written
    assert set(ids) == truth_ids(WINDOW)

    sent = api_requests(api)
    assert len(sent) == result.pages == client.stats.requests
    oldest, latest = str(int(WINDOW.start.timestamp())), str(int(WINDOW.end.timestamp()))
    for number, request in enumerate(sent):
        assert request["method"] == "GET"
        assert {k: v for k, v in request["query"].items() if k != "cursor"} == {
            "oldest": [oldest],
            "latest": [latest],
            "limit": ["100"],
        }
        assert ("cursor" in request["query"]) == (number > 0)
        assert request["headers"]["authorization"] == "Bearer <redacted>" and request["auth_ok"]
        assert request["connection"] == sent[0]["connection"]  # one keep-alive connection for the window


def test_same_second_bursts_across_pages_are_neither_lost_nor_repeated(api, tmp_path):
    result, events, _, _ = run_collect(api, tmp_path, limit=7)
    per_second = {}
    for event in events:
        per_second.setdefault(event["date_create"], []).append(event["id"])
    assert max(len(ids) for ids in per_second.values()) > 7  # bursts larger than a page exist in the window
    assert [e["id"] for e in events] == [
        e["id"] for e in ground_truth("slack", WINDOW.start, WINDOW.end, SCENARIO, now=NOW)
    ]
    assert result.pages > result.written / 50 and result.duplicates == 0


def test_events_at_the_window_start_are_kept_and_at_its_end_are_not(api, tmp_path):
    # Window bounds placed exactly on event seconds, so both inclusive API bounds matter.
    seconds = sorted({e["date_create"] for e in ground_truth("slack", WINDOW.start, WINDOW.end, SCENARIO, now=NOW)})
    window = Window(datetime.fromtimestamp(seconds[10], UTC), datetime.fromtimestamp(seconds[40], UTC))
    result, events, _, _ = run_collect(api, tmp_path, window=window)
    times = {event["date_create"] for event in events}
    assert seconds[10] in times and seconds[40] not in times
    assert {e["id"] for e in events} == truth_ids(window)
    assert result.outside_window > 0  # the API's inclusive `latest` returned the end second; we trimmed it


@pytest.mark.parametrize("retry_after, floored", [("3", 3.0), ("0", 1.0)])
def test_429_waits_retry_after_floored_and_retries_the_same_page(api, tmp_path, retry_after, floored):
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 429,
            "headers": {"Retry-After": retry_after},
            "body": '{"ok":false,"error":"ratelimited"}',
            "count": 2,
            "after": 1,
        }
    )
    result, events, client, sleeps = run_collect(api, tmp_path)
    assert {e["id"] for e in events} == truth_ids(WINDOW)
    assert len(sleeps) == 2 and floored <= sleeps[0] <= floored * 1.1
    again = max(floored, 2.0)  # the second rate limit in a row: at least the floor doubled
    assert again <= sleeps[1] <= again * 1.1
    sent = api_requests(api)
    assert [r["status"] for r in sent[:4]] == [200, 429, 429, 200]
    assert sent[1]["query"] == sent[2]["query"] == sent[3]["query"]  # the same page, re-sent
    assert client.stats.rate_limited == 2 and len(sent) == result.pages + 2


def test_5xx_and_broken_bodies_retry_the_same_page_with_growing_backoff(api, tmp_path):
    api.admin.add_faults(
        {"kind": "status", "status": 503, "count": 1, "after": 2},
        {"kind": "html", "count": 1},
        {"kind": "truncate", "count": 1},
        {"kind": "reset", "count": 1},
    )
    result, events, client, sleeps = run_collect(api, tmp_path)
    assert {e["id"] for e in events} == truth_ids(WINDOW)
    assert client.stats.retries == 4 and len(sleeps) == 4
    assert sleeps[0] <= 1.0 and 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0 and 4.0 <= sleeps[3] <= 8.0


def test_a_timeout_is_retried(api, tmp_path):
    api.admin.add_faults({"kind": "delay", "seconds": 1.5, "count": 1})
    result, events, client, sleeps = run_collect(api, tmp_path, timeout=0.5)
    assert {e["id"] for e in events} == truth_ids(WINDOW)
    assert client.stats.transient_failures == 1 and len(sleeps) == 1
    assert api.epoch.wait_idle(timeout=30)  # the abandoned slow answer is logged in this test, not the next
    sent = api_requests(api)
    delayed = [request for request in sent if request["fault"] == "delay"]
    assert len(delayed) == 1 and delayed[0]["query"] == sent[0]["query"]  # the first page, asked again at once
    assert "cursor" not in sent[0]["query"] and len(sent) == result.pages + 1 == client.stats.requests


def test_retries_are_bounded_then_the_error_says_what_happened(api, tmp_path):
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 503,
            "count": 10,
            "body": f'{{"ok":false,"error":"fatal_error","echo":"Bearer {TOKEN}"}}',
        }
    )
    with pytest.raises(TransientError) as raised:
        run_collect(api, tmp_path, budget=RetryBudget(max_attempts=3))
    message = str(raised.value)
    assert len(api_requests(api)) == 3
    assert message.startswith(
        "source 'slack' stream 'audit': the API failed (gave up on this page after 3 attempts and "
    )
    assert "s of waits). HTTP status 503. response body: " in message
    assert "fatal_error" in message and TOKEN not in message


def test_401_fails_at_once_naming_the_connection_and_the_scope(api, tmp_path):
    with pytest.raises(AuthError) as raised:
        run_collect(api, tmp_path, token="xoxp-revoked-token-0000")
    assert len(api_requests(api)) == 1
    message = str(raised.value)
    assert "HTTP status 401" in message and "invalid_authentication" in message
    assert "Airflow connection 'slack_audit'" in message and "auditlogs:read" in message
    assert "xoxp-revoked-token-0000" not in message
