"""Coverage: for every interval of every stream in a range, is it in GCS, and if not, why not.

The truth is the interval's `_manifest.json` (present = complete). What a view adds is read cheaply: which
manifests exist comes from one GCS listing per stream (name range `dt=first` .. `dt=last+1`, manifests only);
event counts come from the stream's Asset events in Airflow's database (or, where there is no database, such
as the CLI, from the manifests themselves); run states come from Airflow's task instances. Late arrivals and
the delay advice are read from the newest manifest of each stream, which carries the recent runs' figures.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from auditlogs.config import SourceConfig
from auditlogs.sink.gcs import MANIFEST_NAME, IntervalLocation
from auditlogs.sink.overlap import intervals_between
from auditlogs.window import Window

#: Cell states, worst first (a stream's summary is its worst cell).
FAILED, MISSING, RUNNING, NOT_DUE, EMPTY, COMPLETE = "failed", "missing", "running", "not_due", "empty", "complete"
STATES = (FAILED, MISSING, RUNNING, NOT_DUE, EMPTY, COMPLETE)
#: Task instance states that mean "being worked on".
#: GCS calls one view may spend reading manifests whose counts the database lacks.
READ_BUDGET = 100
_ACTIVE = {"running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred", "restarting"}


@dataclass(frozen=True)
class Run:
    """The Airflow task instance that collects one stream's interval."""

    run_id: str
    state: str | None


@dataclass
class Cell:
    start: str
    end: str
    state: str
    events: int | None = None
    folder: str = ""
    run_id: str | None = None


@dataclass
class StreamCoverage:
    source: str
    stream: str
    dag_id: str
    bucket: str
    cells: list[Cell]
    counts: dict[str, int]
    late_arrivals: int | None = None
    advice: str | None = None
    #: Consecutive complete-but-empty intervals up to the newest complete one.
    silence_streak: int = 0

    @property
    def missing(self) -> list[Cell]:
        """Intervals past their deadline without a manifest (failed ones included)."""
        return [cell for cell in self.cells if cell.state in (MISSING, FAILED)]


@dataclass
class Coverage:
    first: str
    last: str
    now: str
    streams: list[StreamCoverage] = field(default_factory=list)
    gcs_calls: int = 0

    def record(self) -> dict:
        return {**asdict(self), "missing": sum(len(s.missing) for s in self.streams)}


def due_after(source: SourceConfig) -> timedelta:
    """How long after an interval ends it counts as missing: the source's deadline, or (deadline off) the
    derived one, so coverage never waits forever."""
    return source.deadline_after_end or (source.period + source.delay)


def intervals(source: SourceConfig, first: datetime, last: datetime) -> list[Window]:
    """The source's intervals starting in [first, last), none before its start date."""
    return [w for w in intervals_between(source.schedule, first, last, source.start_date) if w.start >= first]


def stream_coverage(
    source: SourceConfig,
    stream: str,
    first: datetime,
    last: datetime,
    now: datetime,
    *,
    manifests: set[str],
    events: dict[str, int | None],
    runs: dict[str, Run],
    newest_manifest: dict | None,
) -> StreamCoverage:
    """One stream's cells. `manifests` holds interval labels with a manifest, `events` counts by label,
    `runs` the collecting task by interval start (ISO)."""
    cells = []
    for interval in intervals(source, first, last):
        location = IntervalLocation(source.bucket, source.prefix, source.name, stream, interval)
        label, run = interval.label(), runs.get(interval.start.isoformat())
        cell = Cell(
            interval.start.isoformat(),
            interval.end.isoformat(),
            COMPLETE,
            folder=location.folder,
            run_id=run.run_id if run else None,
        )
        if label in manifests:
            cell.events = events.get(label)
            cell.state = EMPTY if cell.events == 0 else COMPLETE
        elif run and run.state == "failed":
            cell.state = FAILED
        elif run and run.state in _ACTIVE:
            cell.state = RUNNING
        elif interval.end + due_after(source) > now:
            cell.state = NOT_DUE
        else:
            cell.state = MISSING
        cells.append(cell)
    counts = {state: sum(cell.state == state for cell in cells) for state in STATES}
    overlap = (newest_manifest or {}).get("overlap") or {}
    advice = (newest_manifest or {}).get("advice") or {}
    return StreamCoverage(
        source.name,
        stream,
        source.dag_id,
        source.bucket,
        cells,
        counts,
        late_arrivals=sum(row.get("late", 0) for row in overlap.get("recent") or []) if newest_manifest else None,
        advice=advice.get("message"),
        silence_streak=_silence(cells),
    )


