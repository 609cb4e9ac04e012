"""The generated Slack DAG run for real (`airflow dags test`, SQLite) against the sandbox and the GCS
emulator: exactly the sandbox's events of the widened window land in GCS, once."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from harness import (
    dags_test, http_connection_env, interval_folders, migrate_db, read_events, read_manifest, write_config,
)
from sandbox import SandboxProcess, ground_truth
from sandbox.gcs import GcsEmulatorProcess

TOKEN = "xoxp-e2e-test-token-4b1d"
BUCKET = "e2e-bucket"
DELAY = timedelta(minutes=30)
SCENARIO = {
    "seed": 21,
    "sources": {"slack": {"events_per_hour": 900, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0}},
}
UTC = timezone.utc
#: The sandbox's frozen clock: every window below is in its past and within its retention.
NOW = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass
class Stack:
    api: SandboxProcess
    gcs: GcsEmulatorProcess
    env: dict


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    migrate_db()
    config = tmp_path_factory.mktemp("config") / "sources.yaml"
    # A small page size, so that windows span many pages and same-second bursts meet page boundaries.
    write_config(
        config, {"slack": {"type": "slack", "conn_id": "slack_audit", "limit": 200}},
        bucket=BUCKET, prefix="raw", start_date="2026-01-01T00:00:00Z", delay="30m", retries=0,
        deadline="off",  # `airflow dags test` of a DAG with a Deadline Alert fails in Airflow 3.3.2 (README)
    )
    with SandboxProcess(SCENARIO) as api, GcsEmulatorProcess((BUCKET,)) as gcs:
        api.admin.set_clock(NOW)
        env = {"AUDITLOGS_CONFIG": str(config), **gcs.connection_env(), **http_connection_env("slack_audit", api.url, TOKEN)}
        yield Stack(api, gcs, env)


def run_interval(stack: Stack, logical_date: str) -> str:
    """Runs the DAG and returns the interval's GCS folder."""
    result = dags_test("auditlogs_slack", logical_date, stack.env)
    assert result.returncode == 0, result.output[-3000:]
    assert TOKEN not in result.output
    return result


def folder_of(start: datetime, end: datetime) -> str:
    return f"raw/slack/audit/dt={start:%Y-%m-%d}/{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def truth_ids(start: datetime, end: datetime) -> set[str]:
    return {event["id"] for event in ground_truth("slack", start, end, SCENARIO, now=NOW)}


def test_interval_holds_exactly_the_widened_windows_events(stack):
    stack.api.admin.clear_requests()
    run_interval(stack, "2026-03-01T05:00:00+00:00")
    start, end = datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC)
    folder = folder_of(start, end)

    manifest = read_manifest(stack.gcs, BUCKET, folder)
    assert manifest["interval"] == {"start": start.isoformat(), "end": end.isoformat()}
    assert manifest["window"] == {"start": (start - DELAY).isoformat(), "end": end.isoformat()}

    events = read_events(stack.gcs, BUCKET, folder)
    ids = [event["id"] for event in events]
    assert not [i for i, n in Counter(ids).items() if n > 1], "an event was written twice in one interval"
    assert set(ids) == truth_ids(start - DELAY, end)
    assert manifest["events"] == len(ids) == sum(part["events"] for part in manifest["parts"])
    assert manifest["events"] > 1000  # the window really spans many pages

    # Every page re-sends both inclusive bounds; all but the first carry the cursor.
    requests_seen = [r for r in stack.api.admin.requests() if r["path"] == "/audit/v1/logs"]
    assert len(requests_seen) == manifest["requests"]["count"] == manifest["pages"] > 5
    for number, request in enumerate(requests_seen):
        assert request["query"]["oldest"] == [str(int((start - DELAY).timestamp()))]
        assert request["query"]["latest"] == [str(int(end.timestamp()))]
        assert request["query"]["limit"] == ["200"]
        assert ("cursor" in request["query"]) == (number > 0)
        assert request["auth_ok"]


def test_consecutive_intervals_overlap_by_the_delay_and_store_it_once(stack):
    run_interval(stack, "2026-03-01T07:00:00+00:00")
    run_interval(stack, "2026-03-01T08:00:00+00:00")
    first = (datetime(2026, 3, 1, 6, tzinfo=UTC), datetime(2026, 3, 1, 7, tzinfo=UTC))
    second = (datetime(2026, 3, 1, 7, tzinfo=UTC), datetime(2026, 3, 1, 8, tzinfo=UTC))
    first_ids = {e["id"] for e in read_events(stack.gcs, BUCKET, folder_of(*first))}
    second_ids = {e["id"] for e in read_events(stack.gcs, BUCKET, folder_of(*second))}

    # the overlap is fetched twice but stored once: the second run skips what the first recorded
    overlap = truth_ids(second[0] - DELAY, first[1])
    assert overlap and first_ids & second_ids == set()
    assert first_ids | second_ids == truth_ids(first[0] - DELAY, second[1])
    assert read_manifest(stack.gcs, BUCKET, folder_of(*second))["overlap"]["skipped"] == len(overlap)


def test_rerun_replaces_the_interval_and_removes_leftover_parts(stack):
    start, end = datetime(2026, 3, 1, 9, tzinfo=UTC), datetime(2026, 3, 1, 10, tzinfo=UTC)
    folder = folder_of(start, end)
    run_interval(stack, "2026-03-01T10:00:00+00:00")
    before = {name: stack.gcs.read(BUCKET, name) for name in stack.gcs.list(BUCKET, folder + "/")}
    stack.gcs.write(BUCKET, f"{folder}/part-00042.ndjson.gz", b"left over by an earlier attempt")

    run_interval(stack, "2026-03-01T10:00:00+00:00")
    after = {name: stack.gcs.read(BUCKET, name) for name in stack.gcs.list(BUCKET, folder + "/")}
    assert sorted(after) == sorted(before)
    parts = [name for name in after if name.endswith(".ndjson.gz")]
    assert all(after[name] == before[name] for name in parts)  # deterministic bytes: same events, same order
    assert read_manifest(stack.gcs, BUCKET, folder)["events"] == len(truth_ids(start - DELAY, end))


def test_a_rejected_token_fails_at_once_naming_the_connection_without_leaking_it(stack, tmp_path):
    bad_token = "xoxp-revoked-e2e-token-5c5c"
    config = write_config(
        tmp_path / "sources.yaml", {"slack": {"type": "slack", "conn_id": "slack_audit"}},
        bucket=BUCKET, prefix="raw", start_date="2026-01-01T00:00:00Z", delay="30m", retries=2, retry_delay="1s",
    )
    stack.api.admin.clear_requests()
    env = {**stack.env, "AUDITLOGS_CONFIG": str(config), **http_connection_env("slack_audit", stack.api.url, bad_token)}
    result = dags_test("auditlogs_slack", "2026-03-01T12:00:00+00:00", env)
    assert result.returncode != 0
    assert "AuthError: a retry cannot fix this, failing without retrying" in result.output  # the retry policy
    assert "the API refused the credential. HTTP status 401" in result.output
    assert "fix the token in Airflow connection 'slack_audit'" in result.output
    assert bad_token not in result.output
    assert len(stack.api.admin.requests()) == 1  # neither the page nor the task (retries: 2) was retried
    assert not stack.gcs.list(BUCKET, folder_of(datetime(2026, 3, 1, 11, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC)))
