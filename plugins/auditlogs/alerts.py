"""What Airflow tells people: deadline misses, failures past retries, and sources gone silent.

`AuditLogNotifier` is an Airflow notifier (`airflow.sdk.BaseNotifier`): every collecting task's
`on_failure_callback`, and the Deadline Alert's callback by its dotted path (`auditlogs.alerts.AuditLogNotifier`),
so the triggerer and the task processes import it from the installed package, never from the DAG file. Other
DAGs can use it too. It sends to the source's built-in channels and the stock notifiers its `notify:` lists.

Who receives what (the README's "Operations" section says the same):
* A scheduled or manual run still unfinished at its deadline: `deadline_missed`. If the run was created
  after its deadline had already passed (catch-up, a manual run of an old interval), the message says so.
* A backfill run: no deadline notification. Airflow computes the deadline from the logical date, so every
  historical interval would "miss" it at once; the backfill's failures still notify.
* A run that already failed when its deadline passes (Airflow still fires it): no deadline notification,
  the `task_failed` notification already covered it.
* A task that failed past its retries: `task_failed` with the error class and scrubbed message; an
  authentication failure names the connection to fix.
* `silence_after: N`: `source_silent` once per silent streak, when the Nth consecutive interval in GCS has
  zero events.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

from airflow.sdk import BaseNotifier

from auditlogs.config import NotifyConfig, SourceConfig, format_duration, previous_intervals
from auditlogs.errors import AuthError, scrub
from auditlogs.notify import Notification, deliver, run_url

log = logging.getLogger(__name__)

ERROR_CHARS = 1500


def deadline_alerts(source: SourceConfig) -> list:
    """The DAG's Deadline Alert: logs in GCS `deadline_after_end` after the interval ends.

    The reference is the logical date (the interval's start for our timetable), so the alert's interval is
    one schedule period plus the deadline after the end.
    """
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    after_end = source.deadline_after_end
    if after_end is None:
        return []
    kwargs = {
        "source": source.name,
        "deadline": format_duration(after_end),
        "notify": source.notify.model_dump(mode="json"),
    }
    return [
        DeadlineAlert(
            reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
            interval=source.period + after_end,
            callback=AsyncCallback(AuditLogNotifier, kwargs=kwargs),
            name="logs_in_gcs",
        )
    ]


class AuditLogNotifier(BaseNotifier):
    """Sends the notification an Airflow context deserves: `task_failed` for a task's failure callback (the
    source and channels are the collecting task's unless given), `deadline_missed` for a Deadline Alert
    (whose callback kwargs name the source, its deadline and `notify`, the source's `notify:` as a dict).

    In a failure callback: `on_failure_callback=AuditLogNotifier()`. As a Deadline Alert's callback:
    `AsyncCallback(AuditLogNotifier, kwargs={"source": ..., "deadline": "1h", "notify": {...}})`.
    """

    def __init__(
        self, *, source: str | None = None, deadline: str | None = None, notify: dict | None = None, **kwargs: Any
    ):
        super().__init__(**kwargs)
        self.source, self.deadline, self.notify_config = source, deadline, notify

    def notify(self, context: Any) -> None:
        if "deadline" in context and "dag_run" in context:
            notification, reason = deadline_notification(context, self.source or "", self.deadline or "")
            if notification is None:
                log.info(
                    "auditlogs: deadline notification for %s suppressed: %s",
                    context["dag_run"].get("dag_run_id"),
                    reason,
                )
                return
        else:
            notification = failure_notification(context)
        notify = (
            NotifyConfig.model_validate(self.notify_config)
            if self.notify_config is not None
            else context["task"].source.notify
        )
        deliver(notification, notify, context)

    async def async_notify(self, context: Any) -> None:
        """In the triggerer: the channels block on HTTP and SMTP, so they run in a thread."""
        await asyncio.to_thread(self.notify, context)


async def on_deadline_missed(context: dict, *, source: str, deadline: str, notify: dict) -> None:
    """The Deadline Alert callback of DAGs serialized before `AuditLogNotifier`: their deadline rows name it."""
    await AuditLogNotifier(source=source, deadline=deadline, notify=notify, context=context)


def deadline_notification(context: dict, source: str, deadline: str) -> tuple[Notification | None, str]:
    """The notification a missed deadline deserves, or None and why not."""
    run = context["dag_run"]
    if run.get("run_type") == "backfill":
        return None, "backfill runs get no deadline notification (their deadline is in the past by design)"
    if run.get("state") == "failed":
        return None, "the run had already failed; its failure notification covers it"
    deadline_time = _moment(context["deadline"]["deadline_time"])
    details: dict[str, Any] = {
        "deadline": f"{deadline} after the interval ends ({deadline_time.isoformat()})",
        "run_state": run.get("state"),
        "run_type": run.get("run_type"),
    }
    queued_at = run.get("queued_at")
    if queued_at and _moment(queued_at) > deadline_time:
        details["note"] = "this run was created after its deadline had passed (catch-up or a rerun of an old interval)"
    return Notification(
        kind="deadline_missed",
        summary=f"Audit logs of '{source}' missed their deadline: not in GCS {deadline} after the interval ended",
        source=source,
        dag_id=run["dag_id"],
        run_id=run.get("dag_run_id"),
        interval_start=_iso(run.get("data_interval_start")),
        interval_end=_iso(run.get("data_interval_end")),
        url=run_url(run["dag_id"], run.get("dag_run_id")),
        details=details,
    ), ""


def failure_notification(context: Any) -> Notification:
    task, ti = context["task"], context["ti"]
    source: SourceConfig = task.source
    error = context.get("exception")
    details: dict[str, Any] = {
        "task": task.task_id,
        "attempts": ti.try_number,
        "error_class": type(error).__name__ if error is not None else "unknown",
        "error": scrub(str(error or "no exception recorded; see the task log"))[:ERROR_CHARS],
    }
    if isinstance(error, AuthError):
        details["connection_to_fix"] = source.conn_id
    run_id = context.get("run_id")
    return Notification(
        kind="task_failed",
        summary=f"Collecting '{source.name}' failed after {ti.try_number} attempt(s): {details['error_class']}",
        source=source.name,
        dag_id=source.dag_id,
        run_id=run_id,
        interval_start=_iso(context.get("data_interval_start")),
        interval_end=_iso(context.get("data_interval_end")),
        url=run_url(source.dag_id, run_id, task.task_id),
        details=details,
    )


def silent_streak_starts_now(manifests: list[dict | None], events: int, silence_after: int) -> bool:
    """True once per streak: this interval and the `silence_after - 1` before it had zero events, and the
    one before those did not (it had events, or was never collected).

    `manifests` are the previous intervals' manifests, newest first (None: not in GCS), `silence_after` long.
    """
    if events:
        return False
    earlier, before = manifests[: silence_after - 1], manifests[silence_after - 1 : silence_after]
    if not all(m is not None and m.get("events") == 0 for m in earlier):
        return False
    return not before or before[0] is None or before[0].get("events") != 0


def notify_if_silent(
    source: SourceConfig, stream: str, start: datetime, events: int, read_manifest, context: Any
) -> Notification | None:
    """After an interval is published: notify when it completes a silent streak of `silence_after`.

    `read_manifest(start, end)` returns an earlier interval's manifest or None: silence is read from the
    manifests in GCS, so it is right whatever order backfills and retries ran in.
    """
    if not source.silence_after or events:
        return None
    earlier = previous_intervals(source.schedule, start, source.silence_after)
    manifests = [read_manifest(begin, end) for begin, end in earlier]
    if not silent_streak_starts_now(manifests, events, source.silence_after):
        return None
    first_silent = earlier[source.silence_after - 2][0] if source.silence_after > 1 else start
    run_id = context.get("run_id")
    notification = Notification(
        kind="source_silent",
        summary=f"'{source.name}' stream '{stream}' returned zero events for {source.silence_after} "
        "consecutive intervals",
        source=source.name,
        dag_id=source.dag_id,
        run_id=run_id,
        interval_start=_iso(context.get("data_interval_start")),
        interval_end=_iso(context.get("data_interval_end")),
        url=run_url(source.dag_id, run_id),
        details={
            "stream": stream,
            "silent_intervals": source.silence_after,
            "silent_since": _iso(first_silent),
            "what_to_check": f"a revoked token or a disabled audit feature looks like success with no events: "
            f"check connection '{source.conn_id}' and the audit settings of the account",
        },
    )
    deliver(notification, source.notify, context)
    return notification


def _moment(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _iso(value: Any) -> str | None:
    moment = _moment(value)
    return moment.isoformat() if moment else None
