"""The DAG factory: one DAG per configured source, built from the YAML config without any I/O but the
config file itself (no network, no connection look-ups), so parsing stays cheap."""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from datetime import datetime, timezone
from functools import cache, partial
from pathlib import Path

from airflow.sdk import DAG, BaseOperator, CronDataIntervalTimetable, get_parsing_context
from airflow.sdk.exceptions import AirflowFailException

from auditlogs import alerts, compat, manual
from auditlogs.assets import stream_asset
from auditlogs.config import (
    COVERAGE_AUDIT_DAG_ID,
    LoadedConfig,
    SourceConfig,
    format_duration,
    is_source_name,
    load_config,
)
from auditlogs.operators.collect import AuditLogToGCSOperator
from auditlogs.operators.retry import AuditLogRetryPolicy
from auditlogs.operators.sweep import SweepOperator
from auditlogs.sink.gcs import MANIFEST_NAME

log = logging.getLogger(__name__)

DAG_ID_PREFIX = "auditlogs_"
#: Placeholder DAGs of broken sources start here: they never run on a schedule.
_EPOCH = datetime(2020, 1, 1, tzinfo=timezone.utc)
#: The DAG documentation's sentence on de-duplication, by `dedup`.
_DEDUP_DOC = {
    True: "A run skips events an earlier interval already stored (dedup on), and counts late arrivals.",
    False: "De-duplication is off: an event can appear in two intervals; de-duplicate downstream by event id.",
}


def build_dags(config_path: Path | str | None = None) -> dict[str, DAG]:
    """Every source's DAGs by dag_id. Whatever goes wrong with one entry (invalid, a DAG that cannot be
    built, a DAG id another entry yields too) makes it a placeholder DAG showing the error; the others load.

    When a task process parses the file, Airflow's DAG parsing context names the DAG it runs, and only the
    entry that claims that id is built (its DAGs, or its placeholder): the config is still read and checked
    as a whole (collisions included), so the DAG is the one the dag-processor serialised, but a task no
    longer pays for every other source. The dag-processor has no parsing context and builds them all."""
    wanted = get_parsing_context().dag_id
    loaded = load_config(config_path, select=None if wanted is None else partial(_entries_for, wanted))
    if compat.in_dags_test():
        compat.patch_deadline_dags_test()
    errors = dict(loaded.errors)
    builders = {name: dag_builders(source) for name, source in loaded.sources.items()}
    claims = {name: list(owned) for name, owned in builders.items()}
    claims.update({name: [placeholder_dag_id(name)] for name in errors})
    for name, problem in _collisions(loaded, claims).items():
        errors[name] = f"{errors[name]}; {problem}" if name in errors else f"{loaded.where(name)}: {problem}"
    wanted = _wanted_dag_id(wanted, claims, loaded)
    dags: dict[str, DAG] = {}
    for name, owned in builders.items():
        if name in errors or wanted not in (None, *owned):
            continue
        try:  # all of the entry's DAGs, even in a task: one that cannot be built makes the entry a placeholder
            built = {dag_id: build() for dag_id, build in owned.items()}
        except Exception as exc:  # a timetable or DAG argument Airflow refuses: this source's error only
            errors[name] = f"{loaded.where(name)}: its DAG cannot be built: {type(exc).__name__}: {str(exc)[:500]}"
            continue
        dags.update(built)
    if loaded.coverage_audit.enabled and loaded.sources and wanted in (None, COVERAGE_AUDIT_DAG_ID):
        from auditlogs.coverage.audit import audit_dag

        dag = audit_dag(list(loaded.sources.values()), loaded.coverage_audit)
        dags[dag.dag_id] = dag
    for name, error in errors.items():
        if wanted in (None, placeholder_dag_id(name)):
            log.error("auditlogs config error: %s", error)
            dags[placeholder_dag_id(name)] = config_error_dag(name, error)
    return dags


def _wanted_dag_id(wanted: str | None, claims: dict[str, list[str]], loaded: LoadedConfig) -> str | None:
    """The DAG a task process parses the file for (Airflow's DAG parsing context), or None to build all:
    in the dag-processor, and whenever the id is none the config yields (then the task fails as it would
    have: the dag-processor did not serialise that DAG either)."""
    if wanted is None:
        return None
    known = wanted == COVERAGE_AUDIT_DAG_ID and loaded.coverage_audit.enabled and loaded.sources
    return wanted if known or any(wanted in ids for ids in claims.values()) else None


