"""DAG parse time with 100 sources, measured as the dag-processor does it: Airflow already imported, then
a DagBag over the dags folder (our one DAG file) with AUDITLOGS_CONFIG pointing at a 100-source config.

Each sample is a fresh process (the dag-processor parses every file in a fresh child), so the package's own
imports are paid each time. Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = 100

_CHILD = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - started
print("PARSE " + json.dumps({"seconds": elapsed, "dags": len(bag.dags), "errors": len(bag.import_errors)}))
"""


def write_config(path: Path, sources: int = SOURCES) -> Path:
    document = {
        "defaults": {"bucket": "parse-bucket", "prefix": "raw", "start_date": "2026-01-01T00:00:00Z", "delay": "30m"},
        "sources": {f"slack_{i:03d}": {"type": "slack", "conn_id": f"slack_{i:03d}"} for i in range(sources)},
    }
    path.write_text(yaml.safe_dump(document))
    return path


def measure(samples: int = 5) -> dict:
    with tempfile.TemporaryDirectory(prefix="auditlogs-parse-") as tmp:
        config = write_config(Path(tmp) / "sources.yaml")
        env = {
            **os.environ,
            "AUDITLOGS_CONFIG": str(config),
            "AIRFLOW_HOME": tmp,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        }
        runs = []
        for _ in range(samples):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, str(ROOT / "dags")], env=env, capture_output=True, text=True, check=True
            ).stdout
            runs.append(json.loads(out.rsplit("PARSE ", 1)[1]))
    if any(run["dags"] != SOURCES or run["errors"] for run in runs):
        raise SystemExit(f"parse produced the wrong DAGs: {runs}")
    seconds = [run["seconds"] for run in runs]
    return {
        "sources": SOURCES,
        "median_seconds": statistics.median(seconds),
        "min_seconds": min(seconds),
        "max_seconds": max(seconds),
        "samples": samples,
    }


if __name__ == "__main__":
    print(json.dumps(measure()))
