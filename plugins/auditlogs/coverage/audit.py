"""The completeness audit: a daily DAG that lists every interval past its deadline without a manifest and
notifies each source's channels. A second line of defence beside the Deadline Alerts: it needs neither
them nor the triggerer, only GCS (one listing per stream), so a silently stopped alert still gets caught."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Any

from airflow.sdk import DAG, BaseOperator, CronDataIntervalTimetable

from auditlogs.config import COVERAGE_AUDIT_DAG_ID, CoverageAuditConfig, SourceConfig, format_duration
from auditlogs.coverage import model
from auditlogs.notify import Notification, deliver, run_url

DAG_ID = COVERAGE_AUDIT_DAG_ID
#: Intervals listed per stream in a notification; the count is always complete.
LISTED = 20


def audit_dag(sources: list[SourceConfig], audit: CoverageAuditConfig) -> DAG:
    dag = DAG(
        dag_id=DAG_ID,
        description=f"intervals past their deadline without a manifest, {format_duration(audit.lookback)} back",
        schedule=CronDataIntervalTimetable(audit.schedule, timezone="UTC"),
        start_date=min((s.start_date for s in sources), default=datetime(2026, 1, 1, tzinfo=timezone.utc)),
        catchup=False,
        max_active_runs=1,
        tags=["auditlogs", "audit"],
        doc_md="Lists every interval of every source whose deadline has passed and that has no `_manifest.json`, "
        "and notifies the source's `notify:` channels; quiet when all is complete. README: Coverage.",
    )
    CoverageAuditOperator(task_id="audit", sources=sources, lookback=audit.lookback, dag=dag)
    return dag


class CoverageAuditOperator(BaseOperator):
    """Audits the days [end - lookback, end] as of the run's data interval end."""

    def __init__(self, *, sources: list[SourceConfig], lookback: timedelta, **kwargs: Any):
        super().__init__(**kwargs)
        self.sources = sources
        self.lookback = lookback

    def execute(self, context: Any) -> dict:
        now = context.get("data_interval_end") or datetime.now(timezone.utc)
        first = datetime.combine((now - self.lookback).date(), time(), timezone.utc)
        found = audit(self.sources, first, now, model.ManifestIndex(model.gcs_client), context.get("run_id"))
        return {source: len(cells) for source, cells in found.items()}


def audit(
    sources: list[SourceConfig], first: datetime, now: datetime, index: model.ManifestIndex, run_id: str | None
) -> dict[str, list]:
    """Notifies once per source with gaps; returns the gaps by source."""
    found = {}
    for source in sources:
        coverage = model.build([source], first, now, now, index, events=lambda s, stream: {})
        gaps = {stream.stream: stream.missing for stream in coverage.streams if stream.missing}
        if not gaps:
            continue
        found[source.name] = [cell for cells in gaps.values() for cell in cells]
        deliver(gap_notification(source, gaps, first, now, run_id), source.notify)
    return found


def gap_notification(
    source: SourceConfig, gaps: dict[str, list], first: datetime, now: datetime, run_id: str | None
) -> Notification:
    total = sum(len(cells) for cells in gaps.values())
    details: dict[str, Any] = {
        "audited": f"intervals starting in [{first.isoformat()}, {now.isoformat()})",
        "deadline": f"{format_duration(model.due_after(source))} after the interval ends",
    }
    for stream, cells in gaps.items():
        listed = [f"[{c.start}, {c.end}) gs://{source.bucket}/{c.folder}/" for c in cells[:LISTED]]
        details[f"missing_{stream}"] = listed + ([f"... and {len(cells) - LISTED} more"] if len(cells) > LISTED else [])
    return Notification(
        kind="coverage_gaps",
        summary=f"'{source.name}' has {total} interval(s) past their deadline without a manifest",
        source=source.name,
        dag_id=source.dag_id,
        run_id=run_id,
        interval_start=min(c.start for cells in gaps.values() for c in cells),
        interval_end=max(c.end for cells in gaps.values() for c in cells),
        url=run_url(source.dag_id, None),
        details=details,
    )
