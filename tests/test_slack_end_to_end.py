"""The generated Slack DAG run for real (`airflow dags test`, SQLite) against the sandbox and the GCS
emulator: exactly the sandbox's events of the widened window land in GCS, once."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from harness import (
    Stack,
    connection_env,
    dags_test,
    interval_folder,
    read_events,
    read_manifest,
    running_stack,
    write_config,
)
from sandbox import ground_truth

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


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    # A small page size, so that windows span many pages and same-second bursts meet page boundaries.
    config = write_config(
        tmp_path_factory.mktemp("config") / "sources.yaml",
        {"slack": {"type": "slack", "conn_id": "slack_audit", "limit": 200}},
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        delay="30m",
        retries=0,
        deadline="off",  # this module is about the window; dags test with deadlines on: test_user_paths.py
    )
    connections = lambda url: connection_env("slack_audit", host=url, password=TOKEN)  # noqa: E731
    with running_stack(SCENARIO, BUCKET, connections, clock=NOW, config=config) as running:
        yield running


def run_interval(stack: Stack, logical_date: str) -> str:
    """Runs the DAG and returns the interval's GCS folder."""
    result = dags_test("auditlogs_slack", logical_date, stack.env)
    assert result.returncode == 0, result.output[-3000:]
    assert TOKEN not in result.output
    return result


def truth_ids(start: datetime, end: datetime) -> set[str]:
    return {event["id"] for event in ground_truth("slack", start, end, SCENARIO, now=NOW)}


def test_interval_holds_exactly_the_widened_windows_events(stack):
    stack.api.admin.clear_requests()
    run_interval(stack, "2026-03-01T05:00:00+00:00")
    start, end = datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC)
    folder = interval_folder("raw", "slack", "audit", start, end)

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
    first_ids = {e["id"] for e in read_events(stack.gcs, BUCKET, interval_folder("raw", "slack", "audit", *first))}
    second_ids = {e["id"] for e in read_events(stack.gcs, BUCKET, interval_folder("raw", "slack", "audit", *second))}

    # the overlap is fetched twice but stored once: the second run skips what the first recorded
    overlap = truth_ids(second[0] - DELAY, first[1])
    assert overlap and first_ids & second_ids == set()
    assert first_ids | second_ids == truth_ids(first[0] - DELAY, second[1])
    second_manifest = read_manifest(stack.gcs, BUCKET, interval_folder("raw", "slack", "audit", *second))
    assert second_manifest["overlap"]["skipped"] == len(overlap)


def test_rerun_replaces_the_interval_and_removes_leftover_parts(stack):
    start, end = datetime(2026, 3, 1, 9, tzinfo=UTC), datetime(2026, 3, 1, 10, tzinfo=UTC)
    folder = interval_folder("raw", "slack", "audit", start, end)
    run_interval(stack, "2026-03-01T10:00:00+00:00")
    first = read_manifest(stack.gcs, BUCKET, folder)
    first_parts = [stack.gcs.read(BUCKET, f"{folder}/{part['name']}") for part in first["parts"]]
    stack.gcs.write(BUCKET, f"{folder}/part-00042.ndjson.gz", b"left over by an earlier attempt")

    run_interval(stack, "2026-03-01T10:00:00+00:00")
    second = read_manifest(stack.gcs, BUCKET, folder)
    assert second["attempt"] != first["attempt"]
    assert sorted(stack.gcs.list(BUCKET, folder + "/")) == sorted(
        [f"{folder}/{part['name']}" for part in second["parts"]] + [f"{folder}/_manifest.json"]
    )
    # deterministic bytes: same events, same order, under the new attempt's names
    assert [stack.gcs.read(BUCKET, f"{folder}/{part['name']}") for part in second["parts"]] == first_parts
    assert second["events"] == len(truth_ids(start - DELAY, end))


def test_a_rejected_token_fails_at_once_naming_the_connection_without_leaking_it(stack, tmp_path):
    bad_token = "xoxp-revoked-e2e-token-5c5c"
    config = write_config(
        tmp_path / "sources.yaml",
        {"slack": {"type": "slack", "conn_id": "slack_audit"}},
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        delay="30m",
        retries=2,
        retry_delay="1s",
    )
    stack.api.admin.clear_requests()
    env = {
        **stack.env,
        "AUDITLOGS_CONFIG": str(config),
        **connection_env("slack_audit", host=stack.api.url, password=bad_token),
    }
    result = dags_test("auditlogs_slack", "2026-03-01T12:00:00+00:00", env)
    assert result.returncode != 0
    assert "AuthError: a retry cannot fix this, failing without retrying" in result.output  # the retry policy
    assert "the API refused the credential. HTTP status 401" in result.output
    assert "fix the token in Airflow connection 'slack_audit'" in result.output
    assert bad_token not in result.output
    assert len(stack.api.admin.requests()) == 1  # neither the page nor the task (retries: 2) was retried
    eleven, noon = datetime(2026, 3, 1, 11, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC)
    assert not stack.gcs.list(BUCKET, interval_folder("raw", "slack", "audit", eleven, noon))
