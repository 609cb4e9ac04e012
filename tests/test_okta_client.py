"""The Okta source's client against the sandbox: a bounded request, Link next followed as given, the
exact window, SSWS or Bearer from the connection extra, and the errors a user sees."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.errors import AuthError, ConfigError, MalformedResponseError
from auditlogs.window import Window
from harness import Connection, collect_window, sandbox_fixtures
from sandbox import ground_truth
from sandbox.vendor import parse_rfc3339

TOKEN = "00sandboxOktaApiTokenXYZ0123456789abcd"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
SCENARIO = {
    "seed": 13,
    "sources": {"okta": {"events_per_hour": 900, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0}},
}
WINDOW = Window(datetime(2026, 3, 1, 4, 0, 0, 500000, tzinfo=UTC), datetime(2026, 3, 1, 5, 0, 0, 500000, tzinfo=UTC))
LOGS = "/api/v1/logs"


server, api = sandbox_fixtures(SCENARIO, NOW)


def expected_uuids(window: Window) -> list[str]:
    events = ground_truth(
        "okta", window.start - timedelta(seconds=1), window.end + timedelta(seconds=1), SCENARIO, now=NOW
    )
    inside = [
        e["uuid"] for e in events if window.start.timestamp() <= parse_rfc3339(e["published"]) < window.end.timestamp()
    ]
    return inside[::-1]  # the truth is newest first by (second, id), which is also millisecond order


def run(api, tmp_path, extra=None, **client_options):
    connection = Connection("okta_logs", api.url, TOKEN, extra_dejson=extra or {})
    return collect_window("okta", {"limit": 200}, "systemlog", connection, WINDOW, tmp_path, **client_options)


def test_bounded_request_then_next_links_as_given(api, tmp_path):
    collected = run(api, tmp_path)
    assert [e["uuid"] for e in collected.events] == expected_uuids(WINDOW)
    sent = api.admin.requests()
    assert len(sent) == collected.result.pages > 3
    assert sent[0]["query"] == {
        "since": ["2026-03-01T04:00:00.499Z"],
        "until": ["2026-03-01T05:00:00.500Z"],
        "sortOrder": ["ASCENDING"],
        "limit": ["200"],
    }
    for request in sent:
        assert request["path"] == LOGS and request["auth_scheme"] == "SSWS" and request["auth_ok"]
    for request in sent[1:]:  # Okta's next link: until, order and limit kept, since replaced by its cursor
        assert request["query"]["until"] == ["2026-03-01T05:00:00.500Z"] and request["query"]["after"][0]
        assert "since" not in request["query"]


def test_bearer_from_the_connection_extra(api, tmp_path):
    collected = run(api, tmp_path, extra={"auth_scheme": "Bearer"})
    assert [e["uuid"] for e in collected.events] == expected_uuids(WINDOW)
    assert {r["auth_scheme"] for r in api.admin.requests()} == {"Bearer"}


def test_an_unknown_auth_scheme_is_a_config_error_naming_the_connection(api, tmp_path):
    with pytest.raises(ConfigError, match="connection 'okta_logs' has extra auth_scheme 'Token'"):
        run(api, tmp_path, extra={"auth_scheme": "Token"})
    assert api.admin.requests() == []


def test_401_fails_at_once_naming_the_connection_and_the_scope(api, tmp_path):
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 401,
            "match": LOGS,
            "body": '{"errorCode": "E0000011", "errorSummary": "Invalid token provided"}',
        }
    )
    with pytest.raises(AuthError) as failure:
        run(api, tmp_path)
    assert "'okta_logs'" in str(failure.value) and "okta.logs.read" in str(failure.value)
    assert TOKEN not in str(failure.value) and len(api.admin.requests()) == 1


def test_429_waits_for_x_rate_limit_reset_and_retries_the_same_page(api, tmp_path):
    waits = []
    reset = int(datetime.now(UTC).timestamp()) + 20
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 429,
            "match": LOGS,
            "after": 1,
            "headers": {"X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": str(reset)},
            "body": '{"errorCode": "E0000047", '
            '"errorSummary": "API call exceeded rate limit due to too many requests."}',
        }
    )
    collected = run(api, tmp_path, sleep=waits.append)
    assert [e["uuid"] for e in collected.events] == expected_uuids(WINDOW)
    sent = api.admin.requests()
    assert [r["status"] for r in sent[:3]] == [200, 429, 200] and sent[1]["query"] == sent[2]["query"]
    assert len(waits) == 1 and 10 <= waits[0] <= 22


def test_a_timestamp_without_a_zone_is_a_clear_error(api, tmp_path):
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 200,
            "match": LOGS,
            "body": '[{"uuid": "u1", "published": "2026-03-01T04:10:00.000"}]',
        }
    )
    with pytest.raises(MalformedResponseError, match="'published' is '2026-03-01T04:10:00.000', expected an RFC 3339"):
        run(api, tmp_path)
