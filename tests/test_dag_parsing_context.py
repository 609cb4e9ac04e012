"""A task process builds only its own DAG: parsed the way Airflow's task runner parses the DAG file (inside
the DAG parsing context of its task), a large config yields one DAG, and it is the very DAG the
dag-processor serialised from the same file."""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager
from airflow.serialization.serialized_objects import DagSerialization

import auditlogs.factory
from harness import write_config

ROOT = Path(__file__).resolve().parents[1]
DAGS = ROOT / "dags"
SOURCES = 400
KINDS = {"slack": {}, "okta": {}, "github": {"org": "acme"}, "onepassword": {}}


def large_config(path: Path) -> Path:
    sources = {}
    for index in range(SOURCES):
        kind = list(KINDS)[index % len(KINDS)]
        sources[f"{kind}_{index:04d}"] = {"type": kind, "conn_id": f"{kind}_api", **KINDS[kind]}
    sources["slack_0000"]["sweep"] = "1d"
    sources["slack_0004"]["sweep"] = "1d"
    sources["slack_0004_sweep"] = {"type": "slack", "conn_id": "slack_api"}  # its id is slack_0004's sweep's
    sources["broken"] = {"type": "slack", "delay": "soon"}
    return write_config(
        path, sources, coverage_audit={"enabled": True}, bucket="sec-logs", start_date="2026-01-01", delay="30m"
    )


def dag_processor_parse() -> dict[str, dict]:
    """What the dag-processor's file processor does: a bag of the file, every DAG serialised."""
    bag = BundleDagBag(
        dag_folder=str(DAGS / "auditlogs_dags.py"), bundle_path=DAGS, bundle_name="dags-folder", load_op_links=False
    )
    assert bag.import_errors == {}
    return {dag_id: DagSerialization.to_dict(dag) for dag_id, dag in bag.dags.items()}


def task_parse(dag_id: str, task_id: str) -> BundleDagBag:
    """What `task_runner.parse` does at a task's start-up, inside the parsing context `startup` sets."""
    with _airflow_parsing_context_manager(dag_id=dag_id, task_id=task_id):
        return BundleDagBag(
            dag_folder=str(DAGS / "auditlogs_dags.py"),
            safe_mode=False,
            load_op_links=False,
            bundle_path=DAGS,
            bundle_name="dags-folder",
        )


@pytest.fixture(scope="module")
def serialised(tmp_path_factory) -> dict[str, dict]:
    config = large_config(tmp_path_factory.mktemp("config") / "sources.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AUDITLOGS_CONFIG", str(config))
        yield dag_processor_parse()


@pytest.fixture
def built(monkeypatch, serialised) -> list[str]:
    """The DAGs the factory builds, by id, in the order built (its DAG-building functions, counted)."""
    ids: list[str] = []
    for name in ("source_dag", "sweep_dag", "config_error_dag"):
        real = getattr(auditlogs.factory, name)

        def counting(*args, _real=real, **kwargs):
            dag = _real(*args, **kwargs)
            ids.append(dag.dag_id)
            return dag

        monkeypatch.setattr(auditlogs.factory, name, counting)
    return ids


def test_the_dag_processor_builds_every_source_and_shows_the_broken_one(serialised):
    assert (
        len(
            [
                d
                for d in serialised
                if d.startswith("auditlogs_slack_")
                or d.startswith("auditlogs_okta_")
                or d.startswith("auditlogs_github_")
                or d.startswith("auditlogs_onepassword_")
            ]
        )
        == SOURCES + 2
    )
    assert {"auditlogs_slack_0000_sweep", "auditlogs_coverage_audit", "auditlogs_broken"} <= set(serialised)
    for placeholder in ("auditlogs_broken", "auditlogs_slack_0004", "auditlogs_slack_0004_sweep"):
        assert "config-error" in serialised[placeholder]["dag"]["tags"]


@pytest.mark.parametrize(
    "dag_id, task_id",
    [
        ("auditlogs_okta_0201", "collect_systemlog"),
        ("auditlogs_onepassword_0399", "collect_auditevents"),
        ("auditlogs_broken", "config_error"),
        ("auditlogs_slack_0004", "config_error"),
        ("auditlogs_slack_0004_sweep", "config_error"),
        ("auditlogs_coverage_audit", "audit"),
    ],
)
def test_a_task_builds_one_dag_identical_to_the_serialised_one(serialised, built, dag_id, task_id):
    bag = task_parse(dag_id, task_id)
    assert bag.import_errors == {}
    assert list(bag.dags) == [dag_id]
    assert built == ([] if dag_id == "auditlogs_coverage_audit" else [dag_id])
    assert task_id in bag.dags[dag_id].task_dict
    assert DagSerialization.to_dict(bag.dags[dag_id]) == serialised[dag_id]


def test_a_sweep_task_builds_its_source_s_dags_only(serialised, built):
    bag = task_parse("auditlogs_slack_0000_sweep", "sweep_audit")
    assert sorted(bag.dags) == ["auditlogs_slack_0000", "auditlogs_slack_0000_sweep"] == sorted(built)
    for dag_id, dag in bag.dags.items():
        assert DagSerialization.to_dict(dag) == serialised[dag_id]


def test_a_dag_id_the_config_does_not_yield_builds_every_dag_as_the_dag_processor_does(serialised, built):
    bag = task_parse("auditlogs_removed_since", "collect_audit")
    assert set(bag.dags) == set(serialised)


_IMPORTED_SOURCES = """
import sys
from airflow.dag_processing.dagbag import BundleDagBag
from airflow.sdk.definitions._internal.dag_parsing_context import _airflow_parsing_context_manager
with _airflow_parsing_context_manager(dag_id=sys.argv[2], task_id="collect_systemlog"):
    bag = BundleDagBag(dag_folder=sys.argv[1], safe_mode=False, load_op_links=False,
                       bundle_path=sys.argv[1].rsplit("/", 1)[0], bundle_name="dags-folder")
print("DAGS", sorted(bag.dags))
print("TYPES", sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("auditlogs.sources.")))
"""


def test_a_task_imports_only_its_own_source_type(tmp_path):
    import os
    import subprocess
    import sys

    config = large_config(tmp_path / "sources.yaml")
    out = subprocess.run(
        [sys.executable, "-c", _IMPORTED_SOURCES, str(DAGS / "auditlogs_dags.py"), "auditlogs_okta_0001"],
        env={**os.environ, "AUDITLOGS_CONFIG": str(config)},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    assert "DAGS ['auditlogs_okta_0001']" in out
    assert "TYPES ['auth', 'base', 'okta']" in out
