"""The Airflow Asset of each stream: `gs://{bucket}/{prefix}/{source}/{stream}`, one per stream, not per object.

Every successful collection emits an event on it whose extra says which interval is now complete, so
downstream DAGs (a BigQuery load, detections) can be scheduled on fresh data.
"""

from __future__ import annotations

from airflow.sdk import Asset

from auditlogs.config import SourceConfig
from auditlogs.sink.gcs import MANIFEST_NAME, IntervalLocation


def stream_asset(source: SourceConfig, stream: str) -> Asset:
    path = "/".join(part for part in (source.prefix, source.name, stream) if part)
    return Asset(uri=f"gs://{source.bucket}/{path}", extra={"source": source.name, "stream": stream})


def event_extra(location: IntervalLocation, manifest: dict) -> dict:
    """What a consumer needs to load the interval: where it is, which interval, how many events, and its
    parts (exactly the manifest's: the folder may also hold another attempt's)."""
    return {
        "interval": {"start": location.interval.start.isoformat(), "end": location.interval.end.isoformat()},
        "events": manifest["events"],
        "parts": [part["uri"] for part in manifest["parts"]],
        "manifest": location.uri(MANIFEST_NAME),
        "bucket": location.bucket,
        "folder": location.folder,
    }
