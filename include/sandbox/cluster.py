"""Airflow's distributed topology as local processes: the docker-compose services without Docker.

`AirflowCluster` runs `airflow db migrate` against its metadata database and starts the API server,
scheduler, dag-processor, triggerer and (for the CeleryExecutor) N Celery workers, each a separate process
in its own process group with its own log file under `home/logs/`. Every port is a free one, the Celery
queue is unique to the cluster, and a PostgreSQL database can be created and dropped for it, so several
clusters (other engineers' tests) share one machine's PostgreSQL and Redis without seeing each other.
Used by the distributed test tier (tests/distributed/) and the scale benchmark (bench/scale.py).
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


def wait_for(what: str, check: Callable[[], T], timeout: float, poll: float = 1.0,
             diagnose: Callable[[], str] | None = None) -> T:
    """Polls `check` until it returns something truthy; fails naming `what` (and what `diagnose` says, e.g.
    the components' log tails) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f}s" + (f"\n{diagnose()}" if diagnose else ""))
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
            self.proc = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

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


@dataclass
class AirflowCluster:
    """Airflow components as separate local processes sharing one metadata DB and config (environment)."""

    home: Path
    sql_alchemy_conn: str
    executor: str = "CeleryExecutor"
    workers: int = 2
    worker_concurrency: int = 1
    broker_url: str = REDIS_URL
    result_backend: str | None = None
    #: Extra environment: connections, AUDITLOGS_CONFIG, Airflow options.
    extra_env: dict[str, str] = field(default_factory=dict)
    components: dict[str, Component] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.queue = f"auditlogs_{uuid.uuid4().hex[:10]}"

    # --- configuration -------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": self.executor,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "sandbox.cluster.worker_hostname",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__PARALLELISM": "32",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.api_url,
            # Every component signs and checks the same task tokens.
            "AIRFLOW__API_AUTH__JWT_SECRET": "auditlogs-cluster-" + self.queue,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": self.queue,
            "AIRFLOW__CELERY__BROKER_URL": self.broker_url,
            "AIRFLOW__CELERY__RESULT_BACKEND": self.result_backend or "db+" + self.sql_alchemy_conn.replace(
                "postgresql+psycopg2://", "postgresql://"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")]),
            "NO_PROXY": "127.0.0.1,localhost",
            "PATH": os.pathsep.join([str(Path(AIRFLOW).parent), os.environ.get("PATH", "")]),
        }
        env.update(self.extra_env)
        return env

    # --- lifecycle -----------------------------------------------------------------------------------

    def migrate(self) -> None:
        self.airflow("db", "migrate", timeout=900)

    def start(self, timeout: float = 600) -> AirflowCluster:
        self.migrate()
        self._start("api-server", ["api-server", "--port", str(self.api_port), "--host", "127.0.0.1"])
        self._start("scheduler", ["scheduler"])
        self._start("dag-processor", ["dag-processor"])
        self._start("triggerer", ["triggerer"])
        if self.executor == "CeleryExecutor":
            for index in range(self.workers):
                self.start_worker(self.worker_name(index))
        wait_for("the API server", self._api_up, timeout)
        return self

    @staticmethod
    def worker_name(index: int) -> str:
        return f"worker-{chr(ord('a') + index)}"

    def start_worker(self, name: str) -> None:
        self._start(name, ["celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", self.queue,
                           "--concurrency", str(self.worker_concurrency), "--skip-serve-logs"],
                    {WORKER_NAME_ENV: name})

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
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        component = Component(name, [AIRFLOW, *args], {**self.env(), **(env or {})}, self.home / "logs" / f"{name}.log")
        component.start()
        self.components[name] = component

    def check_alive(self) -> None:
        dead = [name for name, c in self.components.items() if not c.alive and not c.killed]
        if dead:
            raise RuntimeError(f"cluster components exited: {dead}; logs in {self.home / 'logs'}:\n"
                               + "\n".join(self.log_tail(name) for name in dead))

    def log_tail(self, name: str, chars: int = 3000) -> str:
        path = self.home / "logs" / f"{name}.log"
        return f"--- {name} ---\n" + (path.read_text(errors="replace")[-chars:] if path.exists() else "(no log)")

    # --- using it ------------------------------------------------------------------------------------

    def airflow(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([AIRFLOW, *args], env=self.env(), capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed ({result.returncode}):\n"
                               f"{(result.stdout + result.stderr)[-4000:]}")
        return result

    def _api_up(self) -> bool:
        self.check_alive()
        try:
            return requests.get(f"{self.api_url}/api/v2/version", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def api(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = (200, 201)) -> Any:
        """The public REST API (the cluster runs the simple auth manager with everyone admin)."""
        response = requests.request(method, f"{self.api_url}/api/v2/{path}", json=body, timeout=60)
        if response.status_code not in ok:
            raise RuntimeError(f"{method} /api/v2/{path}: {response.status_code} {response.text[:1000]}")
        return response.json() if response.content else None

    def wait_for_dags(self, dag_ids: list[str], timeout: float = 600) -> None:
        """Until the dag-processor has serialized every DAG (the scheduler only runs serialized DAGs)."""
        def parsed():
            self.check_alive()
            found = {d["dag_id"] for d in self.api("GET", "dags?limit=1000")["dags"]}
            return set(dag_ids) <= found
        wait_for(f"DAGs {dag_ids} to be parsed", parsed, timeout, poll=2)

    def unpause(self, *dag_ids: str) -> None:
        for dag_id in dag_ids:
            self.api("PATCH", f"dags/{dag_id}", {"is_paused": False})

    def trigger(self, dag_id: str, logical_date: str, run_id: str | None = None) -> str:
        body = {"logical_date": logical_date, **({"dag_run_id": run_id} if run_id else {})}
        return self.api("POST", f"dags/{dag_id}/dagRuns", body)["dag_run_id"]
