"""The GitHub source's client against the sandbox: created: bounds rounded outward and trimmed, Link
next followed as given, GHES base URLs, and rate-limit 403s told apart from permission 403s."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import yaml

from auditlogs.errors import AuthError, MalformedResponseError, RateLimitedError
from auditlogs.window import Window
from harness import Connection, collect_window, sandbox_fixtures
from sandbox import SandboxServer, ground_truth
from sandbox.github import ENTERPRISE, ORG

TOKEN = "ghp_" + "s4ndb0x" * 6
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
SCENARIO = {
    "seed": 9,
    "sources": {
        "github": {
            "events_per_hour": 900,
            "burst_fraction": 0.3,
            "token": TOKEN,
            "rate_limit_per_minute": 0,
            "retention_days": 180,
        }
    },
}
WINDOW = Window(datetime(2026, 3, 1, 4, 0, 0, 250000, tzinfo=UTC), datetime(2026, 3, 1, 5, 0, 0, 250000, tzinfo=UTC))
ORG_PATH = f"/orgs/{ORG}/audit-log"


server, api = sandbox_fixtures(SCENARIO, NOW)


def expected_ids(window: Window, include: str = "web", newest_first: bool = False) -> list[str]:
    events = ground_truth(
        "github", window.start - timedelta(seconds=1), window.end + timedelta(seconds=1), SCENARIO, now=NOW
    )
    lo, hi = window.start.timestamp() * 1000, window.end.timestamp() * 1000
    kept = [
        e
        for e in events
        if lo <= e["@timestamp"] < hi and (include == "all" or (include == "git") == e["action"].startswith("git."))
    ]
    # The truth is newest first by (second, id), which is also millisecond order.
    return [e["_document_id"] for e in (kept if newest_first else kept[::-1])]


def run(api, tmp_path, options=None, host=None, **client_options):
    connection = Connection("github_audit", host or api.url, TOKEN)
    options = {"org": ORG, "per_page": 50, **(options or {})}
    return collect_window("github", options, "audit", connection, WINDOW, tmp_path, **client_options)


def test_bounds_rounded_outward_trimmed_to_the_window_and_next_links_followed(api, tmp_path):
    collected = run(api, tmp_path)
    assert [e["_document_id"] for e in collected.events] == expected_ids(WINDOW)
    # the outward-rounded seconds, the end second inclusive (the documented range form), then trimmed
    rounded = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, 0, 1, 1000, tzinfo=UTC))
    assert collected.result.fetched == len(expected_ids(rounded))

    sent = api.admin.requests()
    assert len(sent) == collected.result.pages > 5
    first = sent[0]["query"]
    assert first == {
        "phrase": ["created:2026-03-01T04:00:00Z..2026-03-01T05:00:01Z"],
        "include": ["web"],
        "order": ["asc"],
        "per_page": ["50"],
    }
    for request in sent:
        assert request["path"] == ORG_PATH and request["auth_scheme"] == "Bearer" and request["auth_ok"]
        assert request["headers"]["x-github-api-version"] == "2022-11-28"
        assert request["headers"]["accept"] == "application/vnd.github+json"
    for request in sent[1:]:  # the Link URL, as given: filters plus GitHub's cursor
        assert {k: v for k, v in request["query"].items() if k not in ("after", "before")} == first
        assert request["query"]["after"][0] and request["query"]["before"] == [""]


def test_include_all_newest_first_from_an_enterprise_on_a_ghes_host(api, tmp_path):
    collected = run(
        api,
        tmp_path,
        options={"org": None, "enterprise": ENTERPRISE, "include": "all", "order": "desc"},
        host=api.url + "/api/v3",
    )
    assert [e["_document_id"] for e in collected.events] == expected_ids(WINDOW, "all", newest_first=True)
    assert any(e["action"].startswith("git.") for e in collected.events)
    assert collected.result.out_of_order == 0
    assert {r["path"] for r in api.admin.requests()} == {f"/api/v3/enterprises/{ENTERPRISE}/audit-log"}


def test_a_permission_403_fails_at_once_naming_the_connection_and_the_scope(api, tmp_path):
    body = '{"message": "Must have admin rights to the organization.", "documentation_url": "https://docs.github.com"}'
    api.admin.add_faults(
        {"kind": "status", "status": 403, "match": ORG_PATH, "body": body, "headers": {"x-ratelimit-remaining": "1742"}}
    )
    with pytest.raises(AuthError) as failure:
        run(api, tmp_path)
    assert "'github_audit'" in str(failure.value) and "read:audit_log" in str(failure.value)
    assert TOKEN not in str(failure.value)
    assert len(api.admin.requests()) == 1


def test_a_secondary_rate_limit_403_waits_at_least_the_documented_minute_and_retries_the_same_page(api, tmp_path):
    """Its body says "wait a few minutes" and GitHub's docs at least a minute, while retry-after says 7 s."""
    waits = []
    body = '{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}'
    api.admin.add_faults(
        {"kind": "status", "status": 403, "match": ORG_PATH, "after": 1, "body": body, "headers": {"retry-after": "7"}}
    )
    collected = run(api, tmp_path, sleep=waits.append)
    assert [e["_document_id"] for e in collected.events] == expected_ids(WINDOW)
    sent = api.admin.requests()
    assert [r["status"] for r in sent[:3]] == [200, 403, 200] and sent[1]["query"] == sent[2]["query"]
    assert waits == [60.0]
    assert collected.client.stats.rate_limited == 1


def test_a_spent_quota_waits_for_the_reset_and_a_primary_limit_403_is_a_rate_limit(tmp_path):
    scenario = {"seed": 9, "sources": {"github": {"token": TOKEN, "rate_limit_per_minute": 2}}}
    waits = []
    with SandboxServer(scenario) as srv:
        srv.clock.set(NOW.timestamp())
        with pytest.raises(RateLimitedError, match=r"HTTP 403.*page_max_wait is spent"):
            run(srv, tmp_path, sleep=waits.append)
        sent = srv.admin.requests()
    # The sandbox's clock for limits is real time, not ours: the limit never lifts, so the page waits until
    # page_max_wait (10 min) is spent, never failing on a count of rate-limited answers.
    statuses = [r["status"] for r in sent]
    assert statuses[:2] == [200, 200] and set(statuses[2:]) == {403} and len(statuses) > 7
    # After the second answer said remaining 0: wait for its reset before asking again; then each 403
    # with remaining 0 waits for the reset at least, longer as they keep coming.
    assert 50 <= waits[0] <= 67 and all(wait >= 50 for wait in waits[1:]) and waits[-1] > 67
    assert 480 < sum(waits[1:]) <= 600


def test_a_non_integer_timestamp_is_a_clear_error(api, tmp_path):
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 200,
            "match": ORG_PATH,
            "body": '[{"_document_id": "x1", "@timestamp": "2026-03-01T04:10:00Z"}]',
        }
    )
    with pytest.raises(MalformedResponseError, match="'@timestamp' is '2026-03-01T04:10:00Z', expected integer epoch"):
        run(api, tmp_path)


@pytest.mark.parametrize("owner", [{}, {"org": ORG, "enterprise": ENTERPRISE}])
def test_exactly_one_of_enterprise_and_org(tmp_path, owner):
    from auditlogs.config import load_config

    config = tmp_path / "sources.yaml"

    config.write_text(
        yaml.safe_dump(
            {
                "sources": {
                    "gh": {"type": "github", "conn_id": "c", "bucket": "bucket", "start_date": "2026-01-01", **owner}
                }
            }
        )
    )
    loaded = load_config(config)
    assert "exactly one of 'enterprise'" in loaded.errors["gh"]
