"""Who receives what: the deadline decisions, the silent-streak rule, failure messages, config, pools.

Pure functions, no Airflow processes; tests/test_operations_scheduler.py proves the same through a real
scheduler and triggerer.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from auditlogs.alerts import deadline_notification, failure_notification, silent_streak_starts_now
from auditlogs.config import NotifyConfig, load_config
from auditlogs.errors import AuthError, ConfigError, OutsideRetentionError, TransientError
from auditlogs.notify import Notification, deliver
from auditlogs.operators.collect import AuditLogToGCSOperator
from auditlogs.setup import pools_from_config
from harness import write_config

UTC = timezone.utc
DEADLINE_TIME = datetime(2026, 3, 1, 6, 30, tzinfo=UTC)


def deadline_context(**run) -> dict:
    dag_run = {
        "dag_id": "auditlogs_slack",
        "dag_run_id": "scheduled__2026-03-01T04:00:00+00:00",
        "run_type": "scheduled",
        "state": "running",
        "queued_at": "2026-03-01T05:00:02Z",
        "data_interval_start": "2026-03-01T04:00:00Z",
        "data_interval_end": "2026-03-01T05:00:00Z",
        **run,
    }
    return {"dag_run": dag_run, "deadline": {"id": "x", "deadline_time": DEADLINE_TIME}}


def test_a_running_scheduled_run_past_its_deadline_notifies_with_the_run_link():
    note, _ = deadline_notification(deadline_context(), "slack", "1h30m")
    assert note.kind == "deadline_missed"
    assert (note.interval_start, note.interval_end) == ("2026-03-01T04:00:00+00:00", "2026-03-01T05:00:00+00:00")
    assert note.details["deadline"] == "1h30m after the interval ends (2026-03-01T06:30:00+00:00)"
    assert note.url == "http://localhost:8080/dags/auditlogs_slack/runs/scheduled__2026-03-01T04%3A00%3A00%2B00%3A00"
    assert "note" not in note.details


@pytest.mark.parametrize(
    "run, reason",
    [
        ({"run_type": "backfill"}, "backfill runs get no deadline notification"),
        ({"state": "failed"}, "its failure notification covers it"),
    ],
)
def test_backfill_and_already_failed_runs_are_not_notified(run, reason):
    note, why = deadline_notification(deadline_context(**run), "slack", "1h30m")
    assert note is None and reason in why


def test_a_run_created_after_its_deadline_says_so():
    note, _ = deadline_notification(
        deadline_context(run_type="manual", queued_at="2026-03-02T00:00:00Z"), "slack", "1h"
    )
    assert note.details["note"].startswith("this run was created after its deadline had passed")


@pytest.mark.parametrize(
    "previous, events, expected",
    [
        ([{"events": 0}, {"events": 5}], 0, True),  # second silent interval after data: notify
        ([{"events": 0}, None], 0, True),  # the streak starts at the first collected interval
        ([{"events": 0}, {"events": 0}], 0, False),  # third in a row: already notified for this streak
        ([None, {"events": 0}], 0, False),  # a gap (interval not collected) is not silence
        ([{"events": 3}, {"events": 0}], 0, False),
        ([{"events": 0}, {"events": 5}], 7, False),
    ],
)
def test_silence_notifies_once_per_streak(previous, events, expected):
    assert silent_streak_starts_now(previous, events, 2) is expected


def test_silence_after_one_notifies_on_the_first_empty_interval():
    assert silent_streak_starts_now([{"events": 4}], 0, 1) and not silent_streak_starts_now([{"events": 0}], 0, 1)


def failure_context(tmp_path, error: Exception, try_number: int = 1):
    config = write_config(
        tmp_path / "sources.yaml",
        {"slack": {"type": "slack", "conn_id": "slack_audit"}},
        bucket="b-1",
        start_date="2026-01-01",
    )
    source = load_config(config).sources["slack"]
    return {
        "task": SimpleNamespace(source=source, task_id="collect_audit"),
        "ti": SimpleNamespace(try_number=try_number),
        "exception": error,
        "run_id": "manual__x",
        "data_interval_start": datetime(2026, 3, 1, 4, tzinfo=UTC),
        "data_interval_end": datetime(2026, 3, 1, 5, tzinfo=UTC),
    }


def test_an_auth_failure_names_the_connection_to_fix_and_scrubs_the_token(tmp_path):
    error = AuthError(
        "the API refused the credential",
        where="source 'slack'",
        status=401,
        body_excerpt="bad token xoxp-1234-abcd",
        hint="fix the token in Airflow connection 'slack_audit'",
    )
    note = failure_notification(failure_context(tmp_path, error))
    assert note.details["error_class"] == "AuthError"
    assert note.details["connection_to_fix"] == "slack_audit"
    assert "xoxp-1234-abcd" not in json.dumps(note.payload())
    assert note.url.endswith("/dags/auditlogs_slack/runs/manual__x/tasks/collect_audit")


def test_a_failure_past_retries_reports_the_attempts_and_class(tmp_path):
    note = failure_notification(failure_context(tmp_path, TransientError("the API failed", status=503), try_number=4))
    assert (note.details["error_class"], note.details["attempts"]) == ("TransientError", 4)
    assert "connection_to_fix" not in note.details
    assert note.summary == "Collecting 'slack' failed after 4 attempt(s): TransientError"


def test_deadline_defaults_to_one_period_plus_the_delay_and_can_be_switched_off(tmp_path):
    config = write_config(
        tmp_path / "sources.yaml",
        {
            "hourly": {"type": "slack", "conn_id": "c"},
            "daily": {"type": "slack", "conn_id": "c", "schedule": "@daily", "delay": "2h"},
            "fixed": {"type": "slack", "conn_id": "c", "deadline": "45m"},
            "off": {"type": "slack", "conn_id": "c", "deadline": "off"},
        },
        bucket="b-1",
        start_date="2026-01-01",
        delay="30m",
        deadline=None,
    )  # None: the derived default
    sources = load_config(config).sources
    assert sources["hourly"].deadline_after_end == timedelta(minutes=90)
    assert sources["daily"].deadline_after_end == timedelta(hours=26)
    assert sources["fixed"].deadline_after_end == timedelta(minutes=45)
    assert sources["off"].deadline_after_end is None


def test_notify_channels_are_connection_ids_and_unknown_keys_are_named(tmp_path):
    config = write_config(
        tmp_path / "sources.yaml",
        {
            "ok": {"type": "slack", "conn_id": "c", "notify": {"slack": "alerts", "email": ["sec@example.com"]}},
            "bad": {"type": "slack", "conn_id": "c", "notify": {"slack_url": "https://hooks.slack.com/x"}},
        },
        bucket="b-1",
        start_date="2026-01-01",
    )
    loaded = load_config(config)
    assert loaded.sources["ok"].notify.channels == ["slack", "email"]
    assert "field 'notify.slack_url': unknown key" in loaded.errors["bad"]


def test_pools_come_from_the_config_and_a_shared_pool_needs_one_size(tmp_path):
    sources = {
        "a": {"type": "slack", "conn_id": "c", "pool": "slack_org", "pool_slots": 2},
        "b": {"type": "slack", "conn_id": "c", "pool": "slack_org", "pool_slots": 2},
        "c": {"type": "slack", "conn_id": "d"},
    }
    config = write_config(tmp_path / "sources.yaml", sources, bucket="b-1", start_date="2026-01-01")
    assert pools_from_config(config) == {"slack_org": (2, "auditlogs API budget of a, b")}
    sources["b"]["pool_slots"] = 3
    write_config(config, sources, bucket="b-1", start_date="2026-01-01")
    with pytest.raises(ConfigError, match="pool 'slack_org' is given 2 slots by source 'a' and 3 by source 'b'"):
        pools_from_config(config)


def test_a_failing_channel_does_not_stop_the_others_and_never_logs_its_url(monkeypatch, caplog, webhook_receiver):
    secret_url = "http://127.0.0.1:9/services/T0/B0/very-secret-path"
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_SLACK", json.dumps({"conn_type": "http", "password": secret_url}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_WEBHOOK", json.dumps({"conn_type": "http", "host": webhook_receiver.url + "/h"})
    )
    note = Notification("source_silent", "quiet", "slack", "auditlogs_slack", None, None, None, "http://ui")
    sent = deliver(note, NotifyConfig(slack="alerts_slack", webhook="alerts_webhook"))
    assert sent == ["webhook"]
    assert webhook_receiver.bodies() == [note.payload()]
    assert "very-secret-path" not in caplog.text and "could not send the source_silent notification" in caplog.text


def test_a_webhook_answering_503_is_retried_and_one_answering_400_is_not(monkeypatch, webhook_receiver):
    monkeypatch.setenv(
        "AIRFLOW_CONN_ALERTS_WEBHOOK", json.dumps({"conn_type": "http", "host": webhook_receiver.url + "/h"})
    )
    note = Notification("source_silent", "quiet", "slack", "auditlogs_slack", None, None, None, "http://ui")
    webhook_receiver.answer(503, 503)
    assert deliver(note, NotifyConfig(webhook="alerts_webhook")) == ["webhook"]
    assert len(webhook_receiver.posts()) == 3  # two refusals, then accepted
    webhook_receiver.answer(400)
    assert deliver(note, NotifyConfig(webhook="alerts_webhook")) == []
    assert len(webhook_receiver.posts()) == 4


def test_a_stock_notifier_gets_the_notification_in_its_templates_and_its_errors_print_no_url(
    monkeypatch, caplog, webhook_receiver
):
    monkeypatch.setenv("AIRFLOW_CONN_ALERTS_HTTP", json.dumps({"conn_type": "http", "host": webhook_receiver.url}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_BROKEN_HTTP",
        json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9/T0/B0/secret-hook-path"}),
    )
    stock = {
        "notifier": "airflow.providers.http.notifications.http.HttpNotifier",
        "kwargs": {
            "http_conn_id": "alerts_http",
            "endpoint": "/stock",
            "json": {"text": "{{ auditlogs.text }}", "kind": "{{ auditlogs.kind }}"},
        },
    }
    broken = {**stock, "kwargs": {**stock["kwargs"], "http_conn_id": "broken_http"}}
    notify = NotifyConfig.model_validate({"notifiers": [broken, stock]})
    note = Notification("source_silent", "quiet", "slack", "auditlogs_slack", None, None, None, "http://ui")
    assert deliver(note, notify, {"run_id": "r"}) == ["HttpNotifier"]
    assert webhook_receiver.bodies("/stock") == [{"text": note.text(), "kind": "source_silent"}]
    assert (
        "secret-hook-path" not in caplog.text
        and "could not send the source_silent notification through HttpNotifier: ConnectionError" in caplog.text
    )


def test_a_webhook_channel_goes_through_its_connections_proxy(monkeypatch, webhook_receiver):
    from network import ConnectProxy

    note = Notification("source_silent", "quiet", "slack", "auditlogs_slack", None, None, None, "http://ui")
    with ConnectProxy() as proxy:  # answers 405 to anything but CONNECT: the channel fails, the proxy saw it
        monkeypatch.setenv(
            "AIRFLOW_CONN_ALERTS_WEBHOOK",
            json.dumps({"conn_type": "http", "host": webhook_receiver.url + "/h", "extra": {"proxies": proxy.url}}),
        )
        assert deliver(note, NotifyConfig(webhook="alerts_webhook")) == []
    assert proxy.requested() == [f"POST {webhook_receiver.url}/h"] and webhook_receiver.posts() == []


@pytest.mark.parametrize(
    "notifier, named",
    [
        ("airflow.providers.nothing.notifications.Nope", "cannot import airflow.providers.nothing.notifications.Nope"),
        ("auditlogs.notify.Notification", "is not an Airflow notifier"),
        ("HttpNotifier", "String should match pattern"),
    ],
)
def test_a_stock_notifier_that_is_not_one_is_a_config_error_naming_the_source_and_field(tmp_path, notifier, named):
    config = write_config(
        tmp_path / "sources.yaml",
        {
            "bad": {"type": "slack", "conn_id": "c", "notify": {"notifiers": [{"notifier": notifier}]}},
        },
        bucket="b-1",
        start_date="2026-01-01",
    )
    error = load_config(config).errors["bad"]
    assert "notify.notifiers.0.notifier" in error and named in error


def test_an_interval_past_the_retention_fails_instead_of_writing_an_empty_complete_interval(tmp_path):
    config = write_config(
        tmp_path / "sources.yaml",
        {"slack": {"type": "slack", "conn_id": "c", "retention": "30d"}},
        bucket="b-1",
        start_date="2026-01-01",
    )
    operator = AuditLogToGCSOperator(task_id="t", source=load_config(config).sources["slack"], stream="audit")
    start = (datetime.now(UTC) - timedelta(days=31)).replace(minute=0, second=0, microsecond=0)
    with pytest.raises(OutsideRetentionError) as failure:  # not retryable: the task's retry policy fails it at once
        operator.execute({"data_interval_start": start, "data_interval_end": start + timedelta(hours=1)})
    assert failure.value.retryable is False
    assert "past the API's retention of 30d" in str(failure.value)
