"""The GitLab source's client against the sandbox: keyset paging newest first with the Link followed as
given, whole-second inclusive bounds trimmed to the exact window, group/project paths URL-encoded, the
instance scope, PRIVATE-TOKEN or Bearer, and the errors a user sees."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.errors import AuthError, ConfigError, RequestRejectedError
from auditlogs.window import Window
from harness import Connection, collect_window, sandbox_fixtures, source_config
from sandbox import SandboxServer, ground_truth
from sandbox.gitlab import GROUP_ID, GROUP_PATH, PROJECT_PATH
from sandbox.vendor import parse_rfc3339

TOKEN = "glpat-sandbox0123456789abcdefXYZ"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
SCENARIO = {
    "seed": 17,
    "sources": {"gitlab": {"events_per_hour": 900, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0}},
}
WINDOW = Window(datetime(2026, 3, 1, 4, 0, 0, 500000, tzinfo=UTC), datetime(2026, 3, 1, 5, 0, 0, 500000, tzinfo=UTC))

server, api = sandbox_fixtures(SCENARIO, NOW)


def expected_ids(window: Window) -> list[int]:
    events = ground_truth(
        "gitlab", window.start - timedelta(seconds=1), window.end + timedelta(seconds=1), SCENARIO, now=NOW
    )
    return [
        e["id"] for e in events if window.start.timestamp() <= parse_rfc3339(e["created_at"]) < window.end.timestamp()
    ]


def run(api, tmp_path, options=None, extra=None, window=WINDOW, **client_options):
    connection = Connection("gitlab_audit", api.url, TOKEN, extra_dejson=extra or {})
    return collect_window(
        "gitlab",
        {"group": GROUP_PATH, "per_page": 100, **(options or {})},
        "audit_events",
        connection,
        window,
        tmp_path,
        **client_options,
    )


def test_keyset_pages_newest_first_through_the_encoded_group_path(api, tmp_path):
    collected = run(api, tmp_path)
    assert [e["id"] for e in collected.events] == expected_ids(WINDOW)
    sent = api.admin.requests()
    assert len(sent) == collected.result.pages > 3
    assert {r["path"] for r in sent} == {"/api/v4/groups/northwind%2Fsecurity/audit_events"}
    assert sent[0]["query"] == {
        "created_after": ["2026-03-01T04:00:00Z"],
        "created_before": ["2026-03-01T05:00:01Z"],
        "per_page": ["100"],
        "pagination": ["keyset"],
        "order_by": ["id"],
        "sort": ["desc"],
    }
    for request in sent:
        assert request["headers"]["private-token"] == TOKEN and request["auth_ok"]
    for request in sent[1:]:  # the Link carries the filters and the keyset cursor
        assert request["query"]["created_before"] == ["2026-03-01T05:00:01Z"] and request["query"]["cursor"][0]


def test_paging_ends_on_the_first_short_or_empty_page(api, tmp_path):
    served = [
        e
        for e in ground_truth(
            "gitlab", WINDOW.start - timedelta(seconds=1), WINDOW.end + timedelta(seconds=2), SCENARIO, now=NOW
        )
        if "2026-03-01T04:00:00" <= e["created_at"] <= "2026-03-01T05:00:01.000Z"
    ]
    collected = run(api, tmp_path, {"per_page": 50})
    assert [e["id"] for e in collected.events] == expected_ids(WINDOW)
    # GitLab links on while pages are full, so a multiple of 50 costs one empty page at the end
    assert collected.result.pages == len(served) // 50 + 1


def test_a_project_by_path_and_a_group_by_id(api, tmp_path):
    run(api, tmp_path / "p", {"group": None, "project": PROJECT_PATH})
    run(api, tmp_path / "g", {"group": GROUP_ID})
    paths = {r["path"] for r in api.admin.requests()}
    assert paths == {
        "/api/v4/projects/northwind%2Fsecurity%2Finfra/audit_events",
        f"/api/v4/groups/{GROUP_ID}/audit_events",
    }


def test_the_instance_scope_and_a_bearer_token(api, tmp_path):
    collected = run(api, tmp_path, {"group": None, "instance": True}, extra={"auth_header": "Bearer"})
    assert [e["id"] for e in collected.events] == expected_ids(WINDOW)
    assert {(r["path"], r["auth_scheme"]) for r in api.admin.requests()} == {("/api/v4/audit_events", "Bearer")}


def test_offset_paging_for_old_gitlab_follows_the_link_too(api, tmp_path):
    collected = run(api, tmp_path, {"pagination": "offset"})
    assert sorted(e["id"] for e in collected.events) == sorted(expected_ids(WINDOW))
    sent = api.admin.requests()
    assert "pagination" not in sent[0]["query"] and [r["query"].get("page") for r in sent[1:3]] == [["2"], ["3"]]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"group": None}, "set exactly one of 'group'"),
        ({"project": "a/b"}, "set exactly one of 'group'"),
        ({"group": None, "instance": True, "schedule": "0 0 1 */2 *"}, "at most 30 days at a time"),
    ],
)
def test_a_scope_that_is_not_exactly_one_is_a_config_error(options, message):
    with pytest.raises(ValueError, match=message):
        source_config("gitlab", "gitlab_audit", **{"group": GROUP_PATH, **options})


def test_an_instance_window_over_30_days_fails_before_any_request(api, tmp_path):
    with pytest.raises(ConfigError, match="longer than the 30 days"):
        run(
            api, tmp_path, {"group": None, "instance": True}, window=Window(WINDOW.end - timedelta(days=31), WINDOW.end)
        )
    assert api.admin.requests() == []


def test_an_unknown_auth_header_is_a_config_error_naming_the_connection(api, tmp_path):
    with pytest.raises(ConfigError, match="connection 'gitlab_audit' has extra auth_header 'Token'"):
        run(api, tmp_path, extra={"auth_header": "Token"})
    assert api.admin.requests() == []


def test_401_fails_at_once_naming_the_owner_role_and_never_the_token(api, tmp_path):
    connection = Connection("gitlab_audit", api.url, "glpat-wrong-token-0123")
    with pytest.raises(AuthError) as failure:
        collect_window("gitlab", {"group": GROUP_PATH}, "audit_events", connection, WINDOW, tmp_path)
    assert "'gitlab_audit'" in str(failure.value) and "group Owner" in str(failure.value)
    assert "glpat-wrong-token-0123" not in str(failure.value) and len(api.admin.requests()) == 1


def test_a_plain_text_429_waits_for_retry_after_and_retries_the_same_page(api, tmp_path):
    waits = []
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 429,
            "match": "/api/v4/groups/",
            "after": 1,
            "body": "Retry later",
            "headers": {"Retry-After": "17", "Content-Type": "text/plain"},
        }
    )
    collected = run(api, tmp_path, sleep=waits.append)
    assert [e["id"] for e in collected.events] == expected_ids(WINDOW)
    sent = api.admin.requests()
    assert [r["status"] for r in sent[:3]] == [200, 429, 200] and sent[1]["query"] == sent[2]["query"]
    assert len(waits) == 1 and 17 <= waits[0] <= 19


def test_a_spent_quota_waits_for_its_ratelimit_reset_before_the_next_page_instead_of_earning_a_429(tmp_path):
    """2 requests a minute: after each answer with `RateLimit-Remaining: 0` the client waits until
    `RateLimit-Reset` (its injected sleep lets the sandbox's minute pass), so the API never has to refuse."""
    limited = {"seed": 17, "sources": {"gitlab": {**SCENARIO["sources"]["gitlab"], "rate_limit_per_minute": 2}}}
    waits = []
    with SandboxServer(limited) as limited_api:
        limited_api.clock.set(NOW.timestamp())

        def minute_passes(seconds: float) -> None:
            waits.append(seconds)
            limited_api.pass_rate_limit_windows()

        collected = run(limited_api, tmp_path, {"per_page": 40}, sleep=minute_passes)
        sent = limited_api.admin.requests()
    assert [e["id"] for e in collected.events] == expected_ids(WINDOW)
    assert len(sent) >= 5 and {r["status"] for r in sent} == {200}
    assert len(waits) == (len(sent) - 1) // 2 and all(55 <= wait <= 61 for wait in waits)


def test_a_429_without_retry_after_waits_until_ratelimit_reset(api, tmp_path):
    waits, reset = [], int(time.time()) + 42
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 429,
            "match": "/api/v4/groups/",
            "after": 1,
            "body": "Retry later",
            "headers": {"RateLimit-Remaining": "0", "RateLimit-Reset": str(reset), "Content-Type": "text/plain"},
        }
    )
    collected = run(api, tmp_path, sleep=waits.append)
    assert [e["id"] for e in collected.events] == expected_ids(WINDOW)
    assert [r["status"] for r in api.admin.requests()[:3]] == [200, 429, 200]
    assert len(waits) == 1 and 40 <= waits[0] <= 42 * 1.1


def test_an_unknown_group_is_a_rejected_request_naming_the_path(api, tmp_path):
    with pytest.raises(RequestRejectedError) as failure:
        run(api, tmp_path, {"group": "northwind/missing"})
    assert failure.value.status == 404 and api.admin.requests()[0]["path"].endswith("northwind%2Fmissing/audit_events")