def _entries_for(wanted: str, entries: dict[str, dict | None]) -> set[str] | None:
    """The entries a task's DAG can depend on, or None for all: the ones that may yield the DAG id, and
    the ones that may yield one of their DAG ids too (a collision makes both placeholders). Every other
    entry is left unread, which is exact because `_possible_dag_ids` is a superset of what an entry yields,
    valid or not. The coverage audit lists every source, so it needs them all."""
    if wanted == COVERAGE_AUDIT_DAG_ID:
        return None
    possible = {name: _possible_dag_ids(name, entry) for name, entry in entries.items()}
    owners = {name for name, ids in possible.items() if ids is not None and wanted in ids}
    if not owners:
        return None
    claimed = set().union(*(possible[name] or set() for name in owners))
    return {name for name, ids in possible.items() if ids is None or ids & claimed}


def _possible_dag_ids(name: str, entry: dict | None) -> set[str] | None:
    """Every DAG id an entry (merged with the defaults, unvalidated) can yield, valid or broken; None when
    that needs its validated streams (the BigQuery examples): such an entry is always read."""
    if entry is None:
        return {placeholder_dag_id(name)}
    if entry.get("bigquery_dataset"):
        return None
    ids = {placeholder_dag_id(name)}  # a valid name's placeholder id is its DAG id
    if is_source_name(name) and entry.get("sweep") is not None:
        ids.add(sweep_dag_id(DAG_ID_PREFIX + name))
    return ids


def dag_builders(source: SourceConfig) -> dict[str, Callable[[], DAG]]:
    """The DAGs one valid source yields, by dag_id, each built only when called: its own, its sweep's, its
    BigQuery examples' (one per stream). The ids are known without building, so collisions are found and a
    task builds only its own DAG."""
    builders: dict[str, Callable[[], DAG]] = {source.dag_id: partial(source_dag, source)}
    if source.sweep is not None:
        builders[sweep_dag_id(source.dag_id)] = partial(sweep_dag, source)
    if source.bigquery_dataset:
        for stream in source.stream_names():
            builders[f"{source.dag_id}_{stream}_to_bigquery"] = partial(_bigquery_dag, source, stream)
    return builders


def _bigquery_dag(source: SourceConfig, stream: str) -> DAG:
    from auditlogs.downstream import bigquery_dag  # the BigQuery libraries are heavy: import them only when asked

    return bigquery_dag(source, stream, f"{source.dag_id}_{stream}_to_bigquery")


def _collisions(loaded: LoadedConfig, claims: dict[str, list[str]]) -> dict[str, str]:
    """Entries whose DAG ids another entry yields too. Both become errors: keeping either one would let the
    file's order decide which source silently stops collecting."""
    owners: dict[str, list[str]] = {}
    for name, dag_ids in claims.items():
        for dag_id in dag_ids:
            owners.setdefault(dag_id, []).append(name)
    problems: dict[str, list[str]] = {}
    for dag_id, names in owners.items():
        for name in names if len(names) > 1 else ():
            others = ", ".join(f"{loaded.label(o)} (line {loaded.lines.get(o, '?')})" for o in names if o != name)
            problems.setdefault(name, []).append(
                f"its DAG id '{dag_id}' is also a DAG id of {others}: rename one; neither collects until then"
            )
    return {name: "; ".join(found) for name, found in problems.items()}


def placeholder_dag_id(name: str) -> str:
    """The DAG id of a broken entry: its usual id when the name is valid, else a safe, bounded id with a
    hash of the name; the '-' keeps it apart from every id a valid name yields."""
    if is_source_name(name):
        return DAG_ID_PREFIX + name
    safe = re.sub(r"[^a-z0-9_]", "_", name.lower())[:64]
    return f"{DAG_ID_PREFIX}{safe}-{hashlib.sha256(name.encode('utf-8', 'surrogatepass')).hexdigest()[:8]}"


def source_dag(source: SourceConfig) -> DAG:
    dag = DAG(
        dag_id=source.dag_id,
        description=f"{source.type} audit logs into gs://{source.bucket}/{source.prefix}".rstrip("/"),
        schedule=_timetable(source.schedule),
        start_date=source.start_date,
        catchup=source.catchup,
        max_active_runs=source.max_active_runs,
        tags=["auditlogs", source.type],
        doc_md=_doc(source),
        deadline=alerts.deadline_alerts(source),
        params=manual.params(source),
        default_args=_default_args(source),
    )
    for stream in source.stream_names():
        AuditLogToGCSOperator(
            task_id=f"collect_{stream}",
            source=source,
            stream=stream,
            outlets=[stream_asset(source, stream)],
            dag=dag,
            **_task_callbacks(source),
        )
    return dag


