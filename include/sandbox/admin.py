"""Client for the /_sandbox/ admin API, identical for in-thread and subprocess sandboxes.

Uses urllib (no proxies) so the sandbox stays free of HTTP-client dependencies.
"""

from __future__ import annotations

import urllib.request
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson


class SandboxAdmin:
    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else orjson.dumps(body)
        request = urllib.request.Request(
            f"{self.url}/_sandbox/{path}", data=data, method=method, headers={"Content-Type": "application/json"}
        )
        with self._opener.open(request, timeout=self._timeout) as resp:
            return orjson.loads(resp.read())

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def requests(self) -> list[dict[str, Any]]:
        return self._call("GET", "requests")

    def clear_requests(self) -> None:
        self._call("DELETE", "requests")

    def add_faults(self, *faults: dict[str, Any]) -> None:
        self._call("POST", "faults", {"faults": list(faults)})

    def add_random_faults(self, seed: int, **options: Any) -> list[dict[str, Any]]:
        """A seeded fault schedule (see sandbox.faults.random_schedule); returns the faults queued."""
        return self._call("POST", "faults/random", {"seed": seed, **options})["faults"]

    def pending_faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "faults")["faults"]

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def set_clock(self, now: datetime | float | None) -> None:
        """Freeze the sandbox clock at `now` (None: back to real time)."""
        self._call("POST", "clock", {"now": None if now is None else _unix(now)})

    def truth_ids(self, source: str, start: datetime | float, end: datetime | float) -> list[str]:
        params = {"source": source, "start": _unix(start), "end": _unix(end)}
        return self._call("GET", f"truth?{urlencode(params)}")["ids"]

    def reset(self) -> None:
        self._call("POST", "reset", {})


def _unix(instant: datetime | float) -> float:
    if not isinstance(instant, datetime):
        return instant
    if instant.tzinfo is None:
        raise ValueError("naive datetime: pass a tz-aware (UTC) datetime")
    return instant.timestamp()
