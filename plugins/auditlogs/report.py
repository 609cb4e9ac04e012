"""Storage figures per source over a date range, from the manifests alone.

    python -m auditlogs.report overhead --source slack --from 2026-03-01 --to 2026-03-07

Reads the config (`AUDITLOGS_CONFIG`) for the source's bucket, prefix and streams, and GCS through the
source's `gcp_conn_id` (Airflow connections, e.g. `AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT`). The overhead ratio is
events fetched / unique events stored: what the overlap costs in requests and, without de-duplication, in
storage. "Unique" subtracts the events a run wrote although an earlier run had stored them (`dedup: false`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta

from auditlogs.config import SourceConfig, load_config
from auditlogs.sink.gcs import MANIFEST_NAME


def overhead(hook, source: SourceConfig, first: date, last: date) -> dict:
    """Totals per stream and overall for the intervals (and sweeps) whose `dt=` is in [first, last]."""
    streams = {}
    for stream in source.stream_names():
        totals = {"intervals": 0, "sweeps": 0, "fetched": 0, "in_window": 0, "written": 0,
                  "written_again": 0, "recovered": 0, "late_arrivals": 0, "bytes_written": 0, "requests": 0}
        day = first
        while day <= last:
            for sub in ("", "sweep/"):
                folder = "/".join(p for p in (source.prefix, source.name, stream) if p) + f"/{sub}dt={day:%Y-%m-%d}/"
                for name in hook.list(source.bucket, prefix=folder):
                    if name.endswith("/" + MANIFEST_NAME):
                        _add(totals, json.loads(hook.download(source.bucket, name)))
            day += timedelta(days=1)
        streams[stream] = _ratios(totals)
    overall = {key: sum(s[key] for s in streams.values()) for key in next(iter(streams.values())) if key not in _RATIOS}
    return {"source": source.name, "from": first.isoformat(), "to": last.isoformat(), "streams": streams,
            "total": _ratios(overall)}


_RATIOS = ("unique_stored", "overhead_fetched_per_unique", "stored_per_unique")


def _add(totals: dict, manifest: dict) -> None:
    storage = manifest.get("storage") or {}
    overlap = manifest.get("overlap") or {}
    sweep = manifest.get("sweep")
    totals["sweeps" if sweep else "intervals"] += 1
    totals["fetched"] += manifest.get("fetched", 0)
    totals["in_window"] += storage.get("events_in_window", manifest.get("events", 0))
    totals["written"] += manifest.get("events", 0)
    totals["written_again"] += 0 if overlap.get("dedup", True) else overlap.get("already_stored", 0)
    totals["recovered"] += sweep["recovered"] if sweep else 0
    totals["late_arrivals"] += (overlap.get("late_arrivals") or {}).get("count", 0)
    totals["bytes_written"] += storage.get("bytes_written", sum(p.get("bytes", 0) for p in manifest.get("parts", [])))
    totals["requests"] += (manifest.get("requests") or {}).get("count", 0)


def _ratios(totals: dict) -> dict:
    unique = totals["written"] - totals["written_again"]
    return {
        **totals,
        "unique_stored": unique,
        "overhead_fetched_per_unique": round(totals["fetched"] / unique, 4) if unique else None,
        "stored_per_unique": round(totals["written"] / unique, 4) if unique else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auditlogs.report")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("overhead", help="events fetched / unique events stored, per stream")
    command.add_argument("--source", required=True)
    command.add_argument("--from", dest="first", required=True, type=date.fromisoformat)
    command.add_argument("--to", dest="last", required=True, type=date.fromisoformat)
    command.add_argument("--config", default=None)
    args = parser.parse_args(argv)

    loaded = load_config(args.config)
    source = loaded.sources.get(args.source)
    if source is None:
        print(loaded.errors.get(args.source) or f"no source '{args.source}' in {loaded.path}", file=sys.stderr)
        return 2
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    report = overhead(GCSHook(gcp_conn_id=source.gcp_conn_id), source, args.first, args.last)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
