"""A stock Airflow notifier listed in the config (providers-http's HttpNotifier) receives what our own webhook
channel receives: a task failure from a real `airflow dags test` run (the API refuses the token, Airflow calls
the task's failure callback, `AuditLogNotifier`), and a deadline miss through the DAG's Deadline Alert
callback run by `CallbackTrigger` as the triggerer runs it, with the context the scheduler gives it."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timezone

import pytest

from harness import connection_env, dags_test, running_stack, write_config
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

UTC = timezone.utc
BUCKET = "e2e-bucket"
TOKEN, WRONG_TOKEN = "xoxp-notifier-right-token-1a2b", "xoxp-notifier-wrong-token-3c4d"
#: The secret part of a webhook URL, as a Slack or Teams webhook has one.
HOOK_PATH = "/services/T0/B0/stock-hook-secret-path"
NOW = datetime(2026, 3, 2, tzinfo=UTC)
END = datetime(2026, 3, 1, 5, tzinfo=UTC)
SCENARIO = {
    "seed": 3,
    "sources": {"slack": {"events_per_hour": 60, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0}},
}
STOCK = {
    "notifier": "airflow.providers.http.notifications.http.HttpNotifier",
    "kwargs": {
        "http_conn_id": "alerts_http",
        "endpoint": "stock",
        "json": {"kind": "{{ auditlogs.kind }}", "run": "{{ auditlogs.run_id }}", "text": "{{ auditlogs.text }}"},
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    config = write_config(
        tmp_path_factory.mktemp("config") / "sources.yaml",
        {
            "slack": {
                "type": "slack",
                "conn_id": "slack_audit",
                "deadline": "30m",
                "notify": {"webhook": "alerts_webhook", "notifiers": [STOCK]},
            }
        },
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        retries=0,
    )
    with WebhookReceiver() as receiver:

        def connections(url: str) -> dict:
            return {
                **connection_env("slack_audit", host=url, password=WRONG_TOKEN),
                **connection_env("alerts_webhook", host=receiver.url + "/ours"),
                **connection_env("alerts_http", host=receiver.url + HOOK_PATH + "/"),
            }

        with running_stack(SCENARIO, BUCKET, connections, clock=NOW, config=config) as running:
            running.receiver, running.config = receiver, config
            yield running


def test_a_task_failure_reaches_the_stock_notifier_and_our_channel(stack):
    result = dags_test("auditlogs_slack", END.isoformat(), stack.env)
    ours = [b for b in stack.receiver.bodies("/ours") if b["kind"] == "task_failed"]
    stock = stack.receiver.bodies(HOOK_PATH)
    assert len(ours) == 1 and ours[0]["details"]["connection_to_fix"] == "slack_audit", result.output[-3000:]
    assert stock == [{"kind": "task_failed", "run": ours[0]["run_id"], "text": _text(ours[0])}]
    assert "the API refused the credential" in stock[0]["text"]
    assert WRONG_TOKEN not in json.dumps(stack.receiver.received) and WRONG_TOKEN not in result.output
    assert HOOK_PATH not in result.output  # the stock notifier's connection host is masked like a password


def test_a_deadline_miss_reaches_the_stock_notifier_through_the_triggerers_callback(stack, monkeypatch):
    from airflow.triggers.callback import CallbackTrigger

    from auditlogs.factory import build_dags

    for name, value in stack.env.items():
        monkeypatch.setenv(name, value)
    alert = build_dags(stack.config)["auditlogs_slack"].deadline[0]
    data = alert.callback.serialize()
    run_id = "scheduled__2026-03-01T04:00:00+00:00"
    context = {
        "dag_run": {
            "dag_id": "auditlogs_slack",
            "dag_run_id": run_id,
            "run_type": "scheduled",
            "state": "running",
            "queued_at": "2026-03-01T05:00:02Z",
            "data_interval_start": "2026-03-01T04:00:00Z",
            "data_interval_end": "2026-03-01T05:00:00Z",
        },
        "deadline": {"id": "d-1", "deadline_time": datetime(2026, 3, 1, 5, 30, tzinfo=UTC)},
    }
    trigger = CallbackTrigger(callback_path=data["path"], callback_kwargs={**data["kwargs"], "context": context})

    async def run() -> list:
        return [event.payload async for event in trigger.run()]

    events = asyncio.run(run())
    assert events[-1]["state"] == "success", events
    stock = [b for b in stack.receiver.bodies(HOOK_PATH) if b["kind"] == "deadline_missed"]
    ours = [b for b in stack.receiver.bodies("/ours") if b["kind"] == "deadline_missed"]
    assert len(ours) == 1 and stock == [{"kind": "deadline_missed", "run": run_id, "text": _text(ours[0])}]
    assert "missed their deadline: not in GCS 30m after the interval ended" in stock[0]["text"]


def _text(payload: dict) -> str:
    from auditlogs.notify import Notification

    return Notification(**payload).text()
