"""The Microsoft 365 source's client against the sandbox: an interval holds the records of the blobs that
became available in it (whatever their CreationTime), each Id once; the exact requests (token, subscription,
listing with NextPageUri followed verbatim, every blob with PublisherIdentifier); 24 h pieces; and the
errors a user sees."""

from __future__ import annotations

import weakref
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.errors import AuthError, IncompleteWindowError, RateLimitedError
from auditlogs.sink import window_ids
from auditlogs.sources import spec_for
from auditlogs.sources.microsoft365 import Microsoft365Config, blob_records
from auditlogs.window import Window
from harness import Connection, api_client, collect_window, run_collector, sandbox_fixtures, source_config
from sandbox import microsoft365 as fake
from sandbox.scenario import load_scenario
from sandbox.sources import event_store

CLIENT_ID, SECRET = "0d6f1c2a-app-o365", "o365-client-secret-Zq8~value"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
SCENARIO = {
    "seed": 17,
    "sources": {
        "microsoft365": {
            "events_per_hour": 1200,
            "token": f"{CLIENT_ID}:{SECRET}",
            "rate_limit_per_minute": 0,
            "lag": {"p_late": 0.3, "max_lag_seconds": 4 * 3600},
        }
    },
}
WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
FEED = f"/api/v1.0/{fake.TENANT}/activity/feed/"
PUBLISHER = {"PublisherIdentifier": [fake.TENANT]}

server, api = sandbox_fixtures(SCENARIO, NOW)


def truth(content_type: str, window: Window) -> list:
    store = event_store(load_scenario(SCENARIO), "microsoft365")
    return fake.records(store, content_type, window.start.timestamp(), window.end.timestamp(), NOW.timestamp())


def connection(api, secret: str = SECRET, **extra) -> Connection:
    return Connection(
        "o365_audit",
        api.url,
        secret,
        login=CLIENT_ID,
        extra_dejson={"tenant_id": fake.TENANT, "authority": api.url, **extra},
    )


def run(api, tmp_path, window: Window = WINDOW, content_type: str = "Audit.Exchange", secret: str = SECRET, **options):
    stream = content_type.lower().replace(".", "_")
    return collect_window(
        "microsoft365", {"content_types": [content_type], **options}, stream, connection(api, secret), window, tmp_path
    )


def test_an_interval_holds_every_record_of_the_blobs_available_in_it_whatever_its_creation_time(api, tmp_path):
    collected = run(api, tmp_path)
    records = truth("Audit.Exchange", WINDOW)
    ids = [e["Id"] for e in collected.events]
    assert len(ids) == len(set(ids)) and set(ids) == {e.id for e in records} and len(ids) > 100
    assert collected.result.duplicates == len(records) - len(ids) > 0  # repeats within and across blobs, by Id
    assert collected.result.outside_window == 0
    created = [datetime.fromisoformat(e["CreationTime"] + "+00:00") for e in collected.events]
    assert min(created) < WINDOW.start - timedelta(hours=1)  # late records kept: the blob is what is windowed
    assert all(moment < WINDOW.end for moment in created)


def test_a_window_too_large_for_memory_is_still_de_duplicated_exactly_by_id(api, tmp_path, monkeypatch):
    """The window's ids spill to disk after 16 (sink/window_ids.py): a record repeated in the next blob is
    then found on disk, and the interval is the same as when every id fits in memory."""
    monkeypatch.setattr(window_ids, "MEMORY_IDS", 16)
    monkeypatch.setattr(window_ids, "BLOOM_BITS", 1 << 10)
    collected = run(api, tmp_path / "spilled")
    records = truth("Audit.Exchange", WINDOW)
    ids = [e["Id"] for e in collected.events]
    assert len(ids) == len(set(ids)) and set(ids) == {e.id for e in records} and len(ids) > 100
    assert collected.result.window_ids["spilled"] > 100 and collected.result.window_ids["lookups"] > 0
    assert collected.result.duplicates == len(records) - len(ids) > 0
    assert [path.name for path in (tmp_path / "spilled").iterdir() if "window-ids" in path.name] == []


def test_the_requests_sent_token_subscription_listing_then_each_blob(api, tmp_path):
    run(api, tmp_path)
    sent = api.requests.entries()
    token, listed, started, first = sent[:4]
    assert (token["method"], token["path"]) == ("POST", f"/{fake.TENANT}/oauth2/v2.0/token")
    assert "client_secret" in token["body"] and SECRET not in str(token["query"])
    assert f"scope={api.url}/.default".replace(":", "%3A").replace("/", "%2F") in token["body"]
    assert (listed["method"], listed["path"], listed["query"]) == ("GET", FEED + "subscriptions/list", PUBLISHER)
    assert (started["method"], started["query"]) == ("POST", {**PUBLISHER, "contentType": ["Audit.Exchange"]})
    assert first["query"] == {
        **PUBLISHER,
        "contentType": ["Audit.Exchange"],
        "startTime": ["2026-03-01T04:00:00"],
        "endTime": ["2026-03-01T05:00:00"],
    }
    listings = [r for r in sent if r["path"].endswith("subscriptions/content")]
    assert len(listings) > 2
    for later in listings[1:]:  # NextPageUri as given: Microsoft's /api/v1/ path, its nextPage, no parameter re-sent
        assert later["path"] == f"/api/v1/{fake.TENANT}/activity/feed/subscriptions/content"
        assert later["query"]["nextPage"] and later["query"]["PublisherIdentifier"] == [fake.TENANT]
    blobs = [r for r in sent if "/activity/feed/audit/" in r["path"]]
    assert len(blobs) == len({r["path"] for r in blobs}) == 12  # one 5-minute blob each, fetched once
    assert all("$" in r["path"] and r["query"] == PUBLISHER and r["auth_ok"] for r in blobs)
    assert len(sent) == 3 + len(listings) + len(blobs)  # one token exchange for the whole task


