"""The retrospective sweep: re-fetch a long trailing range and store only what no run has stored yet.

Events later than `delay` are fetched by no normal run. A source with `sweep: 24h` gets a second DAG,
`auditlogs_<name>_sweep` (schedule `sweep_schedule`, daily by default). Its run for `[S, E)` sweeps the
range `[E - delay - sweep, E - delay)`: the part of the past no normal run starting at or after `E` fetches
again, so consecutive daily sweeps with `sweep: 24h` tile time exactly. What it stores lands in
`<stream>/sweep/dt=.../<range>/`, counted as recovered: the true miss rate of the configured delay.

What counts as stored: the events (with event time in the range) in the parts of every interval whose
window reaches into the range, and of earlier sweeps whose ranges overlap it. Those parts are read back from
GCS one at a time, and only a 64-bit digest and time per event is held. Every such interval must be
complete: a missing manifest fails the task (retried), since the sweep recovers late arrivals, not gaps.

A source whose window is its blobs' availability (Office 365, `spec.blob`) windows on the listing entry's
`contentCreated`, which a stored record does not hold: there every record of those parts counts, by id alone
(its digest), and a re-listed record is compared by id too.
"""

from __future__ import annotations

import gzip
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from auditlogs import exact_json
from auditlogs.client.api import ApiClient
from auditlogs.collector import collect
from auditlogs.config import SourceConfig
from auditlogs.errors import AuditLogError
from auditlogs.operators.collect import AuditLogToGCSOperator, run_manifest, utc_now
from auditlogs.sink.gcs import MANIFEST_NAME, IntervalLocation, IntervalStore
from auditlogs.sink.overlap import Lateness, digest, epoch_ms, intervals_between, parse_time, read_manifest
from auditlogs.sink.parts import PartWriter
from auditlogs.sources import spec_for
from auditlogs.window import Window

log = logging.getLogger(__name__)

SWEEP_FOLDER = "sweep"


class IncompleteIntervalsError(AuditLogError):
    hint = "run or backfill those intervals; the task retries, and the sweep runs once they are complete"


def sweep_range_of(source: SourceConfig, run_interval: Window) -> Window:
    assert source.sweep is not None, "only a source with sweep: set is swept"
    end = run_interval.end - source.delay
    return Window(end - source.sweep, end)


class StoredEvents:
    """Digest and millisecond of every stored event in a range, read back from the interval parts; for a
    source that lists blobs, the digest of every record of the parts read (see the module docstring)."""

    def __init__(self, source: SourceConfig, sweep_range: Window, hook: Any):
        self.source, self.range, self.hook = source, sweep_range, hook
        self.spec = spec_for(source)
        self.by_id = self.spec.blob is not None
        self.keys: set[str | tuple[str, int]] = set()
        self.objects_read = 0

    def holds(self, key: str, moment: datetime) -> bool:
        """Whether a re-fetched event is stored, compared the way the stored side is kept."""
        return (digest(key) if self.by_id else (digest(key), epoch_ms(moment))) in self.keys

    def add_folder(self, location: IntervalLocation, manifest: dict) -> None:
        with tempfile.TemporaryDirectory(prefix="auditlogs-sweep-") as staging:
            for part in manifest["parts"]:
                local = Path(staging) / "part.ndjson.gz"  # one at a time; names carry the attempt's prefix
                self.hook.download(location.bucket, location.object_name(part["name"]), filename=str(local))
                self.objects_read += 1
                with gzip.open(local, "rb") as lines:
                    for line in lines:
                        event = exact_json.loads(line)
                        if self.by_id:
                            self.keys.add(digest(self.spec.key(event)))
                        elif self.range.contains(moment := self.spec.event_time(event)):
                            self.keys.add((digest(self.spec.key(event)), epoch_ms(moment)))
                local.unlink()


