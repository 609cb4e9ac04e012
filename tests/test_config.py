"""Config validation: good files load, each kind of bad file gives a message naming file, source and field."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from auditlogs.config import load_config, parse_duration
from auditlogs.errors import ConfigError
from harness import write_config

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
    assert (slack.schedule, slack.gcp_conn_id, slack.catchup, slack.limit) == (
        "@hourly",
        "google_cloud_default",
        False,
        9999,
    )
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
        ({**GOOD, "delay": "99999999999d"}, "field 'delay': invalid duration '99999999999d': longer than 3650d"),
        ({**GOOD, "delay": 10**20}, "field 'delay': invalid duration 100000000000000000000: longer than 3650d"),
        ({**GOOD, "delay": float("inf")}, "field 'delay': invalid duration inf: not a finite number of seconds"),
        ({**GOOD, "retry_delay": float("nan")}, "field 'retry_delay': invalid duration nan: not a finite number"),
        ({**GOOD, "schedule": "@bogus"}, "field 'schedule': '@bogus' is not a preset; use one of @hourly, @daily"),
        ({**GOOD, "sweep": "1d", "sweep_schedule": "@reboot"}, "field 'sweep_schedule': '@reboot' is not a preset"),
        ({**GOOD, "schedule": "0 0 30 2 *"}, "field 'schedule': '0 0 30 2 *' never fires (no date matches it"),
        ({**GOOD, "schedule": "0 0 31 4,6 *"}, "field 'schedule': '0 0 31 4,6 *' never fires"),
        ({**GOOD, "schedule": "0 0 * * * 2030"}, "field 'schedule': '0 0 * * * 2030' is not a cron expression"),
        ({**GOOD, "start_date": "0001-01-01"}, "field 'start_date': 0001-01-01T00:00:00+00:00 must be between 1970"),
        ({**GOOD, "execution_timeout": "off"}, "field 'execution_timeout': cannot be off: a task without a timeout"),
        ({**GOOD, "execution_timeout": "0s"}, "execution_timeout must be more than 0s"),
        ({**GOOD, "bucket": "Sec-Logs"}, "field 'bucket': 'Sec-Logs' is not a GCS bucket name: use lower-case"),
        ({**GOOD, "bucket": "ab"}, "field 'bucket': 'ab' is not a GCS bucket name: must be 3-63 characters"),
        ({**GOOD, "bucket": "a" * 64}, "is not a GCS bucket name: must be 3-63 characters (up to 222 when it"),
        ({**GOOD, "bucket": "a" * 64 + ".logs"}, "is not a GCS bucket name: each dot-separated part must be 1-63"),
        ({**GOOD, "bucket": "logs-"}, "field 'bucket': 'logs-' is not a GCS bucket name: use lower-case letters"),
        ({**GOOD, "bucket": "googlogs"}, "field 'bucket': 'googlogs' is not a GCS bucket name: cannot start with"),
        ({**GOOD, "bucket": "10.0.0.1"}, "field 'bucket': '10.0.0.1' is not a GCS bucket name: cannot be an IP"),
        ({**GOOD, "prefix": "raw/../other"}, "field 'prefix': 'raw/../other': no empty, '.' or '..' folder names"),
        ({**GOOD, "prefix": "raw//eu"}, "field 'prefix': 'raw//eu': no empty, '.' or '..' folder names"),
        ({**GOOD, "prefix": "raw#1"}, "field 'prefix': 'raw#1': no control characters, '#', '[', ']', '*' or '?'"),
        ({**GOOD, "prefix": "raw\neu"}, "field 'prefix': 'raw\\neu': no control characters"),
        ({**GOOD, "prefix": "r" * 801}, "field 'prefix': 801 bytes long; at most 800"),
        ({**GOOD, "type": ["slack"]}, "field 'type': ['slack'] is not a known source type"),
    ],
)
def test_a_bad_source_is_reported_with_file_source_and_field(tmp_path, entry, message):
    loaded = load(tmp_path, {"broken": entry})
    assert loaded.sources == {}
    error = loaded.errors["broken"]
    assert error.startswith(f"{tmp_path / 'sources.yaml'}: source 'broken': ")
    assert message in error


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"bucket": "sec-logs.example.com"}, "sec-logs.example.com"),
        ({"bucket": "a_b-1"}, "a_b-1"),
        ({"prefix": "raw/eu-1/ü"}, "raw/eu-1/ü"),
        ({"schedule": "@quarterly"}, "@quarterly"),
        ({"schedule": "@Midnight"}, "@midnight"),
        ({"schedule": "0 0 29 2 *"}, "0 0 29 2 *"),
    ],
)
def test_valid_gcs_names_and_schedules_are_kept(tmp_path, changes, expected):
    loaded = load(tmp_path, {"slack": {**GOOD, **changes}})
    assert loaded.errors == {}
    assert getattr(loaded.sources["slack"], next(iter(changes))) == expected


def test_a_quarterly_schedule_has_a_quarter_long_period(tmp_path):
    """croniter has no @quarterly; Airflow has: the first interval after 2026-01-01 is April to July."""
    assert load(tmp_path, {"slack": {**GOOD, "schedule": "@quarterly"}}).sources["slack"].period == timedelta(days=91)


def test_an_entry_too_long_or_odd_to_show_is_named_by_its_line(tmp_path):
    name = "x" * 300
    loaded = load(tmp_path, {"good": GOOD, name: GOOD, "tab\there": GOOD})  # one dict: dumped as YAML aliases
    assert list(loaded.sources) == ["good"]
    where = f"{tmp_path / 'sources.yaml'}: source '{'x' * 64}...' (300 characters, line 9): "
    assert loaded.errors[name].startswith(where)
    assert "field 'name': source names become DAG ids" in loaded.errors[name]
    assert "source 'tab\\there' (8 characters, line 11): field 'name'" in loaded.errors["tab\there"]


@pytest.mark.parametrize(
    "text, broken, message",
    [
        (
            "sources:\n  slack: {type: slack, conn_id: a}\n  other: {type: slack, conn_id: b}\n"
            "  slack: {type: slack, conn_id: c}\n",
            ["slack"],
            "source 'slack': key 'slack' appears twice in 'sources' (lines 5 and 7): YAML would silently keep",
        ),
        (
            "sources:\n  slack:\n    type: slack\n    conn_id: a\n    delay: 30m\n    delay: 2h\n"
            "  other: {type: slack, conn_id: b}\n",
            ["slack"],
            "source 'slack': key 'delay' appears twice in 'sources.slack' (lines 8 and 9)",
        ),
        (
            "sources:\n  slack: {type: slack, conn_id: a, notify: {slack: x, slack: y}}\n"
            "  other: {type: slack, conn_id: b}\n",
            ["slack"],
            "source 'slack': key 'slack' appears twice in 'sources.slack.notify' (lines 5 and 5)",
        ),
        (
            "  delay: 30m\n  delay: 1h\nsources:\n  slack: {type: slack, conn_id: a}\n"
            "  other: {type: slack, conn_id: b}\n",
            ["slack", "other"],
            "key 'delay' appears twice in 'defaults' (lines 4 and 5)",
        ),
    ],
)
def test_a_key_given_twice_is_an_error_naming_both_lines(tmp_path, text, broken, message):
    path = tmp_path / "sources.yaml"
    path.write_text("defaults:\n  bucket: sec-logs\n  start_date: 2026-01-01\n" + text)
    loaded = load_config(path)
    assert sorted(loaded.errors) == sorted(broken)
    assert sorted(loaded.sources) == sorted({"slack", "other"} - set(broken))
    assert all(message in loaded.errors[name] for name in broken)


def test_a_yaml_merge_may_override_merged_keys(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text(
        "defaults: {bucket: sec-logs, start_date: 2026-01-01}\nsources:\n"
        "  slack: &base {type: slack, conn_id: a, delay: 30m}\n  slack_eu: {<<: *base, delay: 2h}\n"
    )
    loaded = load_config(path)
    assert loaded.errors == {} and loaded.sources["slack_eu"].delay == timedelta(hours=2)


def test_two_names_that_read_alike_are_both_reported(tmp_path):
    path = tmp_path / "sources.yaml"
    path.write_text(
        "defaults: {bucket: sec-logs, start_date: 2026-01-01}\nsources:\n"
        "  1: {type: slack, conn_id: a}\n  '1': {type: slack, conn_id: b}\n"
    )
    assert load_config(path).errors == {
        "1": f"{path}: source '1': 2 entries (lines 3 and 4) have this name; rename all but one"
    }


def test_the_execution_timeout_covers_every_page_at_the_full_request_timeout_and_an_eighth_of_the_pace(tmp_path):
    """Slack: 50 requests a minute, one task: 1.2 s apart, 9.6 s at the slowest. 1000 pages of 30 s + 9.6 s,
    one page's 12 requests (3 attempts; 8 rate-limit waits of 1 s doubling fit in 5 m, and one more waits
    what is left) of 30 s, its 5 m of waits, a 5 m quota reset and 10 m to publish."""
    slack = load(
        tmp_path,
        {"slack": {**GOOD, "max_pages": 1000, "request_timeout": "30s", "page_attempts": 3, "page_max_wait": "5m"}},
    ).sources["slack"]
    assert slack.task_timeout == timedelta(seconds=1000 * 39.6 + 12 * 30 + 300 + 300 + 600)


def test_the_execution_timeout_grows_with_tasks_sharing_the_credential_and_is_capped(tmp_path):
    loaded = load(
        tmp_path,
        {
            "shared": {**GOOD, "max_pages": 10, "max_active_runs": 4, "requests_per_minute": 6},
            "huge": {**GOOD, "max_pages": 10**12},
            "set": {**GOOD, "execution_timeout": "2h"},
        },
    )
    # 4 tasks at 6 a minute: 40 s apart, 320 s at the slowest; one page's 15 requests (5 attempts, 9 waits fit in 10 m).
    assert loaded.sources["shared"].task_timeout == timedelta(seconds=10 * (60 + 320) + 15 * 60 + 600 + 300 + 600)
    assert loaded.sources["huge"].task_timeout == timedelta(days=365)
    assert loaded.sources["set"].task_timeout == timedelta(hours=2)


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
    [
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(minutes=90)),
        ("2d", timedelta(days=2)),
        ("45s", timedelta(seconds=45)),
        (90, timedelta(seconds=90)),
        ("0s", timedelta(0)),
    ],
)
def test_durations(text, expected):
    assert parse_duration(text) == expected


def test_the_shipped_config_is_valid():
    loaded = load_config()
    assert loaded.errors == {} and "slack" in loaded.sources
