"""The request-rate budget of one task: token buckets in front of every request the client sends.

An API's documented limit belongs to the credential, not to one task: `task_rate` splits a source's
`requests_per_minute` (and `requests_per_hour`) between the tasks that can run with that credential at
once, so that backfills and parallel streams stay within the limit together. A bucket lets a short burst
through (`capacity`) and then paces requests at the rate; it never sleeps while tokens are available. An
API with limits over several windows (1Password: 600 a minute and 30,000 an hour) gets one bucket per
window in a `RateBudget`; the hour's bucket paces at its rate less the burst, so no hour exceeds it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

#: For APIs that document no numeric limit (SourceSpec.requests_per_minute == 0): one request a second.
DEFAULT_REQUESTS_PER_MINUTE = 60
#: Requests a task may send back to back before pacing starts.
BURST = 5
#: The slowest pace consecutive rate limits bring a task down to, as a share of its budget's.
SLOWEST = 1 / 8


def task_rate(requests_per_minute: int, concurrent_tasks: int) -> float:
    """Requests per minute one task may send when `concurrent_tasks` tasks share the credential."""
    return requests_per_minute / max(1, concurrent_tasks)


class TokenBucket:
    def __init__(
        self,
        per_minute: float,
        capacity: int = BURST,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        period: float = 60.0,
    ):
        """`per_minute` requests each `period` seconds (a minute unless told: `TokenBucket(30_000, period=3600)`)."""
        if per_minute <= 0:
            raise ValueError("a request budget needs a rate above 0 per minute")
        self.capacity = max(1, min(capacity, math.ceil(per_minute)))
        # Beyond a minute the burst comes out of the window's limit: C + rate * period never exceeds it.
        allowed = per_minute - self.capacity if period > 60 and per_minute > 2 * self.capacity else per_minute
        self.rate = self.full_rate = allowed / period
        self.clock = clock
        self.sleep = sleep
        self.tokens = float(self.capacity)
        self.updated = clock()
        self.waited = 0.0

    def acquire(self) -> float:
        """Takes one token, sleeping until one is available; returns the seconds slept."""
        self._refill()
        wait = 0.0
        if self.tokens < 1:
            wait = (1 - self.tokens) / self.rate
            self.sleep(wait)
            self.waited += wait
            self._refill()
            self.tokens = max(self.tokens, 1.0)  # a sleep shorter than asked must not stall the task
        self.tokens -= 1
        return wait

    def slow_down(self) -> None:
        """Halves the pace (down to SLOWEST of the budget's): the API kept rate-limiting at this one."""
        self._refill()
        self.rate = max(self.rate / 2, self.full_rate * SLOWEST)

    def recover(self) -> None:
        """After an answer that was not rate-limited: a quarter faster, up to the budget's pace."""
        if self.rate < self.full_rate:
            self._refill()
            self.rate = min(self.rate * 1.25, self.full_rate)

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now


class RateBudget:
    """Several windows' buckets (a minute's and an hour's): a request waits until every one has a token."""

    def __init__(self, *buckets: TokenBucket):
        self.buckets = buckets

    def acquire(self) -> float:
        return sum(bucket.acquire() for bucket in self.buckets)

    def slow_down(self) -> None:
        for bucket in self.buckets:
            bucket.slow_down()

    def recover(self) -> None:
        for bucket in self.buckets:
            bucket.recover()
