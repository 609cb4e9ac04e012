"""De-duplication through Airflow for real: three consecutive hourly runs of the generated DAG
(`airflow dags test`) with late-arriving events store every event once, and the generated sweep DAG stores
exactly the events later than the delay under `audit/sweep/`."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from harness import connection_env, dags_test, read_events, read_manifest, running_stack, write_config
from sandbox import ground_truth
from sandbox.truth import truth_events

pytestmark = pytest.mark.e2e

BUCKET = "e2e-dedup"
TOKEN = "xoxp-e2e-dedup-token-31"
UTC = timezone.utc
DELAY = timedelta(minutes=30)
HOUR = timedelta(hours=1)
SCENARIO = {
    "seed": 77,
    "sources": {
        "slack": {
            "events_per_hour": 300,
            "burst_fraction": 0.2,
            "token": TOKEN,
            "rate_limit_per_minute": 0,
            "lag": {"p_late": 0.2, "max_lag_seconds": 7200},
        }
    },
}
ENDS = [datetime(2026, 3, 3, h, tzinfo=UTC) for h in (1, 2, 3)]
RUN_AFTER = timedelta(minutes=2)


def folder(start: datetime, end: datetime, sub: str = "") -> str:
    return f"raw/slack/audit/{sub}dt={start:%Y-%m-%d}/{start:%Y%m%dT%H%M%SZ}_{end:%Y%m%dT%H%M%SZ}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    config = write_config(
        tmp_path_factory.mktemp("config") / "sources.yaml",
        {"slack": {"type": "slack", "conn_id": "slack_audit", "sweep": "2h", "sweep_schedule": "@hourly"}},
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-03-03T00:00:00Z",
        delay="30m",
        retries=0,
    )
    connections = lambda url: connection_env("slack_audit", host=url, password=TOKEN)  # noqa: E731
    with running_stack(SCENARIO, BUCKET, connections, config=config) as running:
        yield running


def test_three_runs_store_each_event_once_and_the_sweep_recovers_the_late_ones(stack):
    api, gcs, env = stack.api, stack.gcs, stack.env
    for end in ENDS:
        api.admin.set_clock(end + RUN_AFTER)
        result = dags_test("auditlogs_slack", end.isoformat(), env)
        assert result.returncode == 0, result.output[-3000:]
        assert TOKEN not in result.output

    seen: dict[str, int] = {}  # what each run could see: id -> first run that stored it
    for number, end in enumerate(ENDS):
        for event in ground_truth("slack", end - HOUR - DELAY, end, SCENARIO, now=end + RUN_AFTER):
            seen.setdefault(event["id"], number)
    stored = Counter()
    for number, end in enumerate(ENDS):
        ids = [e["id"] for e in read_events(gcs, BUCKET, folder(end - HOUR, end))]
        assert set(ids) == {i for i, n in seen.items() if n == number}
        stored.update(ids)
        manifest = read_manifest(gcs, BUCKET, folder(end - HOUR, end))
        assert manifest["overlap"]["earlier_intervals"] == (
            [] if number == 0 else [f"{end - 2 * HOUR:%Y%m%dT%H%M%SZ}_{end - HOUR:%Y%m%dT%H%M%SZ}"]
        )
    assert max(stored.values()) == 1 and len(stored) == len(seen)
    assert sum(read_manifest(gcs, BUCKET, folder(e - HOUR, e))["overlap"]["late_arrivals"]["count"] for e in ENDS) > 0

    # the sweep run ending at 03:00 sweeps [00:30, 02:30) a day later, when every late event has arrived
    api.admin.set_clock(ENDS[-1] + timedelta(days=1))
    result = dags_test("auditlogs_slack_sweep", ENDS[-1].isoformat(), env)
    assert result.returncode == 0, result.output[-3000:]
    swept = (ENDS[0] - DELAY, ENDS[-1] - DELAY)
    in_range = {e.id for e in truth_events("slack", *swept, SCENARIO, now=ENDS[-1] + timedelta(days=1))}
    missed = in_range - set(seen)
    assert missed
    sweep_folder = folder(*swept, sub="sweep/")
    assert Counter(e["id"] for e in read_events(gcs, BUCKET, sweep_folder)) == Counter(missed)
    manifest = read_manifest(gcs, BUCKET, sweep_folder)
    assert manifest["sweep"]["recovered"] == len(missed) and manifest["sweep"]["events_in_range"] == len(in_range)
