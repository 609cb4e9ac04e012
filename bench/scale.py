"""Scale figures: N sources against the sandbox, a K-interval backfill each, per executor set-up.

    python bench/scale.py [--setups celery-postgres,local-postgres,local-sqlite] [--sources 20] [--intervals 24]

Each set-up starts the same separate-process topology as the distributed tests (sandbox.cluster), creates
one backfill per source through the REST API (what `airflow backfill create` does), and measures until every
backfill run has finished: intervals per minute, events per second (from the manifests in GCS), CPU seconds
and peak RSS of the scheduler and of the task-running processes (Celery workers, or the LocalExecutor's
workers under the scheduler), and the metadata DB's growth. Writes bench/results/scale-<setup>.json and
prints a Markdown row per set-up for bench/SCALE.md. Figures, not asserts: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include"), str(ROOT / "plugins")]

import psutil  # noqa: E402
import yaml  # noqa: E402

from sandbox import SandboxProcess  # noqa: E402
from sandbox.cluster import AirflowCluster, PostgresDatabase, wait_for  # noqa: E402
from sandbox.gcs import GcsEmulatorProcess  # noqa: E402
from sandbox.github import ORG  # noqa: E402

UTC = timezone.utc
BUCKET = "auditlogs-scale"
TOKENS = {
    "slack": "xoxp-scale",
    "okta": "00scaleOkta0123456789",
    "github": "ghp_scale0123456789abcdef",
    "onepassword": "eyJhbGciOiJFUzI1NiJ9.eyJzY2FsZSI6dHJ1ZX0.c2ln",
}
KIND_OPTIONS = {
    "slack": {},
    "okta": {"extra": {"auth_scheme": "Bearer"}},
    "github": {"org": ORG, "include": "all"},
    "onepassword": {"streams": ["auditevents"]},
}
FIRST_INTERVAL = datetime(2026, 11, 1, tzinfo=UTC)


def config_and_connections(sources: int, api_url: str, folder: Path, **defaults) -> tuple[Path, dict[str, str]]:
    """The config of `sources` sources in rotation over four APIs and their connections; `defaults` adds to
    or replaces the config's defaults (bench/freshness.py sets the schedule)."""
    kinds = list(TOKENS)
    entries, env = {}, {}
    for index in range(sources):
        kind = kinds[index % len(kinds)]
        options = {k: v for k, v in KIND_OPTIONS[kind].items() if k != "extra"}
        entries[f"{kind}_{index:02d}"] = {"type": kind, "conn_id": f"{kind}_api", **options}
    for kind in kinds:
        host = api_url + ("/api/v3" if kind == "github" else "")
        env[f"AIRFLOW_CONN_{kind.upper()}_API"] = json.dumps(
            {"conn_type": "http", "host": host, "password": TOKENS[kind], "extra": KIND_OPTIONS[kind].get("extra", {})}
        )
    path = folder / "sources.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {
                    "bucket": BUCKET,
                    "prefix": "raw",
                    "start_date": "2026-01-01T00:00:00Z",
                    "delay": "0s",
                    "deadline": "off",
                    "retries": 2,
                    "retry_delay": "10s",
                    **defaults,
                },
                "sources": entries,
            },
            sort_keys=False,
        )
    )
    return path, env


