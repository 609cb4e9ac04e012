"""`pip install .` as a user does it: a fresh venv with this checkout and two third-party packages that
register source types (one that works, one that cannot be imported), with nothing of the repository on
`sys.path`. The package imports from site-packages, Airflow finds the coverage plugin through its entry
point, the DAG file builds every source's DAG, and the third-party type collects a window end to end."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import auditlogs
from harness import (
    assert_interval_holds,
    connection_env,
    dags_test_leaking_nothing,
    interval_folder,
    running_stack,
    write_config,
)
from packages import PAGERDUTY_MODULE, ROOT, UV, uv_pip_install, write_package
from sandbox import ground_truth

pytestmark = pytest.mark.e2e

UTC = timezone.utc
BUCKET = "packaging-bucket"
NOW = datetime(2026, 3, 2, tzinfo=UTC)
START, END = datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC)
DELAY = timedelta(minutes=30)
TOKEN = "u+packagingPagerDutyKey012345"
SCENARIO = {
    "seed": 16,
    "sources": {
        "pagerduty": {
            "events_per_hour": 1500,
            "burst_fraction": 0.3,
            "token": TOKEN,
            "rate_limit_per_minute": 0,
            "retention_days": 120,
        }
    },
}
SOURCES = {
    "slack": {"type": "slack", "conn_id": "slack_audit"},
    "pd": {"type": "pagerduty", "conn_id": "pagerduty_api", "limit": 400},
    "acme_prod": {"type": "acme", "conn_id": "acme"},
}


@dataclass
class Installed:
    venv: Path
    #: What the installed environment runs with: its own DAGs and plugins folders, no repository path.
    env: dict[str, str]

    def run(self, *args: str) -> str:
        completed = subprocess.run(
            args, env={**os.environ, **self.env}, capture_output=True, text=True, timeout=600, cwd=self.venv.parent
        )
        assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-3000:]
        return completed.stdout

    def python(self, code: str):
        """What `code` prints as JSON on its last line (Airflow logs to stdout before it)."""
        return json.loads(self.run(str(self.venv / "bin" / "python"), "-c", code).splitlines()[-1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("installed")
    checkout = root / "checkout"  # a copy, so that building leaves no build/ or egg-info in the worktree
    shutil.copytree(ROOT / "plugins", checkout / "plugins", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, checkout / name)
    pagerduty = write_package(
        root / "src",
        "auditlogs-pagerduty",
        {"auditlogs_pagerduty": PAGERDUTY_MODULE},
        {"pagerduty": "auditlogs_pagerduty:SPEC"},
    )
    acme = write_package(
        root / "src",
        "auditlogs-acme",
        {"auditlogs_acme": 'raise ImportError("no acme_sdk")\n'},
        {"acme": "auditlogs_acme:SPEC"},
    )
    venv = root / "venv"
    subprocess.run([*UV, "venv", "--quiet", "--python", "python3.11", str(venv)], check=True, timeout=120)
    uv_pip_install(venv / "bin" / "python", str(checkout), str(pagerduty), str(acme))
    (root / "dags").mkdir()
    (root / "plugins").mkdir()
    shutil.copy(ROOT / "dags" / "auditlogs_dags.py", root / "dags")
    config = write_config(
        root / "sources.yaml", SOURCES, bucket=BUCKET, prefix="raw", start_date="2026-01-01", delay="30m", retries=0
    )
    return Installed(
        venv,
        {
            "PYTHONPATH": "",
            # Not compiled at install (minutes for all of Airflow's dependencies on a busy machine): the first
            # run writes the .pyc files of what it imports, the later runs reuse them.
            "PYTHONDONTWRITEBYTECODE": "",
            "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
            "AUDITLOGS_CONFIG": str(config),
        },
    )


def test_pip_install_puts_the_package_and_its_airflow_plugin_into_a_fresh_venv(installed):
    where = installed.python(
        "import json, auditlogs, auditlogs.factory, auditlogs_coverage; "
        "print(json.dumps([auditlogs.__file__, auditlogs_coverage.__file__, auditlogs.__version__]))"
    )
    site = str(installed.venv / "lib" / "python3.11" / "site-packages")
    assert where == [f"{site}/auditlogs/__init__.py", f"{site}/auditlogs_coverage.py", auditlogs.__version__]
    plugins = json.loads(
        installed.run(str(installed.venv / "bin" / "airflow"), "plugins", "-o", "json").splitlines()[-1]
    )
    assert [(p["name"], p["source"]) for p in plugins] == [
        (
            "auditlogs_coverage",
            f"auditlogs=={auditlogs.__version__}: EntryPoint(name='auditlogs_coverage', "
            "value='auditlogs_coverage:AuditLogsCoveragePlugin', group='airflow.plugins')",
        )
    ]
    assert plugins[0]["fastapi_apps"][0]["url_prefix"] == "/auditlogs"


def test_the_dag_file_builds_every_sources_dag_and_a_broken_package_only_breaks_its_own(installed):
    bag = installed.python(
        "import json; from airflow.dag_processing.dagbag import DagBag; "
        "bag = DagBag(); "
        "print(json.dumps({'errors': bag.import_errors, "
        "'dags': {i: [sorted(d.tags), d.description, [t.task_id for t in d.tasks]] for i, d in bag.dags.items()}}))"
    )
    assert bag["errors"] == {}
    dags = bag["dags"]
    assert sorted(dags) == ["auditlogs_acme_prod", "auditlogs_pd", "auditlogs_slack"]
    assert dags["auditlogs_pd"][0] == ["auditlogs", "pagerduty"]
    assert dags["auditlogs_pd"][2] == ["collect_audit_records"]
    assert dags["auditlogs_slack"][2] == ["collect_audit"]
    tags, description, _ = dags["auditlogs_acme_prod"]
    assert tags == ["auditlogs", "config-error"]
    assert description.endswith(
        "source 'acme_prod': field 'type': source type 'acme' from package auditlogs-acme 0.1.0 (entry point "
        "acme = auditlogs_acme:SPEC) cannot be loaded: ImportError: no acme_sdk"
    )


def test_a_source_type_from_a_third_party_package_collects_its_window_end_to_end(installed, tmp_path):
    def connections(url: str) -> dict:
        return connection_env("pagerduty_api", host=url, password=TOKEN)

    with running_stack(SCENARIO, BUCKET, connections, clock=NOW) as stack:
        result = dags_test_leaking_nothing(
            "auditlogs_pd",
            END,
            {**stack.env, **installed.env},
            [TOKEN],
            airflow=str(installed.venv / "bin" / "airflow"),
        )
        assert result.returncode == 0, result.output[-3000:]
        sent = stack.api.admin.requests()
        expected = {e["id"] for e in ground_truth("pagerduty", START - DELAY, END, SCENARIO, now=NOW)}
        folder = interval_folder("raw", "pd", "audit_records", START, END)
        manifest = assert_interval_holds(stack.gcs, BUCKET, folder, "id", expected)
    assert len(sent) == manifest["pages"] == -(-len(expected) // 400) > 2  # the minimum at limit 400
    assert sent[0]["query"] == {"since": ["2026-03-01T03:30:00Z"], "until": ["2026-03-01T05:00:00Z"], "limit": ["400"]}
    assert sent[0]["headers"]["accept"] == "application/vnd.pagerduty+json;version=2"
    assert all(r["auth_ok"] for r in sent)
