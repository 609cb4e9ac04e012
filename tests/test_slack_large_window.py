"""A 200,000-event window through the real DAG: complete, and the task's memory does not grow with it.

The bound: the collector holds one API page (Slack's maximum of 9,999 events, ~7 MB of JSON and ~40 MB
parsed; the cyclic GC is paused while a page is processed, see client/pagination.py), the compression
thread's queue (2 x 2 MiB) and zlib state, and the ids at the current page edge; parts are staged on disk.
We measured 50-68 MB of growth over a 900-event window's run; 96 MB leaves room for allocator noise while
still failing loudly if a second page or the window (~140 MB of JSON, ~600 MB parsed, for 200k events)
were ever held in memory. That memory does not grow with N is tests/test_memory_and_requests_guard.py.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from harness import connection_env, dags_test, read_events, read_manifest, running_stack, write_config
from sandbox import truth_events

TOKEN = "xoxp-large-window-token-77aa"
BUCKET = "large-bucket"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
MAX_GROWTH_MB = 96


def scenario(events_per_hour: int) -> dict:
    return {
        "seed": 3,
        "sources": {
            "slack": {
                "events_per_hour": events_per_hour,
                "burst_fraction": 0.2,
                "token": TOKEN,
                "rate_limit_per_minute": 0,
            }
        },
    }


def run(tmp_path, events_per_hour: int):
    # No request budget: the figure reported is the collector's speed, not Slack's 50 requests a minute.
    config = write_config(
        tmp_path / f"sources-{events_per_hour}.yaml",
        {"slack": {"type": "slack", "conn_id": "slack_audit", "requests_per_minute": 60000}},
        bucket=BUCKET,
        prefix=f"rate{events_per_hour}",
        start_date="2026-01-01T00:00:00Z",
        delay="30m",
        retries=0,
    )
    connections = lambda url: connection_env("slack_audit", host=url, password=TOKEN)  # noqa: E731
    with running_stack(scenario(events_per_hour), BUCKET, connections, clock=NOW, config=config) as stack:
        gcs = stack.gcs
        result = dags_test("auditlogs_slack", "2026-03-01T05:00:00+00:00", stack.env)
        assert result.returncode == 0, result.output[-3000:]
        folder = f"rate{events_per_hour}/slack/audit/dt=2026-03-01/20260301T040000Z_20260301T050000Z"
        return result, read_manifest(gcs, BUCKET, folder), read_events(gcs, BUCKET, folder)


@pytest.mark.e2e
def test_a_200k_event_window_is_complete_in_flat_memory(tmp_path, capsys):
    baseline, small_manifest, _ = run(tmp_path, 600)
    large, manifest, events = run(tmp_path, 140_000)

    start, end = datetime(2026, 3, 1, 3, 30, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC)
    expected = {event.id for event in truth_events("slack", start, end, scenario(140_000), now=NOW)}
    ids = [event["id"] for event in events]
    assert len(ids) >= 200_000 and len(ids) == len(set(ids)) and set(ids) == expected
    assert manifest["events"] == len(ids) and len(manifest["parts"]) >= 1

    growth_mb = (large.peak_rss_kb - baseline.peak_rss_kb) / 1024
    rate = manifest["events"] / manifest["timings"]["fetch_seconds"]
    with capsys.disabled():
        print(
            f"\n[report] 200k window: {manifest['events']} events, {manifest['pages']} pages, "
            f"{rate:,.0f} events/s fetch+write, peak RSS {large.peak_rss_kb / 1024:.0f} MB "
            f"(baseline {baseline.peak_rss_kb / 1024:.0f} MB with {small_manifest['events']} events, "
            f"growth {growth_mb:.0f} MB)"
        )
    assert growth_mb < MAX_GROWTH_MB
