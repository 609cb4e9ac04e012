"""OpenLineage facets of a collecting task: the API endpoint it read, the stream folder it wrote, the interval.

Datasets are one per stream, not one per object: the input is the endpoint (namespace `https://host[:port]`,
name its path, as OpenLineage names other HTTP resources), the output the stream's folder, named as
OpenLineage names GCS (namespace `gs://bucket`, name `prefix/source/stream`, the same as the stream's Airflow
Asset). Which interval (and window, event count, manifest) a run wrote is the run facet `auditlogs_interval`.

Because the operator declares these, the OpenLineage provider does not fall back to `GCSHook`'s hook
lineage, which would report every earlier manifest read as an input and every part as an output.
Imported only when the OpenLineage provider asks for facets, so the package works without it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import attr
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.event_v2 import Dataset
from openlineage.client.facet_v2 import RunFacet

FACET_NAME = "auditlogs_interval"


@attr.define
class IntervalRunFacet(RunFacet):
    """The data interval a run collected (half-open), the widened window it fetched, and what it published."""

    start: str
    end: str
    windowStart: str | None = None  # noqa: N815 (OpenLineage facets use camelCase)
    windowEnd: str | None = None  # noqa: N815
    events: int | None = None
    manifest: str | None = None

    @staticmethod
    def _get_schema() -> str:
        return "urn:auditlogs:facet:IntervalRunFacet:1"  # no published schema; README: Lineage lists the fields


def api_dataset(url: str) -> Dataset:
    parts = urlsplit(url)
    return Dataset(namespace=f"{parts.scheme}://{parts.netloc}", name=parts.path or "/")


def stream_dataset(bucket: str, prefix: str, source: str, stream: str) -> Dataset:
    return Dataset(namespace=f"gs://{bucket}", name="/".join(part for part in (prefix, source, stream) if part))


def operator_lineage(
    api_url: str | None,
    output: Dataset,
    interval: Any = None,
    window: Any = None,
    manifest: dict | None = None,
    manifest_uri: str | None = None,
) -> OperatorLineage:
    run_facets = {}
    if interval is not None:
        run_facets[FACET_NAME] = IntervalRunFacet(
            start=interval.start.isoformat(),
            end=interval.end.isoformat(),
            windowStart=window and window.start.isoformat(),
            windowEnd=window and window.end.isoformat(),
            events=manifest["events"] if manifest else None,
            manifest=manifest_uri if manifest else None,
        )
    return OperatorLineage(inputs=[api_dataset(api_url)] if api_url else [], outputs=[output], run_facets=run_facets)
