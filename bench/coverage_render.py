"""Render time of the coverage page: 20 sources x 7 days of hourly intervals (3,360 cells), against the GCS
emulator and a real Airflow metadata database (SQLite) holding each interval's Asset event.

Times what a page view does after authentication: the GCS listings, the Asset event and task instance
queries, the HTML. A cold view (empty cache) and a warm one (within the cache's TTL). Prints one JSON line.

    PYTHONPATH=plugins:include .venv/bin/python bench/coverage_render.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

SOURCES, DAYS, BUCKET = 20, 7, "coverage-bench"


def main() -> None:
    home = tempfile.mkdtemp(prefix="auditlogs-bench-coverage-")
    os.environ.update(
        {
            "AIRFLOW_HOME": home,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        }
    )
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True, capture_output=True)

    import yaml

    from auditlogs.assets import event_extra, stream_asset
    from auditlogs.config import load_config
    from auditlogs.coverage import metadata, model
    from auditlogs.coverage.page import render
    from auditlogs.sink.gcs import IntervalLocation
    from sandbox.coverage import plant
    from sandbox.gcs import GcsEmulatorProcess

    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    first, last = today - timedelta(days=DAYS - 1), today + timedelta(days=1)
    config = Path(home) / "sources.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "defaults": {
                    "bucket": BUCKET,
                    "prefix": "raw",
                    "start_date": (first - timedelta(days=30)).isoformat(),
                    "delay": "30m",
                },
                "sources": {f"slack_{n:02d}": {"type": "slack", "conn_id": "slack"} for n in range(SOURCES)},
            }
        )
    )
    sources = list(load_config(config).sources.values())
    with GcsEmulatorProcess((BUCKET,)) as gcs:
        os.environ.update(gcs.connection_env())
        for number, source in enumerate(sources):  # a gap a day in every fifth source
            gaps = {first + timedelta(days=d, hours=number % 24) for d in range(DAYS)} if number % 5 == 0 else set()
            plant(gcs, source, "audit", first, min(last, datetime.now(timezone.utc) - timedelta(hours=2)), gaps=gaps)
        _seed_asset_events(sources, first, last, stream_asset, event_extra, IntervalLocation, model)

        index = model.ManifestIndex(model.gcs_client)
        figures = {}
        for view in ("cold", "warm"):
            started = time.perf_counter()
            coverage = model.build(
                sources,
                first,
                last,
                datetime.now(timezone.utc),
                index,
                events=lambda s, stream: metadata.events(s, stream, first, last),
                runs=lambda s, stream: metadata.runs(s, stream, first, last),
            )
            page = render(coverage)
            figures[view] = {"seconds": round(time.perf_counter() - started, 3), "gcs_calls": coverage.gcs_calls}
        cells = sum(len(stream.cells) for stream in coverage.streams)
        if os.environ.get("BENCH_PROFILE"):  # where a warm view's time goes
            import cProfile

            cProfile.runctx(
                "view()",
                {},
                {
                    "view": lambda: render(
                        model.build(
                            sources,
                            first,
                            last,
                            datetime.now(timezone.utc),
                            index,
                            events=lambda s, stream: metadata.events(s, stream, first, last),
                            runs=lambda s, stream: metadata.runs(s, stream, first, last),
                        )
                    )
                },
                sort="tottime",
            )
    print(json.dumps({"sources": SOURCES, "days": DAYS, "cells": cells, "html_bytes": len(page), **figures}))


def _seed_asset_events(sources, first, last, stream_asset, event_extra, IntervalLocation, model) -> None:
    """Each interval's Asset event, as a successful run emits it."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        for source in sources:
            asset = AssetModel(uri=stream_asset(source, "audit").uri, name=stream_asset(source, "audit").uri)
            session.add(asset)
            session.flush()
            for interval in model.intervals(source, first, last):
                location = IntervalLocation(source.bucket, source.prefix, source.name, "audit", interval)
                session.add(AssetEvent(asset_id=asset.id, extra=event_extra(location, 7), timestamp=interval.end))


if __name__ == "__main__":
    main()
