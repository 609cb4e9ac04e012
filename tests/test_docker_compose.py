"""Static checks of docker-compose.yaml and the Dockerfile (no Docker engine runs on our machines).

What is verified, against the installed Airflow 3.3.2 and its providers: the file parses as YAML; every
Airflow service's command (and every `airflow ...` health check) parses with Airflow's own CLI parser under
the compose file's executor; every AIRFLOW__SECTION__KEY name is an option `airflow config list --defaults`
knows; `python -m` commands name modules of this repository; bind-mounted paths exist; the URLs that wire
services together name a service and the port it listens on; depends_on names real services with
conditions they can meet, without cycles; the default env file gives every configured source a connection.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from sandbox.connections import sandbox_api, sandbox_connection
from sandbox.scenario import DEFAULT_SCENARIO_PATH, load_scenario

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW_IMAGE_SERVICES = {name: s for name, s in SERVICES.items() if s.get("build") == "."}
ENV_FILES = [ROOT / "deploy" / "sandbox.env", ROOT / "deploy" / "production.env.example"]
CONFIG_NAME = re.compile(r"^AIRFLOW__([A-Z0-9_]+?)__([A-Z0-9_]+)$")

#: Builds Airflow's CLI parser in a child (the executor's commands, such as `celery worker`, are only in it
#: when that executor is configured) and reports the commands it rejects.
_PARSE_COMMANDS = """
import contextlib, io, json, sys
from airflow.cli.cli_parser import get_parser
bad = {}
for command in json.loads(sys.argv[1]):
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            get_parser().parse_args(command)
    except SystemExit:
        bad[" ".join(command)] = err.getvalue().strip()[-300:]
