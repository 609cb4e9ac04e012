"""Parse and task start-up cost against the number of configured sources (issue 17).

    python bench/startup.py [--trees ROOT[,ROOT...]] [--sizes 20,200,1000,5000] [--task-sizes 20,1000] [--samples 5]

Three figures per source count, each sample a fresh process, CPU seconds of that process (getrusage) as well
as wall seconds, medians over the samples:

* `build`: `build_dags()` with Airflow already imported, as the dag-processor runs it (no parsing context).
* `parse`: what the dag-processor's file processor does with the DAG file: a `BundleDagBag` of it, then
  `DagSerialization.to_dict` of every DAG.
* `task`: a task's start-up, from the fork of the task process to its first request to the SaaS API, the way
  the Task SDK runs it on Linux: a parent that has imported the supervisor and task runner (as a worker has)
  forks; the child parses the DAG file inside the DAG parsing context of its task (as
  `task_runner.startup` does), takes its task and runs `execute` until the first request to the API host,
  which is stopped there. GCS is the emulator. The split: the package's share is the time inside the DAG
  file's import (our imports and `build_dags`) plus `execute` up to the request, minus the connection
  look-up and minus `providers`: the first Asset makes the Task SDK discover every provider's asset URI
  handlers, which imports the google provider's GCS hook and client library (about 600 modules) that the
  run needs before its first request anyway. Airflow's share is the rest (the bag around the import, the
  parsing context, the connection look-up).
  Airflow's real runner does more before `execute` (logging set-up, the start-state call, the template
  context): that part is not counted here, so Airflow's share is a lower bound.

`--trees` runs the same samples against several checkouts (e.g. a copy of main and this tree), interleaved
sample by sample so that both see the same load on a shared machine. The load average is recorded. Prints
one JSON document (and writes bench/results/startup.json).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "include")]

import yaml  # noqa: E402

KINDS = ("slack", "okta", "github", "onepassword")
KIND_OPTIONS = {
    "slack": {},
    "okta": {},
    "github": {"org": "bench-org", "include": "all"},
    "onepassword": {"streams": ["auditevents"]},
}
API = "http://127.0.0.1:9"  # never contacted: the first request to it is stopped before it is sent
BUCKET = "auditlogs-startup"


def write_config(path: Path, sources: int) -> list[str]:
    """`sources` entries in rotation over four APIs, hourly, as in bench/scale.py. Returns their names."""
    entries = {}
    for index in range(sources):
        kind = KINDS[index % len(KINDS)]
        entries[f"{kind}_{index:04d}"] = {"type": kind, "conn_id": f"{kind}_api", **KIND_OPTIONS[kind]}
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {
                    "bucket": BUCKET,
                    "prefix": "raw",
                    "start_date": "2026-01-01T00:00:00Z",
                    "delay": "0s",
                    "deadline": "off",
                },
                "sources": entries,
            },
            sort_keys=False,
        )
    )
    return list(entries)


_PRELUDE = """
import json, os, resource, sys, time
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
def emit(**fields):
    print("RESULT " + json.dumps(fields), flush=True)
"""

_BUILD = (
    _PRELUDE
    + """
import airflow.sdk  # the dag-processor has Airflow imported
c0, w0 = cpu(), time.perf_counter()
from auditlogs.factory import build_dags
c1, w1 = cpu(), time.perf_counter()
dags = build_dags()
c2, w2 = cpu(), time.perf_counter()
emit(import_cpu=c1 - c0, import_wall=w1 - w0, build_cpu=c2 - c1, build_wall=w2 - w1, dags=len(dags))
"""
)

_PARSE = (
    _PRELUDE
    + """
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.serialization.serialized_objects import DagSerialization
dag_file = sys.argv[1]
c0, w0 = cpu(), time.perf_counter()
bag = BundleDagBag(dag_folder=dag_file, bundle_path=os.path.dirname(dag_file), bundle_name="dags-folder",
                   load_op_links=False)
