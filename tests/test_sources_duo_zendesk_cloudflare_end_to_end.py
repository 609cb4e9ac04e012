"""The generated Duo, Zendesk and Cloudflare DAGs run for real (`airflow dags test`, SQLite) against the
sandbox and the GCS emulator: exactly the sandbox's events of the widened window land in GCS, once, with
every Duo request signed and no credential in the output."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from auditlogs.sources import SPECS
from harness import E2eInterval, Stack, assert_interval_holds, stack_fixture
from sandbox.cloudflare import ACCOUNT_ID, ACCOUNT_ID_AFTER, v1_of
from sandbox.duo import stream_of

pytestmark = pytest.mark.e2e

UTC = timezone.utc
BUCKET = "e2e-bucket"
NOW = datetime(2026, 3, 2, tzinfo=UTC)
START, END = datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC)
IKEY, SKEY = "DIE2EINTEGRATIONKEY1", "e2eDuoSecretKey0123456789abcdefghijklmno"
ZENDESK_LOGIN, ZENDESK_TOKEN = "security@northwind.example.com/token", "zdE2eApiToken0123456789"
CLOUDFLARE_TOKEN = "cfE2eApiToken0123456789abcdefABCD"
SECRETS = (SKEY, ZENDESK_TOKEN, CLOUDFLARE_TOKEN)
SCENARIO = {
    "seed": 37,
    "sources": {
        name: {
            "events_per_hour": per_hour,
            "burst_fraction": 0.3,
            "token": token,
            "rate_limit_per_minute": 0,
            "retention_days": 120,
        }
        for name, token, per_hour in (
            ("duo", f"{IKEY}:{SKEY}", 8000),
            ("zendesk", f"{ZENDESK_LOGIN}:{ZENDESK_TOKEN}", 600),
            ("cloudflare", CLOUDFLARE_TOKEN, 1500),
        )
    },
}
SOURCES = {
    "duo": {"type": "duo", "conn_id": "duo_admin"},  # the default streams
    "zendesk": {"type": "zendesk", "conn_id": "zendesk_api"},
    "cloudflare": {
        "type": "cloudflare",
        "conn_id": "cloudflare_api",
        "account_id": ACCOUNT_ID_AFTER,
        "retention": "400d",
    },
    "cloudflare_v1": {"type": "cloudflare", "conn_id": "cloudflare_api", "account_id": ACCOUNT_ID, "api_version": "v1"},
}


INTERVAL = E2eInterval(SCENARIO, START, END, NOW, SECRETS)
stack = stack_fixture(INTERVAL, BUCKET, SOURCES)
folder, truth = INTERVAL.folder, INTERVAL.truth


def run(stack: Stack, source: str) -> list[dict]:
    return INTERVAL.run(stack, f"auditlogs_{source}").requests


def test_duo_collects_authentication_administrator_and_telephony_with_every_request_signed(stack):
    sent = run(stack, "duo")
    key = SPECS["duo"].key
    everything = truth("duo")
    for stream in ("authentication", "administrator", "telephony"):
        expected = {key(e) for e in everything if stream_of(e) == stream}
        assert len(expected) > 1000, stream  # more than one page each
        assert_interval_holds(stack.gcs, BUCKET, folder("duo", stream), key, expected)
    assert {r["path"] for r in sent} == {
        "/admin/v2/logs/authentication",
        "/admin/v1/logs/administrator",
        "/admin/v2/logs/telephony",
    }
    assert all(r["auth_ok"] and r["headers"]["date"] for r in sent)
    assert {r["query"]["maxtime"][0] for r in sent if "maxtime" in r["query"]} == {"1772341199999"}


def test_zendesk_collects_the_windows_audit_logs_oldest_first(stack):
    sent = run(stack, "zendesk")
    expected = {e["id"] for e in truth("zendesk")}
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder("zendesk", "audit_logs"), "id", expected)
    assert len(sent) == manifest["pages"] > 3
    assert sent[0]["query"]["filter[created_at][]"] == ["2026-03-01T03:29:59Z", "2026-03-01T05:00:00Z"]


def test_cloudflare_v2_follows_the_cursor_in_result_info_cursors_after(stack):
    sent = run(stack, "cloudflare")
    expected = {e["id"] for e in truth("cloudflare")}
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder("cloudflare", "audit_logs"), "id", expected)
    assert len(sent) == manifest["pages"] == -(-len(expected) // 1000) > 1
    assert {r["path"] for r in sent} == {f"/client/v4/accounts/{ACCOUNT_ID_AFTER}/logs/audit"}


def test_cloudflare_v1_collects_the_same_window_by_page_number(stack):
    sent = run(stack, "cloudflare_v1")
    expected = {v1_of(e)["id"] for e in truth("cloudflare")}
    assert_interval_holds(stack.gcs, BUCKET, folder("cloudflare_v1", "audit_logs"), "id", expected)
    assert [r["query"]["page"][0] for r in sent] == [str(n) for n in range(1, len(sent) + 1)]
