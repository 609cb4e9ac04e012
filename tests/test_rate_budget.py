"""The request budget: a token bucket per task, the credential's rate split between the tasks that can
hold it at once, and server-requested waits floored, capped and jittered. The backfill measurement drives
24 consecutive intervals through the real client and collector and reads the request times the sandbox saw."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.client.api import RetryBudget
from auditlogs.client.ratelimit import DEFAULT_REQUESTS_PER_MINUTE, TokenBucket
from auditlogs.config import PUBLISH_ALLOWANCE
from auditlogs.errors import RateLimitedError, TransientError
from auditlogs.operators.collect import rate_budget, request_budget
from auditlogs.sources import SPECS
from auditlogs.window import Window
from harness import Connection, api_client, collect_window, run_collector, sandbox_fixtures, source_config

UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
TOKEN = "xoxp-budget-token-0001"
SCENARIO = {"seed": 8, "sources": {"slack": {"events_per_hour": 300, "token": TOKEN, "rate_limit_per_minute": 0}}}

server, api = sandbox_fixtures(SCENARIO, NOW)


class FakeTime:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_the_bucket_lets_a_small_burst_through_then_paces_at_the_rate():
    fake = FakeTime()
    bucket = TokenBucket(120, capacity=3, clock=lambda: fake.now, sleep=fake.sleep)
    for _ in range(7):
        bucket.acquire()
    assert fake.sleeps == [0.5, 0.5, 0.5, 0.5]
    fake.now += 10  # idle time refills the burst, never beyond the capacity
    for _ in range(4):
        bucket.acquire()
    assert fake.sleeps == [0.5] * 5


def config(source_type: str, **options):
    base = {"name": "x", "type": source_type, "conn_id": "c", "bucket": "bucket", "start_date": "2026-01-01"}
    extra = {"github": {"org": "o"}}.get(source_type, {})
    return SPECS[source_type].config.model_validate({**base, **extra, **options})


def test_budget_defaults_to_the_documented_limit_and_is_shared_by_concurrent_tasks():
    assert request_budget(SPECS["slack"], config("slack")) == 50
    assert request_budget(SPECS["twilio"], config("twilio")) == DEFAULT_REQUESTS_PER_MINUTE  # undocumented
    assert request_budget(SPECS["okta"], config("okta", requests_per_minute=30)) == 30
    # 1Password's three streams run in parallel with one token; two active runs double that.
    assert config("onepassword").concurrent_tasks() == 3
    assert config("onepassword", max_active_runs=2).concurrent_tasks() == 6
    # With a pool, the pool's slots bound the tasks holding the credential.
    assert config("onepassword", pool="op_token", pool_slots=2, max_active_runs=4).concurrent_tasks() == 2


def test_retry_after_is_floored_capped_and_jittered(api, tmp_path):
    sleeps: list[float] = []
    api.admin.add_faults(
        {"kind": "status", "status": 429, "headers": {"Retry-After": "0"}},
        {"kind": "status", "status": 429, "headers": {"Retry-After": "86400"}},
        {"kind": "status", "status": 429, "headers": {"Retry-After": "0"}},
    )
    window = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 4, 10, tzinfo=UTC))
    budget = RetryBudget(max_attempts=5, max_total_wait=10_000, min_rate_limit_wait=1.0, max_rate_limit_wait=300.0)
    collect_window(
        "slack", {}, "audit", Connection("slack", api.url, TOKEN), window, tmp_path, sleep=sleeps.append, budget=budget
    )
    assert len(sleeps) == 3
    assert 1.0 <= sleeps[0] <= 1.1  # floor, with jitter
    assert 300.0 <= sleeps[1] <= 330.0  # cap
    assert sleeps[2] == 4.0  # the third rate limit in a row: the floor doubled twice (throttling backs off)


def test_a_24_interval_backfill_stays_under_the_budget(api, tmp_path):
    """One process, 24 consecutive hourly intervals, a fast budget (1,200/min = 20/s) so it runs quickly."""
    per_minute, burst = 1200, 5
    bucket = TokenBucket(per_minute, capacity=burst)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    for hour in range(24):
        window = Window(start + timedelta(hours=hour) - timedelta(minutes=30), start + timedelta(hours=hour + 1))
        collect_window(
            "slack",
            {"limit": 25},
            "audit",
            Connection("slack", api.url, TOKEN),
            window,
            tmp_path / str(hour),
            rate=bucket,
        )
    times = sorted(r["at"] for r in api.admin.requests())
    assert len(times) > 200
    rate_per_second = per_minute / 60
    for length in (1.0, 5.0, 10.0):
        most = max(sum(1 for t in times[i:] if t < times[i] + length) for i in range(len(times)))
        # A bucket never lets through more than its burst plus the rate over any span (+1 for clock edges).
        assert most <= burst + rate_per_second * length + 1, (length, most)
    duration = times[-1] - times[0]
    busiest = max(sum(1 for t in times[i:] if t < times[i] + 1) for i in range(len(times)))
    print(
        f"\nRATE-BUDGET: {len(times)} requests over {duration:.1f}s = {len(times) / duration * 60:.0f}/min "
        f"(budget {per_minute}/min); busiest 1s: {busiest}"
    )


WINDOW = Window(datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 4, 10, tzinfo=UTC))


def collect_paced(api, tmp_path, sleeps: list, attempts: int, max_wait: float):
    return collect_window(
        "slack",
        {},
        "audit",
        Connection("slack", api.url, TOKEN),
        WINDOW,
        tmp_path,
        sleep=sleeps.append,
        budget=RetryBudget(max_attempts=attempts, max_total_wait=max_wait),
    )


def test_rate_limits_slow_a_page_down_but_never_use_up_its_attempts(api, tmp_path):
    """Seven 429s in a row with page_attempts 2: the page waits them out (each longer) and succeeds."""
    sleeps: list[float] = []
    api.admin.add_faults({"kind": "status", "status": 429, "headers": {"Retry-After": "1"}, "count": 7})
    collected = collect_paced(api, tmp_path, sleeps, attempts=2, max_wait=600)
    assert collected.client.stats.rate_limited == 7 and [r["status"] for r in api.admin.requests()][:8] == [429] * 7 + [
        200
    ]
    assert 1.0 <= sleeps[0] <= 1.1 and sleeps[1:] == [2.0, 4.0, 8.0, 16.0, 32.0, 64.0]


def test_a_page_fails_on_rate_limits_only_once_page_max_wait_is_spent(api, tmp_path):
    sleeps: list[float] = []
    api.admin.add_faults({"kind": "status", "status": 429, "headers": {"Retry-After": "1"}, "count": 50})
    with pytest.raises(RateLimitedError, match="page_max_wait is spent"):
        collect_paced(api, tmp_path, sleeps, attempts=2, max_wait=60)
    # 1 + 2 + 4 + 8 + 16 = 31 s waited; the next, 32 s, is cut to the 29 s left; then nothing is left.
    assert sleeps[1:] == [2.0, 4.0, 8.0, 16.0, 60 - sum(sleeps[:5])] and sum(sleeps) == 60
    assert len(api.admin.requests()) == 7 <= RetryBudget(max_attempts=2, max_total_wait=60).most_requests()


def test_5xx_keep_their_bounded_attempts_beside_rate_limits(api, tmp_path):
    sleeps: list[float] = []
    api.admin.add_faults({"kind": "status", "status": 429, "count": 3}, {"kind": "status", "status": 503, "count": 2})
    with pytest.raises(TransientError, match="after 5 attempts"):
        collect_paced(api, tmp_path, sleeps, attempts=2, max_wait=600)
    assert [r["status"] for r in api.admin.requests()] == [429, 429, 429, 503, 503]


def test_consecutive_rate_limits_halve_the_pace_down_to_an_eighth_and_answers_bring_it_back():
    fake = FakeTime()
    bucket = TokenBucket(60, capacity=1, clock=lambda: fake.now, sleep=fake.sleep)
    for _ in range(5):
        bucket.slow_down()
    assert bucket.rate == 1 / 8  # a request every 8 s instead of every second, never slower
    bucket.acquire()
    bucket.acquire()
    assert fake.sleeps == [8.0]
    for _ in range(10):
        bucket.recover()
    assert bucket.rate == 1.0


def test_a_second_rate_limit_in_a_row_slows_the_tasks_pace(api, tmp_path):
    fake = FakeTime()
    bucket = TokenBucket(6000, capacity=5, clock=lambda: fake.now, sleep=fake.sleep)
    api.admin.add_faults({"kind": "status", "status": 429, "count": 3})
    collect_window(
        "slack",
        {"limit": 50},
        "audit",
        Connection("slack", api.url, TOKEN),
        WINDOW,
        tmp_path,
        sleep=fake.sleep,
        rate=bucket,
    )
    # Two slow-downs (the 2nd and 3rd answer in a row), then each later answer brings a quarter back.
    pages = len(api.admin.requests()) - 3
    assert bucket.rate == min(100.0, 25.0 * 1.25**pages)


def test_a_window_with_a_page_throttled_for_its_whole_page_max_wait_ends_within_its_execution_timeout(api, tmp_path):
    """`max_pages` set to the window's pages, every request taking the whole `request_timeout` (the clock moves
    by it) at the task's real pace on the same clock, and one page rate-limited nine times in a row: its waits
    (1 s doubling, then what is left) spend all of `page_max_wait`. The pages end before the derived
    execution_timeout less the time it keeps for publishing, so the pacing is waited out, not cut short."""
    options = {"limit": 5, "request_timeout": "30s", "page_attempts": 3, "page_max_wait": "5m"}
    connection = Connection("slack", api.url, TOKEN)
    pages = collect_window("slack", options, "audit", connection, WINDOW, tmp_path / "count").result.pages
    config = source_config("slack", connection.conn_id, **options, max_pages=pages)
    fake = FakeTime()
    spec = SPECS["slack"]
    client = api_client(
        spec, connection, config=config, sleep=fake.sleep, rate=rate_budget(spec, config, fake.sleep, lambda: fake.now)
    )
    answer = client.session.request

    def taking_the_whole_timeout(*args, **kwargs):
        fake.now += config.request_timeout.total_seconds()
        return answer(*args, **kwargs)

    client.session.request = taking_the_whole_timeout
    api.admin.add_faults({"kind": "status", "status": 429, "headers": {"Retry-After": "1"}, "after": 2, "count": 9})
    result, _ = run_collector(spec, config, "audit", client, WINDOW, tmp_path / "throttled")

    assert result.pages == pages > 5 and client.stats.rate_limited == 9 and client.stats.requests == pages + 9
    assert client.stats.waited_seconds == pytest.approx(300, abs=1e-6)  # all of page_max_wait; the pace never waited
    assert fake.now < (config.task_timeout - PUBLISH_ALLOWANCE).total_seconds()