def sweep(
    source: SourceConfig,
    stream: str,
    run_interval: Window,
    client: ApiClient,
    hook: Any,
    *,
    dag_id: str,
    run_id: str,
    try_number: int,
    clock: Callable[[], datetime] = utc_now,
) -> dict:
    """One sweep run for one stream, without Airflow. Returns its manifest."""
    spec = spec_for(source)
    swept = sweep_range_of(source, run_interval)
    where = f"source '{source.name}' stream '{stream}' sweep of {swept}"
    home = IntervalLocation(source.bucket, source.prefix, source.name, stream, swept)
    stored = StoredEvents(source, swept, hook)

    fetched_by: list[tuple[Window, datetime]] = []
    incomplete, intervals_read = [], []
    for interval in intervals_between(source.schedule, swept.start, swept.end + source.delay, source.start_date):
        location = replace(home, interval=interval)
        manifest = read_manifest(hook, source.bucket, location.object_name(MANIFEST_NAME))
        if manifest is None:
            incomplete.append(interval.label())
            continue
        window = Window(parse_time(manifest["window"]["start"]), parse_time(manifest["window"]["end"]))
        if window.end <= swept.start or window.start >= swept.end:
            continue
        fetched_by.append((window, parse_time(manifest["timings"]["started_at"])))
        stored.add_folder(location, manifest)
        intervals_read.append(interval.label())
    if incomplete:
        raise IncompleteIntervalsError(
            f"the sweep needs every interval whose window reaches into its range to be complete; "
            f"without a manifest: {', '.join(incomplete)}",
            where=where,
        )
    sweeps_read = []
    for earlier in intervals_between(
        source.sweep_schedule, swept.start + source.delay, run_interval.end, source.start_date
    ):
        if earlier.end >= run_interval.end:
            continue
        location = replace(home, stream=f"{stream}/{SWEEP_FOLDER}", interval=sweep_range_of(source, earlier))
        manifest = read_manifest(hook, source.bucket, location.object_name(MANIFEST_NAME))
        if manifest is not None:
            stored.add_folder(location, manifest)
            sweeps_read.append(location.interval.label())

    late = Lateness()

    def admit(key: str, moment: datetime) -> bool:
        if stored.holds(key, moment):
            return False
        covering = [started for window, started in fetched_by if window.contains(moment)]
        if covering:
            late.add((max(covering) - moment).total_seconds())
        return True

    location = replace(home, stream=f"{stream}/{SWEEP_FOLDER}")
    started, started_at = time.monotonic(), clock()
    with tempfile.TemporaryDirectory(prefix="auditlogs-") as staging:
        with PartWriter(Path(staging), source.part_size) as writer:  # stops the compression thread on errors
            result = collect(spec, source, stream, client, swept, writer, source.max_pages, now=started_at, admit=admit)
            parts = writer.close()
        manifest = run_manifest(
            source,
            stream,
            dag_id,
            run_id,
            try_number,
            location,
            swept,
            result,
            parts,
            client,
            started_at,
            clock(),
            time.monotonic() - started,
        )
        in_range = result.written + result.already_stored
        manifest["sweep"] = {
            "range": {"start": swept.start.isoformat(), "end": swept.end.isoformat()},
            "range_label": swept.label(),
            "recovered": result.written,
            "already_stored": result.already_stored,
            "events_in_range": in_range,
            "miss_rate": round(result.written / in_range, 6) if in_range else 0.0,
            "lateness_of_recovered": late.summary(),
            "intervals_read": intervals_read,
            "sweeps_read": sweeps_read,
            "gcs_objects_read": stored.objects_read + len(intervals_read) + len(sweeps_read),
        }
        IntervalStore(hook).publish(location, parts, manifest)
    log.info(
        "%s: recovered %d events no run had stored (%d of %d in the range already stored, miss rate %.4f%%; "
        "the latest recovered at least %.0fs late), %d API requests, %d stored objects read, to %s",
        where,
        result.written,
        result.already_stored,
        in_range,
        100 * manifest["sweep"]["miss_rate"],
        late.max_seconds,
        client.stats.requests,
        manifest["sweep"]["gcs_objects_read"],
        location.uri(),
    )
    return manifest


class SweepOperator(AuditLogToGCSOperator):
    """Sweeps one stream of one source for the run's data interval (see the module docstring)."""

    ui_color = "#fdf3e1"

    def _collect(self, context: Any, run_interval: Window) -> dict:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        where = (
            f"source '{self.source.name}' stream '{self.stream}' sweep of {sweep_range_of(self.source, run_interval)}"
        )
        manifest = sweep(
            self.source,
            self.stream,
            run_interval,
            self._client(spec_for(self.source), where),
            GCSHook(gcp_conn_id=self.source.gcp_conn_id),
            dag_id=self.dag_id,
            run_id=context["run_id"],
            try_number=context["ti"].try_number,
        )
        return {"recovered": manifest["sweep"]["recovered"], "miss_rate": manifest["sweep"]["miss_rate"]}
