"""A careless config against the real DAG file: whatever one entry holds, the other sources' DAGs still
load, and the broken entry is a placeholder DAG tagged config-error that says which entry and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from airflow.dag_processing.dagbag import DagBag

from harness import write_config

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = {"bucket": "sec-logs", "start_date": "2026-01-01", "delay": "30m"}
SLACK = {"type": "slack", "conn_id": "slack_audit"}
LONG_NAME = "broken_" + "x" * 250


def dagbag(monkeypatch, config: Path) -> DagBag:
    monkeypatch.setenv("AUDITLOGS_CONFIG", str(config))
    return DagBag(dag_folder=str(ROOT / "dags"))


def assert_good_still_collects(bag: DagBag) -> None:
    assert bag.import_errors == {}
    good = bag.dags["auditlogs_good"]
    assert "config-error" not in good.tags and [t.task_id for t in good.tasks] == ["collect_audit"]


def placeholders(bag: DagBag) -> dict[str, str]:
    return {dag_id: dag.description for dag_id, dag in bag.dags.items() if "config-error" in dag.tags}


@pytest.mark.parametrize(
    "name, entry, dag_id, message",
    [
        (
            LONG_NAME,
            SLACK,
            "auditlogs_" + LONG_NAME[:64] + "-",
            f"source '{LONG_NAME[:64]}...' (257 characters, line 9): field 'name'",
        ),
        (
            "delay_huge",
            {**SLACK, "delay": "99999999999d"},
            "auditlogs_delay_huge",
            "source 'delay_huge': field 'delay': invalid duration '99999999999d': longer than 3650d",
        ),
        (
            "delay_inf",
            {**SLACK, "delay": float("inf")},
            "auditlogs_delay_inf",
            "source 'delay_inf': field 'delay': invalid duration inf: not a finite number of seconds",
        ),
        ("bogus", {**SLACK, "schedule": "@bogus"}, "auditlogs_bogus", "field 'schedule': '@bogus' is not a preset"),
        ("feb30", {**SLACK, "schedule": "0 0 30 2 *"}, "auditlogs_feb30", "field 'schedule': '0 0 30 2 *' never fires"),
        (
            "listed_type",
            {**SLACK, "type": ["slack"]},
            "auditlogs_listed_type",
            "field 'type': ['slack'] is not a known",
        ),
        ("Odd Name!", SLACK, "auditlogs_odd_name_-", "source 'Odd Name!': field 'name'"),
    ],
)
def test_one_careless_entry_never_hides_the_other_sources(tmp_path, monkeypatch, name, entry, dag_id, message):
    bag = dagbag(monkeypatch, write_config(tmp_path / "sources.yaml", {"good": SLACK, name: entry}, **DEFAULTS))
    assert_good_still_collects(bag)
    [(placeholder, description)] = placeholders(bag).items()
    assert placeholder.startswith(dag_id) and len(placeholder) <= 250
    assert message in description and message in bag.dags[placeholder].doc_md


def test_a_timetable_that_raises_is_that_sources_error(tmp_path, monkeypatch):
    import auditlogs.factory

    def refuse(expression, timezone):
        if expression == "*/5 * * * *":
            raise RuntimeError("this timetable refuses")
        return real(expression, timezone=timezone)

    real = auditlogs.factory.CronDataIntervalTimetable
    monkeypatch.setattr(auditlogs.factory, "CronDataIntervalTimetable", refuse)
    config = write_config(
        tmp_path / "sources.yaml", {"good": SLACK, "odd": {**SLACK, "schedule": "*/5 * * * *"}}, **DEFAULTS
    )
    bag = dagbag(monkeypatch, config)
    assert_good_still_collects(bag)
    assert placeholders(bag) == {
        "auditlogs_odd": f"CONFIG ERROR: {config}: source 'odd': its DAG cannot be built: "
        "RuntimeError: this timetable refuses"
    }


def test_a_broken_name_that_reads_like_a_valid_one_does_not_replace_it(tmp_path, monkeypatch):
    """`a/b` would become auditlogs_a_b, the DAG of the valid `a_b`: the broken entry gets its own id."""
    config = write_config(tmp_path / "sources.yaml", {"good": SLACK, "a_b": SLACK, "a/b": SLACK}, **DEFAULTS)
    bag = dagbag(monkeypatch, config)
    assert_good_still_collects(bag)
    assert "config-error" not in bag.dags["auditlogs_a_b"].tags
    [(placeholder, description)] = placeholders(bag).items()
    assert placeholder.startswith("auditlogs_a_b-") and f"{config}: source 'a/b': field 'name'" in description


@pytest.mark.parametrize(
    "sources, dag_id",
    [
        ({"slack": {**SLACK, "sweep": "1d"}, "slack_sweep": SLACK}, "auditlogs_slack_sweep"),
        (
            {"slack": {**SLACK, "bigquery_dataset": "proj.ds"}, "slack_audit_to_bigquery": SLACK},
            "auditlogs_slack_audit_to_bigquery",
        ),
        ({"slack": {**SLACK, "sweep": "1d"}, "slack_sweep": {**SLACK, "delay": "soon"}}, "auditlogs_slack_sweep"),
    ],
)
def test_two_entries_yielding_one_dag_id_are_both_errors_naming_each_other(tmp_path, monkeypatch, sources, dag_id):
    config = write_config(tmp_path / "sources.yaml", {"good": SLACK, **sources}, **DEFAULTS)
    bag = dagbag(monkeypatch, config)
    assert_good_still_collects(bag)
    first, second = sources
    found = placeholders(bag)
    assert sorted(found) == sorted(f"auditlogs_{name}" for name in sources)
    for name, other in ((first, second), (second, first)):
        assert f"its DAG id '{dag_id}' is also a DAG id of source '{other}' (line " in found[f"auditlogs_{name}"]
        assert found[f"auditlogs_{name}"].startswith(f"CONFIG ERROR: {config}: source '{name}'")


def test_a_source_given_twice_is_an_error_naming_both_lines(tmp_path, monkeypatch):
    config = tmp_path / "sources.yaml"
    config.write_text(
        yaml.safe_dump({"defaults": DEFAULTS}) + "sources:\n  good: {type: slack, conn_id: a}\n"
        "  slack: {type: slack, conn_id: a}\n  slack: {type: slack, conn_id: b}\n"
    )
    bag = dagbag(monkeypatch, config)
    assert_good_still_collects(bag)
    assert placeholders(bag) == {
        "auditlogs_slack": f"CONFIG ERROR: {config}: source 'slack': key 'slack' appears "
        "twice in 'sources' (lines 7 and 8): YAML would silently keep the second; "
        "remove or rename one"
    }
