"""Injected failures: the queue behind POST /_sandbox/faults and the responses it forges."""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from http import HTTPStatus
from typing import Any

import orjson

from sandbox.web import Response

# "status"/"html" replace the response; "delay" sleeps then answers normally;
# "reset"/"truncate" answer normally but break the transfer (see server.py).
KINDS = frozenset({"status", "delay", "reset", "truncate", "html"})
_DEFAULT_ERRORS = {401: "invalid_authentication", 429: "ratelimited"}


@dataclass
class Fault:
    kind: str
    match: str = "/"  # path prefix
    count: int = 1  # how many matching requests it applies to
    after: int = 0  # matching requests to let through first
    status: int | None = None
    headers: dict[str, str] | None = None  # None: defaults (Retry-After: 1 on 429)
    body: str | None = None
    seconds: float = 0.0  # for "delay"
    label: str | None = None  # what the request log records (default: kind); seeded schedules name the fault

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_fault(raw: Any) -> Fault:
    """Validate one fault spec from the admin API; raises ValueError with a readable reason."""
    if not isinstance(raw, Mapping):
        raise ValueError("each fault must be an object")
    allowed = set(Fault.__dataclass_fields__)
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"unknown fault keys {sorted(unknown)}")
    if raw.get("kind") not in KINDS:
        raise ValueError(f"fault kind must be one of {sorted(KINDS)}")
    try:
        fault = Fault(**raw)
    except TypeError as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(fault.match, str) or not fault.match.startswith("/"):
        raise ValueError("match must be a path prefix starting with /")
    if not isinstance(fault.count, int) or fault.count < 1 or not isinstance(fault.after, int) or fault.after < 0:
        raise ValueError("count must be an int >= 1 and after an int >= 0")
    if fault.status is not None and not (isinstance(fault.status, int) and 100 <= fault.status <= 599):
        raise ValueError("status must be an HTTP status code")
    if fault.headers is not None and not (
        isinstance(fault.headers, Mapping) and all(isinstance(v, str) for v in fault.headers.values())
    ):
        raise ValueError("headers must map names to strings")
    if fault.body is not None and not isinstance(fault.body, str):
        raise ValueError("body must be a string")
    if not isinstance(fault.seconds, (int, float)) or fault.seconds < 0:
        raise ValueError("seconds must be a number >= 0")
    if fault.label is not None and not isinstance(fault.label, str):
        raise ValueError("label must be a string")
    return fault


#: What a seeded schedule draws from: (label, fault template). 429 storms with `Retry-After: 1`, with
#: `Retry-After: 0` and without it; 5xx bursts; HTML error pages; resets mid-body; slow answers (past the
#: client's timeout when `slow_seconds` exceeds it); truncated bodies.
SCHEDULE_KINDS: dict[str, dict[str, Any]] = {
    "429_retry_after": {"kind": "status", "status": 429, "headers": {"Retry-After": "1"}},
    "429_retry_after_0": {"kind": "status", "status": 429, "headers": {"Retry-After": "0"}},
    "429_no_retry_after": {"kind": "status", "status": 429, "headers": {}},
    "5xx": {"kind": "status"},
    "html": {"kind": "html"},
    "reset": {"kind": "reset"},
    "slow": {"kind": "delay"},
    "truncate": {"kind": "truncate"},
}


def random_schedule(
    seed: int,
    match: str = "/",
    *,
    faults: int = 4,
    max_gap: int = 3,
    max_burst: int = 3,
    slow_seconds: float = 1.0,
    kinds: list[str] | None = None,
) -> list[Fault]:
    """A seeded, reproducible fault schedule: `faults` bursts, each after 0..`max_gap` good requests (so they
    land mid-pagination), of 1..`max_burst` hits (a slow answer hits once: it costs real time)."""
    rng = random.Random(f"faults:{seed}")
    names = kinds or sorted(SCHEDULE_KINDS)
    unknown = set(names) - set(SCHEDULE_KINDS)
    if unknown:
        raise ValueError(f"unknown schedule kinds {sorted(unknown)}; known: {sorted(SCHEDULE_KINDS)}")
    schedule = []
    for _ in range(faults):
        label = rng.choice(names)
        template = dict(SCHEDULE_KINDS[label])
        if label == "5xx":
            template["status"] = rng.choice([500, 502, 503, 504])
        count = 1 if label == "slow" else rng.randint(1, max_burst)
        schedule.append(
            Fault(
                **template,
                match=match,
                count=count,
                after=rng.randint(0, max_gap),
                label=label,
                seconds=slow_seconds if label == "slow" else 0.0,
            )
        )
    return schedule


