"""Ground truth: what a perfect collector would have fetched for a window.

Computed from the scenario alone, so tests can check the data that landed in GCS
without asking the (possibly faulty) server.
"""

from __future__ import annotations

import gc
import math
import os
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import orjson

from sandbox.events import Event
from sandbox.scenario import Scenario, load_scenario
from sandbox.sources import event_store

Instant = datetime | float | int


def ground_truth(
    source: str,
    start: Instant,
    end: Instant,
    scenario: Scenario | Mapping[str, Any] | str | os.PathLike[str],
    now: Instant | None = None,
) -> list[dict[str, Any]]:
    """API event objects with event time in [start, end), visible at `now` (default: real now), newest first.

    Instants are tz-aware datetimes or unix seconds; visibility and retention follow the
    same rules as the API, so this equals a complete, correct paging of the window.
    """
    events = truth_events(source, start, end, scenario, now)
    # Parsing allocates millions of acyclic containers; left on, the cyclic GC rescans the
    # growing heap over and over and makes a 200k-event truth ~6x slower.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return [orjson.loads(e.payload) for e in events]
    finally:
        if gc_was_enabled:
            gc.enable()


def truth_events(
    source: str,
    start: Instant,
    end: Instant,
    scenario: Scenario | Mapping[str, Any] | str | os.PathLike[str],
    now: Instant | None = None,
) -> Iterator[Event]:
    """Like ground_truth but yields the raw Events (cheap: nothing is parsed)."""
    store = event_store(load_scenario(scenario), source)
    now_s = time.time() if now is None else _seconds(now)
    return store.iter_desc(math.ceil(_seconds(start)), math.ceil(_seconds(end)) - 1, now_s)


def _seconds(instant: Instant) -> float:
    if isinstance(instant, datetime):
        if instant.tzinfo is None:
            raise ValueError("naive datetime: pass a tz-aware (UTC) datetime")
        return instant.timestamp()
    return float(instant)
