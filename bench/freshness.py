"""Freshness: N sources on a 5-minute schedule against the sandbox, measured in real time, per set-up.

    python bench/freshness.py --setup local-sqlite [--sources 50] [--minutes 30] [--phase 0] [--slots 4]
    python bench/freshness.py --setup celery-postgres --sources 50,100,200 --minutes 15   # a search

Each set-up starts the same separate-process topology as bench/scale.py (sandbox.cluster), with every
source on the schedule `<phase>-59/5 * * * *` (every 5 minutes, `phase` minutes past; several set-ups can
run at once without their bursts meeting), catch-up off, delay 0, then unpauses them all. The runs the
scheduler creates at once for the last complete interval are let finish; from then on, for `--minutes`, every
interval that ends is measured:

* lag: the interval's end to its manifest's creation in GCS (the emulator's `timeCreated`), p50/p99/max;
* scheduler delay: the interval's end to its run being queued, and to its run starting;
* CPU seconds per interval per component (each component's process tree, bench/scale.py's `Sampler`), and
  peak RSS per component;
* failed runs, and late intervals: no manifest within `--late` seconds (default 120) of the end.

The load average is sampled every 30 s (the machine may be shared). With several source counts the set-up
is measured once per count, in order, and `sustained` is the largest count with no late interval and no
failed run. Writes bench/results/freshness-<setup>-<sources>.json and prints each result as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include"), str(ROOT / "plugins"), str(ROOT)]

import requests  # noqa: E402
import yaml  # noqa: E402

from bench.scale import BUCKET, TOKENS, Sampler, config_and_connections  # noqa: E402
from sandbox import SandboxProcess  # noqa: E402
from sandbox.cluster import AirflowCluster, PostgresDatabase, wait_for  # noqa: E402
from sandbox.gcs import GcsEmulatorProcess  # noqa: E402

UTC = timezone.utc
PERIOD = timedelta(minutes=5)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))], 1)


def spread(values: list[float]) -> dict:
    return {
        "p50": percentile(values, 0.5),
        "p99": percentile(values, 0.99),
        "max": round(max(values), 1) if values else None,
        "n": len(values),
    }


class LoadSampler(threading.Thread):
    """The 1-minute load average every `period` seconds."""

    def __init__(self, period: float = 30.0):
        super().__init__(daemon=True)
        self.period, self.samples, self._done = period, [os.getloadavg()[0]], threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.period):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> dict:
        self._done.set()
        self.join()
        return {
            "min": round(min(self.samples), 2),
            "median": round(statistics.median(self.samples), 2),
            "max": round(max(self.samples), 2),
            "samples": len(self.samples),
        }


def manifests(gcs: GcsEmulatorProcess) -> dict[tuple[str, datetime], datetime]:
    """(source, interval end) -> when its manifest was created in GCS."""
    found, token = {}, None
    while True:
        params = {"prefix": "raw/", **({"pageToken": token} if token else {})}
        body = requests.get(f"{gcs.url}/storage/v1/b/{BUCKET}/o", params=params, timeout=60).json()
        for item in body.get("items", []):
            name = item["name"]
            if not name.endswith("/_manifest.json"):
                continue
            parts = name.split("/")  # raw/<source>/<stream>/dt=.../<start>_<end>/_manifest.json
            end = datetime.strptime(parts[-2].split("_")[1], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            found[(parts[1], end)] = parse_time(item["timeCreated"])
        token = body.get("nextPageToken")
        if not token:
            return found


def patiently(call, attempts: int = 10):
    """A REST call again after a timeout or a 5xx: on a loaded machine the API server can take over a minute
    (and on SQLite answers 500 "Database error" while another process writes), and the bench's calls
    (reads, and the idempotent unpause) are safe to repeat."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except (requests.RequestException, RuntimeError) as exc:  # RuntimeError: cluster.api's non-2xx
            if attempt == attempts or (isinstance(exc, RuntimeError) and not re.search(r": 5\d\d ", str(exc)[:300])):
                raise
            time.sleep(5)