serialized = [DagSerialization.to_dict(dag) for dag in bag.dags.values()]
c1, w1 = cpu(), time.perf_counter()
emit(parse_cpu=c1 - c0, parse_wall=w1 - w0, dags=len(bag.dags), errors=len(bag.import_errors))
"""
)

_TASK = (
    _PRELUDE
    + """
import airflow.sdk.execution_time.supervisor, airflow.sdk.execution_time.task_runner  # what a worker has
dag_file, dag_id, task_id, api = sys.argv[1:5]
read, write = os.pipe()
pid = os.fork()
if pid:
    os.close(write)
    with os.fdopen(read) as pipe:
        print(pipe.read(), flush=True)
    os.waitpid(pid, 0)
    sys.exit(0)
os.close(read)
# The child: getrusage starts at zero after a fork.
w0 = time.perf_counter()
spent = {"module": [0.0, 0.0], "connection": [0.0, 0.0], "providers": [0.0, 0.0]}

def timed(key, fn):
    def wrapper(*args, **kwargs):
        c, w = cpu(), time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[key][0] += cpu() - c
            spent[key][1] += time.perf_counter() - w
    return wrapper

from airflow.dag_processing.importers.python_importer import PythonDagImporter
PythonDagImporter.import_file = timed("module", PythonDagImporter.import_file)
from airflow.sdk import BaseHook
BaseHook.get_connection = classmethod(timed("connection", BaseHook.get_connection.__func__))
from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime
ProvidersManagerTaskRuntime.initialize_providers_asset_uri_resources = timed(
    "providers", ProvidersManagerTaskRuntime.initialize_providers_asset_uri_resources)

class FirstRequest(BaseException):
    pass

import requests
send = requests.Session.send
first = {}
def stopping_send(self, request, **kwargs):
    if request.url.startswith(api):
        first.update(cpu=cpu(), wall=time.perf_counter())
        raise FirstRequest()
    return send(self, request, **kwargs)
requests.Session.send = stopping_send

from airflow.dag_processing.dagbag import BundleDagBag
from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager
with _airflow_parsing_context_manager(dag_id=dag_id, task_id=task_id):
    bag = BundleDagBag(dag_folder=dag_file, safe_mode=False, load_op_links=False,
                       bundle_path=os.path.dirname(dag_file), bundle_name="dags-folder")
task = bag.dags[dag_id].task_dict[task_id]
c_parsed, w_parsed = cpu(), time.perf_counter()

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from collections import defaultdict
end = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
context = {"data_interval_start": end - timedelta(hours=1), "data_interval_end": end, "params": {},
           "run_id": "scheduled__bench", "ti": SimpleNamespace(try_number=1),
           "outlet_events": defaultdict(SimpleNamespace), "task": task}
try:
    task.execute(context)
    raise SystemExit("the task finished without a request to the API")
except FirstRequest:
    pass
except BaseException:
    import traceback; traceback.print_exc(); raise
providers_cpu, providers_wall = spent["providers"]
module_cpu, module_wall = spent["module"][0] - providers_cpu, spent["module"][1] - providers_wall
conn_cpu, conn_wall = spent["connection"]
execute_cpu, execute_wall = first["cpu"] - c_parsed, first["wall"] - w_parsed
package_cpu, package_wall = module_cpu + execute_cpu - conn_cpu, module_wall + execute_wall - conn_wall
result = dict(
    total_cpu=first["cpu"], total_wall=first["wall"] - w0, package_cpu=package_cpu, package_wall=package_wall,
    module_cpu=module_cpu, execute_cpu=execute_cpu - conn_cpu, connection_cpu=conn_cpu,
    providers_cpu=providers_cpu, providers_wall=providers_wall,
    airflow_cpu=first["cpu"] - package_cpu - providers_cpu,
    airflow_wall=(first["wall"] - w0) - package_wall - providers_wall,
    dags=len(bag.dags), modules=len(sys.modules), google_storage_imported='google.cloud.storage' in sys.modules)
