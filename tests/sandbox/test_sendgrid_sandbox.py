"""SendGrid's recent access attempts as a collector sees them: a snapshot of rows aggregated per IP and
method, newest last_at first, only `limit`, SendGrid error bodies and X-RateLimit-* headers."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from harness import sandbox_fixtures
from sandbox import SandboxServer
from sandbox.sendgrid import snapshot
from sandbox.sources import event_store

TOKEN = "SG.sandbox-key.0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2025, 6, 2, 12, tzinfo=timezone.utc)
SCENARIO = {
    "seed": 6,
    "sources": {"sendgrid": {"events_per_hour": 30, "token": TOKEN, "rate_limit_per_minute": 0, "retention_days": 3}},
}
PATH = "/v3/access_settings/activity"


server, api = sandbox_fixtures(SCENARIO, NOW)


def test_rows_aggregate_attempts_per_ip_and_method_newest_first(api, http):
    rows = http.get(api.url + PATH, params={"limit": 10_000}, headers=AUTH).json()["result"]
    store = event_store(api.scenario, "sendgrid")
    attempts = list(store.iter_desc(int(NOW.timestamp()) - 3 * 86400, int(NOW.timestamp()), NOW.timestamp()))
    assert len({(r["ip"], r["auth_method"]) for r in rows}) == len(rows) > 100
    assert sum(1 for _ in attempts) > len(rows)  # really aggregated
    assert [r["last_at"] for r in rows] == sorted((r["last_at"] for r in rows), reverse=True)
    assert rows[0]["last_at"] == attempts[0].ts and all(r["first_at"] <= r["last_at"] for r in rows)
    assert all(set(r) == {"allowed", "auth_method", "first_at", "ip", "last_at", "location"} for r in rows)
    assert rows == snapshot(store, NOW.timestamp(), 10_000)


def test_default_limit_is_20_and_limit_cuts_the_oldest_rows(api, http):
    default = http.get(api.url + PATH, headers=AUTH).json()["result"]
    five = http.get(api.url + PATH, params={"limit": 5}, headers=AUTH).json()["result"]
    assert len(default) == 20 and five == default[:5]


def test_the_snapshot_moves_with_time(api, http):
    before = http.get(api.url + PATH, params={"limit": 50}, headers=AUTH).json()["result"]
    api.clock.set(NOW.timestamp() + 6 * 3600)
    try:
        after = http.get(api.url + PATH, params={"limit": 50}, headers=AUTH).json()["result"]
    finally:
        api.clock.set(NOW.timestamp())
    assert min(r["last_at"] for r in after) > max(r["last_at"] for r in before) - 6 * 3600
    assert after[0]["last_at"] > before[0]["last_at"]


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer SG.wrong"}, {"Authorization": f"Basic {TOKEN}"}])
def test_bearer_key_is_required(api, http, headers):
    resp = http.get(api.url + PATH, headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"errors": [{"field": None, "message": "authorization required"}]}


@pytest.mark.parametrize("limit", ["0", "ten", "-3"])
def test_bad_limit_is_400(api, http, limit):
    resp = http.get(api.url + PATH, params={"limit": limit}, headers=AUTH)
    assert resp.status_code == 400 and resp.json()["errors"][0]["field"] == "limit"


def test_rate_limit_headers_and_429(http):
    scenario = {
        "seed": 1,
        "sources": {
            "sendgrid": {"token": TOKEN, "rate_limit_per_minute": 2, "events_per_hour": 5, "retention_days": 1}
        },
    }
    with SandboxServer(scenario) as srv:
        answers = [http.get(srv.url + PATH, headers=AUTH) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["1", "0", "0"]
    assert all(a.headers["X-RateLimit-Limit"] == "2" for a in answers)
    assert int(answers[2].headers["X-RateLimit-Reset"]) > datetime.now(timezone.utc).timestamp()
    assert answers[2].json() == {"errors": [{"field": None, "message": "too many requests"}]}