def scheduled_runs(cluster: AirflowCluster) -> list[dict]:
    runs, offset = [], 0
    while True:
        page = patiently(
            lambda offset=offset: cluster.api("GET", f"dags/~/dagRuns?run_type=scheduled&limit=100&offset={offset}")
        )["dag_runs"]
        runs += page
        offset += len(page)
        if len(page) < 100:
            return runs


def interval_ends(after: datetime, until: datetime, phase: int) -> list[datetime]:
    """The 5-minute marks (`phase` minutes past) in (after, until]."""
    mark = after.replace(second=0, microsecond=0) - timedelta(minutes=(after.minute - phase) % 5)
    ends = []
    while mark <= until:
        if mark > after:
            ends.append(mark)
        mark += PERIOD
    return ends


def run_setup(
    setup: str, sources: int, minutes: float, phase: int, slots: int, events_per_hour: int, late: float
) -> dict:
    executor, database = setup.split("-")
    work = Path(tempfile.mkdtemp(prefix=f"auditlogs-fresh-{setup}-"))
    scenario = {
        "seed": 5,
        "sources": {
            kind: {"events_per_hour": events_per_hour, "token": token, "rate_limit_per_minute": 0}
            for kind, token in TOKENS.items()
        },
    }
    db = PostgresDatabase() if database == "postgres" else None
    loads = LoadSampler()
    loads.start()
    with SandboxProcess(scenario) as api, GcsEmulatorProcess((BUCKET,)) as gcs:
        start_date = (datetime.now(UTC) - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
        config, env = config_and_connections(
            sources, api.url, work, schedule=f"{phase}-59/5 * * * *", start_date=start_date.isoformat(), catchup=False
        )
        env.update({"AUDITLOGS_CONFIG": str(config), **gcs.connection_env(), "AIRFLOW__CORE__PARALLELISM": str(slots)})
        if db:
            db.__enter__()
        url = db.sqlalchemy_url if db else f"sqlite:///{work / 'airflow.db'}"
        cluster = AirflowCluster(
            work / "airflow",
            url,
            executor="CeleryExecutor" if executor == "celery" else "LocalExecutor",
            workers=2,
            worker_concurrency=max(1, slots // 2),
            extra_env=env,
        )
        try:
            cluster.start()
            names = list(yaml.safe_load(config.read_text())["sources"])
            dag_ids = [f"auditlogs_{name}" for name in names]
            patiently(lambda: cluster.wait_for_dags(dag_ids, timeout=1800))
            for dag_id in dag_ids:
                patiently(lambda dag_id=dag_id: cluster.unpause(dag_id))
            unpaused = datetime.now(UTC)

            def first_runs_done():  # the runs created at once for the last complete interval
                cluster.check_alive()
                runs = scheduled_runs(cluster)
                return len(runs) >= sources and all(r["state"] in ("success", "failed") for r in runs)

            wait_for("the first runs", first_runs_done, timeout=1800, poll=5)
            sampler = Sampler(cluster)
            sampler.start()
            measured_from = datetime.now(UTC)
            ends = interval_ends(measured_from, measured_from + timedelta(minutes=minutes), phase)
            expected = {(name, end) for name in names for end in ends}

            def all_landed_or_late():
                cluster.check_alive()
                now = datetime.now(UTC)
                if now < ends[-1]:
                    return None
                landed = patiently(lambda: manifests(gcs))
                runs = [r for r in scheduled_runs(cluster) if parse_time(r["data_interval_end"]) in ends]
                finished = len(runs) >= len(expected) and all(r["state"] in ("success", "failed") for r in runs)
                if (expected <= set(landed) and finished) or now > ends[-1] + timedelta(seconds=max(late, 300)):
                    return landed, runs
                return None

            landed, runs = wait_for(
                "the measured intervals",
                all_landed_or_late,
                timeout=(ends[-1] - datetime.now(UTC)).total_seconds() + max(late, 300) + 600,
                poll=5,
            )
            usage = sampler.stop()
        finally:
            cluster.stop()
            if db:
                db.drop()
    load = loads.stop()
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"freshness-{setup}-{sources}.raw.json").write_text(
        json.dumps(  # kept if the summary below fails
            {
                "landed": {f"{n}@{e.isoformat()}": t.isoformat() for (n, e), t in landed.items()},
                "runs": runs,
                "usage": usage,
                "load": load,
                "ends": [e.isoformat() for e in ends],
            },
            default=str,
        )
    )
    lags = [(landed[key] - key[1]).total_seconds() for key in expected if key in landed]
    late_intervals = sorted(
        f"{name}@{end:%H:%M}"
        for name, end in expected
        if (name, end) not in landed or (landed[(name, end)] - end).total_seconds() > late
    )
    queued = [
        (parse_time(r["queued_at"]) - parse_time(r["data_interval_end"])).total_seconds()
        for r in runs
        if r.get("queued_at")
    ]
    started = [
        (parse_time(r["start_date"]) - parse_time(r["data_interval_end"])).total_seconds()
        for r in runs
        if r.get("start_date")
    ]
    count = len(expected)
    result = {
        "setup": setup,
        "sources": sources,
        "schedule": f"{phase}-59/5 * * * *",
        "slots": slots,
        "measured_from": measured_from.isoformat(),
        "interval_ends": [f"{e:%H:%M}" for e in ends],
        "unpaused_at": unpaused.isoformat(),
        "intervals": count,
        "landed": len(lags),
        "lag_s": spread(lags),
        "scheduler_delay_queued_s": spread(queued),
        "scheduler_delay_started_s": spread(started),
        "runs": {
            "total": len(runs),
            "success": sum(r["state"] == "success" for r in runs),
            "failed": sum(r["state"] == "failed" for r in runs),
        },
        "late": len(late_intervals),
        "late_intervals": late_intervals[:50],
        "late_threshold_s": late,
        "cpu_s_per_interval": {k: round(v / count, 3) for k, v in usage["cpu_seconds"].items()},
        **usage,
        "load_average": load,
    }
    result["sustained"] = result["late"] == 0 and result["runs"]["failed"] == 0 and len(runs) >= count
    (out / f"freshness-{setup}-{sources}.json").write_text(json.dumps(result, indent=2))
    return result


def markdown_row(r: dict) -> str:
    cpu, rss, lag = r["cpu_s_per_interval"], r["peak_rss_mib"], r["lag_s"]
    components = ("scheduler", "workers", "api-server", "execution-api", "dag-processor", "triggerer")
    return (
        f"| {r['setup']} | {r['sources']} | {r['intervals']} | {lag['p50']} / {lag['p99']} / {lag['max']} | "
        f"{r['scheduler_delay_queued_s']['p50']} / {r['scheduler_delay_started_s']['p50']} / "
        f"{r['scheduler_delay_started_s']['max']} | "
        + " / ".join(f"{cpu.get(c, 0):.2f}" for c in components)
        + " | "
        + " / ".join(str(rss.get(c, 0)) for c in components)
        + " | "
        f"{r['runs']['failed']} / {r['late']} | {r['load_average']['median']} ({r['load_average']['min']}-"
        f"{r['load_average']['max']}) |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setup", required=True, choices=("local-sqlite", "local-postgres", "celery-postgres"))
    parser.add_argument("--sources", default="50", help="a count, or several (a search), comma-separated")
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--phase", type=int, default=0, choices=range(5))
    parser.add_argument("--slots", type=int, default=4, help="task slots (Celery: two workers of half each)")
    parser.add_argument("--events-per-hour", type=int, default=600)
    parser.add_argument("--late", type=float, default=120.0, help="seconds after its end an interval counts late")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the cluster and drop its database on kill
    sustained = None
    for sources in [int(s) for s in args.sources.split(",")]:
        result = run_setup(args.setup, sources, args.minutes, args.phase, args.slots, args.events_per_hour, args.late)
        print(json.dumps(result), flush=True)
        print(markdown_row(result), flush=True)
        if not result["sustained"]:
            break
        sustained = sources
    print(json.dumps({"setup": args.setup, "sustained": sustained}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
