"""Storage figures per source over a date range, from the manifests alone.

    python -m auditlogs.report overhead --source slack --from 2026-03-01 --to 2026-03-07
    python -m auditlogs.report coverage --from 2026-03-01 --to 2026-03-07 [--source slack] [--format json]

Reads the config (`AUDITLOGS_CONFIG`) for the source's bucket, prefix and streams, and GCS through the
source's `gcp_conn_id` (Airflow connections, e.g. `AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT`). The overhead ratio is
events fetched / unique events stored: what the overlap costs in requests and, without de-duplication, in
storage. "Unique" subtracts the events a run wrote although an earlier run had stored them (`dedup: false`).
`coverage` prints every interval's state (the coverage page's data) and exits 1 when a due interval has no
manifest, so a monitoring job can run it. Where Airflow's metadata database answers (run it where Airflow is
configured) the states of the collecting runs come from there, as on the page, so a failed or running interval
shows as such; otherwise (or with `--no-airflow`) it reads GCS alone and says so, and those show as missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, time, timedelta, timezone

from auditlogs.config import SourceConfig, load_config
from auditlogs.sink.gcs import MANIFEST_NAME


def overhead(hook, source: SourceConfig, first: date, last: date) -> dict:
    """Totals per stream and overall for the intervals (and sweeps) whose `dt=` is in [first, last]."""
    streams = {}
    for stream in source.stream_names():
        totals = {
            "intervals": 0,
            "sweeps": 0,
            "fetched": 0,
            "in_window": 0,
            "written": 0,
            "written_again": 0,
            "recovered": 0,
            "late_arrivals": 0,
            "bytes_written": 0,
            "requests": 0,
        }
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
    return {
        "source": source.name,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "streams": streams,
        "total": _ratios(overall),
    }


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
    command = commands.add_parser("coverage", help="every interval's state; exit 1 when a due one is missing")
    command.add_argument("--source", action="append", help="only this source (repeatable); default: all")
    command.add_argument("--from", dest="first", required=True, type=date.fromisoformat)
    command.add_argument("--to", dest="last", required=True, type=date.fromisoformat, help="inclusive")
    command.add_argument("--format", choices=("text", "json"), default="text")
    command.add_argument(
        "--no-airflow", action="store_true", help="GCS only: do not read run states from Airflow's metadata database"
    )
    command.add_argument("--config", default=None)
    args = parser.parse_args(argv)

    loaded = load_config(args.config)
    if args.command == "coverage":
        return coverage(loaded, args)
    source = loaded.sources.get(args.source)
    if source is None:
        print(loaded.errors.get(args.source) or f"no source '{args.source}' in {loaded.path}", file=sys.stderr)
        return 2
    from airflow.providers.google.cloud.hooks.gcs import GCSHook

    report = overhead(GCSHook(gcp_conn_id=source.gcp_conn_id), source, args.first, args.last)
    print(json.dumps(report, indent=2))
    return 0


def coverage(loaded, args) -> int:
    from auditlogs.coverage import metadata, model

    unknown = [name for name in args.source or () if name not in loaded.sources]
    if unknown:
        for name in unknown:
            print(loaded.errors.get(name) or f"no source '{name}' in {loaded.path}", file=sys.stderr)
        return 2
    sources = [loaded.sources[name] for name in args.source] if args.source else list(loaded.sources.values())
    first = datetime.combine(args.first, time(), timezone.utc)
    last = datetime.combine(args.last + timedelta(days=1), time(), timezone.utc)
    now = datetime.now(timezone.utc)
    gcs_only = "--no-airflow given" if args.no_airflow else metadata.unreachable()
    result = model.build(
        sources,
        first,
        last,
        now,
        model.ManifestIndex(model.gcs_client),
        runs=(lambda source, stream: {})
        if gcs_only
        else (lambda source, stream: metadata.runs(source, stream, first, last)),
    )
    missing = sum(len(stream.missing) for stream in result.streams)
    if args.format == "json":
        print(
            json.dumps(
                {**result.record(), "run_states": "airflow" if not gcs_only else None, "gcs_only_because": gcs_only},
                indent=2,
            )
        )
    else:
        print(coverage_text(result, gcs_only))
    return 1 if missing else 0


def coverage_text(result, gcs_only: str | None = None) -> str:
    """Where the run states came from, one line per stream with its counts, then one line per interval that is
    missing, failed or running (with its run)."""
    from auditlogs.coverage import model

    lines = [
        f"coverage of intervals starting in [{result.first}, {result.last}), as of {result.now}; "
        + (
            f"GCS only, failed and running intervals show as missing ({gcs_only})"
            if gcs_only
            else "run states from Airflow's metadata database"
        )
    ]
    for stream in result.streams:
        counts = ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in stream.counts.items() if n)
        lines.append(f"{stream.source}/{stream.stream}: {counts or 'no intervals'}")
        for cell in stream.cells:
            if cell.state in (model.FAILED, model.MISSING, model.RUNNING):
                run = f" run {cell.run_id}" if cell.run_id else ""
                where = f"gs://{stream.bucket}/{cell.folder}/"
                lines.append(f"  {cell.state.upper()} [{cell.start}, {cell.end}) {where}{run}")
    missing = sum(len(stream.missing) for stream in result.streams)
    failed = sum(stream.counts[model.FAILED] for stream in result.streams)
    lines.append(
        f"{missing} due interval(s) without a manifest" + (f" ({failed} failed)" if failed else "")
        if missing
        else "every due interval is complete"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
