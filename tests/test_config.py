"""Config validation: good files load, each kind of bad file gives a message naming file, source and field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from harness import write_config

from auditlogs.config import load_config, parse_duration
from auditlogs.errors import ConfigError

GOOD = {"type": "slack", "conn_id": "slack_audit"}
DEFAULTS = {"bucket": "sec-logs", "start_date": "2026-01-01", "delay": "30m"}


def load(tmp_path, sources, **defaults):
    return load_config(write_config(tmp_path / "sources.yaml", sources, **{**DEFAULTS, **defaults}))


def test_defaults_are_merged_into_every_source_and_entries_win(tmp_path):
    loaded = load(tmp_path, {"slack": GOOD, "slack_eu": {**GOOD, "delay": "1h30m", "prefix": "/eu/"}})
    assert loaded.errors == {}
    slack, slack_eu = loaded.sources["slack"], loaded.sources["slack_eu"]
    assert slack.delay == timedelta(minutes=30) and slack_eu.delay == timedelta(hours=1, minutes=30)
    assert slack.bucket == slack_eu.bucket == "sec-logs"
    assert slack_eu.prefix == "eu"
    assert slack.start_date == datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert (slack.schedule, slack.gcp_conn_id, slack.catchup, slack.limit) == ("@hourly", "google_cloud_default", False, 9999)
    assert slack.dag_id == "auditlogs_slack"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({**GOOD, "delay": "30 minutes"}, "field 'delay': invalid duration '30 minutes': use numbers with d, h, m, s"),
        ({**GOOD, "type": "slak"}, "field 'type': 'slak' is not a known source type; allowed: "),
        ({"type": "slack"}, "field 'conn_id': required, set it in the source or in 'defaults'"),
        ({**GOOD, "limit": 10000}, "field 'limit': Input should be less than or equal to 9999"),
        ({**GOOD, "bucket": "gs://sec-logs/raw"}, "field 'bucket': give the bare bucket name (no gs://, no path)"),
        ({**GOOD, "schedule": "every hour"}, "field 'schedule': 'every hour' is not a cron expression or preset"),
        ({**GOOD, "schedule": "@once"}, "field 'schedule': needs a periodic schedule"),
        ({**GOOD, "retries": -1}, "field 'retries': Input should be greater than or equal to 0"),
        ({**GOOD, "conn": "x"}, "field 'conn': unknown key (check the spelling against the README's config reference)"),
        ({**GOOD, "start_date": "yesterday"}, "field 'start_date'"),
        ({**GOOD, "part_size": "lots"}, "field 'part_size': invalid size 'lots'"),
    ],
)
def test_a_bad_source_is_reported_with_file_source_and_field(tmp_path, entry, message):
    loaded = load(tmp_path, {"broken": entry})
    assert loaded.sources == {}
    error = loaded.errors["broken"]
    assert error.startswith(f"{tmp_path / 'sources.yaml'}: source 'broken'")
    assert message in error


def test_bad_source_names_are_rejected(tmp_path):
    loaded = load(tmp_path, {"Slack-Prod": GOOD})
    assert "field 'name': source names become DAG ids and GCS folders" in loaded.errors["Slack-Prod"]


def test_one_broken_source_does_not_hide_the_others(tmp_path):
    loaded = load(tmp_path, {"good": GOOD, "bad": {**GOOD, "delay": "soon"}, "also_good": GOOD})
    assert sorted(loaded.sources) == ["also_good", "good"]
    assert list(loaded.errors) == ["bad"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("sources: [", "is not valid YAML"),
        ("- just a list", "must be a mapping with a 'sources:' mapping"),
        ("defaults: {}\n", "must be a mapping with a 'sources:' mapping"),
        ("sources: {}\nsource: {}\n", "unknown top-level keys ['source']"),
    ],
)
def test_an_unreadable_file_raises_a_config_error(tmp_path, text, message):
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_config(path)


def test_a_missing_file_says_how_to_point_at_one(tmp_path):
    with pytest.raises(ConfigError, match="does not exist. What to do: create it or point AUDITLOGS_CONFIG at it"):
        load_config(tmp_path / "nope.yaml")


def test_config_path_comes_from_the_environment(tmp_path, monkeypatch):
    path = write_config(tmp_path / "other.yaml", {"from_env": GOOD}, **DEFAULTS)
    monkeypatch.setenv("AUDITLOGS_CONFIG", str(path))
    assert list(load_config().sources) == ["from_env"]


@pytest.mark.parametrize(
    "text, expected",
    [("30m", timedelta(minutes=30)), ("1h30m", timedelta(minutes=90)), ("2d", timedelta(days=2)),
     ("45s", timedelta(seconds=45)), (90, timedelta(seconds=90)), ("0s", timedelta(0))],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


def test_the_shipped_config_is_valid():
    loaded = load_config()
    assert loaded.errors == {} and "slack" in loaded.sources
