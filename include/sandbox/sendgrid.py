"""SendGrid IP Access Management, "Retrieve all recent access attempts" (`GET /v3/access_settings/activity`).

Not a log: a snapshot. Each generated event is one access attempt; the API answers with the attempts of
the last `retention_days` (the sandbox's stand-in for the undocumented "recent") aggregated per IP and
authentication method, `first_at`/`last_at` in Unix seconds, newest `last_at` first, the top `limit`
(default 20; no maximum is documented, none is enforced). No time filter, no paging. Bearer auth with the
scenario token (`SG.`-style), SendGrid's `{"errors": [...]}` bodies, and `X-RateLimit-Limit/Remaining/Reset`
(epoch seconds) on every answer, 429 when a fixed 60 s window's `rate_limit_per_minute` is used up.
"""

from __future__ import annotations

import math
import random
import threading
import time
from typing import Any

import orjson

from sandbox.events import Clock, EventStore
from sandbox.scenario import SourceConfig
from sandbox.web import Request, Response, Route, json_response

NAME = "sendgrid"
PATH = "/v3/access_settings/activity"
DEFAULT_LIMIT = 20
_METHODS = ["Web", "API", "Basic Auth"]
_PLACES = [
    "Australia",
    "Mukilteo, Washington",
    "Berlin, Germany",
    "Sao Paulo, Brazil",
    "Mumbai, India",
    "Lagos, Nigeria",
    "Dublin, Ireland",
    "Toronto, Canada",
    "Tokyo, Japan",
    "Denver, Colorado",
    "Amsterdam, Netherlands",
]


def make_renderer(seed: int):
    pool_rng = random.Random(f"{seed}:{NAME}:pool")
    pool = [
        (
            ".".join(
                str(n)
                for n in (
                    pool_rng.randrange(1, 224),
                    pool_rng.randrange(256),
                    pool_rng.randrange(256),
                    pool_rng.randrange(1, 255),
                )
            ),
            pool_rng.random() < 0.7,
            pool_rng.choice(_PLACES),
        )
        for _ in range(150)
    ]

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        ip, allowed, location = rng.choice(pool)
        return {"ip": ip, "auth_method": rng.choice(_METHODS), "allowed": allowed, "location": location, "at": ts}

    return render


def snapshot(store: EventStore, now: float, limit: int) -> list[dict[str, Any]]:
    """What the API answers at `now`: one row per (ip, auth_method), newest last_at first, the top `limit`."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    horizon = int(now) - store.config.retention_days * 86400
    for event in store.iter_desc(horizon, int(now), now):
        attempt = orjson.loads(event.payload)
        key = (attempt["ip"], attempt["auth_method"])
        row = rows.get(key)
        if row is None:  # newest first: the first attempt seen is the most recent
            rows[key] = {
                "allowed": attempt["allowed"],
                "auth_method": attempt["auth_method"],
                "first_at": attempt["at"],  # the event's time (a scenario's malformed_times can replace it)
                "ip": attempt["ip"],
                "last_at": attempt["at"],
                "location": attempt["location"],
            }
        else:
            row["first_at"] = attempt["at"]
    ordered = sorted(rows.values(), key=lambda r: (-r["last_at"], r["ip"], r["auth_method"]))
    return ordered[:limit]


def errors(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"errors": [{"field": field, "message": message}]}, headers)


class FixedWindowLimit:
    """SendGrid's documented headers: a per-key budget that refills at `X-RateLimit-Reset` (epoch seconds)."""

    def __init__(self, per_minute: int | None) -> None:
        self.limit = per_minute or 0
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> tuple[bool, dict[str, str]]:
        if not self.limit:
            return True, {}
        now = time.time()
        with self._lock:
            reset, used = self._windows.get(key, (0.0, 0))
            if now >= reset:
                reset, used = math.ceil(now) + 60, 0
            allowed = used < self.limit
            used += allowed
            self._windows[key] = (reset, used)
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - used),
            "X-RateLimit-Reset": str(int(reset)),
        }
        return allowed, headers

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()


class SendGridApi:
    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        self._token = config.token
        self._store = store
        self._clock = clock
        self._limit = FixedWindowLimit(config.rate_limit_per_minute)

    def routes(self) -> list[Route]:
        return [Route("GET", PATH, self.activity)]

    def reset(self) -> None:
        self._limit.reset()

    def activity(self, req: Request) -> Response:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() != self._token:
            return errors(401, "authorization required")
        req.auth_ok = True
        allowed, headers = self._limit.take(token)
        if not allowed:
            return errors(429, "too many requests", headers=headers)
        raw = req.param("limit")
        if raw is not None and (not raw.isdigit() or int(raw) < 1):
            return errors(400, "limit must be a positive integer", "limit", headers)
        rows = snapshot(self._store, self._clock.now(), int(raw) if raw else DEFAULT_LIMIT)
        return json_response(200, {"result": rows}, headers)
