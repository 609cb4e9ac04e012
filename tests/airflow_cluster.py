"""A real Airflow for the operations tests: api-server (execution API), scheduler, dag-processor and
triggerer on a temporary AIRFLOW_HOME with SQLite and the LocalExecutor.

Each component runs in its own process group so that stopping kills its children too (LocalExecutor
workers, trigger runners), also when a test fails. Waiting is condition polling with a deadline.
"""

from __future__ import annotations

import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.cluster import wait_for
from sandbox.gcs import free_port

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
POLL_SECONDS = 0.5


def wait_until(condition: Callable[[], Any], timeout: float, what: str, diagnose: Callable[[], str] | None = None):
    """`sandbox.cluster.wait_for` at this tier's half-second poll, in the argument order its tests use."""
    return wait_for(what, condition, timeout, poll=POLL_SECONDS, diagnose=diagnose)


class AirflowCluster:
    """`with AirflowCluster(home, env) as airflow:` migrates the DB, runs `before_start` commands (pools), then
    starts the components and waits until the scheduler has parsed the DAGs."""

    COMPONENTS = {
        "api-server": ["api-server", "--apps", "execution", "--workers", "1"],
        "scheduler": ["scheduler"],
        "dag-processor": ["dag-processor"],
        "triggerer": ["triggerer"],
    }

    def __init__(self, home: Path, env: dict[str, str], rest_api: bool = False):
        """`rest_api`: serve the UI's REST API too (`/api/v2`), every caller an admin, as a user would call it."""
        self.home = home
        self.port = free_port()
        self.components = {**self.COMPONENTS, **({"api-server": ["api-server", "--workers", "1"]} if rest_api else {})}
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            # Five processes write one SQLite file: wait for locks instead of failing at once.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db?timeout=60",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            # The machine is shared and slow: parsing the DAG file in a task process must not time out.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "600",
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.port}/execution/",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.port}",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
            **({"AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"} if rest_api else {}),
            **env,
        }
        self._procs: dict[str, subprocess.Popen] = {}

    def __enter__(self) -> AirflowCluster:
        try:
            self.cli("db", "migrate")
            with sqlite3.connect(self.home / "airflow.db") as db:
                db.execute("PRAGMA journal_mode=WAL")  # persistent: readers no longer block the writers
            return self
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, dag_ids: list[str], timeout: float = 240) -> None:
        logs = self.home / "component-logs"
        logs.mkdir(exist_ok=True)
        for name, args in self.components.items():
            out = open(logs / f"{name}.log", "wb")
            self._procs[name] = subprocess.Popen(
                [AIRFLOW, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
            out.close()
        wait_until(lambda: self._parsed(dag_ids), timeout, f"the dag-processor to parse {dag_ids}", self.diagnose)

    def stop(self) -> None:
        """SIGTERM to every component's process group, SIGKILL to what is left after a grace period."""
        procs, self._procs = self._procs, {}
        for proc in procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)  # stragglers in the group (executor workers, runners)
            proc.wait()

    def cli(self, *args: str, timeout: float = 300, attempts: int = 4) -> str:
        """An `airflow` command; retried when SQLite was locked by a running component."""
        for _ in range(attempts):
            completed = subprocess.run(
                [AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout
            )
            if completed.returncode == 0:
                return completed.stdout
            if "database is locked" not in completed.stderr:
                break
        raise AssertionError(f"airflow {' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr[-5000:]}")

    def rest(self, method: str, path: str, **kwargs: Any) -> Any:
        """A call to the REST API (`rest_api=True`) with a token, as the UI makes it; the JSON reply."""
        import requests

        url = f"http://127.0.0.1:{self.port}"
        token = requests.get(f"{url}/auth/token", timeout=30).json()["access_token"]
        reply = requests.request(method, url + path, headers={"Authorization": f"Bearer {token}"}, timeout=60,
                                 **kwargs)
        assert reply.ok, f"{method} {path}: {reply.status_code} {reply.text[:2000]}"
        return reply.json()

    def run(self, *args: str, timeout: float = 300) -> str:
        """Any command (e.g. `python -m auditlogs.setup pools`) with the cluster's environment."""
        completed = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)
        if completed.returncode:
            raise AssertionError(f"{' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed.stdout

    def query(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        with sqlite3.connect(self.home / "airflow.db", timeout=60) as db:
            db.row_factory = sqlite3.Row
            return db.execute(sql, params).fetchall()

    def _parsed(self, dag_ids: list[str]) -> bool:
        try:
            found = {row["dag_id"] for row in self.query("SELECT dag_id FROM serialized_dag")}
        except sqlite3.OperationalError:
            return False
        self._check_alive()
        return set(dag_ids) <= found

    def _check_alive(self) -> None:
        dead = {name: proc.returncode for name, proc in self._procs.items() if proc.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow components exited: {dead}\n{self.diagnose()}")

    def diagnose(self, lines: int = 40) -> str:
        """The tail of every component's log, for assertion messages."""
        out = []
        for log in sorted((self.home / "component-logs").glob("*.log")):
            tail = log.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(out)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
