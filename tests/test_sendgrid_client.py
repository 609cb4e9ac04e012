"""The SendGrid snapshot source against the sandbox, without Airflow: the one request, the rows kept,
and the windows it cannot answer for failing loudly."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from auditlogs.errors import AuthError, IncompleteWindowError
from auditlogs.sources.sendgrid import SPEC, SendGridConfig
from auditlogs.window import Window
from harness import Connection, api_client, run_collector, sandbox_fixtures
from sandbox.sendgrid import snapshot
from sandbox.sources import event_store

KEY = "SG.client-test-key.abcdefghijklmnop"
NOW = datetime(2025, 6, 2, 12, 10, tzinfo=timezone.utc)
SCENARIO = {
    "seed": 12,
    "sources": {"sendgrid": {"events_per_hour": 60, "token": KEY, "rate_limit_per_minute": 0, "retention_days": 3}},
}
WINDOW = Window(datetime(2025, 6, 2, 10, 30, tzinfo=timezone.utc), datetime(2025, 6, 2, 12, tzinfo=timezone.utc))


server, api = sandbox_fixtures(SCENARIO, NOW)


def config(**overrides) -> SendGridConfig:
    return SendGridConfig(
        name="sendgrid", type="sendgrid", conn_id="sendgrid_api", bucket="bkt", start_date=NOW, **overrides
    )


def client(api, sleeps=None):
    return api_client(SPEC, Connection("sendgrid_api", host=api.url, password=KEY), sleeps)


def expected_rows(limit: int) -> list[dict]:
    rows = snapshot(event_store(_scenario(), "sendgrid"), NOW.timestamp(), limit)
    return [r for r in rows if WINDOW.start.timestamp() <= r["last_at"] < WINDOW.end.timestamp()]


def _scenario():
    from sandbox import load_scenario

    return load_scenario(SCENARIO)


def test_one_request_keeps_the_rows_last_seen_in_the_window_unchanged(api, tmp_path):
    result, rows = run_collector(SPEC, config(limit=500), "access_attempts", client(api), WINDOW, tmp_path, now=NOW)
    assert rows == expected_rows(500) and len(rows) > 10
    assert result.outside_window > 0  # rows last seen after the window (or before it) are not this window's
    sent = api.requests.entries()
    assert len(sent) == 1 and sent[0]["query"] == {"limit": ["500"]} and sent[0]["auth_scheme"] == "Bearer"
    row = rows[0]  # the numbers keep their JSON type in the key, so a string "1" never matches the number 1
    assert (
        SPEC.event_id(row) == f"{row['ip']}|{row['auth_method']}|\0number:{row['first_at']}|\0number:{row['last_at']}"
    )


def test_a_window_beyond_the_horizon_fails_before_asking(api, tmp_path):
    with pytest.raises(IncompleteWindowError) as raised:
        run_collector(SPEC, config(horizon="1h"), "access_attempts", client(api), WINDOW, tmp_path, now=NOW)
    assert "snapshot horizon of 1:00:00" in str(raised.value) and "cannot be backfilled" in str(raised.value)
    assert api.requests.entries() == []


def test_a_full_snapshot_that_does_not_reach_the_window_start_fails(api, tmp_path):
    newest = snapshot(event_store(_scenario(), "sendgrid"), NOW.timestamp(), 10)
    assert newest[-1]["last_at"] >= WINDOW.start.timestamp()  # ten rows do not reach back to 10:30
    with pytest.raises(IncompleteWindowError, match=r"snapshot is full \(10 rows, the limit\)"):
        run_collector(SPEC, config(limit=10), "access_attempts", client(api), WINDOW, tmp_path, now=NOW)


def test_a_full_snapshot_that_reaches_past_the_window_start_is_complete(api, tmp_path):
    rows = snapshot(event_store(_scenario(), "sendgrid"), NOW.timestamp(), 10_000)
    reaching = next(n for n, r in enumerate(rows, start=1) if r["last_at"] < WINDOW.start.timestamp())
    result, kept = run_collector(
        SPEC, config(limit=reaching), "access_attempts", client(api), WINDOW, tmp_path, now=NOW
    )
    assert result.fetched == reaching and kept == expected_rows(500)


def test_a_key_without_the_scope_fails_naming_it(api, tmp_path):
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 403,
            "body": json.dumps({"errors": [{"field": None, "message": "access forbidden"}]}),
        }
    )
    with pytest.raises(AuthError) as raised:
        run_collector(SPEC, config(), "access_attempts", client(api), WINDOW, tmp_path, now=NOW)
    assert "access_settings.activity.read" in str(raised.value) and "'sendgrid_api'" in str(raised.value)
    assert "access forbidden" in str(raised.value) and KEY not in str(raised.value)


def test_429_waits_for_x_ratelimit_reset(api, tmp_path):
    reset = int(datetime.now(timezone.utc).timestamp()) + 30
    api.admin.add_faults(
        {
            "kind": "status",
            "status": 429,
            "headers": {"X-RateLimit-Limit": "150", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
            "body": json.dumps({"errors": [{"field": None, "message": "too many requests"}]}),
        }
    )
    sleeps = []
    _, rows = run_collector(SPEC, config(limit=500), "access_attempts", client(api, sleeps), WINDOW, tmp_path, now=NOW)
    assert rows == expected_rows(500) and len(sleeps) == 1 and 20 <= sleeps[0] <= 34
