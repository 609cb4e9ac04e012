"""The Airflow cluster runner: every component a separate local process, the docker-compose services without Docker.

`AirflowCluster` runs `airflow db migrate` against its metadata database (SQLite in its home by default, or a
PostgreSQL database made with `PostgresDatabase`) and starts the API server, the execution API server,
scheduler, dag-processor, triggerer and (for the CeleryExecutor) N Celery workers, each in its own process
group with its own log file under `home/component-logs/`. Every port is a free one and the Celery queue is
unique to the cluster, so several clusters (other engineers' tests) share one machine, its PostgreSQL and
Redis without seeing each other. Used by `make run` (sandbox/local.py), the cluster and distributed test tiers
and the scale benchmark (bench/scale.py).

The UI's API (`--apps core`) and the task execution API run in two API server processes. In one process on
SQLite, Airflow 3.3's audit-log dependency of a REST write (`log_action`, an async function committing on the
event loop) waits on SQLite's lock while a task-start call (`PATCH /execution/task-instances/{id}/run`, in a
thread) holds it and needs the event loop to commit: both wait until SQLite's busy timeout, and the UI's
Trigger fails with "database is locked" after it. Two processes cannot wait on each other's event loop.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import requests

from sandbox.gcs import free_port

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
POSTGRES_ADMIN_URL = os.environ.get("AUDITLOGS_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("AUDITLOGS_REDIS_URL", "redis://127.0.0.1:6379/11")
#: Environment variable a worker's `hostname_callable` reads, so task instances record which worker ran them.
WORKER_NAME_ENV = "AUDITLOGS_WORKER_NAME"

T = TypeVar("T")


def worker_hostname() -> str:
    """`[core] hostname_callable` of the cluster: the worker's name (two workers share one host here)."""
    return os.environ.get(WORKER_NAME_ENV) or socket.getfqdn()


def wait_for(
    what: str, check: Callable[[], T], timeout: float, poll: float = 1.0, diagnose: Callable[[], str] | None = None
) -> T:
    """Polls `check` until it returns something truthy; fails naming `what` (and what `diagnose` says, e.g.
    the components' log tails) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"gave up waiting for {what} after {timeout:.0f}s" + (f"\n{diagnose()}" if diagnose else "")
            )
        time.sleep(poll)  # polling real processes we do not control, bounded by the deadline


def services_missing() -> str | None:
    """Why the PostgreSQL/Redis tier cannot run here, or None when both answer (a missing driver is an
    install problem, not a missing service: its ImportError propagates)."""
    import psycopg2
    import redis

    try:
        psycopg2.connect(POSTGRES_ADMIN_URL, connect_timeout=5).close()
    except Exception as exc:  # any failure means: no usable PostgreSQL
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({type(exc).__name__}: {str(exc).strip()[:200]})"
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=5).ping()
    except Exception as exc:
        return f"Redis not reachable at {REDIS_URL} ({type(exc).__name__}: {str(exc).strip()[:200]})"
    return None


class PostgresDatabase:
    """A throw-away database on the machine's PostgreSQL: created on enter, dropped (even in use) on exit."""

    def __init__(self, name: str | None = None, admin_url: str = POSTGRES_ADMIN_URL):
        self.name = name or f"auditlogs_cluster_{uuid.uuid4().hex[:10]}"
        self.admin_url = admin_url

    @property
    def sqlalchemy_url(self) -> str:
        base = self.admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg2://", 1)
        return f"{base}/{self.name}"

    def _admin(self, statement: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.admin_url, connect_timeout=10)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
        finally:
            conn.close()

    def __enter__(self) -> PostgresDatabase:
        self._admin(f'CREATE DATABASE "{self.name}"')
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()

    def drop(self) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def connect(self):
        import psycopg2

        return psycopg2.connect(self.admin_url.rsplit("/", 1)[0] + "/" + self.name, connect_timeout=10)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def size_bytes(self) -> int:
        return self.query("SELECT pg_database_size(current_database())")[0][0]


