"""Failure behaviour of real task runs (`airflow dags test`, SQLite) against the sandbox and the GCS emulator:
the task retry policy retries rate limits after the reset and transient faults with backoff until the
interval is exactly right, fails auth and bad event data at once, a killed run leaves no manifest and its
rerun is complete, and a distinctive token never reaches the task output, the task log files or GCS."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from harness import AIRFLOW, Stack, assert_interval_holds, connection_env, dags_test, running_stack, write_config
from sandbox import ground_truth

pytestmark = pytest.mark.e2e

#: Matches none of the token shapes errors.scrub knows: only the literal-secret scrubbing can hide it.
TOKEN = "canary7q4zSECRETvalue0n9"
BUCKET = "failure-bucket"
DELAY = timedelta(minutes=30)
SCENARIO = {
    "seed": 77,
    "sources": {"slack": {"events_per_hour": 600, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0}},
}
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
ECHO = json.dumps({"ok": False, "error": "fatal_error", "echo": f"token was {TOKEN}"})


def config(stack: Stack, name: str, **options) -> dict:
    path = write_config(
        stack.config_dir / f"{name}.yaml",
        # De-duplication off: every interval here must hold its whole widened window on its own.
        {
            "slack": {
                "type": "slack",
                "conn_id": "slack_audit",
                "limit": 100,
                "page_attempts": 2,
                "requests_per_minute": 6000,
                "dedup": False,
                **options,
            }
        },
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        delay="30m",
        retries=3,
        retry_delay="1s",
        max_retry_delay="4s",
    )
    return {**stack.env, "AUDITLOGS_CONFIG": str(path)}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    connections = lambda url: connection_env("slack_audit", host=url, password=TOKEN)  # noqa: E731
    with running_stack(SCENARIO, BUCKET, connections, clock=NOW) as running:
        running.config_dir = tmp_path_factory.mktemp("config")
        yield running


def interval(hour: int) -> tuple[datetime, datetime, str]:
    start = datetime(2026, 3, 1, hour, tzinfo=UTC)
    end = start + timedelta(hours=1)
    return start, end, f"raw/slack/audit/dt={start:%Y-%m-%d}/{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


def truth_ids(start: datetime, end: datetime) -> set[str]:
    return {event["id"] for event in ground_truth("slack", start - DELAY, end, SCENARIO, now=NOW)}


def test_a_rate_limit_storm_past_page_max_wait_is_retried_by_airflow_after_the_reset_at_the_page_it_stopped(stack):
    start, end, folder = interval(3)
    stack.api.admin.reset()
    stack.api.admin.set_clock(NOW)
    # Page 2 gets three 429s: waiting 1 s then 2 s would pass page_max_wait (2s), so the first try ends after
    # two; the third hits the second try, which continues at page 2.
    stack.api.admin.add_faults(
        {"kind": "status", "status": 429, "headers": {"Retry-After": "1"}, "after": 1, "count": 3}
    )
    result = dags_test("auditlogs_slack", end.isoformat(), config(stack, "storm", page_max_wait="2s"))
    assert result.returncode == 0, result.output[-3000:]
    assert "RateLimitedError: retrying after the API's rate-limit reset in" in result.output
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder, "id", truth_ids(start, end))
    assert manifest["try_number"] == 2 and manifest["resumed"]["pages"] == 1
    pages = [r for r in stack.api.admin.requests() if r["path"].startswith("/audit/")]
    assert [r["status"] for r in pages[:4]] == [200, 429, 429, 429] and len(pages) == manifest["pages"] + 3
    assert TOKEN not in result.output


def test_transient_faults_are_retried_with_backoff_until_the_interval_is_exact(stack):
    start, end, folder = interval(4)
    stack.api.admin.reset()
    stack.api.admin.set_clock(NOW)
    stack.api.admin.add_faults(
        {"kind": "status", "status": 503, "after": 2, "count": 2},  # try 1: page 3 fails twice
        {"kind": "truncate", "after": 1, "count": 2},  # try 2 (from page 3): page 4 arrives cut off twice
        {"kind": "html", "count": 1},  # try 3 (from page 4): an nginx page once, then the rest is fine
    )
    result = dags_test("auditlogs_slack", end.isoformat(), config(stack, "transient"))
    assert result.returncode == 0, result.output[-3000:]
    assert result.output.count("retrying with backoff in") == 2
    manifest = assert_interval_holds(stack.gcs, BUCKET, folder, "id", truth_ids(start, end))
    assert manifest["try_number"] == 3 and manifest["resumed"] == {
        "from_try": 2,
        "pages": 3,
        "parts": 2,
        "events": manifest["resumed"]["events"],
    }
    assert manifest["requests"]["retries"] == 3  # one in each try, counted over the tries
    assert manifest["requests"]["count"] == manifest["pages"] + 5
    assert not stack.api.admin.pending_faults()


def test_a_bad_event_time_fails_at_once_and_writes_nothing(stack):
    start, end, folder = interval(5)
    stack.api.admin.reset()
    stack.api.admin.set_clock(NOW)
    page = {
        "ok": True,
        "entries": [{"id": "e1", "date_create": "yesterday", "note": TOKEN}],
        "response_metadata": {"next_cursor": ""},
    }
    stack.api.admin.add_faults({"kind": "status", "status": 200, "body": json.dumps(page)})
    result = dags_test("auditlogs_slack", end.isoformat(), config(stack, "bad_event"))
    assert result.returncode != 0
    assert "MalformedEventError: a retry cannot fix this, failing without retrying" in result.output
    assert "page 1, event 1: 'date_create' is 'yesterday', expected Unix seconds" in result.output
    assert len(stack.api.admin.requests()) == 1
    assert not stack.gcs.list(BUCKET, folder + "/")


def test_a_task_killed_mid_run_leaves_no_manifest_and_the_rerun_is_complete(stack):
    start, end, folder = interval(6)
    stack.api.admin.reset()
    stack.api.admin.set_clock(NOW)
    stack.api.admin.add_faults({"kind": "delay", "seconds": 600, "after": 2})
    env = {**os.environ, **config(stack, "kill", request_timeout="15m")}
    process = subprocess.Popen(
        [AIRFLOW, "dags", "test", "auditlogs_slack", end.isoformat()],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # The third page is hanging in the sandbox: the task is mid-window. Poll the request log for it.
        for _ in range(900):
            if len(stack.api.admin.requests()) >= 2 and not stack.api.admin.pending_faults():
                break
            try:
                process.wait(timeout=0.2)
                pytest.fail("airflow dags test ended before it was killed")
            except subprocess.TimeoutExpired:
                pass
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert not stack.gcs.list(BUCKET, folder + "/")

    stack.api.admin.reset()
    stack.api.admin.set_clock(NOW)
    result = dags_test("auditlogs_slack", end.isoformat(), config(stack, "rerun"))
    assert result.returncode == 0, result.output[-3000:]
    assert_interval_holds(stack.gcs, BUCKET, folder, "id", truth_ids(start, end))


def test_the_token_never_reaches_task_output_log_files_or_gcs(stack):
    """Every failure path with the token echoed back in bodies; then every place a user can read."""
    outputs = []
    paths = [
        # in-task retries of 429, 5xx, HTML and truncated pages, then success
        (
            [
                {"kind": "status", "status": 429, "body": ECHO},
                {"kind": "status", "status": 503, "body": ECHO},
                {"kind": "html", "body": f"<html>{TOKEN}</html>"},
                {"kind": "truncate"},
            ],
            {},
            7,
            True,
        ),
        # Airflow retries: rate limited (waited out, not an attempt), then transient past both tries' attempts
        # -> failed
        (
            [
                {"kind": "status", "status": 429, "body": ECHO, "count": 2},
                {"kind": "status", "status": 502, "body": ECHO, "count": 4},
            ],
            {"retries": 1},
            8,
            False,
        ),
        # the credential refused -> failed at once
        ([{"kind": "status", "status": 401, "body": ECHO}], {}, 9, False),
        # a rejected request and an event without its time -> failed at once
        ([{"kind": "status", "status": 400, "body": ECHO}], {}, 10, False),
        (
            [{"kind": "status", "status": 200, "body": f'{{"entries": [{{"id": "{TOKEN}", "date_create": null}}]}}'}],
            {},
            11,
            False,
        ),
        # a repeated cursor (the token as cursor) fails the first try; the retry is clean
        (
            [
                {
                    "kind": "status",
                    "status": 200,
                    "count": 2,
                    "body": json.dumps({"ok": True, "entries": [], "response_metadata": {"next_cursor": TOKEN}}),
                }
            ],
            {},
            12,
            True,
        ),
    ]
    for faults, options, hour, succeeds in paths:
        stack.api.admin.reset()
        stack.api.admin.set_clock(NOW)
        stack.api.admin.add_faults(*faults)
        result = dags_test("auditlogs_slack", interval(hour)[1].isoformat(), config(stack, f"secret_{hour}", **options))
        assert (result.returncode == 0) == succeeds, result.output[-3000:]
        outputs.append(result.output)
    assert "What to do: fix the token in Airflow connection 'slack_audit'" in outputs[2]
    assert "the API sent the same next-page position twice" in outputs[5]

    for output in outputs:
        assert TOKEN not in output
    # `airflow dags test` writes task logs to its output (scanned above), not to files under logs/; scan
    # every file of AIRFLOW_HOME anyway: any log files, and the metadata DB (XCom, task failure records).
    files = [p for p in Path(os.environ["AIRFLOW_HOME"]).rglob("*") if p.is_file()]
    assert any(p.name == "airflow.db" for p in files)
    assert [str(p) for p in files if TOKEN.encode() in p.read_bytes()] == []

    listing = requests.get(f"{stack.gcs.url}/storage/v1/b/{BUCKET}/o", timeout=30).json()  # names and metadata
    assert listing["items"] and TOKEN not in json.dumps(listing)
    for item in listing["items"]:
        data = stack.gcs.read(BUCKET, item["name"])
        assert TOKEN.encode() not in (gzip.decompress(data) if item["name"].endswith(".gz") else data), item["name"]