os.write(write, ("RESULT " + json.dumps(result)).encode())
os._exit(0)
"""
)


def run_child(code: str, tree: Path, env: dict[str, str], *args: str) -> dict:
    env = {**env, "PYTHONPATH": os.pathsep.join([str(tree / "plugins"), str(tree / "include")])}
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=600)
    if "RESULT " not in out.stdout:
        raise RuntimeError(f"bench child failed ({out.returncode}):\n{out.stdout[-2000:]}\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.rsplit("RESULT ", 1)[1].splitlines()[0])


def medians(samples: list[dict]) -> dict:
    return {key: round(statistics.median(s[key] for s in samples), 3) for key in samples[0]}


def measure(trees: list[Path], sizes: list[int], task_sizes: list[int], samples: int, gcs_env: dict) -> dict:
    work = Path(tempfile.mkdtemp(prefix="auditlogs-startup-"))
    configs, names = {}, {}
    for size in sorted(set(sizes) | set(task_sizes)):
        configs[size] = work / f"sources-{size}.yaml"
        names[size] = write_config(configs[size], size)
    base = {
        **os.environ,
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        **gcs_env,
        # A DAG file import is killed after 30 s by default: on a loaded machine main's code at 5,000
        # sources (and at 1,000 in a task) passes that, and the bench measures rather than fails.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "900",
        **{
            f"AIRFLOW_CONN_{kind.upper()}_API": json.dumps({"conn_type": "http", "host": API, "password": "t0ken"})
            for kind in KINDS
        },
    }
    raw: dict[str, list[dict]] = {}
    loads = [os.getloadavg()]
    for _ in range(samples):
        for tree in trees:
            dag_file = str(tree / "dags" / "auditlogs_dags.py")
            for size in task_sizes:  # first: the figure the issue is about
                env = {**base, "AUDITLOGS_CONFIG": str(configs[size]), "AIRFLOW__CORE__DAGS_FOLDER": str(tree / "dags")}
                raw.setdefault(f"{tree}|task|{size}", []).append(
                    run_child(_TASK, tree, env, dag_file, f"auditlogs_{names[size][0]}", "collect_audit", API)
                )
            for size in sizes:
                env = {**base, "AUDITLOGS_CONFIG": str(configs[size]), "AIRFLOW__CORE__DAGS_FOLDER": str(tree / "dags")}
                raw.setdefault(f"{tree}|build|{size}", []).append(run_child(_BUILD, tree, env))
                raw.setdefault(f"{tree}|parse|{size}", []).append(run_child(_PARSE, tree, env, dag_file))
        loads.append(os.getloadavg())
        progress(summary(raw, loads))  # a long run on a loaded machine leaves each completed round behind
    return summary(raw, loads)


def summary(raw: dict[str, list[dict]], loads: list) -> dict:
    results: dict[str, dict] = {}
    for key, samples in raw.items():
        tree, kind, size = key.split("|")
        results.setdefault(tree, {}).setdefault(kind, {})[size] = {**medians(samples), "samples": len(samples)}
    return {"load_average": [round(x[0], 2) for x in loads], "trees": results}


def progress(result: dict) -> None:
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "startup.json").write_text(json.dumps(result, indent=2))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", default=str(ROOT), help="checkouts to compare, comma-separated")
    parser.add_argument("--sizes", default="20,200,1000,5000")
    parser.add_argument("--task-sizes", default="20,1000")
    parser.add_argument("--samples", type=int, default=5)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the GCS emulator on kill
    from sandbox.gcs import GcsEmulatorProcess

    with GcsEmulatorProcess((BUCKET,)) as gcs:
        result = measure(
            [Path(t).resolve() for t in args.trees.split(",")],
            [int(s) for s in args.sizes.split(",") if s],
            [int(s) for s in args.task_sizes.split(",") if s],
            args.samples,
            gcs.connection_env(),
        )
    progress(result)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