@dataclass
class Component:
    name: str
    command: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen | None = None
    #: Killed on purpose (kill()): its exit is not a failure of the cluster.
    killed: bool = False

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                self.command,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def tree(self) -> list:
        """The component's process and all its descendants (psutil.Process objects)."""
        import psutil

        if not self.alive:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """SIGKILL to the whole process tree at once: a machine or container dying, nothing cleans up."""
        self.killed = True
        processes = self.tree()
        for process in processes:
            try:
                process.kill()
            except Exception:  # already gone
                pass
        self._killpg(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(30)

    def stop(self, grace: float = 30.0) -> None:
        if self.proc is None:
            return
        stragglers = self.tree()
        if self.alive:
            self._killpg(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self._killpg(signal.SIGKILL)
        for process in stragglers:  # children that left the group (task processes) die too
            try:
                process.kill()
            except Exception:
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def _killpg(self, sig: int) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


#: The components `AirflowCluster.start` runs unless told otherwise; Celery workers come on top.
ROLES = ("api-server", "execution-api", "scheduler", "dag-processor", "triggerer")
#: How many tasks run at once. The LocalExecutor starts this many worker processes up front (Airflow's default
#: of 32 idle ones took about 1.9 GiB with the rest of the `make run` demo): 4 suit a laptop and a shared
#: CI machine. A cluster that needs more says so (bench/scale.py).
PARALLELISM = 4


@dataclass
class AirflowCluster:
    """Airflow components as separate local processes sharing one metadata DB and config (environment).

    `with AirflowCluster(home) as airflow:` migrates the database (so commands such as `backfill create` can
    run before the components do); `airflow.start(dag_ids)` then starts them and waits until the API server
    answers and the dag-processor has serialized those DAGs; leaving the block stops every process."""

    home: Path
    #: None: SQLite in `home` (WAL, waiting up to 60 s for a lock: six processes write one file).
    sql_alchemy_conn: str | None = None
    executor: str = "LocalExecutor"
    parallelism: int = PARALLELISM
    workers: int = 2
    worker_concurrency: int = 1
    broker_url: str = REDIS_URL
    result_backend: str | None = None
    #: Extra environment: connections, AUDITLOGS_CONFIG, Airflow options (these win over the defaults).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: The components to run (a subset of ROLES), e.g. only the API server for a UI test.
    roles: tuple[str, ...] = ROLES
    #: The UI's and REST API's port (free one by default).
    api_port: int = 0
    #: Second-long heartbeats and scheduler loops, so tests wait less; off (Airflow's defaults) for the demo,
    #: where every extra write is more contention on SQLite's one lock for the CLI beside it.
    fast: bool = True
    components: dict[str, Component] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs = self.home / "component-logs"
        self.logs.mkdir(exist_ok=True)
        self.api_port = self.api_port or free_port()
        self.execution_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.queue = f"auditlogs_{uuid.uuid4().hex[:10]}"
        self.sql_alchemy_conn = self.sql_alchemy_conn or f"sqlite:///{self.home / 'airflow.db'}?timeout=60"
        #: The SQLite file, when the metadata database is one.
        self.sqlite = (
            Path(self.sql_alchemy_conn.removeprefix("sqlite:///").split("?")[0])
            if self.sql_alchemy_conn.startswith("sqlite:///")
            else None
        )
        self.env = self._env()
        self._migrated = False

    def _env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.execution_port}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "sandbox.cluster.worker_hostname",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            # The machine is shared and slow: parsing the DAG file in a task process must not time out.
            "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "600",
            "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "600",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.api_url,
            # Every component signs and checks the same task tokens.
            "AIRFLOW__API_AUTH__JWT_SECRET": "auditlogs-cluster-" + self.queue,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",  # its server would take a fixed port
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": self.result_backend
            or "db+" + self.sql_alchemy_conn.replace("postgresql+psycopg2://", "postgresql://"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")]),
            "NO_PROXY": "127.0.0.1,localhost",
            "PATH": os.pathsep.join([str(Path(AIRFLOW).parent), os.environ.get("PATH", "")]),
        }
        if self.fast:
            env.update(
                {
                    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
                    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
                    "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
                    "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
                    "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
                }
            )
        env.update(self.extra_env)
        return env

    # --- lifecycle -----------------------------------------------------------------------------------

    def migrate(self) -> None:
        self.cli("db", "migrate", timeout=900)
        if self.sqlite:
            import sqlite3

            with sqlite3.connect(self.sqlite) as db:
                db.execute("PRAGMA journal_mode=WAL")  # persistent: readers no longer block the writers
        self._migrated = True

    def start(self, dag_ids: list[str] | tuple[str, ...] = (), timeout: float = 600) -> AirflowCluster:
        """Starts the components (migrating first if that has not happened) and waits until the API server
        answers and `dag_ids` are serialized."""
        if not self._migrated:
            self.migrate()
        commands = {
            "api-server": ["api-server", "--apps", "core", "--port", str(self.api_port), "--host", "127.0.0.1"],
            "execution-api": [
                "api-server",
                "--apps",
                "execution",
                "--port",
                str(self.execution_port),
                "--host",
                "127.0.0.1",
            ],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer"],
        }
        # The API servers first, until they answer: a fresh one builds its app on the first request (36 s on
        # a loaded 2-core machine), and a task whose start call times out meanwhile fails without running.
        probes = {
            "api-server": f"{self.api_url}/api/v2/version",
            "execution-api": f"http://127.0.0.1:{self.execution_port}/execution/health",
        }
        servers = [role for role in self.roles if role in probes]
        for role in servers:
            self._start(role, commands[role])
        for role in servers:
            wait_for(
                f"the {role} to answer", lambda role=role: self._answers(probes[role]), timeout, diagnose=self.diagnose
            )
        for role in self.roles:
            if role not in probes:
                self._start(role, commands[role])
        if self.executor == "CeleryExecutor":
            for index in range(self.workers):
                self.start_worker(self.worker_name(index))
        if dag_ids:
            self.wait_for_dags(dag_ids, timeout)
        return self

    @staticmethod
    def worker_name(index: int) -> str:
        return f"worker-{chr(ord('a') + index)}"

    def start_worker(self, name: str) -> None:
        self._start(
            name,
            [
                "celery",
                "worker",
                "--celery-hostname",
                f"{name}@%h",
                "--queues",
                self.queue,
                "--concurrency",
                str(self.worker_concurrency),
                "--skip-serve-logs",
            ],
            {WORKER_NAME_ENV: name},
        )

    def ensure_workers(self) -> None:
        for index in range(self.workers):
            name = self.worker_name(index)
            if not self.components[name].alive:
                self.start_worker(name)

    def kill_worker(self, name: str) -> None:
        self.components[name].kill()

    def stop(self) -> None:
        for name in reversed(list(self.components)):
            self.components[name].stop()

    def __enter__(self) -> AirflowCluster:
        try:
            self.migrate()
            return self
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        component = Component(name, [AIRFLOW, *args], {**self.env, **(env or {})}, self.logs / f"{name}.log")
        component.start()
        self.components[name] = component

    def check_alive(self) -> None:
        dead = [name for name, c in self.components.items() if not c.alive and not c.killed]
        if dead:
            raise RuntimeError(
                f"cluster components exited: {dead}; logs in {self.logs}:\n"
                + "\n".join(self.log_tail(name) for name in dead)
            )

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return f"--- {name} ---\n" + (path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)")

    def diagnose(self) -> str:
        """The tail of every component's log, for failure messages."""
        return "\n".join(self.log_tail(name) for name in self.components)

    # --- using it ------------------------------------------------------------------------------------

    def cli(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        """An `airflow` command with the cluster's environment. On SQLite it is tried again when a running
        component held the lock (not `backfill create`, which is not safe to repeat: see `backfill`)."""
        retry = self.sqlite is not None and args[:2] != ("backfill", "create")
        for _ in range(4 if retry else 1):
            result = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
            if result.returncode == 0 or "database is locked" not in result.stderr:
                break
        if check and result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
            )
        return result

    def backfill(self, dag_id: str, from_date: str, to_date: str, *options: str, timeout: float = 600) -> None:
        """`airflow backfill create`. On SQLite a concurrent writer can fail it with "database is locked"
        after Airflow committed the Backfill row: Airflow 3.3.2 cleans the partial backfill up only for
        PostgreSQL's and MySQL's lock errors, and the orphan refuses the next create (AlreadyRunningBackfill)
        until the scheduler marks it completed. So after a locked failure this waits for that, then tries
        again."""
        args = ("backfill", "create", "--dag-id", dag_id, "--from-date", from_date, "--to-date", to_date, *options)
        for _ in range(3):
            result = self.cli(*args, check=False)
            if result.returncode == 0 or "database is locked" not in result.stderr or self.sqlite is None:
                break
            wait_for(
                f"the scheduler to complete {dag_id}'s partially created backfill",
                lambda: not self.query("SELECT id FROM backfill WHERE dag_id = ? AND completed_at IS NULL", dag_id),
                timeout,
                diagnose=self.diagnose,
            )
        if result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({result.returncode}):\n{result.stderr[-4000:]}")

    def run(self, *args: str, timeout: float = 600) -> str:
        """Any command (e.g. `python -m auditlogs.setup pools`) with the cluster's environment; its stdout."""
        completed = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)
        if completed.returncode:
            raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stdout}\n{completed.stderr}")
        return completed.stdout

    def query(self, sql: str, *params: Any) -> list:
        """Rows of the metadata database, by column name or position; `?` placeholders."""
        if self.sqlite:
            import sqlite3

            with sqlite3.connect(self.sqlite, timeout=60) as db:
                db.row_factory = sqlite3.Row
                return db.execute(sql, params).fetchall()
        import psycopg2
        import psycopg2.extras

        with psycopg2.connect(self.sql_alchemy_conn.replace("postgresql+psycopg2://", "postgresql://")) as db:
            with db.cursor(cursor_factory=psycopg2.extras.DictCursor) as cur:
                cur.execute(sql.replace("?", "%s"), params)
                return cur.fetchall()

    def _answers(self, url: str) -> bool:
        self.check_alive()
        try:
            return requests.get(url, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        """The public REST API (`/api/v2/{path}`) as the UI calls it, with a token (every caller is an admin
        unless `extra_env` turns SIMPLE_AUTH_MANAGER_ALL_ADMINS off); the JSON reply."""
        token = requests.get(f"{self.api_url}/auth/token", timeout=60).json()["access_token"]
        response = requests.request(
            method,
            f"{self.api_url}/api/v2/{path}",
            json=body,
            timeout=120,
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code not in ok:
            raise RuntimeError(f"{method} /api/v2/{path}: {response.status_code} {response.text[:2000]}")
        return response.json() if response.content else None

    def wait_for_dags(self, dag_ids: list[str] | tuple[str, ...], timeout: float = 600) -> None:
        """Until the dag-processor has serialized every DAG (the scheduler only runs serialized DAGs)."""

        def parsed():
            self.check_alive()
            try:
                found = {row[0] for row in self.query("SELECT dag_id FROM serialized_dag")}
            except Exception as error:  # a locked or still-migrating database: ask again
                if "locked" not in str(error):
                    raise
                return False
            return set(dag_ids) <= found

        wait_for(f"DAGs {list(dag_ids)} to be parsed", parsed, timeout, poll=2, diagnose=self.diagnose)

    def unpause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.api("PATCH", f"dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str | None, run_id: str | None = None, **body: Any) -> str:
        """The UI's Trigger button (`logical_date` None: a run without one); the new run's id."""
        body = {"logical_date": logical_date, **({"dag_run_id": run_id} if run_id else {}), **body}
        return self.api("POST", f"dags/{dag_id}/dagRuns", body)["dag_run_id"]