def test_a_blobs_records_are_let_go_before_the_next_blob_is_fetched(api, tmp_path):
    """Memory is one blob's records (2,000 in a full blob, about 10 MB parsed), never two at once."""

    class Records(list):  # a list that can be weakly referenced
        pass

    earlier, alive_at_fetch = [], []

    def tracked(client, config, entry):
        alive_at_fetch.append(sum(ref() is not None for ref in earlier))
        records = Records(blob_records(client, config, entry))
        earlier.append(weakref.ref(records))
        return records

    config = source_config("microsoft365", "o365_audit", content_types=["Audit.Exchange"])
    spec = replace(spec_for(config), blob=tracked)
    _, events = run_collector(spec, config, "audit_exchange", api_client(spec, connection(api)), WINDOW, tmp_path)
    assert alive_at_fetch == [0] * 12 and len(events) > 100


def test_an_enabled_subscription_is_not_started_again(api, tmp_path):
    run(api, tmp_path / "first")
    api.requests.clear()
    run(api, tmp_path / "second")
    assert not [r for r in api.requests.entries() if r["path"].endswith("subscriptions/start")]


def test_without_start_subscription_a_missing_subscription_fails_naming_the_content_type(api, tmp_path):
    with pytest.raises(IncompleteWindowError, match="no enabled subscription for Audit.SharePoint") as raised:
        run(api, tmp_path, content_type="Audit.SharePoint", start_subscription=False)
    assert "start_subscription: true" in str(raised.value)


def test_a_window_longer_than_24_hours_is_listed_in_24_hour_pieces(api, tmp_path):
    window = Window(datetime(2026, 2, 28, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC))
    collected = run(api, tmp_path, window=window, content_type="Audit.General")
    assert {e["Id"] for e in collected.events} == {e.id for e in truth("Audit.General", window)}
    starts = [
        (r["query"]["startTime"], r["query"]["endTime"])
        for r in api.requests.entries()
        if "startTime" in r["query"] and "nextPage" not in r["query"]
    ]
    assert starts == [
        (["2026-02-28T04:00:00"], ["2026-03-01T04:00:00"]),
        (["2026-03-01T04:00:00"], ["2026-03-01T05:00:00"]),
    ]


def test_af429_on_a_403_is_a_rate_limit_retried_not_a_refused_credential(api, tmp_path):
    body = '{"error":{"code":"AF429","message":"Too many requests. Method=GetBlob, PublisherId=x"}}'
    api.faults.add([fake_fault(FEED + "audit/", 403, body, count=2)])
    collected = run(api, tmp_path)
    assert {e["Id"] for e in collected.events} == {e.id for e in truth("Audit.Exchange", WINDOW)}
    assert collected.client.stats.rate_limited == 2
    api.faults.add([fake_fault(FEED + "audit/", 403, body, count=50)])
    with pytest.raises(RateLimitedError):
        run(api, tmp_path / "storm")


def test_a_refused_client_secret_fails_once_naming_the_connection_and_never_shows_the_secret(api, tmp_path):
    wrong = "o365-wrong-secret-Yy7~value"
    with pytest.raises(AuthError, match="connection 'o365_audit'") as raised:
        run(api, tmp_path, secret=wrong)
    assert wrong not in str(raised.value) and "invalid_client" in str(raised.value)
    assert [r["path"] for r in api.requests.entries()] == [f"/{fake.TENANT}/oauth2/v2.0/token"]


def test_the_api_keeps_seven_days_so_older_windows_are_refused_by_default():
    config = Microsoft365Config.model_validate(
        {"name": "o365", "type": "microsoft365", "conn_id": "c", "bucket": "bkt", "start_date": "2026-01-01"}
    )
    assert config.retention == timedelta(days=7) - timedelta(minutes=5)
    assert config.stream_names() == (
        "audit_azureactivedirectory",
        "audit_exchange",
        "audit_sharepoint",
        "audit_general",
    )


def fake_fault(match: str, status: int, body: str, count: int):
    from sandbox.faults import parse_fault

    return parse_fault(
        {
            "kind": "status",
            "match": match,
            "status": status,
            "body": body,
            "count": count,
            "headers": {"Content-Type": "application/json"},
        }
    )
