"""Planting a coverage picture in GCS: manifests for every interval of a day range except the gaps, some of
them empty, the way a run writes them (interval folder naming of `sink.gcs`), for the coverage tests and
the render benchmark."""

from __future__ import annotations

import json
from datetime import datetime


def plant(gcs, source, stream: str, first: datetime, last: datetime, *, gaps=(), empty=(), events: int = 7) -> int:
    """Writes a manifest for each of the source's intervals starting in [first, last) but those starting at a
    time in `gaps`; those in `empty` record zero events. Returns how many were written."""
    from auditlogs.coverage.model import intervals
    from auditlogs.sink.gcs import MANIFEST_NAME, IntervalLocation

    written = 0
    for interval in intervals(source, first, last):
        if interval.start in gaps:
            continue
        location = IntervalLocation(source.bucket, source.prefix, source.name, stream, interval)
        count = 0 if interval.start in empty else events
        manifest = {
            "manifest_version": 1,
            "source": source.name,
            "stream": stream,
            "events": count,
            "interval": {"start": interval.start.isoformat(), "end": interval.end.isoformat()},
            "overlap": {"recent": [{"interval_end": interval.end.isoformat(), "late": 1, "histogram": {}}]},
            "advice": None,
        }
        gcs.write(source.bucket, location.object_name(MANIFEST_NAME), json.dumps(manifest).encode())
        written += 1
    return written
