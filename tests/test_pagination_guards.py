"""Paging that would loop, make no progress, run away or send the token elsewhere fails with a clear,
scrubbed PaginationError for every paging strategy: never a loop, never a silent short stop. The bad pages
are forged by the sandbox (a 200 fault with a crafted body) and go through the real client and loop."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from auditlogs.client.pagination import MAX_PAGES_WITHOUT_PROGRESS
from auditlogs.errors import PaginationError
from auditlogs.window import Window
from harness import Connection, collect_window, sandbox_fixtures

UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
ONEPASSWORD_TOKEN = "eyJhbGciOiJFUzI1NiJ9.eyJmZWF0dXJlcyI6WyJhdWRpdGV2ZW50cyJdfQ.Z3VhcmRzLXNpZ25hdHVyZQ"
TOKENS = {
    "slack": "xoxp-guards-token-0001",
    "okta": "00guardsOktaToken00000000000000",
    "onepassword": ONEPASSWORD_TOKEN,
    "twilio": "ACguards000000000000000000000000000:twilio-guards-secret",
}
SCENARIO = {
    "seed": 3,
    "sources": {
        name: {"events_per_hour": 600, "token": token, "rate_limit_per_minute": 0} for name, token in TOKENS.items()
    },
}

server, api = sandbox_fixtures(SCENARIO, NOW)


def collect(api, tmp_path, source, options=None, stream=None):
    login, _, password = TOKENS[source].rpartition(":") if source == "twilio" else (None, "", TOKENS[source])
    connection = Connection(f"{source}_conn", api.url, password, login=login)
    stream = stream or {"slack": "audit", "okta": "events", "onepassword": "signinattempts", "twilio": "events"}[source]
    return collect_window(source, options or {}, stream, connection, WINDOW, tmp_path)


def page(body, headers=None, count=1) -> dict:
    return {"kind": "status", "status": 200, "body": json.dumps(body), "headers": headers or {}, "count": count}


def fails(api, tmp_path, source, **kwargs) -> tuple[PaginationError, list[dict]]:
    with pytest.raises(PaginationError) as raised:
        collect(api, tmp_path, source, **kwargs)
    assert TOKENS[source].rpartition(":")[2] not in str(raised.value)
    return raised.value, api.admin.requests()


def test_a_body_cursor_seen_twice_stops_before_asking_again(api, tmp_path):
    api.admin.add_faults(page({"ok": True, "entries": [], "response_metadata": {"next_cursor": "c2FtZQ=="}}, count=2))
    error, sent = fails(api, tmp_path, "slack")
    assert "the API sent the same next-page position twice after 2 pages" in str(error) and "c2FtZQ==" in str(error)
    assert len(sent) == 2 and error.retryable


def test_has_more_with_the_same_cursor_stops(api, tmp_path):
    api.admin.add_faults(page({"cursor": "same", "has_more": True, "items": []}, count=2))
    error, sent = fails(api, tmp_path, "onepassword")
    assert "same next-page position twice" in str(error) and len(sent) == 2


def test_has_more_on_empty_pages_without_progress_stops(api, tmp_path):
    api.admin.add_faults(
        *[page({"cursor": f"c{n}", "has_more": True, "items": []}) for n in range(MAX_PAGES_WITHOUT_PROGRESS)]
    )
    error, sent = fails(api, tmp_path, "onepassword")
    assert (
        f"the API answered {MAX_PAGES_WITHOUT_PROGRESS} pages in a row that each said there is more but "
        "brought no new event"
    ) in str(error)
    assert len(sent) == MAX_PAGES_WITHOUT_PROGRESS


@pytest.mark.parametrize("target", ["http://evil.example:{port}", "https://127.0.0.1:{port}"])
def test_a_link_header_next_on_another_host_or_scheme_is_refused(api, tmp_path, target):
    url = target.format(port=api.port) + "/api/v1/logs?after=x"
    api.admin.add_faults(page([], headers={"Link": f'<{url}>; rel="next"'}))
    error, sent = fails(api, tmp_path, "okta")
    assert "next-page URL on another host or scheme" in str(error) and "refusing to send the credential there" in str(
        error
    )
    assert len(sent) == 1 and not error.retryable


def test_a_body_next_url_on_another_host_is_refused(api, tmp_path):
    api.admin.add_faults(page({"events": [], "meta": {"next_page_url": "http://evil.example/v1/Events?Page=1"}}))
    error, sent = fails(api, tmp_path, "twilio")
    assert "(http://evil.example)" in str(error) and len(sent) == 1 and not error.retryable


def test_the_page_cap_fails_instead_of_stopping_short(api, tmp_path):
    error, sent = fails(api, tmp_path, "slack", options={"limit": 20, "max_pages": 3})
    assert "more than 3 pages in one window" in str(error) and "raise the source's max_pages" in str(error)
    assert len(sent) == 3 and not error.retryable