def _silence(cells: list[Cell]) -> int:
    streak = 0
    for cell in reversed([c for c in cells if c.state in (COMPLETE, EMPTY)]):
        if cell.state != EMPTY:
            break
        streak += 1
    return streak


def stream_folder(source: SourceConfig, stream: str) -> str:
    return "/".join(part for part in (source.prefix, source.name, stream) if part)


def label_of(object_name: str) -> str:
    """`.../dt=2026-03-01/20260301T000000Z_20260301T010000Z/_manifest.json` -> the interval label."""
    return object_name.rsplit("/", 2)[-2]


class ManifestIndex:
    """Which intervals of a stream have a manifest, through the google-cloud-storage client: one listing per
    stream and range (offsets bound it to the range's days, the glob to manifests), kept `ttl` seconds."""

    def __init__(
        self, client_for: Callable[[SourceConfig], Any], ttl: float = 60.0, clock: Callable[[], float] = time.monotonic
    ):
        self.client_for = client_for
        self.ttl = ttl
        self.clock = clock
        self.calls = 0
        self._cache: dict[tuple, tuple[float, object]] = {}
        self._lock = threading.Lock()

    def manifests(self, source: SourceConfig, stream: str, first: datetime, last: datetime) -> list[str]:
        """Manifest object names of the days [first, last], oldest first."""
        folder = stream_folder(source, stream)
        key = ("list", source.bucket, folder, first.date(), last.date())

        def listing():
            bucket = self.client_for(source).bucket(source.bucket)
            blobs = bucket.list_blobs(
                prefix=f"{folder}/dt=",
                start_offset=f"{folder}/dt={first:%Y-%m-%d}",
                end_offset=f"{folder}/dt={last + timedelta(days=1):%Y-%m-%d}",
                match_glob=f"**/{MANIFEST_NAME}",
            )
            names = []
            for page in blobs.pages:
                self.calls += 1
                names += [blob.name for blob in page]
            low, high = f"{folder}/dt={first:%Y-%m-%d}", f"{folder}/dt={last + timedelta(days=1):%Y-%m-%d}"
            return sorted(n for n in names if low <= n < high and n.endswith("/" + MANIFEST_NAME))

        return self._cached(key, listing)

    def read(self, source: SourceConfig, name: str) -> dict:
        def download():
            self.calls += 1
            return json.loads(self.client_for(source).bucket(source.bucket).blob(name).download_as_bytes())

        return self._cached(("read", source.bucket, name), download)

    def _cached(self, key: tuple, load: Callable[[], object]):
        now = self.clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit and now - hit[0] < self.ttl:
                return hit[1]
        value = load()
        with self._lock:
            self._cache[key] = (now, value)
        return value


def build(
    sources: Iterable[SourceConfig],
    first: datetime,
    last: datetime,
    now: datetime,
    index: ManifestIndex,
    *,
    events: Callable[[SourceConfig, str], dict[str, int]] | None = None,
    runs: Callable[[SourceConfig, str], dict[str, Run]] = lambda source, stream: {},
    read_budget: int = READ_BUDGET,
) -> Coverage:
    """Coverage of `sources` for intervals starting in [first, last). Without `events` (no Airflow database),
    every listed manifest is read for its count; with it, manifests without an Asset event (written outside
    Airflow, or events pruned) are read newest first until the view has made `read_budget` GCS calls, and the
    rest show as complete with an unknown count."""
    calls_before = index.calls
    coverage = Coverage(first.isoformat(), last.isoformat(), now.isoformat())
    for source in sources:
        for stream in source.stream_names():
            names = index.manifests(source, stream, first, last)
            by_label = {label_of(name): name for name in names}
            counts: dict[str, int | None] = {} if events is None else dict(events(source, stream))
            unread = [name for label, name in reversed(by_label.items()) if counts.get(label) is None]
            for name in unread if events is None else unread[: max(0, read_budget - (index.calls - calls_before))]:
                counts[label_of(name)] = index.read(source, name).get("events")
            newest = index.read(source, names[-1]) if names else None
            coverage.streams.append(
                stream_coverage(
                    source,
                    stream,
                    first,
                    last,
                    now,
                    manifests=set(by_label),
                    events=counts,
                    runs=runs(source, stream),
                    newest_manifest=newest,
                )
            )
    coverage.gcs_calls = index.calls - calls_before
    return coverage


def gcs_client(source: SourceConfig):
    """The storage client of the source's GCS connection (GCSHook builds it, honouring the emulator)."""
    return _client(source.gcp_conn_id)


@functools.lru_cache(maxsize=16)
def _client(gcp_conn_id: str):
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    return GCSHook(gcp_conn_id=gcp_conn_id).get_conn()
