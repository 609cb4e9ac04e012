"""The Airflow operator: builds the client, collector and sink from the task context and connections.

Thin on purpose: the work lives in plain classes (`collector`, `sink`) that tests drive without Airflow.
No I/O happens at parse time; the connection is read only when the task runs.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from airflow.sdk import BaseHook, BaseOperator

import auditlogs
from auditlogs import alerts
from auditlogs.advisor import advise
from auditlogs.advisor import publish as publish_advice
from auditlogs.assets import event_extra
from auditlogs.client.api import ApiClient, ResponseLimits, base_url_of
from auditlogs.client.ratelimit import DEFAULT_REQUESTS_PER_MINUTE, RateBudget, TokenBucket, task_rate
from auditlogs.client.transport import Transport, check_credential_stays_private
from auditlogs.collector import CollectResult, Progress, collect, stored_key
from auditlogs.config import SourceConfig, format_duration
from auditlogs.errors import ConfigError, OutsideRetentionError, register_secret
from auditlogs.manual import run_interval
from auditlogs.sink.checkpoint import ResumableStaging, fingerprint
from auditlogs.sink.gcs import MANIFEST_NAME, IntervalLocation, IntervalStore, new_attempt
from auditlogs.sink.overlap import Overlap, load_earlier
from auditlogs.sink.parts import StagedPart
from auditlogs.sources import spec_for
from auditlogs.sources.base import SourceSpec
from auditlogs.window import Window

log = logging.getLogger(__name__)

#: Logins at least this long are scrubbed like passwords.
LONG_LOGIN = 8


class AuditLogToGCSOperator(BaseOperator):
    """Collects one stream of one source for the run's data interval into GCS."""

    ui_color = "#e8f1fb"

    def __init__(self, *, source: SourceConfig, stream: str, **kwargs: Any):
        super().__init__(**kwargs)
        self.source = source
        self.stream = stream
        #: What this run read and wrote, for its OpenLineage facets (set as the run learns it).
        self._lineage: dict[str, Any] = {}

    def execute(self, context: Any) -> dict:
        interval, why = run_interval(self.source, context)  # manual runs: what the person meant (manual.py)
        self._lineage["interval"] = interval
        log.info("%s: collecting the interval %s (%s)", self.source.dag_id, interval, why)
        # Which failures are retried, and when, is the task's retry_policy (operators/retry.py).
        return self._collect(context, interval)

    def _collect(self, context: Any, interval: Window) -> dict:
        from airflow.providers.google.cloud.hooks.gcs import GCSHook

        source, spec = self.source, spec_for(self.source)
        where = f"source '{source.name}' stream '{self.stream}' window {interval.widened(source.delay)}"
        if source.retention and interval.widened(source.delay).start < datetime.now(timezone.utc) - source.retention:
            raise OutsideRetentionError(
                f"the window reaches back past the API's retention of {format_duration(source.retention)}, so "
                "its events are gone and the interval would be written empty but complete",
                where=where,
                hint="backfill only intervals within the retention; raise 'retention' if the API keeps more",
            )
        hook = GCSHook(gcp_conn_id=source.gcp_conn_id)
        client = self._client(spec, where)
        self._lineage.update(
            api_url=client.resolve(spec.first_request(source, self.stream, interval).url),
            window=interval.widened(source.delay),
        )
        manifest = collect_interval(
            source,
            self.stream,
            interval,
            client,
            hook,
            dag_id=self.dag_id,
            run_id=context["run_id"],
            try_number=context["ti"].try_number,
        )
        location = IntervalLocation(source.bucket, source.prefix, source.name, self.stream, interval)
        self._lineage.update(manifest=manifest, manifest_uri=location.uri(MANIFEST_NAME))
        for asset in self.outlets:
            context["outlet_events"][asset].extra = event_extra(location, manifest)
        store = IntervalStore(hook, where=where)
        alerts.notify_if_silent(
            source,
            self.stream,
            interval.start,
            manifest["events"],
            lambda start, end: store.read_manifest(location.of(Window(start, end))),
            context,
        )
        return {"events": manifest["events"], "manifest": location.uri(MANIFEST_NAME)}

    def _client(self, spec, where: str) -> ApiClient:
        return build_client(spec, self.source, BaseHook.get_connection(self.source.conn_id), where)

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Read by the OpenLineage provider (README: Lineage); also on failure, with what the run got to."""
        from auditlogs.lineage import operator_lineage, stream_dataset

        output = stream_dataset(self.source.bucket, self.source.prefix, self.source.name, self.stream)
        return operator_lineage(
            self._lineage.get("api_url"),
            output,
            **{key: self._lineage.get(key) for key in ("interval", "window", "manifest", "manifest_uri")},
        )


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def collect_interval(
    source: SourceConfig,
    stream: str,
    interval: Window,
    client: ApiClient,
    hook: Any,
    *,
    dag_id: str,
    run_id: str,
    try_number: int,
    clock: Callable[[], datetime] = utc_now,
) -> dict:
    """The operator's work for one interval, without Airflow: fetch the widened window, skip what earlier
    overlapping intervals stored, publish parts and manifest, give delay advice. Returns the manifest.

    `clock` is the time the run sees (tests pass the sandbox's clock)."""
    spec = spec_for(source)
    window = interval.widened(source.delay)
    where = f"source '{source.name}' stream '{stream}' window {window}"
    location = IntervalLocation(source.bucket, source.prefix, source.name, stream, interval)
    earlier, missing = load_earlier(
        hook,
        source.bucket,
        lambda other: replace(location, interval=other).object_name(MANIFEST_NAME),
        source.schedule,
        interval,
        window,
        source.start_date,
    )
    overlap = Overlap(interval, window, earlier, missing, skip=source.dedup)

    started = time.monotonic()
    started_at = clock()
    store = IntervalStore(hook, where=where)
    attempt = new_attempt(run_id, try_number)
    with tempfile.TemporaryDirectory(prefix="auditlogs-") as staging:
        # A failed try keeps what it fetched for the next try of this run (sink/checkpoint.py).
        with ResumableStaging(
            store,
            location,
            run_id=run_id,
            try_number=try_number,
            attempt=attempt,
            fingerprint=fingerprint(source, stream, window, client.base_url),
            staging_dir=Path(staging),
            part_size=source.part_size,
            every=source.checkpoint_every.total_seconds(),
            stored_key=stored_key(spec, source),
        ) as staged:  # stops the compression thread on errors
            start = staged.load(client)
            if start is not None and staged.overlap is not None:
                overlap.restore(staged.overlap)
            first_started = staged.started_at or started_at.isoformat()

            def extra() -> dict:
                return {
                    "started_at": first_started,
                    "overlap": overlap.state(),
                    "requests": staged.totals(client.stats),
                }

            progress = Progress(
                start, between_pages=lambda: staged.between_pages(progress, extra), window_ids=staged.window_ids
            )
            try:
                result = collect(
                    spec,
                    source,
                    stream,
                    client,
                    window,
                    staged,
                    source.max_pages,
                    now=started_at,
                    admit=overlap.admit,
                    progress=progress,
                    repeated=overlap.seen_again,
                )
            except Exception as exc:
                staged.keep(progress, extra, exc)
                raise
            parts = staged.close()
        manifest = run_manifest(
            source,
            stream,
            dag_id,
            run_id,
            try_number,
            location,
            window,
            result,
            parts,
            client,
            datetime.fromisoformat(first_started),
            clock(),
            time.monotonic() - started,
            attempt=attempt,
        )
        manifest["parts"] = staged.carried + manifest["parts"]
        manifest["storage"]["bytes_written"] = sum(entry["bytes"] for entry in manifest["parts"])
        if staged.resumed:  # the window's whole cost, over the tries it took
            totals = staged.totals(client.stats)
            manifest["requests"] = {"count": totals.pop("requests"), **totals}
            manifest["storage"]["bytes_received"] = totals["bytes_received"]
        manifest["resumed"] = staged.resumed
        manifest["overlap"] = overlap.manifest_section()
        advice = advise(
            source.name,
            stream,
            source.delay,
            interval.end - interval.start,
            manifest["overlap"]["recent"],
            {
                **manifest["storage"],
                "window_seconds": (window.end - window.start).total_seconds(),
                "requests": manifest["requests"]["count"],
            },
            documented_lateness=spec.documented_lateness,
            sweep=source.sweep,
        )
        manifest["advice"] = advice and advice.record()
        store.publish(location, parts, manifest, allow_shrink=source.allow_shrink, staged=len(staged.carried))
    late = overlap.late
    log.info(
        "%s: wrote %d events in %d parts to %s (%d fetched, %d outside the window, %d repeats dropped, "
        "%d already stored by earlier intervals%s, %d requests, %d retries) in %.1fs",
        where,
        result.written,
        len(manifest["parts"]),
        location.uri(),
        result.fetched,
        result.outside_window,
        result.duplicates,
        overlap.already_stored,
        "" if source.dedup else " but written (dedup off)",
        manifest["requests"]["count"],
        manifest["requests"]["retries"],
        time.monotonic() - started,
    )
    log.info(
        "%s: %d late arrivals in the overlap (events earlier runs fetched the time of but had not seen), "
        "the latest at least %.0fs late; earlier intervals read: %s; without a manifest: %s",
        where,
        late.count,
        late.max_seconds,
        manifest["overlap"]["earlier_intervals"] or "none",
        manifest["overlap"]["missing_intervals"] or "none",
    )
    if advice:
        publish_advice(advice)
    return manifest


def run_manifest(
    source: SourceConfig,
    stream: str,
    dag_id: str,
    run_id: str,
    try_number: int,
    location: IntervalLocation,
    window: Window,
    result: CollectResult,
    parts: list[StagedPart],
    client: ApiClient,
    started_at: datetime,
    fetched_at: datetime,
    fetch_seconds: float,
    attempt: str | None = None,
) -> dict:
    """The manifest fields every run writes (collect and sweep): what was fetched, written, and how, and
    the parts of this attempt, which the manifest alone points readers to."""
    attempt = attempt or new_attempt(run_id, try_number)
    return {
        "manifest_version": 1,
        "package_version": auditlogs.__version__,
        "source": source.name,
        "type": source.type,
        "stream": stream,
        "dag_id": dag_id,
        "run_id": run_id,
        "try_number": try_number,
        "attempt": attempt,
        "interval": {"start": location.interval.start.isoformat(), "end": location.interval.end.isoformat()},
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "delay_seconds": source.delay.total_seconds(),
        "events": result.written,
        "parts": location.part_entries(attempt, parts),
        "fetched": result.fetched,
        "outside_window": result.outside_window,
        "duplicates_dropped": result.duplicates,
        "out_of_order": result.out_of_order,
        "first_event_time": result.first_event_time and result.first_event_time.isoformat(),
        "last_event_time": result.last_event_time and result.last_event_time.isoformat(),
        "pages": result.pages,
        "storage": {
            "events_fetched": result.fetched,
            "events_in_window": result.written + result.duplicates + result.already_stored,
            "events_already_stored": result.already_stored,
            "events_written": result.written,
            "bytes_received": client.stats.bytes_received,
            "bytes_written": sum(p.bytes for p in parts),
        },
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


def request_budget(spec: SourceSpec, source: SourceConfig) -> int:
    """The credential's requests per minute: configured, else the API's documented limit, else a default."""
    return source.requests_per_minute or spec.requests_per_minute or DEFAULT_REQUESTS_PER_MINUTE


def build_client(spec: SourceSpec, source: SourceConfig, connection: Any, where: str, **options: Any) -> ApiClient:
    """The source's HTTP client from its Airflow connection (also used by tests, with `options` such as sleep).

    Its credentials, in every form they are sent (the Authorization value, a Basic pair), are registered with
    the scrubber and Airflow's masker before the first request, so no output of this process can carry them."""
    connection = _trimmed(connection, where)
    session = Transport.from_connection(connection, where).session()  # proxies, CA bundle, client certificate
    session.headers.update({"Accept": "application/json", "User-Agent": f"auditlogs/{auditlogs.__version__}"})
    session.headers.update(spec.headers)
    spec.auth(connection, session)
    authorization = str(session.headers.get("Authorization") or "")
    # A short login ("admin") is no secret worth blanking out of every message; a long one may be (an API key SID).
    login = connection.login if connection.login and len(connection.login) >= LONG_LOGIN else None
    secrets = tuple(s for s in (connection.password, login, authorization, authorization.partition(" ")[2]) if s)
    for secret in secrets:
        register_secret(secret)
    try:
        base_url = base_url_of(connection, spec.default_base_url)
    except ValueError as exc:
        raise ConfigError(str(exc), where=where) from None
    if spec.connection_path is not None:
        base_url += spec.connection_path(connection)
    check_credential_stays_private(session, base_url, source.conn_id, where)
    sleep = options.get("sleep", time.sleep)
    return ApiClient(
        base_url=base_url,
        session=session,
        timeout=source.request_timeout.total_seconds(),
        where=where,
        conn_id=source.conn_id,
        permission=spec.permission,
        secrets=secrets,
        is_rate_limited=spec.is_rate_limited,
        refusal=spec.refusal,
        rate_limit_floor=spec.rate_limit_floor,
        **{
            "budget": source.page_budget,
            "rate": rate_budget(spec, source, sleep),
            "limits": ResponseLimits(source.max_response_bytes, source.max_compressed_response_bytes),
            **options,
        },
    )


def rate_budget(
    spec: SourceSpec, source: SourceConfig, sleep: Callable[[float], None], clock: Callable[[], float] = time.monotonic
) -> RateBudget:
    """The task's share of the credential's minute and, where one is documented or set, hour budgets."""
    tasks = source.concurrent_tasks()
    buckets = [TokenBucket(task_rate(request_budget(spec, source), tasks), sleep=sleep, clock=clock)]
    per_hour = source.requests_per_hour or spec.requests_per_hour
    if per_hour:
        buckets.append(TokenBucket(task_rate(per_hour, tasks), sleep=sleep, clock=clock, period=3600))
    return RateBudget(*buckets)


class _TrimmedConnection:
    """An Airflow connection whose login and password lost surrounding whitespace (a secret saved with echo)."""

    def __init__(self, connection: Any, login: str | None, password: str | None):
        self._connection, self.login, self.password = connection, login, password

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


def _trimmed(connection: Any, where: str) -> Any:
    """The connection with its credential trimmed; a trimmed one is logged (by field, never by value). The
    untrimmed value is registered with the scrubber too: it is what the user's own tools may print."""
    login, password = connection.login, connection.password
    changed = [name for name, value in (("login", login), ("password", password)) if value and value != value.strip()]
    if not changed:
        return connection
    for value in (login if login and len(login) >= LONG_LOGIN else None, password):
        register_secret(value)
    log.warning(
        "%s: the %s of Airflow connection '%s' has surrounding whitespace or a newline; using it trimmed",
        where,
        " and ".join(changed),
        connection.conn_id,
    )
    return _TrimmedConnection(connection, login and login.strip(), password and password.strip())
