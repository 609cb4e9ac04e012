"""`make run`: the product on one machine against the sandbox.

Starts the sandbox API and the GCS emulator, runs Airflow's components as separate processes (the cluster
runner sandbox/cluster.py: SQLite, LocalExecutor, the UI on --ui-port) with the DAGs of include/sources.yaml
pointed at them, unpauses every auditlogs DAG, waits until every source's latest interval has a manifest for
each of its streams, and prints where the objects landed and where the UI is.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shlex
import signal
import sys
from pathlib import Path

import yaml

from auditlogs.config import load_config
from sandbox.cluster import AirflowCluster, wait_for
from sandbox.connections import connection_env
from sandbox.gcs import GcsEmulatorProcess
from sandbox.process import SandboxProcess
from sandbox.scenario import DEFAULT_SCENARIO_PATH, load_scenario

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SOURCES = ROOT / "include" / "sources.yaml"
#: Written into AIRFLOW_HOME/airflow.cfg, so the CLI in a second terminal (`AIRFLOW_HOME=.airflow airflow ...`)
#: sees the demo's DAGs and never loads Airflow's examples into its database.
#: The database URL too: its `timeout=60` makes the CLI wait for SQLite's lock as the components do (5 s else).
CFG_KEYS = {
    "core": ("dags_folder", "plugins_folder", "load_examples", "parallelism"),
    "database": ("sql_alchemy_conn",),
}


def environment(api_url: str, gcs: GcsEmulatorProcess) -> dict[str, str]:
    """What the demo adds to the cluster runner's environment: its config, connections and emulator."""
    scenario = load_scenario(DEFAULT_SCENARIO_PATH)
    env = {
        # The UI asks for a login (user admin, the password Airflow generates), as a real deployment does.
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AUDITLOGS_CONFIG": str(SOURCES),
        **gcs.connection_env(),
    }
    env.update(connection_env(yaml.safe_load(SOURCES.read_text())["sources"], scenario, api_url))
    return env


def write_cli_settings(home: Path, env: dict[str, str]) -> Path:
    """The demo's settings for a second terminal: its airflow.cfg keys, and `demo.env` with everything
    (connections, the GCS emulator) for `make airflow ARGS="..."`. Returns the env file."""
    cfg_path = home / "airflow.cfg"
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(cfg_path)
    for section, keys in CFG_KEYS.items():
        if not cfg.has_section(section):
            cfg.add_section(section)
        for key in keys:
            cfg.set(section, key, env[f"AIRFLOW__{section.upper()}__{key.upper()}"])
    with open(cfg_path, "w") as out:
        cfg.write(out)
    demo_env = home / "demo.env"
    names = sorted(name for name in env if env[name] != os.environ.get(name) and name != "PATH")
    demo_env.write_text("".join(f"export {name}={shlex.quote(env[name])}\n" for name in names))
    demo_env.chmod(0o600)  # holds the sandbox's (fake) tokens
    return demo_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.local", description=__doc__)
    parser.add_argument("--api-port", type=int, default=8931)
    parser.add_argument("--gcs-port", type=int, default=9023)
    parser.add_argument("--ui-port", type=int, default=8080)
    parser.add_argument("--airflow-home", type=Path, default=ROOT / ".airflow")
    parser.add_argument("--exit-after-first-interval", action="store_true", help="stop once data landed (smoke test)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop Airflow's process group on SIGTERM too
    args.airflow_home.mkdir(parents=True, exist_ok=True)
    sources = load_config(SOURCES).sources
    bucket = next(iter(sources.values())).bucket
    stream_folders = [f"{s.prefix}/{s.name}/{stream}/" for s in sources.values() for stream in s.stream_names()]
    dag_ids = [f"auditlogs_{name}" for name in sources]

    with (
        SandboxProcess(DEFAULT_SCENARIO_PATH, port=args.api_port) as api,
        GcsEmulatorProcess((bucket,), port=args.gcs_port) as gcs,
        AirflowCluster(
            args.airflow_home, api_port=args.ui_port, fast=False, extra_env=environment(api.url, gcs)
        ) as airflow,
    ):
        print(f"sandbox API on {api.url}, GCS emulator on {gcs.url}, AIRFLOW_HOME={args.airflow_home}", flush=True)
        demo_env = write_cli_settings(args.airflow_home, airflow.env)
        print(f'CLI in another terminal: make airflow ARGS="dags list" (its environment: {demo_env})', flush=True)
        try:
            print(
                f"Airflow starting: API server, scheduler, dag-processor, triggerer (logs: {airflow.logs}) ...",
                flush=True,
            )
            airflow.start(dag_ids, timeout=600)  # until the API servers answer and the DAGs are parsed
            for dag_id in dag_ids:
                airflow.cli("dags", "unpause", dag_id)
            print(f"unpaused {', '.join(dag_ids)}; waiting for each source's latest interval to land ...", flush=True)
            manifests = wait_for(
                "a manifest of every stream",
                lambda: manifests_of_every_stream(gcs, bucket, stream_folders),
                timeout=900,
                poll=2,
                diagnose=airflow.diagnose,
            )
            report(gcs, bucket, manifests, args)
            if not args.exit_after_first_interval:
                print("Ctrl-C stops Airflow, the sandbox and the emulator.", flush=True)
                airflow.components["scheduler"].proc.wait()
        except KeyboardInterrupt:
            pass
    return 0


def manifests_of_every_stream(gcs: GcsEmulatorProcess, bucket: str, stream_folders: list[str]) -> list[str]:
    """Every stream's manifests, once each stream has at least one; else nothing."""
    manifests = [
        [name for name in gcs.list(bucket, folder) if name.endswith("_manifest.json")] for folder in stream_folders
    ]
    return [name for names in manifests for name in names] if all(manifests) else []


def report(gcs: GcsEmulatorProcess, bucket: str, manifests: list[str], args) -> None:
    print("\nCollected:", flush=True)
    for name in manifests:
        manifest = json.loads(gcs.read(bucket, name))
        folder = name.rsplit("/", 1)[0]
        print(
            f"  gs://{bucket}/{folder}/  ({manifest['events']} events, {len(manifest['parts'])} part(s), "
            f"window {manifest['window']['start']} .. {manifest['window']['end']})"
        )
        for part in manifest["parts"]:
            print(
                f"    {part['name']}  {part['events']} events  {part['bytes']} bytes  sha256 {part['sha256'][:12]}..."
            )
    password_file = args.airflow_home / "simple_auth_manager_passwords.json.generated"
    password = json.loads(password_file.read_text()).get("admin") if password_file.exists() else "(see the log)"
    print(f"\nObjects are in the GCS emulator at {gcs.url} (e.g. {gcs.url}/storage/v1/b/{bucket}/o).")
    print(f"Airflow UI: http://localhost:{args.ui_port}  user admin, password {password}\n", flush=True)


if __name__ == "__main__":
    sys.exit(main())
