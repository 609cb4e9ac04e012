"""The Twilio source against the sandbox, without Airflow: exact requests, verbatim next-page URLs,
inclusive bounds trimmed to the half-open window, errors a user reads."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from auditlogs.errors import AuthError, MalformedResponseError, PaginationError, RequestRejectedError
from auditlogs.sources.twilio import SPEC, TwilioConfig
from auditlogs.window import Window
from harness import Connection, api_client, run_collector, sandbox_fixtures
from sandbox import ground_truth

SID, SECRET = "ACclient0000", "twilio-client-secret-77"
NOW = datetime(2025, 6, 2, 12, tzinfo=timezone.utc)
SCENARIO = {
    "seed": 9,
    "sources": {
        "twilio": {
            "events_per_hour": 500,
            "burst_fraction": 0.3,
            "token": f"{SID}:{SECRET}",
            "rate_limit_per_minute": 0,
        }
    },
}
WINDOW = Window(NOW - timedelta(hours=2, minutes=30), NOW - timedelta(hours=1))


server, api = sandbox_fixtures(SCENARIO, NOW)


def config(**overrides) -> TwilioConfig:
    return TwilioConfig(
        name="twilio", type="twilio", conn_id="twilio_monitor", bucket="bkt", start_date=NOW, **overrides
    )


def client(api, password=SECRET, sleeps=None):
    return api_client(SPEC, Connection("twilio_monitor", host=api.url, login=SID, password=password), sleeps)


def test_pages_follow_next_page_url_verbatim_and_keep_the_half_open_window(api, tmp_path):
    result, events = run_collector(SPEC, config(page_size=100), "events", client(api), WINDOW, tmp_path)
    assert events == ground_truth("twilio", WINDOW.start, WINDOW.end, SCENARIO, now=NOW)
    sent = api.requests.entries()
    assert len(sent) == result.pages == -(-len(events) // 100) > 5
    first = sent[0]["query"]
    assert first == {"StartDate": ["2025-06-02T09:30:00Z"], "EndDate": ["2025-06-02T10:59:59Z"], "PageSize": ["100"]}
    assert all(r["auth_scheme"] == "Basic" and r["auth_ok"] for r in sent)
    for number, request in enumerate(sent[1:], start=1):
        assert request["query"]["Page"] == [str(number)] and request["query"]["PageToken"]
        assert {k: request["query"][k] for k in first} == first
    assert result.outside_window == 0


def test_end_date_is_the_last_second_before_the_windows_end(api, tmp_path):
    """EndDate is inclusive: events at exactly the window's end are neither fetched nor written."""
    edge = datetime.fromisoformat(ground_truth("twilio", WINDOW.start, WINDOW.end, SCENARIO, now=NOW)[3]["event_date"])
    window = Window(WINDOW.start, edge)
    result, events = run_collector(SPEC, config(), "events", client(api), window, tmp_path)
    assert events == ground_truth("twilio", window.start, window.end, SCENARIO, now=NOW) and result.outside_window == 0
    assert api.requests.entries()[0]["query"]["EndDate"] == [f"{edge - timedelta(seconds=1):%Y-%m-%dT%H:%M:%SZ}"]


def test_wrong_secret_fails_at_once_naming_connection_and_permission(api, tmp_path):
    with pytest.raises(AuthError) as raised:
        run_collector(SPEC, config(), "events", client(api, password="wrong-secret-123"), WINDOW, tmp_path)
    message = str(raised.value)
    assert "HTTP status 401" in message and "20003" in message and "'twilio_monitor'" in message
    assert "Monitor events" in message and "wrong-secret-123" not in message
    assert len(api.requests.entries()) == 1


def test_429_20429_retries_the_same_page(api, tmp_path):
    body = json.dumps(
        {
            "code": 20429,
            "message": "Too Many Requests",
            "more_info": "https://www.twilio.com/docs/errors/20429",
            "status": 429,
        }
    )
    api.admin.add_faults({"kind": "status", "status": 429, "headers": {}, "body": body, "after": 1, "count": 2})
    sleeps = []
    result, events = run_collector(SPEC, config(page_size=200), "events", client(api, sleeps=sleeps), WINDOW, tmp_path)
    assert events == ground_truth("twilio", WINDOW.start, WINDOW.end, SCENARIO, now=NOW)
    sent = api.requests.entries()
    assert [r["status"] for r in sent[:4]] == [200, 429, 429, 200] and len(sleeps) == 2
    assert sent[1]["query"] == sent[2]["query"] == sent[3]["query"]


def page(*events, next_url=None) -> str:
    return json.dumps({"events": list(events), "meta": {"next_page_url": next_url, "key": "events"}})


def event(**fields) -> dict:
    return {"sid": "AE" + "a" * 32, "event_date": "2025-06-02T10:00:00Z", "event_type": "account.updated", **fields}


def test_a_bad_event_date_is_a_clear_error_not_a_dropped_event(api, tmp_path):
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 200,
            "body": page(event(), event(sid="AE" + "b" * 32, event_date="2025-06-02 10:00:01")),
        }
    )
    with pytest.raises(
        MalformedResponseError, match=r"page 1, event 2: 'event_date' is '2025-06-02 10:00:01', expected an RFC 3339"
    ):
        run_collector(SPEC, config(), "events", client(api), WINDOW, tmp_path)


def test_an_event_without_sid_is_kept_under_its_content_hash(api, tmp_path):
    anonymous = event(sid=None)
    api.admin.add_faults({"kind": "status", "status": 200, "body": page(anonymous, event())})
    result, events = run_collector(SPEC, config(), "events", client(api), WINDOW, tmp_path)
    assert events == [anonymous, event()] and result.written == 2
    assert SPEC.event_id(anonymous).startswith("sha256:") and SPEC.event_id(anonymous) == SPEC.event_id(
        dict(reversed(anonymous.items()))
    )


def test_a_next_page_url_on_another_host_is_refused(api, tmp_path):
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 200,
            "body": page(event(), next_url="https://evil.example/v1/Events?PageToken=PAx"),
        }
    )
    with pytest.raises(PaginationError, match="another host"):
        run_collector(SPEC, config(), "events", client(api), WINDOW, tmp_path)
    assert len(api.requests.entries()) == 1


def test_next_page_url_is_sent_exactly_as_given(api, tmp_path):
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 200,
            "body": page(event(), next_url=f"{api.url}/v1/Events?PageSize=7&Page=1&PageToken=PA%2Fx%3D&Odd=a+b"),
        }
    )
    with pytest.raises(RequestRejectedError, match="21481"):  # the sandbox does not know that token
        run_collector(SPEC, config(), "events", client(api), WINDOW, tmp_path)
    second = api.requests.entries()[1]
    assert second["query"] == parse_qs(
        urlsplit(f"{api.url}/v1/Events?PageSize=7&Page=1&PageToken=PA%2Fx%3D&Odd=a+b").query
    )
