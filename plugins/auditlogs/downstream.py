"""Example downstream DAG: load each finished interval into BigQuery when its Asset event arrives.

Generated only for sources that set `bigquery_dataset: project.dataset` (off by default): one DAG per
stream, `auditlogs_<source>_<stream>_to_bigquery`, scheduled on the stream's Asset. It appends exactly the
parts each event names (the manifest's, never a wildcard over the folder, which may also hold another
attempt's parts) of every interval announced since its last run to the table `<source>_<stream>` with
schema autodetection.
Intervals overlap by the source's delay and reruns rewrite an interval, so de-duplicate by event id when
querying. It is an example to adapt (a fixed schema, partitioning), not a warehouse design.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.google.cloud.transfers.gcs_to_bigquery import GCSToBigQueryOperator
from airflow.sdk import DAG, Asset
from airflow.sdk.exceptions import AirflowSkipException

from auditlogs.assets import stream_asset
from auditlogs.config import SourceConfig


def bigquery_dag(source: SourceConfig, stream: str, dag_id: str) -> DAG:
    """The example DAG of one stream; its id (`auditlogs_<source>_<stream>_to_bigquery`) is the factory's."""
    asset = stream_asset(source, stream)
    dag = DAG(
        dag_id=dag_id,
        description=f"Example: load {asset.uri} intervals into BigQuery",
        schedule=[asset],
        start_date=source.start_date,
        catchup=False,
        max_active_runs=1,
        tags=["auditlogs", "bigquery", "example"],
    )
    LoadIntervalsToBigQueryOperator(
        task_id="load_intervals",
        asset=asset,
        bucket=source.bucket,
        destination_project_dataset_table=f"{source.bigquery_dataset}.{source.name}_{stream}",
        gcp_conn_id=source.gcp_conn_id,
        dag=dag,
    )
    return dag


class LoadIntervalsToBigQueryOperator(GCSToBigQueryOperator):
    """GCSToBigQueryOperator whose source objects are the parts of the intervals in the triggering events."""

    def __init__(self, *, asset: Asset, **kwargs: Any):
        kwargs = {
            "source_objects": [],
            "source_format": "NEWLINE_DELIMITED_JSON",
            "compression": "GZIP",
            "autodetect": True,
            "ignore_unknown_values": True,
            "write_disposition": "WRITE_APPEND",
            "create_disposition": "CREATE_IF_NEEDED",
            **kwargs,
        }
        super().__init__(**kwargs)
        self.asset = asset

    def execute(self, context: Any):
        self.source_objects = interval_objects(context["triggering_asset_events"][self.asset], self.bucket)
        if not self.source_objects:
            raise AirflowSkipException("the triggering events name no interval parts")
        self.log.info("Loading %d interval(s): %s", len(self.source_objects), self.source_objects)
        return super().execute(context)


def interval_objects(events, bucket: str) -> list[str]:
    """The object names of each announced interval's parts, in event order, each once."""
    in_bucket = f"gs://{bucket}/"
    uris = [uri for event in events for uri in event.extra.get("parts", [])]
    return list(dict.fromkeys(uri.removeprefix(in_bucket) for uri in uris if uri.startswith(in_bucket)))
