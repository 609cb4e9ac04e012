"""The Atlassian source's client against the sandbox: epoch bounds padded and trimmed to the exact window,
links.next followed as given, and an empty window checked so that a wrong epoch unit fails loudly instead
of being written as an empty, complete interval."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.errors import AuthError, IncompleteWindowError
from auditlogs.sources import SPECS
from auditlogs.window import Window
from harness import Connection, collect_window, sandbox_fixtures
from sandbox import ground_truth
from sandbox.atlassian import ORG_ID

TOKEN = "ATATT3xSandboxAdminKey0123456789"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
SCENARIO = {
    "seed": 19,
    "sources": {
        "atlassian": {"events_per_hour": 700, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0}
    },
}
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
EVENTS = f"/admin/v1/orgs/{ORG_ID}/events"

server, api = sandbox_fixtures(SCENARIO, NOW)


def expected_ids(window: Window) -> set[str]:
    return {e["id"] for e in ground_truth("atlassian", window.start, window.end, SCENARIO, now=NOW)}


def run(api, tmp_path, window=WINDOW, sleep=None, **options):
    connection = Connection("atlassian_org", api.url, TOKEN)
    return collect_window(
        "atlassian",
        {"org_id": ORG_ID, **options},
        "org_events",
        connection,
        window,
        tmp_path,
        **({"sleep": sleep} if sleep else {}),
    )


def test_padded_millisecond_bounds_then_links_next_as_given(api, tmp_path):
    collected = run(api, tmp_path)
    ids = [e["id"] for e in collected.events]
    assert len(ids) == len(set(ids)) and set(ids) == expected_ids(WINDOW)
    sent = api.admin.requests()
    assert len(sent) == collected.result.pages > 3 and {r["path"] for r in sent} == {EVENTS}
    assert sent[0]["query"] == {"from": ["1772337599000"], "to": ["1772341201000"]}
    for request in sent[1:]:  # the next link keeps the filters and adds the cursor
        assert request["query"]["from"] == ["1772337599000"] and request["query"]["cursor"][0]
    assert {r["auth_scheme"] for r in sent} == {"Bearer"}


def test_times_without_milliseconds_are_read(api, tmp_path):
    times = [e["attributes"]["time"] for e in run(api, tmp_path).events]
    assert any(len(t) == 20 for t in times) and any(len(t) == 24 for t in times)


def test_seconds_sent_to_an_api_that_reads_milliseconds_fail_naming_the_unit(api, tmp_path):
    with pytest.raises(IncompleteWindowError) as failure:
        run(api, tmp_path, epoch_unit="s")
    message = str(failure.value)
    assert "the API reads epoch milliseconds" in message and "epoch_unit: ms" in message
    sent = api.admin.requests()
    # the window in seconds (January 1970 to this API: empty), then once more in milliseconds
    assert [r["query"] for r in sent] == [
        {"from": ["1772337599"], "to": ["1772341201"]},
        {"from": ["1772337599000"], "to": ["1772341201000"]},
    ]


def test_a_truly_empty_window_costs_one_more_request_and_is_written_empty(api, tmp_path):
    api.clock.set((WINDOW.start - timedelta(minutes=1)).timestamp())  # nothing in the window has happened yet
    collected = run(api, tmp_path)
    assert collected.events == []
    assert [r["query"] for r in api.admin.requests()] == [
        {"from": ["1772337599000"], "to": ["1772341201000"]},
        {"from": ["1772337599"], "to": ["1772341201"]},
    ]


def test_401_fails_at_once_naming_the_admin_api_key(api, tmp_path):
    connection = Connection("atlassian_org", api.url, "wrong-key-0123456789")
    with pytest.raises(AuthError) as failure:
        collect_window("atlassian", {"org_id": ORG_ID}, "org_events", connection, WINDOW, tmp_path)
    assert "Admin API key" in str(failure.value) and "wrong-key-0123456789" not in str(failure.value)


def test_the_org_id_is_validated_like_every_config_key():
    with pytest.raises(ValueError, match="org_id"):
        SPECS["atlassian"].config.model_validate(
            {
                "name": "a",
                "type": "atlassian",
                "conn_id": "c",
                "bucket": "bkt",
                "start_date": "2026-01-01",
                "org_id": "../other",
            }
        )


def test_a_429_waits_until_the_iso_time_of_its_x_ratelimit_reset(api, tmp_path):
    """Atlassian's reset is an ISO time to the minute (`2026-03-01T10:05+0000`), not epoch seconds: the
    client waits until then instead of a short backoff that would only be refused again."""
    waits = []
    reset = (datetime.now(UTC) + timedelta(minutes=3)).replace(second=0, microsecond=0)
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 429,
            "match": EVENTS,
            "after": 1,
            "body": '{"code": 429, "message": "Too Many Requests"}',
            "headers": {"X-Ratelimit-Reset": reset.strftime("%Y-%m-%dT%H:%M%z")},
        }
    )
    collected = run(api, tmp_path, sleep=waits.append)
    assert {e["id"] for e in collected.events} == expected_ids(WINDOW)
    assert [r["status"] for r in api.admin.requests()[:3]] == [200, 429, 200]
    assert len(waits) == 1 and 115 <= waits[0] <= 180 * 1.1
