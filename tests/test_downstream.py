"""The example BigQuery DAG: generated only on request, scheduled on the stream's Asset, loading the
parts of exactly the announced intervals."""

from __future__ import annotations

from types import SimpleNamespace

from auditlogs.downstream import LoadIntervalsToBigQueryOperator, interval_objects
from auditlogs.factory import build_dags
from harness import write_config


def test_the_bigquery_dag_exists_only_when_configured(tmp_path):
    config = write_config(
        tmp_path / "sources.yaml",
        {
            "slack": {"type": "slack", "conn_id": "c"},
            "loaded": {"type": "slack", "conn_id": "c", "bigquery_dataset": "proj.security"},
        },
        bucket="b-1",
        prefix="raw",
        start_date="2026-01-01",
    )
    dags = build_dags(config)
    assert sorted(dags) == ["auditlogs_loaded", "auditlogs_loaded_audit_to_bigquery", "auditlogs_slack"]

    load = dags["auditlogs_loaded_audit_to_bigquery"].get_task("load_intervals")
    assert isinstance(load, LoadIntervalsToBigQueryOperator)
    assert load.destination_project_dataset_table == "proj.security.loaded_audit"
    assert (load.source_format, load.compression, load.bucket) == ("NEWLINE_DELIMITED_JSON", "GZIP", "b-1")
    producer = dags["auditlogs_loaded"].get_task("collect_audit")
    assert [a.uri for a in producer.outlets] == [load.asset.uri] == ["gs://b-1/raw/loaded/audit"]


def test_each_announced_interval_is_loaded_once_with_exactly_its_manifest_parts():
    a, b = "gs://b-1/raw/s/audit/dt=2026-03-01/A", "gs://b-1/raw/s/audit/dt=2026-03-01/B"
    a_parts = [f"{a}/t1/part-00000.ndjson.gz", f"{a}/t1/part-00001.ndjson.gz"]
    events = [
        SimpleNamespace(extra={"folder": "raw/s/audit/dt=2026-03-01/A", "parts": a_parts}),
        SimpleNamespace(extra={"folder": "raw/s/audit/dt=2026-03-01/B", "parts": [f"{b}/t7/part-00000.ndjson.gz"]}),
        SimpleNamespace(extra={"folder": "raw/s/audit/dt=2026-03-01/A", "parts": a_parts}),
        SimpleNamespace(extra={"folder": "raw/s/audit/dt=2026-03-01/C"}),
    ]  # no parts: nothing to guess
    assert interval_objects(events, "b-1") == [
        "raw/s/audit/dt=2026-03-01/A/t1/part-00000.ndjson.gz",
        "raw/s/audit/dt=2026-03-01/A/t1/part-00001.ndjson.gz",
        "raw/s/audit/dt=2026-03-01/B/t7/part-00000.ndjson.gz",
    ]