print(json.dumps(bad))
"""


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {key: value for key, value in pairs}


def common_env() -> dict[str, str]:
    """The compose file's Airflow environment, with `${VAR:-default}` resolved to its default."""
    environment = AIRFLOW_IMAGE_SERVICES["airflow-scheduler"]["environment"]
    return {key: re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", str(value)) for key, value in environment.items()}


def airflow_child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
    env.update({k: v for k, v in common_env().items() if k.startswith("AIRFLOW__")})
    # Parsing needs no database: keep the child off the compose file's PostgreSQL host.
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db"})
    return env


def airflow_commands() -> dict[str, list[str]]:
    """Airflow CLI invocations of the compose file: service commands and `airflow ...` health checks."""
    commands = {}
    for name, service in AIRFLOW_IMAGE_SERVICES.items():
        command = service["command"]
        if command[0] not in ("python", "bash"):  # the image's entrypoint runs anything else as `airflow ...`
            commands[f"{name} command"] = command
        test = service.get("healthcheck", {}).get("test", [])
        if test and test[0] == "CMD-SHELL":
            for alternative in test[1].split("||"):
                words = shlex.split(alternative.replace("$${HOSTNAME}", "host"))
                if words[0] == "airflow":
                    commands[f"{name} healthcheck"] = words[1:]
    return commands


def test_the_compose_file_has_the_official_topology_plus_the_stand_ins():
    assert set(SERVICES) == {
        "postgres",
        "redis",
        "airflow-init",
        "auditlogs-setup",
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-worker",
        "airflow-triggerer",
        "sandbox",
        "gcs",
    }
    commands = {name: s["command"][:2] for name, s in AIRFLOW_IMAGE_SERVICES.items()}
    assert commands["airflow-apiserver"] == ["api-server"] and commands["airflow-worker"] == ["celery", "worker"]
    assert commands["airflow-triggerer"] == ["triggerer"] and commands["airflow-dag-processor"] == ["dag-processor"]
    assert SERVICES["gcs"]["image"].startswith("fsouza/fake-gcs-server:")
    assert common_env()["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_every_airflow_command_is_a_real_cli_command_of_the_installed_airflow(tmp_path):
    commands = airflow_commands()
    assert len(commands) >= 8
    script = subprocess.run(
        [sys.executable, "-c", _PARSE_COMMANDS, json.dumps(list(commands.values()))],
        env=airflow_child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert script.returncode == 0, script.stderr[-3000:]
    assert json.loads(script.stdout.strip().splitlines()[-1]) == {}


def test_the_cli_check_rejects_a_command_airflow_does_not_have(tmp_path):
    script = subprocess.run(
        [sys.executable, "-c", _PARSE_COMMANDS, json.dumps([["webserver"], ["celery", "worker", "--nope"]])],
        env=airflow_child_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert set(json.loads(script.stdout.strip().splitlines()[-1])) == {"webserver", "celery worker --nope"}


@pytest.fixture(scope="module")
def known_options(tmp_path_factory) -> set[tuple[str, str]]:
    """(section, key) of every option Airflow 3.3.2 and the installed providers define."""
    listing = subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "config", "list", "--defaults"],
        env=airflow_child_env(tmp_path_factory.mktemp("cfg")),
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    options, section = set(), None
    for line in listing.splitlines():
        if header := re.match(r"^\[([^\]]+)\]$", line):
            section = header.group(1)
        elif option := re.match(r"^#?\s*([a-z0-9_]+) = ", line):
            options.add((section, option.group(1)))
    assert ("celery", "broker_url") in options and ("core", "executor") in options
    return options


def test_every_airflow_config_variable_names_a_real_option(known_options):
    names = {key for service in SERVICES.values() for key in (service.get("environment") or {})}
    names |= {key for path in ENV_FILES for key in env_file(path)}
    names |= {
        key
        for path in ENV_FILES
        for line in path.read_text().splitlines()
        for key in re.findall(r"^#\s*(AIRFLOW__[A-Z0-9_]+)=", line)
    }
    config_names = sorted(n for n in names if n.startswith("AIRFLOW__"))
    assert len(config_names) >= 15
    unknown = []
    for name in config_names:
        section, key = CONFIG_NAME.match(name).groups()
        key = re.sub(r"_(CMD|SECRET)$", "", key) if (section.lower(), key.lower()) not in known_options else key
        if (section.lower(), key.lower()) not in known_options:
            unknown.append(name)
    assert not unknown


def test_bind_mounts_exist_and_named_volumes_are_declared():
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repository"
            else:
                assert source in COMPOSE["volumes"], f"{name} uses undeclared volume {source}"
    assert (ROOT / "deploy" / "gcs-data" / "auditlogs-sandbox").is_dir()


def test_python_commands_run_modules_of_this_repository():
    for name, service in AIRFLOW_IMAGE_SERVICES.items():
        command = service["command"]
        if command[0] == "python":
            assert command[1] == "-m"
            module = command[2].replace(".", "/")
            assert any(
                (ROOT / folder / f"{module}{suffix}").exists()
                for folder in ("plugins", "include")
                for suffix in (".py", "/__main__.py")
            ), name


def _listening_port(service: str) -> int:
    command = SERVICES[service].get("command") or []
    for flag in ("--port", "-port"):
        if flag in command:
            return int(command[command.index(flag) + 1])
    return {"airflow-apiserver": 8080}[service]  # [api] port's default


def test_urls_between_services_name_a_service_and_the_port_it_listens_on():
    wiring = {**env_file(ROOT / "deploy" / "sandbox.env"), **common_env()}
    urls = [wiring["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"], wiring["STORAGE_EMULATOR_HOST"]]
    urls += [
        json.loads(v)["host"] for k, v in wiring.items() if k.startswith("AIRFLOW_CONN_") and "host" in json.loads(v)
    ]
    for url in urls:
        parsed = urlparse(url)
        assert parsed.hostname in SERVICES, url
        assert parsed.port == _listening_port(parsed.hostname), url
    published = [p.split(":")[0] for s in SERVICES.values() for p in s.get("ports", [])]
    assert len(published) == len(set(published)), "two services publish the same host port"
    for service in ("airflow-apiserver", "sandbox", "gcs"):
        assert any(p.endswith(f":{_listening_port(service)}") for p in SERVICES[service]["ports"]), service


def test_depends_on_names_real_services_with_conditions_they_can_meet_and_no_cycle():
    one_shots = {"airflow-init", "auditlogs-setup"}
    graph = {}
    for name, service in SERVICES.items():
        graph[name] = set(service.get("depends_on") or {})
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target} to be healthy; it has no check"
            elif rule["condition"] == "service_completed_successfully":
                assert target in one_shots and "restart" not in SERVICES[target], (name, target)
    visiting, done = set(), set()

    def visit(node):
        assert node not in visiting, f"depends_on cycle through {node}"
        if node not in done:
            visiting.add(node)
            for target in graph[node]:
                visit(target)
            visiting.discard(node)
            done.add(node)

    for node in graph:
        visit(node)
    for name in set(AIRFLOW_IMAGE_SERVICES) - one_shots - {"sandbox"}:
        assert graph[name] >= {"postgres", "redis", "airflow-init"}, name


def test_the_default_env_file_gives_every_configured_source_a_connection_so_up_needs_no_accounts():
    sources = yaml.safe_load((ROOT / "include" / "sources.yaml").read_text())
    env = env_file(ROOT / "deploy" / "sandbox.env")
    defaults = sources.get("defaults", {})
    scenario = load_scenario(DEFAULT_SCENARIO_PATH)  # what the sandbox service serves
    for name, source in sources["sources"].items():
        for conn_id in (
            source["conn_id"],
            source.get("gcp_conn_id", defaults.get("gcp_conn_id", "google_cloud_default")),
        ):
            assert f"AIRFLOW_CONN_{conn_id.upper()}" in env, conn_id
        expected = sandbox_connection(
            source["type"], "http://sandbox:8931", scenario.sources[sandbox_api(name, source)].token
        )
        assert json.loads(env[f"AIRFLOW_CONN_{source['conn_id'].upper()}"]) == expected, source["conn_id"]
        bucket = source.get("bucket", defaults.get("bucket"))
        assert (ROOT / "deploy" / "gcs-data" / bucket).is_dir(), f"the emulator does not create bucket {bucket}"
    assert common_env()["AUDITLOGS_CONFIG"] == "/opt/airflow/include/sources.yaml"
    assert "STORAGE_EMULATOR_HOST" not in env_file(ROOT / "deploy" / "production.env.example")


def test_the_dockerfile_builds_on_the_official_image_and_carries_the_package():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM apache/airflow:3\.3\.2-python3\.11$", dockerfile, re.M)
    copied = re.findall(r"^COPY (?:--chown=\S+ )?(\S+) ", dockerfile, re.M)
    assert set(copied) == {"requirements.txt", "dags/", "plugins/", "include/"}
    assert all((ROOT / path).exists() for path in copied)
    assert "-r /requirements.txt" in dockerfile
