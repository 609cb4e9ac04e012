"""The Airflow operator: builds the client, collector and sink from the task context and connections.

Thin on purpose: the work lives in plain classes (`collector`, `sink`) that tests drive without Airflow.
No I/O happens at parse time; the connection is read only when the task runs.
"""

from __future__ import annotations

import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import requests
from airflow.sdk import BaseHook, BaseOperator
from airflow.sdk.exceptions import AirflowFailException

import auditlogs
from auditlogs import alerts
from auditlogs.assets import event_extra
from auditlogs.client.api import ApiClient, base_url_of
from auditlogs.collector import collect
from auditlogs.config import SourceConfig, format_duration
from auditlogs.errors import (
    AuthError,
    ConfigError,
    IncompleteWindowError,
    OutsideRetentionError,
    RequestRejectedError,
)
from auditlogs.sink.gcs import MANIFEST_NAME, IntervalLocation, IntervalStore
from auditlogs.sink.parts import PartWriter
from auditlogs.sources import SPECS
from auditlogs.sources.base import SourceSpec
from auditlogs.window import Window

#: Errors a task retry cannot fix: fail at once instead of locking accounts or hammering the API.
NOT_RETRYABLE = (AuthError, ConfigError, IncompleteWindowError, RequestRejectedError, OutsideRetentionError)


class NotRetried(AirflowFailException):
    """Fails the task at once, keeping the original error for the failure notification."""

    def __init__(self, cause: Exception):
        super().__init__(str(cause))
        self.cause = cause


class AuditLogToGCSOperator(BaseOperator):
    """Collects one stream of one source for the run's data interval into GCS."""

    ui_color = "#e8f1fb"

    def __init__(self, *, source: SourceConfig, stream: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.source = source
        self.stream = stream

    def execute(self, context: Any) -> dict:
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is None or end is None or start == end:
            raise AirflowFailException(
                f"{self.source.dag_id}: this run has no data interval, so there is no window to collect. "
                "Trigger it with a logical date (airflow dags trigger -l ..., or the UI's trigger with a date) "
                "or use airflow backfill create."
            )
        interval = Window(start, end)
        try:
            return self._collect(context, interval)
        except NOT_RETRYABLE as exc:
            raise NotRetried(exc) from None

    def _collect(self, context: Any, interval: Window) -> dict:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        source, spec = self.source, SPECS[self.source.type]
        window = interval.widened(source.delay)
        where = f"source '{source.name}' stream '{self.stream}' window {window}"
        if source.retention and window.start < datetime.now(timezone.utc) - source.retention:
            raise OutsideRetentionError(
                f"the window reaches back past the API's retention of {format_duration(source.retention)}, so its events are "
                "gone and the interval would be written empty but complete", where=where,
                hint="backfill only intervals within the retention; raise 'retention' if the API keeps more",
            )
        client = self._client(spec, where)
        location = IntervalLocation(source.bucket, source.prefix, source.name, self.stream, interval)

        started = time.monotonic()
        started_at = datetime.now(timezone.utc)
        with tempfile.TemporaryDirectory(prefix="auditlogs-") as staging:
            writer = PartWriter(Path(staging), source.part_size)
            result = collect(spec, source, self.stream, client, window, writer, source.max_pages)
            parts = writer.close()
            fetched_at = datetime.now(timezone.utc)
            fetch_seconds = time.monotonic() - started
            manifest = {
                "manifest_version": 1,
                "package_version": auditlogs.__version__,
                "source": source.name,
                "type": source.type,
                "stream": self.stream,
                "dag_id": self.dag_id,
                "run_id": context["run_id"],
                "try_number": context["ti"].try_number,
                "interval": {"start": interval.start.isoformat(), "end": interval.end.isoformat()},
                "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
                "delay_seconds": source.delay.total_seconds(),
                "events": result.written,
                "parts": [
                    {"name": p.path.name, "uri": location.uri(p.path.name), "events": p.events,
                     "bytes": p.bytes, "sha256": p.sha256}
                    for p in parts
                ],
                "fetched": result.fetched,
                "outside_window": result.outside_window,
                "duplicates_dropped": result.duplicates,
                "out_of_order": result.out_of_order,
                "first_event_time": result.first_event_time and result.first_event_time.isoformat(),
                "last_event_time": result.last_event_time and result.last_event_time.isoformat(),
                "pages": result.pages,
                "requests": {
                    "count": client.stats.requests,
                    "retries": client.stats.retries,
                    "rate_limited": client.stats.rate_limited,
                    "transient_failures": client.stats.transient_failures,
                    "bytes_received": client.stats.bytes_received,
                    "waited_seconds": round(client.stats.waited_seconds, 3),
                },
                "timings": {
                    "started_at": started_at.isoformat(),
                    "fetched_at": fetched_at.isoformat(),
                    "fetch_seconds": round(fetch_seconds, 3),
                },
            }
            store = IntervalStore(GCSHook(gcp_conn_id=source.gcp_conn_id))
            store.publish(location, parts, manifest)
        self.log.info(
            "%s: wrote %d events in %d parts to %s (%d fetched, %d outside the window, %d repeats dropped, "
            "%d requests, %d retries) in %.1fs",
            where, result.written, len(parts), location.uri(), result.fetched, result.outside_window,
            result.duplicates, client.stats.requests, client.stats.retries, time.monotonic() - started,
        )
        for asset in self.outlets:
            context["outlet_events"][asset].extra = event_extra(location, result.written)
        alerts.notify_if_silent(
            source, self.stream, interval.start, result.written,
            lambda start, end: store.read_manifest(location.of(Window(start, end))), context,
        )
        return {"events": result.written, "manifest": location.uri(MANIFEST_NAME)}

    def _client(self, spec, where: str) -> ApiClient:
        return build_client(spec, self.source, BaseHook.get_connection(self.source.conn_id), where)


def build_client(spec: SourceSpec, source: SourceConfig, connection: Any, where: str, **options: Any) -> ApiClient:
    """The source's HTTP client from its Airflow connection (also used by tests, with `options` such as sleep)."""
    session = requests.Session()
    session.headers.update({"Accept": "application/json", "User-Agent": f"auditlogs/{auditlogs.__version__}"})
    session.headers.update(spec.headers)
    spec.auth(connection, session)
    try:
        base_url = base_url_of(connection, spec.default_base_url)
    except ValueError as exc:
        raise ConfigError(str(exc), where=where) from None
    return ApiClient(
        base_url=base_url,
        session=session,
        timeout=source.request_timeout.total_seconds(),
        where=where,
        conn_id=source.conn_id,
        permission=spec.permission,
        secrets=tuple(s for s in (connection.password, connection.login) if s),
        is_rate_limited=spec.is_rate_limited,
        **options,
    )
