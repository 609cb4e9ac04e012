"""The task retry policy: which failures Airflow retries, and after how long.

Airflow 3.3 asks a task's `retry_policy` after every failure, in the worker, with the exception itself:

* authentication, permission, config and rejected-request errors, snapshots that cannot cover the window,
  event data that does not parse, a page cap, a foreign next URL and a shrinking rerun fail at once
  (`AuditLogError.retryable` is False): retrying cannot help and could lock the account;
* a rate limit retries after the server's reset (its last Retry-After / X-RateLimit-Reset), never sooner
  than `retry_delay` and never later than `max_retry_delay`; a reset that is no number falls back to the backoff;
* everything else (5xx, network, unreadable pages, a GCS failure, a bug) retries with exponential backoff:
  `retry_delay * 2 ** (try - 1)`, capped at `max_retry_delay`.

The number of tries is the task's `retries`: the policy can only fail earlier, never retry more often.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

from auditlogs.errors import AuditLogError, RateLimitedError

BACKOFF_MULTIPLIER = 2


class AuditLogRetryPolicy(RetryPolicy):
    def __init__(self, retry_delay: timedelta, max_retry_delay: timedelta):
        self.retry_delay = retry_delay
        self.max_retry_delay = max(max_retry_delay, retry_delay)

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int, context: Any = None) -> RetryDecision:
        name = type(exception).__name__
        if isinstance(exception, AuditLogError) and not exception.retryable:
            return RetryDecision.fail(f"{name}: a retry cannot fix this, failing without retrying")
        reset_after = getattr(exception, "reset_after", None)
        if isinstance(exception, RateLimitedError) and reset_after is not None and math.isfinite(reset_after):
            delay = self._clamp(timedelta(seconds=reset_after))
            return RetryDecision.retry(delay, f"{name}: retrying after the API's rate-limit reset in {_seconds(delay)}")
        delay = self._clamp(self.retry_delay * BACKOFF_MULTIPLIER ** max(0, try_number - 1))
        return RetryDecision.retry(delay, f"{name}: retrying with backoff in {_seconds(delay)}")

    def _clamp(self, delay: timedelta) -> timedelta:
        return min(max(delay, self.retry_delay), self.max_retry_delay)

    def serialize(self) -> dict[str, Any]:
        return {
            "__type": type(self).__name__,
            "retry_delay": self.retry_delay.total_seconds(),
            "max_retry_delay": self.max_retry_delay.total_seconds(),
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> AuditLogRetryPolicy:
        return cls(timedelta(seconds=data["retry_delay"]), timedelta(seconds=data["max_retry_delay"]))


def _seconds(delay: timedelta) -> str:
    return f"{delay.total_seconds():g}s"
