"""The Twilio Monitor Events API as a collector sees it: Basic auth, inclusive bounds, newest first,
absolute next_page_url carrying the filters, Twilio error codes, rate limits."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

from harness import sandbox_fixtures
from sandbox import SandboxServer, ground_truth

SECRET = "ACsandbox0000:twilio-secret-9"
AUTH = {"Authorization": "Basic " + base64.b64encode(SECRET.encode()).decode()}
NOW = datetime(2025, 6, 2, 12, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
SCENARIO = {"seed": 4, "sources": {"twilio": {"events_per_hour": 300, "token": SECRET, "rate_limit_per_minute": 0}}}


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


server, api = sandbox_fixtures(SCENARIO, NOW)


def all_pages(http, first_url, params):
    pages, url = [], first_url
    while url:
        body = http.get(url, params=params, headers=AUTH).json()
        pages.append(body)
        url, params = body["meta"]["next_page_url"], None  # followed verbatim
    return pages


def test_paging_returns_the_inclusive_window_newest_first(api, http):
    start, end = NOW - 2 * HOUR, NOW - HOUR
    pages = all_pages(http, api.url + "/v1/Events", {"StartDate": iso(start), "EndDate": iso(end), "PageSize": 70})
    events = [e for page in pages for e in page["events"]]
    truth = ground_truth("twilio", start, end + timedelta(seconds=1), SCENARIO, now=NOW)
    assert events == truth and len(pages) == -(-len(truth) // 70)
    assert [e["event_date"] for e in events] == sorted((e["event_date"] for e in events), reverse=True)
    assert pages[-1]["meta"]["next_page_url"] is None
    second = parse_qs(urlsplit(pages[0]["meta"]["next_page_url"]).query)
    assert second["StartDate"] == [iso(start)] and second["EndDate"] == [iso(end)]
    assert second["PageSize"] == ["70"] and second["Page"] == ["1"] and second["PageToken"][0].startswith("PA")
    assert pages[0]["meta"]["next_page_url"].startswith(api.url + "/v1/Events?")


def test_bare_dates_cover_whole_days_and_default_page_size_is_50(api, http):
    body = http.get(
        api.url + "/v1/Events", params={"StartDate": "2025-06-01", "EndDate": "2025-06-01"}, headers=AUTH
    ).json()
    assert len(body["events"]) == 50 and body["meta"]["page_size"] == 50
    day = datetime(2025, 6, 1, tzinfo=timezone.utc)
    assert body["events"] == ground_truth("twilio", day, day + 24 * HOUR, SCENARIO, now=NOW)[:50]


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"PageSize": 1001}, 400, 20001),
        ({"PageSize": 0}, 400, 20001),
        ({"StartDate": "yesterday"}, 400, 20001),
        ({"PageToken": "PAforged!!"}, 400, 21481),
        ({"PageToken": "not-a-token"}, 400, 21481),
    ],
)
def test_bad_parameters(api, http, params, status, code):
    resp = http.get(api.url + "/v1/Events", params=params, headers=AUTH)
    assert resp.status_code == status
    assert resp.json()["code"] == code and resp.json()["more_info"].endswith(str(code))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + base64.b64encode(b"ACsandbox0000:wrong").decode()},
        {"Authorization": "Bearer twilio-secret-9"},
    ],
)
def test_basic_auth_is_required(api, http, headers):
    resp = http.get(api.url + "/v1/Events", headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {
        "code": 20003,
        "message": "Authenticate",
        "more_info": "https://www.twilio.com/docs/errors/20003",
        "status": 401,
        "detail": "Your AccountSid or AuthToken was incorrect.",
    }


def test_filters_are_applied_and_carried_into_next_page_url(api, http):
    start, end = NOW - 3 * HOUR, NOW
    truth = ground_truth("twilio", start, end + timedelta(seconds=1), SCENARIO, now=NOW)
    params = {"StartDate": iso(start), "EndDate": iso(end), "EventType": "user.logged-in", "PageSize": 5}
    pages = all_pages(http, api.url + "/v1/Events", params)
    assert [e for p in pages for e in p["events"]] == [e for e in truth if e["event_type"] == "user.logged-in"]
    assert "EventType=user.logged-in" in pages[0]["meta"]["next_page_url"]


def test_rate_limit_is_429_with_code_20429(http):
    scenario = {"seed": 1, "sources": {"twilio": {"token": SECRET, "rate_limit_per_minute": 2}}}
    with SandboxServer(scenario) as srv:
        statuses = [
            http.get(srv.url + "/v1/Events", params={"PageSize": 1}, headers=AUTH).status_code for _ in range(2)
        ]
        limited = http.get(srv.url + "/v1/Events", params={"PageSize": 1}, headers=AUTH)
    assert statuses == [200, 200] and limited.status_code == 429
    assert limited.json()["code"] == 20429 and "Retry-After" not in limited.headers
