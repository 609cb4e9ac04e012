"""Budgets over several windows: the operator's request budget for 1Password (600 a minute and 30,000 an hour)
and GitHub (1,750 an hour), driven on a simulated clock for more than an hour of full-speed catch-up,
never exceed any documented window."""

from __future__ import annotations

from collections import deque

import pytest

from auditlogs.operators.collect import rate_budget
from auditlogs.sources import SPECS
from harness import source_config

pytestmark = pytest.mark.hostile


class FakeTime:
    def __init__(self):
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def request_times(source_type: str, seconds: float, **options) -> list[float]:
    """When a task at full speed sends its requests over `seconds` of simulated time."""
    fake = FakeTime()
    budget = rate_budget(SPECS[source_type], source_config(source_type, "conn", **options), fake.sleep, fake.clock)
    times = []
    while fake.now < seconds:
        budget.acquire()
        times.append(fake.now)
    return times


def busiest(times: list[float], window: float) -> int:
    """The most requests in any `window` seconds."""
    inside: deque[float] = deque()
    most = 0
    for at in times:
        inside.append(at)
        while inside[0] <= at - window:
            inside.popleft()
        most = max(most, len(inside))
    return most


def test_onepassword_stays_within_600_a_minute_and_30000_an_hour_over_a_long_catch_up():
    times = request_times("onepassword", 2.5 * 3600, pool="onepassword", pool_slots=1)  # one task holds it
    assert busiest(times, 3600) <= 30_000
    assert busiest(times, 60) <= 600 + 5  # the minute's burst
    assert len(times) >= 2.5 * 29_000  # still close to the hour's limit: the budget does not starve


def test_github_stays_within_1750_an_hour():
    times = request_times("github", 3 * 3600, org="acme", pool="github", pool_slots=1)
    assert busiest(times, 3600) <= 1_750
    assert len(times) >= 3 * 1_700


def test_a_configured_hour_budget_is_split_between_the_tasks_sharing_the_credential():
    times = request_times("slack", 2 * 3600, requests_per_hour=1_000, pool="slack_pool", pool_slots=2)
    assert busiest(times, 3600) <= 500
