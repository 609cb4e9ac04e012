"""What Airflow's metadata database knows about a range: the collecting tasks' states and the streams' Asset
events (each says which interval completed and with how many events). Read in the API server process, one
query per stream for each, bounded by the range. The report CLI reads the run states too, where Airflow is
configured (`AIRFLOW_HOME`, `sql_alchemy_conn`) and its database answers."""

from __future__ import annotations

from datetime import datetime

from auditlogs.assets import stream_asset
from auditlogs.config import SourceConfig
from auditlogs.coverage.model import Run
from auditlogs.window import Window, utc


def unreachable() -> str | None:
    """Why the metadata database cannot be read from this process (None when it can), in one line: the CLI
    then says so and falls back to GCS alone."""
    from airflow.exceptions import AirflowException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from sqlalchemy import select

        with create_session() as session:
            session.execute(select(DagRun.id).limit(1)).all()
    except (ImportError, AirflowException, SQLAlchemyError, RuntimeError) as error:
        return f"{type(error).__name__}: {(str(error).splitlines() or [''])[0][:200]}"
    return None


def runs(source: SourceConfig, stream: str, first: datetime, last: datetime) -> dict[str, Run]:
    """The latest collect task of each interval starting in [first, last), by interval start (ISO)."""
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = (
        select(DagRun.data_interval_start, DagRun.run_id, TaskInstance.state)
        .join(TaskInstance, (TaskInstance.dag_id == DagRun.dag_id) & (TaskInstance.run_id == DagRun.run_id))
        .where(
            DagRun.dag_id == source.dag_id,
            TaskInstance.task_id == f"collect_{stream}",
            DagRun.data_interval_start >= first,
            DagRun.data_interval_start < last,
        )
        .order_by(DagRun.id)
    )
    with create_session() as session:
        # data_interval_start is nullable in the schema, never NULL here: the query filters on it.
        return {
            utc(start).isoformat(): Run(run_id, state and str(state))  # type: ignore[arg-type]
            for start, run_id, state in session.execute(query)
        }


def events(source: SourceConfig, stream: str, first: datetime, last: datetime) -> dict[str, int]:
    """Event counts by interval label from the stream's Asset events emitted since the range began."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = (
        select(AssetEvent.extra)
        .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
        .where(AssetModel.uri == stream_asset(source, stream).uri, AssetEvent.timestamp >= first)
        .order_by(AssetEvent.id)
    )
    counts = {}
    with create_session() as session:
        for (extra,) in session.execute(query):
            interval = (extra or {}).get("interval") or {}
            if "start" in interval and "end" in interval and "events" in extra:
                window = Window(datetime.fromisoformat(interval["start"]), datetime.fromisoformat(interval["end"]))
                if window.start < last:
                    counts[window.label()] = extra["events"]
    return counts
