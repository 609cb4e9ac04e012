"""The DAG file as Airflow's dag-processor sees it: every DAG imports, has real data intervals, ids,
tags and docs; a broken source shows up in the DAG list without hiding the others."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk import CronDataIntervalTimetable
from airflow.sdk.definitions.timetables.simple import NullTimetable
from airflow.sdk.exceptions import ParamValidationError

from auditlogs.alerts import AuditLogNotifier
from auditlogs.operators.retry import AuditLogRetryPolicy
from harness import write_config

ROOT = Path(__file__).resolve().parents[1]
DEFAULTS = {"bucket": "sec-logs", "prefix": "raw", "start_date": "2026-01-01", "delay": "30m"}


def dagbag(monkeypatch, config) -> DagBag:
    monkeypatch.setenv("AUDITLOGS_CONFIG", str(config))
    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_source_gets_a_dag_with_data_intervals_tags_and_docs(tmp_path, monkeypatch):
    config = write_config(
        tmp_path / "sources.yaml",
        {
            "slack": {"type": "slack", "conn_id": "slack_audit"},
            "slack_eu": {"type": "slack", "conn_id": "slack_eu", "schedule": "*/15 * * * *", "delay": "2h"},
        },
        **DEFAULTS,
    )
    bag = dagbag(monkeypatch, config)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["auditlogs_slack", "auditlogs_slack_eu"]

    dag = bag.dags["auditlogs_slack_eu"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert (dag.timetable.expression, str(dag.timetable.timezone)) == ("*/15 * * * *", "UTC")
    assert set(dag.tags) == {"auditlogs", "slack"}
    assert [task.task_id for task in dag.tasks] == ["collect_audit"]
    assert "widened back by the ingestion delay of 2h" in dag.doc_md
    assert (
        "gs://sec-logs/raw/slack_eu/<stream>/dt=YYYY-MM-DD/<start>_<end>/attempt-<id>/part-NNNNN.ndjson.gz"
        in dag.doc_md
    )
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert dag.default_args["retries"] == 3
    (task,) = dag.tasks
    assert isinstance(task.retry_policy, AuditLogRetryPolicy)
    assert [type(callback) for callback in task.on_failure_callback] == [AuditLogNotifier]
    param = dag.params.get_param("interval_start")
    assert param.resolve("2026-12-01T15:00:00+00:00") == "2026-12-01T15:00:00+00:00" and param.resolve(None) is None
    with pytest.raises(ParamValidationError):
        param.resolve(15)


def test_every_collecting_and_sweep_task_has_an_execution_timeout_from_the_config(tmp_path, monkeypatch):
    config = write_config(
        tmp_path / "sources.yaml",
        {
            "slack": {"type": "slack", "conn_id": "slack_audit", "sweep": "1d", "max_pages": 100},
            "onepassword": {"type": "onepassword", "conn_id": "op", "execution_timeout": "45m"},
        },
        **DEFAULTS,
    )
    bag = dagbag(monkeypatch, config)
    timeouts = {
        f"{dag.dag_id}.{task.task_id}": task.execution_timeout for dag in bag.dags.values() for task in dag.tasks
    }
    # Slack: 100 pages of 60 s at an eighth of 50 a minute (9.6 s apart), one page's 15 requests (5 attempts and
    # the rate limits 10 m of waits allow), its 10 m of waits, a 5 m quota reset, 10 m to publish
    slack = timedelta(seconds=100 * 69.6 + 15 * 60 + 600 + 300 + 600)
    assert timeouts == {
        "auditlogs_slack.collect_audit": slack,
        "auditlogs_slack_sweep.sweep_audit": slack,
        **{
            f"auditlogs_onepassword.collect_{s}": timedelta(minutes=45)
            for s in ("signinattempts", "itemusages", "auditevents")
        },
    }
    assert "A task that runs longer than 2h36m is stopped and retried" in bag.dags["auditlogs_slack"].doc_md


def test_a_broken_source_is_listed_with_its_error_and_the_others_still_load(tmp_path, monkeypatch):
    config = write_config(
        tmp_path / "sources.yaml",
        {"slack": {"type": "slack", "conn_id": "slack_audit"}, "slack_bad": {"type": "slack", "delay": "soon"}},
        **DEFAULTS,
    )
    bag = dagbag(monkeypatch, config)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["auditlogs_slack", "auditlogs_slack_bad"]
    broken = bag.dags["auditlogs_slack_bad"]
    assert "config-error" in broken.tags
    assert isinstance(broken.timetable, NullTimetable)  # never scheduled
    for text in (broken.description, broken.doc_md):
        assert f"{config}: source 'slack_bad'" in text
        assert "field 'delay': invalid duration 'soon'" in text
        assert "field 'conn_id': required" in text


def test_an_unreadable_config_is_a_dag_import_error(tmp_path, monkeypatch):
    config = tmp_path / "sources.yaml"
    config.write_text("sources: [")
    bag = dagbag(monkeypatch, config)
    assert bag.dag_ids == []
    [(path, error)] = bag.import_errors.items()
    assert path.endswith("auditlogs_dags.py")
    assert "is not valid YAML" in error


def test_parse_time_of_a_50_source_config_is_reported(tmp_path, monkeypatch, capsys):
    sources = {f"slack_{n:02d}": {"type": "slack", "conn_id": f"slack_{n:02d}"} for n in range(50)}
    config = write_config(tmp_path / "sources.yaml", sources, **DEFAULTS)
    dagbag(monkeypatch, config)  # warm imports, as a long-lived dag-processor has them
    started = time.perf_counter()
    bag = dagbag(monkeypatch, config)
    elapsed = time.perf_counter() - started
    assert len(bag.dag_ids) == 50 and bag.import_errors == {}
    with capsys.disabled():
        print(f"\n[report] DagBag parse of a 50-source config: {elapsed * 1000:.0f} ms")