def _default_args(source: SourceConfig) -> dict:
    return {
        "retries": source.retries,
        "retry_delay": source.retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": source.max_retry_delay,
        "execution_timeout": source.task_timeout,
        **({"pool": source.pool} if source.pool else {}),
    }


def _task_callbacks(source: SourceConfig) -> dict:
    """Given to each task, not through `default_args`: the dag-processor serialises a callable found in
    `default_args` by reading its source code, once per DAG (a fifth of the parse at 1,000 sources)."""
    return {
        "retry_policy": AuditLogRetryPolicy(source.retry_delay, source.max_retry_delay),
        "on_failure_callback": alerts.AuditLogNotifier(),
    }


@cache
def _timetable(schedule: str) -> CronDataIntervalTimetable:
    """One timetable per distinct schedule, shared by the DAGs that use it: building one parses the cron
    expression and loads its description's translations, the same work for every source on `@hourly`."""
    return CronDataIntervalTimetable(schedule, timezone="UTC")


def sweep_dag_id(dag_id: str) -> str:
    return f"{dag_id}_sweep"


def sweep_dag(source: SourceConfig) -> DAG:
    """The retrospective sweep of a source with `sweep:` set (operators/sweep.py)."""
    assert source.sweep is not None, "only a source with sweep: set has a sweep DAG"
    dag = DAG(
        dag_id=sweep_dag_id(source.dag_id),
        description=f"recovers {source.type} audit events later than the delay, {format_duration(source.sweep)} back",
        schedule=_timetable(source.sweep_schedule),
        start_date=source.start_date,
        catchup=source.catchup,
        max_active_runs=1,
        tags=["auditlogs", source.type, "sweep"],
        doc_md=f"Re-fetches `[end - delay - {format_duration(source.sweep)}, end - delay)` of `{source.name}` and "
        "stores only events no run stored, under `<stream>/sweep/`. See the README, De-duplication and late arrivals.",
        default_args=_default_args(source),
    )
    for stream in source.stream_names():
        SweepOperator(task_id=f"sweep_{stream}", source=source, stream=stream, dag=dag, **_task_callbacks(source))
    return dag


def _doc(source: SourceConfig) -> str:
    folder = "/".join(p for p in (source.bucket, source.prefix, source.name) if p)
    delay = format_duration(source.delay)
    return f"""\
### {source.type} audit logs: `{source.name}`

Each run collects its data interval `[start, end)` **widened back by the ingestion delay of {delay}**: the
API is asked for `[start - {delay}, end)` and events are kept by their own timestamp in exactly that
half-open window (UTC). Consecutive runs therefore overlap by {delay}: events that reached the API late are
still collected. {_DEDUP_DOC[source.dedup]}

* Destination: `gs://{folder}/<stream>/dt=YYYY-MM-DD/<start>_<end>/attempt-<id>/part-NNNNN.ndjson.gz`, gzip
  NDJSON, one API event object per line, and `{MANIFEST_NAME}`, the only pointer to the interval's parts
  (event counts, sha256 of each part, requests, timings). Read the parts the manifest lists; an interval
  folder without a manifest is incomplete.
* A rerun of an interval replaces its manifest and parts; it never duplicates them.
* Connection: `{source.conn_id}` (host = API base URL, password = token); GCS: `{source.gcp_conn_id}`.
* Streams: {", ".join(f"`{s}`" for s in source.stream_names())}. Schedule: `{source.schedule}` (UTC).
* A task that runs longer than {format_duration(source.task_timeout)} is stopped and retried (`execution_timeout`).
{manual.doc(source)}"""


def config_error_dag(name: str, error: str) -> DAG:
    """Shown in the DAG list with the error, so one bad entry is visible and the other sources still load."""
    dag = DAG(
        dag_id=placeholder_dag_id(name),
        description=f"CONFIG ERROR: {error}"[:1000],
        schedule=None,
        start_date=_EPOCH,
        tags=["auditlogs", "config-error"],
        doc_md=f"### This source's config is invalid\n\n```\n{error}\n```\n\nFix the config file; "
        "this DAG collects nothing until then.",
    )
    ConfigErrorOperator(task_id="config_error", error=error, dag=dag)
    return dag


class ConfigErrorOperator(BaseOperator):
    """Fails with the config error when someone triggers the broken source's DAG."""

    ui_color = "#f8d7da"

    def __init__(self, *, error: str, **kwargs):
        super().__init__(**kwargs)
        self.error = error

    def execute(self, context):
        raise AirflowFailException(self.error)
