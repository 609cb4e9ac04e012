"""Issue 19's benchmark: a busy GitHub window (about 64 pages of 100 events) under the sandbox's heavy fault
schedule (sandbox.faults.heavy_schedule: one request in four a fault, most of them rate limits, GitHub's
secondary-limit storms of five failures in a row, and pages that fail every attempt of a try), collected by
the real operator with Airflow's retry policy deciding between tries, as the fault suite does.

For each window it reports the requests sent against the minimum (the window's pages), the tries needed and
the wall time the run would take: the waits the client asked for and the request budget's pacing (29 a
minute for GitHub) on a simulated clock, the retry policy's delays between tries, plus the real time spent.
Run it on this branch and, for the "before" figures, on main's package with this branch's sandbox:

    PYTHONPATH=plugins:include:. .venv/bin/python -m bench.resume --label branch
    PYTHONPATH=/work/main/plugins:include:. .venv/bin/python -m bench.resume --label main

It writes bench/results/resume-<label>.json and prints one line per window and the totals.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace

from auditlogs.operators.collect import AuditLogToGCSOperator, build_client, rate_budget
from auditlogs.operators.retry import AuditLogRetryPolicy
from auditlogs.sources import SOURCE_TYPES
from auditlogs.window import Window
from sandbox import SandboxServer
from sandbox.faults import heavy_schedule
from sandbox.gcs import GcsEmulatorProcess
from sandbox.github import ORG

RESULTS = Path(__file__).resolve().parent / "results"
UTC = timezone.utc
TOKEN = "ghp_resumebench000000000000000000000001"
BUCKET = "resume-bench"
END = datetime(2026, 6, 1, 12, tzinfo=UTC)
DELAY = timedelta(minutes=10)
#: About 6,400 web events (a quarter more are git events, not asked for) in the widened 70-minute window:
#: 64 pages of 100.
EVENTS_PER_HOUR = 7_300


class SimulatedClock:
    """The time the run would take: every wait the client or the request budget asks for advances it."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def clock(self) -> float:
        return self.now


class BenchOperator(AuditLogToGCSOperator):
    simulated: SimulatedClock

    def _client(self, spec, where):
        from airflow.sdk import BaseHook

        sim = self.simulated
        return build_client(
            spec,
            self.source,
            BaseHook.get_connection(self.source.conn_id),
            where,
            sleep=sim.sleep,
            rate=rate_budget(spec, self.source, sim.sleep, sim.clock),
        )


def one_window(api, gcs, seed: int, retries: int) -> dict:
    config = SOURCE_TYPES["github"].model_validate(
        {
            "name": "bench_github",
            "type": "github",
            "conn_id": "bench_github",
            "bucket": BUCKET,
            "prefix": "bench",
            "start_date": "2026-01-01T00:00:00Z",
            "delay": "10m",
            "retries": retries,
            "org": ORG,
            "per_page": 100,
        }
    )
    operator = BenchOperator(
        task_id="collect_audit",
        source=config,
        stream="audit",
        retry_policy=AuditLogRetryPolicy(config.retry_delay, config.max_retry_delay),
    )
    operator.simulated = sim = SimulatedClock()
    end = END - timedelta(hours=seed)
    interval = Window(end - timedelta(hours=1), end)
    api.reset()
    api.clock.set((END + timedelta(minutes=15)).timestamp())
    schedule = heavy_schedule(seed, 64, page_attempts=config.page_attempts, hard=2, secondary_limits=True)
    api.admin.add_faults(*[fault.to_dict() for fault in schedule])
    started, between_tries, errors, manifest = time.monotonic(), 0.0, [], None
    tries = 0
    for try_number in range(1, retries + 2):
        tries = try_number
        context = {
            "data_interval_start": interval.start,
            "data_interval_end": interval.end,
            "run_id": f"scheduled__{interval.start.isoformat()}",
            "ti": SimpleNamespace(try_number=try_number),
        }
        try:
            operator.execute(context)
            break
        except Exception as exc:  # noqa: BLE001 - what Airflow's task runner hands to the policy
            errors.append(f"{type(exc).__name__}: {str(exc)[:160]}")
            decision = operator.retry_policy.evaluate(exc, try_number, retries + 1)
            if decision.action.name == "FAIL" or try_number == retries + 1:
                break
            between_tries += decision.retry_delay.total_seconds()
    else:  # pragma: no cover - the loop always breaks
        pass
    real = time.monotonic() - started
    folder = (
        f"bench/bench_github/audit/dt={interval.start:%Y-%m-%d}/"
        f"{interval.start:%Y%m%dT%H%M%SZ}_{interval.end:%Y%m%dT%H%M%SZ}"
    )
    try:
        manifest = json.loads(gcs.read(BUCKET, f"{folder}/_manifest.json"))
    except Exception:  # noqa: BLE001 - the window was never completed
        manifest = None
    sent = [r for r in api.admin.requests() if r["path"].startswith(f"/orgs/{ORG}/")]
    pages = manifest["pages"] if manifest else None
    return {
        "seed": seed,
        "completed": manifest is not None,
        "tries": tries,
        "pages": pages,
        "events": manifest and manifest["events"],
        "requests": len(sent),
        "ratio": pages and round(len(sent) / pages, 3),
        "faults_hit": sum(1 for r in sent if r["fault"]),
        "wall_seconds": round(sim.now + between_tries + real, 1),
        "waits_and_pacing_seconds": round(sim.now, 1),
        "between_tries_seconds": between_tries,
        "real_seconds": round(real, 1),
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="names the results file (main, branch)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--retries", type=int, default=3, help="the task's retries (the default config's 3)")
    args = parser.parse_args()
    scenario = {
        "seed": 19,
        "sources": {
            "github": {
                "events_per_hour": EVENTS_PER_HOUR,
                "burst_fraction": 0.2,
                "token": TOKEN,
                "rate_limit_per_minute": 0,
            }
        },
    }
    saved = dict(os.environ)
    rows = []
    with SandboxServer(scenario) as api, GcsEmulatorProcess((BUCKET,)) as gcs:
        os.environ.update(gcs.connection_env())
        os.environ["AIRFLOW_CONN_BENCH_GITHUB"] = json.dumps({"conn_type": "http", "host": api.url, "password": TOKEN})
        for seed in range(1, args.seeds + 1):
            row = one_window(api, gcs, seed, args.retries)
            rows.append(row)
            print(
                f"{args.label} seed {seed}: completed={row['completed']} tries={row['tries']} pages={row['pages']} "
                f"requests={row['requests']} ratio={row['ratio']} wall={row['wall_seconds']}s "
                f"(waits+pacing {row['waits_and_pacing_seconds']}s, between tries {row['between_tries_seconds']}s, "
                f"real {row['real_seconds']}s)",
                flush=True,
            )
    os.environ.clear()
    os.environ.update(saved)
    done = [r for r in rows if r["completed"]]
    summary = {
        "label": args.label,
        "windows": len(rows),
        "completed": len(done),
        "tries": [r["tries"] for r in rows],
        "requests": sum(r["requests"] for r in rows),
        "minimum_of_completed": sum(r["pages"] for r in done),
        "requests_of_completed": sum(r["requests"] for r in done),
        "wall_seconds": round(sum(r["wall_seconds"] for r in rows), 1),
    }
    print(json.dumps(summary))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"resume-{args.label}.json").write_text(json.dumps({"summary": summary, "windows": rows}, indent=2))


if __name__ == "__main__":
    main()