class FaultQueue:
    """FIFO of faults: each request consumes the earliest queued fault whose prefix matches its path."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, faults: list[Fault]) -> None:
        with self._lock:
            self._faults.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(self, path: str) -> Fault | None:
        """The fault to apply to this request, if any; advances the matching fault's counters."""
        with self._lock:
            for fault in self._faults:
                if not path.startswith(fault.match):
                    continue
                if fault.after:
                    fault.after -= 1
                    return None
                fault.count -= 1
                if not fault.count:
                    self._faults.remove(fault)
                return fault
            return None


def fault_response(fault: Fault) -> Response:
    """The forged response of a "status" or "html" fault."""
    if fault.kind == "html":
        status = fault.status or 502
        body = fault.body or _html_page(status)
        headers = {"Content-Type": "text/html; charset=utf-8"}
    else:
        status = fault.status or 500
        body = fault.body or orjson.dumps({"ok": False, "error": _DEFAULT_ERRORS.get(status, "sandbox_fault")}).decode()
        headers = {"Content-Type": _content_type(body)}
        if status == 429 and fault.headers is None:
            headers["Retry-After"] = "1"
    headers.update(fault.headers or {})
    return Response(status, body.encode(), headers)


def _content_type(body: str) -> str:
    try:
        orjson.loads(body)
    except orjson.JSONDecodeError:
        return "text/plain; charset=utf-8"
    return "application/json; charset=utf-8"


def _html_page(status: int) -> str:
    """What a load balancer in front of a SaaS API typically returns instead of JSON."""
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n"
        f"<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


#: GitHub's secondary rate limit as it answers it: 403, `Retry-After: 1`, and a body asking for minutes.
GITHUB_SECONDARY_LIMIT = {
    "kind": "status",
    "status": 403,
    "headers": {"Retry-After": "1"},
    "body": '{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",'
    ' "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"}',
}
#: The single faults of the heavy schedule and their weights: mostly rate limits, then 5xx and broken transfers.
HEAVY_SINGLES = {
    "429_retry_after": 6,
    "429_retry_after_0": 1,
    "429_no_retry_after": 1,
    "5xx": 3,
    "reset": 1,
    "truncate": 1,
    "html": 1,
}


def heavy_schedule(
    seed: int,
    pages: int,
    *,
    page_attempts: int,
    hard: int,
    secondary_limits: bool = False,
    storm_every: int = 24,
    match: str = "/",
) -> list[Fault]:
    """The busy-window schedule of issue 19, seeded: one request in four is answered with a fault (so a
    window of `pages` pages needs about 4/3 as many requests at best), most of them rate limits; every
    `storm_every` good requests or so a page meets five failures in a row (rate limits, GitHub's secondary
    403s with `secondary_limits`, mixed with page_attempts - 1 5xx, which a client that keeps pacing gets
    through); and `hard` times a page fails `page_attempts` times in a row (5xx and resets), which no try can
    pass: the window then needs `hard` + 1 tries, each continuing where the last stopped or starting over."""
    rng = random.Random(f"heavy:{seed}")
    limit = GITHUB_SECONDARY_LIMIT if secondary_limits else SCHEDULE_KINDS["429_retry_after"]
    limit_label = "403_secondary" if secondary_limits else "429_retry_after"
    singles = [name for name, weight in HEAVY_SINGLES.items() for _ in range(weight)]

    def fault(label: str, template: dict, after: int) -> Fault:
        template = dict(template)
        if label == "5xx":
            template["status"] = rng.choice([500, 502, 503, 504])
        return Fault(**template, match=match, after=after, label=label)

    hard_at = set(rng.sample(range(1, max(2, pages // 4)), min(hard, max(1, pages // 4 - 1))))  # within the window
    schedule, good, burst_index = [], 0, 0
    while good < pages * 3 // 2:
        burst_index += 1
        if burst_index in hard_at:
            labels = [rng.choice(["5xx", "5xx", "reset"]) for _ in range(page_attempts)]
        elif rng.random() < 4 / storm_every:
            labels = [limit_label, "5xx", limit_label, "5xx", limit_label][: 3 + min(2, page_attempts - 1)]
        else:
            labels = [rng.choice(singles)]
        gap = 3 * len(labels)
        for n, label in enumerate(labels):
            template = limit if label == limit_label else SCHEDULE_KINDS[label]
            schedule.append(fault(label, template, gap if n == 0 else 0))
        good += gap
    return schedule
