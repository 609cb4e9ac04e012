"""Per-key sliding-window rate limiter, as SaaS APIs apply per token."""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque

WINDOW_SECONDS = 60.0


class SlidingWindowLimiter:
    """Allows `per_minute` calls per key in any 60 s window; None or 0 disables it.

    Uses the real monotonic clock: the sandbox clock only moves event visibility, and
    freezing it must not freeze rate-limit windows.
    """

    def __init__(self, per_minute: int | None) -> None:
        self._limit = per_minute or 0
        self._calls: defaultdict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def acquire(self, key: str) -> int | None:
        """Record a call and return None, or return the Retry-After seconds if over the limit."""
        if not self._limit:
            return None
        now = time.monotonic()
        with self._lock:
            calls = self._calls[key]
            while calls and calls[0] <= now - WINDOW_SECONDS:
                calls.popleft()
            if len(calls) >= self._limit:
                return max(1, math.ceil(calls[0] + WINDOW_SECONDS - now))
            calls.append(now)
            return None

    def usage(self, key: str) -> tuple[int, int, int]:
        """(limit, remaining, seconds until a call frees up) for the X-RateLimit-* headers; limit 0 when off."""
        if not self._limit:
            return 0, 0, 0
        now = time.monotonic()
        with self._lock:
            calls = [t for t in self._calls[key] if t > now - WINDOW_SECONDS]
        reset_in = math.ceil(calls[0] + WINDOW_SECONDS - now) if calls else 0
        return self._limit, max(0, self._limit - len(calls)), reset_in

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
