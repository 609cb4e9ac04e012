"""The request-rate budget of one task: a token bucket in front of every request the client sends.

An API's documented limit belongs to the credential, not to one task: `task_rate` splits a source's
`requests_per_minute` between the tasks that can run with that credential at once, so that backfills and
parallel streams stay within the limit together. The bucket lets a short burst through (`capacity`)
and then paces requests at the rate; it never sleeps while tokens are available.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

#: For APIs that document no numeric limit (SourceSpec.requests_per_minute == 0): one request a second.
DEFAULT_REQUESTS_PER_MINUTE = 60
#: Requests a task may send back to back before pacing starts.
BURST = 5


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
    ):
        if per_minute <= 0:
            raise ValueError("a request budget needs a rate above 0 per minute")
        self.rate = per_minute / 60.0
        self.capacity = max(1, min(capacity, math.ceil(per_minute)))
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

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
