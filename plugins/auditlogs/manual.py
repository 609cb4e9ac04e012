"""Which interval a run collects: a manual run's interval is what the person meant, not what Airflow infers.

Airflow 3.3.2 gives a manual run of a `CronDataIntervalTimetable` DAG no data interval when it has no logical
date (the UI's plain Trigger, `airflow dags trigger DAG`), and with one the interval before `run_after`:
`airflow dags test DAG DATE` collects the interval ending at DATE, but `airflow dags trigger -l 15:00` the
latest hour, not 15:00. So for manual runs:

* `interval_start` (a DAG param, offered in the trigger form) set: exactly that interval of the schedule;
* else Airflow's data interval, if the run has one; the log warns when the logical date is not one of its
  bounds though on the grid (the `trigger -l` case), saying to use `interval_start`;
* else: the latest complete interval of the schedule before the run was triggered.

Scheduled runs and backfills keep Airflow's data interval.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from auditlogs.config import SourceConfig
from auditlogs.errors import AuditLogError
from auditlogs.window import Window, utc

log = logging.getLogger(__name__)

#: The DAG param a person sets in the trigger form to re-collect one interval.
INTERVAL_START = "interval_start"


class RunIntervalError(AuditLogError):
    """A run has no interval to collect, or a manual run asked for one the schedule cannot give."""

    retryable = False


def params(source: SourceConfig) -> dict:
    """The DAG's params: `interval_start`, empty by default, shown in the trigger form."""
    from airflow.sdk import Param

    return {
        INTERVAL_START: Param(
            None,
            # Airflow checks a Param's schema against its meta-schema three times per DAG parse: against
            # Draft 7's that is a third of the cost of the default 2020-12's (a tenth of a parse at 1,000
            # sources). The keywords used here mean the same in both.
            schema={
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": ["null", "string"],
                "title": "Interval start (UTC), to re-collect one past interval",
            },
            description=f"Leave empty to collect the latest complete interval. Or the start of one interval of the "
            f"schedule `{source.schedule}` (UTC), e.g. 2026-12-01T15:00:00+00:00: that interval is collected again "
            "into its usual folder and replaces what is there.",
        )
    }


def doc(source: SourceConfig) -> str:
    """The DAG doc's paragraph on manual runs."""
    return (
        "* Manual runs: the Trigger button (no logical date) collects the latest complete interval of the "
        f"schedule; the param `{INTERVAL_START}` re-collects exactly the interval starting there into its usual "
        "folder (a rerun replaces it). A logical date does not choose the interval (Airflow 3.3 infers it from "
        "the trigger time). The first line of each task's log names the interval it collected.\n"
    )


def run_interval(source: SourceConfig, context: Any) -> tuple[Window, str]:
    """The interval this run collects and, for the log, why that one."""
    dag_run = context.get("dag_run")  # absent only in hand-built contexts: not a manual run
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    run_type = getattr(dag_run, "run_type", None)
    if getattr(run_type, "value", run_type) != "manual":
        if start is None or end is None or start == end:
            raise RunIntervalError(
                "this run has no data interval, so there is no window to collect",
                where=source.dag_id,
                hint="trigger it manually or use airflow backfill create",
            )
        return Window(start, end), "the run's data interval"
    run_after = utc(getattr(dag_run, "run_after", None) or datetime.now().astimezone())
    chosen = (context.get("params") or {}).get(INTERVAL_START)
    if chosen:
        return chosen_interval(source, chosen, run_after), f"param {INTERVAL_START}={chosen}"
    if start is not None and end is not None and start != end:
        interval, logical = Window(start, end), context.get("logical_date")
        picked = logical is not None and on_grid(source.schedule, utc(logical))  # `dags test` alone passes now
        if picked and utc(logical) not in (interval.start, interval.end):
            log.warning(
                "%s: the logical date %s does not choose the interval in Airflow 3.3: it collects %s, "
                "inferred from the trigger time. To re-collect the interval starting at %s, trigger "
                "with the param %s instead.",
                source.dag_id,
                utc(logical).isoformat(),
                interval,
                utc(logical).isoformat(),
                INTERVAL_START,
            )
        return interval, "the data interval Airflow gave the manual run"
    latest = latest_complete(source.schedule, run_after)
    return latest, f"no logical date: the latest complete interval before {run_after.isoformat()}"


def chosen_interval(source: SourceConfig, value: str, run_after: datetime) -> Window:
    where = f"{source.dag_id}: param {INTERVAL_START}={value!r}"
    try:
        start = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        start = utc(start)
    except ValueError as exc:
        raise RunIntervalError(
            f"not a timezone-aware ISO date-time ({exc})", where=where, hint="give e.g. 2026-12-01T15:00:00+00:00"
        ) from None
    if not on_grid(source.schedule, start):
        before = latest_complete(source.schedule, start).end
        raise RunIntervalError(
            f"not the start of an interval of the schedule `{source.schedule}` (UTC)",
            where=where,
            hint=f"the nearest earlier start is {before.isoformat()}",
        )
    return interval_from(source, start, run_after, where)


def interval_from(source: SourceConfig, start: datetime, run_after: datetime, where: str = "") -> Window:
    where = where or f"{source.dag_id}: interval starting {start.isoformat()}"
    if start < utc(source.start_date):
        raise RunIntervalError(
            f"before the source's start_date {utc(source.start_date).isoformat()}",
            where=where,
            hint="pick an interval on or after start_date",
        )
    window = Window(start, next_start(source.schedule, start))
    if window.end > run_after:
        raise RunIntervalError(
            f"the interval {window} has not ended yet (now {run_after.isoformat()})",
            where=where,
            hint="pick an interval that has ended, or leave it empty",
        )
    return window


def on_grid(schedule: str, moment: datetime) -> bool:
    from croniter import croniter

    return bool(croniter.match(schedule, moment)) and moment.second == 0 and moment.microsecond == 0


def next_start(schedule: str, start: datetime) -> datetime:
    from croniter import croniter

    return utc(croniter(schedule, start).get_next(datetime))


def latest_complete(schedule: str, before: datetime) -> Window:
    """The newest interval of the schedule that ends at or before `before`."""
    from croniter import croniter

    cron = croniter(schedule, before)
    end = utc(cron.get_prev(datetime)) if not on_grid(schedule, before) else before
    return Window(utc(croniter(schedule, end).get_prev(datetime)), end)
