"""The delay advisor: is the configured `delay` right, judged from the late arrivals runs measured?

Observed lateness is only what the overlap can see (an event later than `delay` is never fetched by a
normal run), so lateness close to the delay means events beyond it are likely being missed. A delay far
above every observed lateness costs requests (and, without de-duplication, storage) for nothing.

Advice goes to the task log as a WARNING starting with `ADVICE_MARKER`, is recorded in the manifest, and
is handed to every function in `HOOKS` (the notification channel registers itself there).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import timedelta

from auditlogs.config import format_duration
from auditlogs.sink.overlap import merge, quantile

log = logging.getLogger(__name__)

ADVICE_MARKER = "AUDITLOGS DELAY ADVICE"
#: p99 of observed lateness above this share of `delay`: events are likely being missed.
TOO_SHORT = 0.8
#: every observed lateness below this share of `delay`: the delay is far too long.
TOO_LONG = 0.25
#: Runs of evidence before saying a delay is too long (one quiet run proves nothing).
MIN_RUNS_FOR_SHORTER = 6
_ROUND_TO = timedelta(minutes=5)


@dataclass(frozen=True)
class Advice:
    kind: str  # "delay_too_short" or "delay_too_long"
    source: str
    stream: str
    message: str
    delay_seconds: float
    suggested_delay_seconds: float
    p99_lateness_seconds: float | None
    runs: int
    late_events: int
    savings: dict = field(default_factory=dict)

    def record(self) -> dict:
        return asdict(self)


#: Called with every Advice; the notification channel appends its sender here.
HOOKS: list[Callable[[Advice], None]] = []


def publish(advice: Advice) -> None:
    log.warning("%s: %s", ADVICE_MARKER, advice.message)
    for hook in HOOKS:
        try:
            hook(advice)
        except Exception:  # a failing channel must not fail a run whose data is already stored
            log.exception("delay advice hook %r failed", hook)


def advise(
    source: str,
    stream: str,
    delay: timedelta,
    schedule_interval: timedelta,
    recent: list[dict],
    run_figures: dict,
    documented_lateness: timedelta | None = None,
    sweep: timedelta | None = None,
) -> Advice | None:
    """Advice from the recent runs' late-arrival histograms, or None when the delay looks right.

    `run_figures` are this run's `events_in_window`, `window_seconds`, `requests`, `bytes_written` and
    `events_written`, used to price a shorter delay. `documented_lateness` is how late the vendor says events
    can be (Dropbox: 24 hours): what runs measure cannot see past the delay, so a delay below it is advised
    against (unless a `sweep` counts what it misses), and a shorter delay is never suggested below it.
    """
    measured = _measured(source, stream, delay, schedule_interval, recent, run_figures, documented_lateness)
    if documented_lateness is None or (measured is not None and measured.kind == "delay_too_short"):
        return measured
    if delay < documented_lateness and sweep is None:
        return _below_documented(source, stream, delay, schedule_interval, documented_lateness, len(recent))
    return measured


def _below_documented(
    source: str, stream: str, delay: timedelta, schedule_interval: timedelta, lateness: timedelta, runs: int
) -> Advice:
    per_run = (schedule_interval + lateness) / schedule_interval if schedule_interval else 0
    return Advice(
        "delay_below_documented_lateness",
        source,
        stream,
        f"source '{source}' stream '{stream}': the API documents events up to {format_duration(lateness)} late, "
        f"and the delay is {format_duration(delay)}: an event that reaches the API later than the delay is never "
        f"fetched, and lateness past the delay cannot be measured, so this advice cannot come from the runs' "
        f"figures. For completeness set 'delay: {format_duration(lateness)}' (each run then reads its interval "
        f"plus {format_duration(lateness)}: {per_run:.0f}x the interval's own requests at this schedule, 2x at "
        f"'@daily'). Or keep the delay and set 'sweep: {format_duration(lateness)}': the sweep recovers and counts "
        "late events (its miss_rate), but an event near the end of a sweep's range is only covered up to the delay.",
        delay.total_seconds(),
        lateness.total_seconds(),
        None,
        runs,
        0,
    )


def _measured(
    source: str,
    stream: str,
    delay: timedelta,
    schedule_interval: timedelta,
    recent: list[dict],
    run_figures: dict,
    documented_lateness: timedelta | None,
) -> Advice | None:
    """The advice the late arrivals measured by recent runs give."""
    if delay <= timedelta(0) or not recent:
        return None
    histogram = merge([row["histogram"] for row in recent])
    late = sum(histogram.values())
    p99 = quantile(histogram, 0.99)
    delay_s = delay.total_seconds()
    where = f"source '{source}' stream '{stream}'"
    if p99 is not None and p99 > TOO_SHORT * delay_s:
        suggested = _round_up(max(2 * p99, 1.5 * delay_s))
        return Advice(
            "delay_too_short",
            source,
            stream,
            f"{where}: over the last {len(recent)} runs, {late} events arrived late and the 99th percentile of "
            f"their lateness ({format_duration(timedelta(seconds=round(p99)))}) exceeds {TOO_SHORT:.0%} of the "
            f"delay ({format_duration(delay)}): events later than the delay are likely being missed. "
            f"Set 'delay: {format_duration(suggested)}' (or enable 'sweep' to recover and count them).",
            delay_s,
            suggested.total_seconds(),
            p99,
            len(recent),
            late,
        )
    if len(recent) < MIN_RUNS_FOR_SHORTER:
        return None
    longest = max((quantile(row["histogram"], 1.0) or 0.0) for row in recent)
    if longest >= TOO_LONG * delay_s:
        return None
    suggested = _round_up(max(2 * longest, _ROUND_TO.total_seconds()))
    if documented_lateness is not None:
        suggested = max(suggested, documented_lateness)  # quiet runs do not disprove the vendor's figure
    if suggested >= delay:
        return None
    savings = _savings(delay - suggested, schedule_interval, run_figures)
    return Advice(
        "delay_too_long",
        source,
        stream,
        f"{where}: over the last {len(recent)} runs no event arrived later than "
        f"{format_duration(timedelta(seconds=math.ceil(longest)))}, far below the delay of {format_duration(delay)}. "
        f"'delay: {format_duration(suggested)}' would fetch about {savings['events_per_day']} fewer events and "
        f"{savings['requests_per_day']} fewer requests a day, and store {savings['bytes_per_day']} fewer bytes a day "
        "where de-duplication is off (with it on, stored volume does not depend on the delay).",
        delay_s,
        suggested.total_seconds(),
        p99,
        len(recent),
        late,
        savings,
    )


def _savings(shorter_by: timedelta, schedule_interval: timedelta, figures: dict) -> dict:
    window = figures.get("window_seconds") or 0
    events = figures.get("events_in_window") or 0
    per_second = events / window if window else 0.0
    per_run = per_second * shorter_by.total_seconds()
    runs_per_day = timedelta(days=1) / schedule_interval if schedule_interval else 0
    per_page = events / figures["requests"] if figures.get("requests") else 0
    bytes_per_event = figures["bytes_written"] / figures["events_written"] if figures.get("events_written") else 0
    return {
        "events_per_day": round(per_run * runs_per_day),
        "requests_per_day": math.floor(per_run / per_page * runs_per_day) if per_page else 0,
        "bytes_per_day": round(per_run * bytes_per_event * runs_per_day),
    }


def _round_up(seconds: float) -> timedelta:
    step = _ROUND_TO.total_seconds()
    return timedelta(seconds=math.ceil(seconds / step) * step)