class Sampler:
    """CPU seconds and peak RSS per role over each component's whole process tree.

    CPU is read at the start and at the end, not sampled: each live process's own time plus the time of the
    children it has reaped (`children_user/system`), so task processes that live less than a sampling period
    are counted too. Peak RSS is the largest sum per role over samples every `period` s.
    """

    def __init__(self, cluster: AirflowCluster, period: float = 2.0):
        self.cluster, self.period = cluster, period
        self.peak_rss: dict[str, int] = {}
        self._start: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def roles(self, name: str, component, process) -> tuple[str, str]:
        """Roles of a process's own time and of its reaped children's time. The LocalExecutor runs tasks in
        worker processes under the scheduler: those (and what they reap) count as workers."""
        role = "workers" if name.startswith("worker-") else name
        if name == "scheduler" and "LocalExecutor" in self.cluster.executor:
            return ("scheduler" if process.pid == component.proc.pid else "workers"), "workers"
        return role, role

    def cpu_now(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for name, component in self.cluster.components.items():
            for process in component.tree():
                try:
                    times = process.cpu_times()
                except psutil.Error:
                    continue
                own, reaped = self.roles(name, component, process)
                totals[own] = totals.get(own, 0.0) + times.user + times.system
                totals[reaped] = totals.get(reaped, 0.0) + times.children_user + times.children_system
        return totals

    def sample_rss(self) -> None:
        rss: dict[str, int] = {}
        for name, component in self.cluster.components.items():
            for process in component.tree():
                try:
                    memory = process.memory_info().rss
                except psutil.Error:
                    continue
                role = self.roles(name, component, process)[0]
                rss[role] = rss.get(role, 0) + memory
        for role, total in rss.items():
            self.peak_rss[role] = max(self.peak_rss.get(role, 0), total)

    def start(self) -> None:
        self._start = self.cpu_now()
        self.sample_rss()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.sample_rss()

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        self.sample_rss()
        end = self.cpu_now()
        cpu = {role: end[role] - self._start.get(role, 0.0) for role in end}
        return {
            "cpu_seconds": {k: round(v, 1) for k, v in sorted(cpu.items())},
            "peak_rss_mib": {k: round(v / 2**20) for k, v in sorted(self.peak_rss.items())},
        }


def backfill_states(cluster: AirflowCluster) -> dict[str, int]:
    runs = cluster.api("GET", "dags/~/dagRuns?run_type=backfill&limit=1")["total_entries"]
    finished = {
        state: cluster.api("GET", f"dags/~/dagRuns?run_type=backfill&state={state}&limit=1")["total_entries"]
        for state in ("success", "failed")
    }
    return {"runs": runs, **finished}


def events_written(gcs: GcsEmulatorProcess, intervals: int) -> tuple[int, int]:
    """Manifests and events of the backfilled intervals (not of the latest hour each unpaused DAG also runs)."""
    starts = {f"/{FIRST_INTERVAL + timedelta(hours=h):%Y%m%dT%H%M%SZ}_" for h in range(intervals)}
    manifests = [
        n for n in gcs.list(BUCKET, "raw/") if n.endswith("_manifest.json") and any(start in n for start in starts)
    ]
    return len(manifests), sum(json.loads(gcs.read(BUCKET, n))["events"] for n in manifests)


def create_backfill(cluster: AirflowCluster, body: dict, attempts: int = 30) -> int:
    """POST /backfills, again after a 503: on SQLite the API server refuses a backfill while another process
    holds the database lock ("Backfill creation is not supported on SQLite under concurrent access"), and
    retrying is what a user of `airflow backfill create` would do. Returns the refusals."""
    for attempt in range(1, attempts + 1):
        response = cluster.api("POST", "backfills", body, ok=(200, 201, 503))
        if response.get("dag_id") == body["dag_id"]:
            return attempt - 1
        if attempt == attempts:
            raise RuntimeError(f"backfill of {body['dag_id']} still refused after {attempts} attempts: {response}")
        time.sleep(2)


def run_setup(setup: str, sources: int, intervals: int, concurrency: int, events_per_hour: int) -> dict:
    executor, database = setup.split("-")
    work = Path(tempfile.mkdtemp(prefix=f"auditlogs-scale-{setup}-"))
    scenario = {
        "seed": 3,
        "sources": {
            kind: {"events_per_hour": events_per_hour, "token": token, "rate_limit_per_minute": 0}
            for kind, token in TOKENS.items()
        },
    }
    db = PostgresDatabase() if database == "postgres" else None
    with SandboxProcess(scenario) as api, GcsEmulatorProcess((BUCKET,)) as gcs:
        config, env = config_and_connections(sources, api.url, work)
        env.update(
            {
                "AUDITLOGS_CONFIG": str(config),
                **gcs.connection_env(),
                "AIRFLOW__CORE__PARALLELISM": str(2 * concurrency),
            }
        )
        if db:
            db.__enter__()
        sqlite = work / "airflow.db"
        url = db.sqlalchemy_url if db else f"sqlite:///{sqlite}"
        cluster = AirflowCluster(
            work / "airflow",
            url,
            executor="CeleryExecutor" if executor == "celery" else "LocalExecutor",
            workers=2,
            worker_concurrency=concurrency,
            extra_env=env,
        )
        try:
            cluster.start()
            dag_ids = [f"auditlogs_{name}" for name in yaml.safe_load(config.read_text())["sources"]]
            cluster.wait_for_dags(dag_ids, timeout=900)
            size_before = db.size_bytes() if db else sqlite.stat().st_size
            sampler = Sampler(cluster)
            sampler.start()
            started = time.monotonic()
            refused = 0
            for dag_id in dag_ids:
                refused += create_backfill(
                    cluster,
                    {
                        "dag_id": dag_id,
                        "from_date": FIRST_INTERVAL.isoformat(),
                        "to_date": (FIRST_INTERVAL + timedelta(hours=intervals - 1)).isoformat(),
                        "max_active_runs": 10,
                        "reprocess_behavior": "none",
                    },
                )
            cluster.unpause(*dag_ids)
            total = sources * intervals

            def finished():
                cluster.check_alive()
                states = backfill_states(cluster)
                return states if states["success"] + states["failed"] >= total else None

            states = wait_for(f"{total} backfill runs", finished, timeout=4 * 3600, poll=5)
            elapsed = time.monotonic() - started
            usage = sampler.stop()
            size_after = db.size_bytes() if db else sqlite.stat().st_size
            manifests, events = events_written(gcs, intervals)
        finally:
            cluster.stop()
            if db:
                db.drop()
    result = {
        "setup": setup,
        "sources": sources,
        "intervals_per_source": intervals,
        "backfill_runs": states,
        "backfill_creations_refused": refused,
        "slots": 2 * concurrency,
        "elapsed_s": round(elapsed, 1),
        "intervals_per_min": round(states["success"] / (elapsed / 60), 1),
        "manifests_in_gcs": manifests,
        "events": events,
        "events_per_s": round(events / elapsed, 1),
        **usage,
        "metadata_db_growth_mib": round((size_after - size_before) / 2**20, 1),
        "metadata_db_mib_after": round(size_after / 2**20, 1),
    }
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"scale-{setup}.json").write_text(json.dumps(result, indent=2))
    return result


def markdown_row(r: dict) -> str:
    cpu, rss = r["cpu_seconds"], r["peak_rss_mib"]
    return (
        f"| {r['setup']} | {r['slots']} | {r['backfill_runs']['success']}/{r['backfill_runs']['runs']} | "
        f"{r['elapsed_s']:.0f} | {r['intervals_per_min']} | {r['events_per_s']} | "
        f"{cpu.get('scheduler', 0):.0f} / {rss.get('scheduler', 0)} | {cpu.get('workers', 0):.0f} / "
        f"{rss.get('workers', 0)} | {cpu.get('api-server', 0):.0f} / {rss.get('api-server', 0)} | "
        f"{r['metadata_db_growth_mib']} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setups", default="celery-postgres,local-postgres,local-sqlite")
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--intervals", type=int, default=24)
    parser.add_argument("--concurrency", type=int, default=2, help="task slots per Celery worker (Local: 2x this)")
    parser.add_argument("--events-per-hour", type=int, default=600)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the cluster and drop its database on kill
    for setup in args.setups.split(","):
        result = run_setup(setup, args.sources, args.intervals, args.concurrency, args.events_per_hour)
        print(json.dumps(result), flush=True)
        print(markdown_row(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
