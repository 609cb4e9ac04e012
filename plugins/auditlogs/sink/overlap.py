"""De-duplication across overlapping runs, and the measurement of late arrivals, on the manifests.

A run for `[start, end)` fetches `[start - delay, end)`, so its window overlaps the windows of the runs
before it. Each manifest records, compactly, the events its run wrote in its *tail* `[end - delay, end)`,
the only part of its window a later run can fetch again, and the repeats of stored events it dropped there
(Office 365 repeats a record in a later blob, at that blob's time: the next run lists that blob again and
must skip the repeat even when the copy stored sits before the tail). A run reads the manifests of the earlier
intervals its window reaches into (derived from the schedule, so several when `delay` is longer than the
schedule interval) and skips the events recorded there. The state is bounded by the events in the overlap,
never by the window.

Rules that keep it safe (the README's "De-duplication and late arrivals" has the guarantee):

* A run skips only events recorded in the manifests of **earlier** intervals, never later ones. So the
  earliest interval that ever wrote an event always writes it again when rerun: an event is never lost by
  de-duplication, whatever order runs happen in.
* A missing manifest (first run, a gap, an interval still running, an older package version) means "no
  state": nothing is skipped on its account. Out-of-order or concurrent runs can therefore store an overlap
  event twice, never zero times; rerunning the later interval after the earlier one restores exactly once.
* Events are matched on a 64-bit digest of the event key *and* the event time in milliseconds, so a digest
  collision would also need the same millisecond to drop an event.

An event this run writes in the part of its window an earlier run already fetched, and that no earlier run
recorded, reached the API late: it is counted, and how late it was at least is the earlier run's fetch start
minus its event time (the page holding it was requested after that start, and it was not there yet).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import pairwise

from croniter import croniter

from auditlogs.window import Window, utc

log = logging.getLogger(__name__)

DIGEST_HEX = 16
#: Lateness histogram bins grow by 10%: p99 read from it overstates by at most that.
BIN_RATIO = 1.1
#: Runs whose late-arrival histograms the advisor pools ("recent runs").
RECENT_RUNS = 24
_MS = timedelta(milliseconds=1)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:DIGEST_HEX]


def intervals_between(schedule: str, lo: datetime, hi: datetime, not_before: datetime) -> Iterator[Window]:
    """The schedule's intervals `[s, e)` with `e > lo` and `s < hi`, oldest first, none starting before
    `not_before` (the source's start date)."""
    fires: list[datetime] = []
    earlier = croniter(schedule, hi)
    while not fires or (fires[-1] > lo and fires[-1] >= not_before):
        fires.append(utc(earlier.get_prev(datetime)))
    fires.reverse()
    fires.append(utc(croniter(schedule, fires[-1]).get_next(datetime)))
    for start, end in pairwise(fires):
        if end > lo and start < hi and start >= not_before:
            yield Window(start, end)


# --- Lateness histograms ---------------------------------------------------------------------------------


def bin_of(seconds: float) -> int:
    return 0 if seconds <= 1 else math.ceil(math.log(seconds) / math.log(BIN_RATIO))


def bin_upper(index: int) -> float:
    return BIN_RATIO**index


def merge(histograms: list[dict[str, int]]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for histogram in histograms:
        for index, count in histogram.items():
            merged[index] = merged.get(index, 0) + count
    return merged


def quantile(histogram: dict[str, int], q: float) -> float | None:
    """The upper edge of the bin holding the q-quantile (at most 10% above the true value); None if empty."""
    total = sum(histogram.values())
    if not total:
        return None
    running = 0
    for index in sorted(histogram, key=int):
        running += histogram[index]
        if running >= q * total:
            return round(bin_upper(int(index)), 3)
    return None


@dataclass
class Lateness:
    count: int = 0
    max_seconds: float = 0.0
    histogram: dict[str, int] = field(default_factory=dict)

    def add(self, seconds: float) -> None:
        seconds = max(seconds, 0.0)
        self.count += 1
        self.max_seconds = max(self.max_seconds, seconds)
        index = str(bin_of(seconds))
        self.histogram[index] = self.histogram.get(index, 0) + 1

    def summary(self) -> dict:
        return {
            "count": self.count,
            "max_seconds": round(self.max_seconds, 3),
            "p50_seconds": quantile(self.histogram, 0.5),
            "p99_seconds": quantile(self.histogram, 0.99),
            "histogram": dict(sorted(self.histogram.items(), key=lambda item: int(item[0]))),
        }


# --- What earlier runs recorded --------------------------------------------------------------------------


@dataclass(frozen=True)
class EarlierRun:
    """The overlap record of one earlier interval's manifest."""

    interval: Window
    window: Window
    #: The part of its window whose written events it recorded.
    tail: Window
    started_at: datetime
    #: (digest, event time in epoch ms) of each recorded event.
    entries: frozenset[tuple[str, int]]
    manifest: dict

    @classmethod
    def from_manifest(cls, manifest: dict) -> EarlierRun | None:
        """None for a manifest without an overlap record (an older package version): it counts as absent."""
        record = (manifest.get("overlap") or {}).get("tail")
        if not record or record.get("digest") != f"sha256/{DIGEST_HEX}":
            return None
        tail = Window(parse_time(record["start"]), parse_time(record["end"]))
        base = epoch_ms(tail.start)
        entries = set()
        for entry in record["events"]:
            key, _, offset = entry.partition("@")
            entries.add((key, base + int(offset)))
        return cls(
            interval=Window(parse_time(manifest["interval"]["start"]), parse_time(manifest["interval"]["end"])),
            window=Window(parse_time(manifest["window"]["start"]), parse_time(manifest["window"]["end"])),
            tail=tail,
            started_at=parse_time(manifest["timings"]["started_at"]),
            entries=frozenset(entries),
            manifest=manifest,
        )


def read_manifest(hook, bucket: str, object_name: str) -> dict | None:
    """A manifest's JSON, or None when the interval has none (never ran, still running, failed)."""
    from google.api_core.exceptions import NotFound

    try:  # the client directly: GCSHook.download logs a missing object as an error, and here it is normal
        return json.loads(hook.get_conn().bucket(bucket).blob(object_name).download_as_bytes())
    except NotFound:
        return None


def load_earlier(
    hook,
    bucket: str,
    manifest_object: Callable[[Window], str],
    schedule: str,
    interval: Window,
    window: Window,
    not_before: datetime,
) -> tuple[list[EarlierRun], list[Window]]:
    """The overlap records of the earlier intervals `window` reaches into, and the intervals without one."""
    runs, missing = [], []
    for earlier in intervals_between(schedule, window.start, interval.start, not_before):
        if earlier.end > interval.start:
            continue  # off the schedule's grid (a manual run): only intervals wholly before this one
        manifest = read_manifest(hook, bucket, manifest_object(earlier))
        run = EarlierRun.from_manifest(manifest) if manifest else None
        if run is None:
            missing.append(earlier)
        else:
            runs.append(run)
    return runs, missing


# --- One run's overlap state -----------------------------------------------------------------------------


class Overlap:
    """Decides, per event, whether this run writes it; counts late arrivals; records this run's tail.

    `admit` and `seen_again` are handed to the collector. With `skip=False` (the source's `dedup: false`) nothing
    is skipped, but the record, the counts and the lateness are the same, so the delay advice works either way.
    """

    def __init__(
        self, interval: Window, window: Window, earlier: list[EarlierRun], missing: list[Window], skip: bool = True
    ):
        self.interval, self.window, self.skip = interval, window, skip
        self.earlier = sorted(earlier, key=lambda run: run.interval.start)
        self.missing = missing
        self.tail = Window(max(window.start, interval.end - (interval.start - window.start)), interval.end)
        self.seen: set[tuple[str, int]] = set()
        for run in self.earlier:
            self.seen |= run.entries
        #: Tail entries as `digest@ms after the tail's start`: at most one per event fetched in the tail.
        self.recorded: set[str] = set()
        #: An event from this instant on shares no millisecond with a recorded one (they lie before a tail's end).
        ends = [run.tail.end for run in self.earlier if run.entries]
        self._recorded_before = max(ends) + _MS if ends else None
        self.already_stored = 0
        self.skipped = 0
        self.uncovered = 0
        self.late = Lateness()
        self._tail_base = epoch_ms(self.tail.start)

    def admit(self, key: str, moment: datetime) -> bool:
        """Called once an event, so its digest is made only where it can matter: in this run's tail (to
        record it) and before the end of the earlier runs' recorded tails (to look it up); without a delay,
        the default, that is nowhere."""
        in_tail = self.tail.contains(moment)
        looked_up = self._recorded_before is not None and moment < self._recorded_before
        entry = (digest(key), epoch_ms(moment)) if in_tail or looked_up else None
        if entry is not None and looked_up and entry in self.seen:
            self.already_stored += 1
            if self.skip:
                self.skipped += 1
                return False
        elif moment < self.interval.start:
            fetched_by = [run.started_at for run in self.earlier if run.tail.contains(moment)]
            if fetched_by:
                self.late.add((max(fetched_by) - moment).total_seconds())
            else:
                self.uncovered += 1
        if entry is not None and in_tail:
            self._record(entry)
        return True

    def seen_again(self, key: str, moment: datetime) -> None:
        """A repeat the collector dropped: the event is stored (by this run, or by an earlier one that this run
        skipped it for), so a repeat in the tail is recorded like a written event, for the next run to skip."""
        if self.tail.contains(moment):
            self._record((digest(key), epoch_ms(moment)))

    def _record(self, entry: tuple[str, int]) -> None:
        self.recorded.add(f"{entry[0]}@{entry[1] - self._tail_base}")

    def state(self) -> dict:
        """What this run decided so far, for a checkpoint: the next try of the run continues from it."""
        return {
            "recorded": sorted(self.recorded),
            "already_stored": self.already_stored,
            "skipped": self.skipped,
            "uncovered": self.uncovered,
            "late": {
                "count": self.late.count,
                "max_seconds": self.late.max_seconds,
                "histogram": dict(self.late.histogram),
            },
        }

    def restore(self, state: dict) -> None:
        recorded, late = state["recorded"], state["late"]
        if not all(isinstance(entry, str) for entry in recorded):
            raise ValueError("a recorded overlap entry is not text")
        counts = (state["already_stored"], state["skipped"], state["uncovered"], late["count"])
        if not all(isinstance(n, int) and n >= 0 for n in counts):
            raise ValueError("an overlap count is not a whole number")
        self.recorded = set(recorded)
        self.already_stored, self.skipped, self.uncovered = counts[:3]
        self.late = Lateness(
            late["count"], float(late["max_seconds"]), {str(int(k)): int(v) for k, v in late["histogram"].items()}
        )

    def recent(self) -> list[dict]:
        """Late-arrival histograms of up to RECENT_RUNS recent runs, this one included, carried from the
        latest earlier manifest so the advisor reads no further manifests."""
        carried: list[dict] = []
        if self.earlier:
            carried = (self.earlier[-1].manifest.get("overlap") or {}).get("recent") or []
        mine = {
            "interval_end": self.interval.end.isoformat(),
            "late": self.late.count,
            "histogram": self.late.histogram,
        }
        rows = {row["interval_end"]: row for row in carried if row["interval_end"] < mine["interval_end"]}
        rows[mine["interval_end"]] = mine
        return [rows[end] for end in sorted(rows)[-RECENT_RUNS:]]

    def manifest_section(self) -> dict:
        return {
            "dedup": self.skip,
            "earlier_intervals": [run.interval.label() for run in self.earlier],
            "missing_intervals": [interval.label() for interval in self.missing],
            "already_stored": self.already_stored,
            "skipped": self.skipped,
            "late_arrivals": self.late.summary(),
            "uncovered": self.uncovered,
            "recent": self.recent(),
            "tail": {
                "start": self.tail.start.isoformat(),
                "end": self.tail.end.isoformat(),
                "digest": f"sha256/{DIGEST_HEX}",
                "events": sorted(self.recorded),
            },
        }


def epoch_ms(moment: datetime) -> int:
    return (moment - _EPOCH) // _MS


def parse_time(text: str) -> datetime:
    return utc(datetime.fromisoformat(text))


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
