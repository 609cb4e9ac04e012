"""A token saved with a trailing newline, through real task runs (`airflow dags test`) against the sandbox
and the GCS emulator, with the API echoing it back in every form: it leaks nowhere. Not in the task's
output, the task log files or metadata DB, the failure notification (a webhook receiver), GCS bytes or
object metadata; and the run with the newline works, because the client trims it."""

from __future__ import annotations

import base64
import gzip
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from harness import assert_interval_holds, connection_env, dags_test, running_stack, write_config
from sandbox import ground_truth
from webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.hostile]

TOKEN = "canary5Rk2pSECRETvalue8x"
BUCKET = "hostile-secrets"
DELAY = timedelta(minutes=30)
SCENARIO = {
    "seed": 12,
    "sources": {"slack": {"events_per_hour": 300, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0}},
}
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
ESCAPED = "".join(f"\\u{ord(c):04x}" for c in TOKEN)
ECHO = (
    '{"ok": false, "error": "invalid_auth",' + " " * 1170 + f'"token": "{TOKEN}", "escaped": "{ESCAPED}", '
    f'"url": "/a?t={quote(TOKEN)}", "auth": "Bearer {TOKEN}\\n", "raw": "{TOKEN}\\n"}}'
)
FORMS = [TOKEN, TOKEN[:16], TOKEN[-16:], ESCAPED, base64.b64encode(TOKEN.encode()).decode()[:20]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with WebhookReceiver() as receiver:
        connections = lambda url: {  # noqa: E731
            **connection_env("slack_audit", host=url, password=TOKEN + "\n"),
            **connection_env("alerts_webhook", host=receiver.url + "/hook"),
        }
        with running_stack(SCENARIO, BUCKET, connections, clock=NOW) as running:
            running.config_dir = tmp_path_factory.mktemp("config")
            running.receiver = receiver
            yield running


def run(stack, hour: int, faults: list[dict], name: str):
    stack.api.admin.reset()
    stack.api.admin.set_clock(NOW)
    stack.api.admin.add_faults(*faults)
    config = write_config(
        stack.config_dir / f"{name}.yaml",
        {
            "slack": {
                "type": "slack",
                "conn_id": "slack_audit",
                "limit": 100,
                "page_attempts": 3,
                "requests_per_minute": 6000,
                "dedup": False,
                "notify": {"webhook": "alerts_webhook"},
            }
        },
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        delay="30m",
        retries=1,
        retry_delay="1s",
        max_retry_delay="2s",
    )
    end = datetime(2026, 3, 1, hour + 1, tzinfo=UTC)
    return dags_test("auditlogs_slack", end.isoformat(), {**stack.env, "AUDITLOGS_CONFIG": str(config)})


def assert_no_form(text: str, where: str) -> None:
    for form in FORMS:
        assert form not in text, f"{form!r} in {where}: ...{text[max(0, text.find(form) - 300) :][:600]}"


def test_a_token_saved_with_a_newline_works_and_leaks_nowhere(stack):
    # Succeeds: page 2 fails twice with the echo (retried in the task), then the window completes.
    ok = run(stack, 3, [{"kind": "status", "status": 503, "body": ECHO, "after": 1, "count": 2}], "works")
    assert ok.returncode == 0, ok.output[-3000:]
    assert "has surrounding whitespace or a newline; using it trimmed" in ok.output
    start = datetime(2026, 3, 1, 3, tzinfo=UTC)
    folder = f"raw/slack/audit/dt=2026-03-01/{start:%Y%m%dT%H%M%SZ}_{start + timedelta(hours=1):%Y%m%dT%H%M%SZ}"
    expected = {e["id"] for e in ground_truth("slack", start - DELAY, start + timedelta(hours=1), SCENARIO, now=NOW)}
    assert_interval_holds(stack.gcs, BUCKET, folder, "id", expected)

    # Fails at once: the API refuses with the echo; the failure notification goes to the webhook.
    failed = run(stack, 4, [{"kind": "status", "status": 401, "body": ECHO}], "refused")
    assert failed.returncode != 0
    assert "AuthError: a retry cannot fix this, failing without retrying" in failed.output
    notes = [post["body"] for post in stack.receiver.posts("/hook") if post["body"]["kind"] == "task_failed"]
    assert len(notes) == 1 and notes[0]["details"]["error_class"] == "AuthError"
    assert "the API refused the credential. HTTP status 401" in notes[0]["details"]["error"]

    for index, result in enumerate((ok, failed)):
        assert_no_form(result.output, f"the output of run {index}")
    assert_no_form(json.dumps(stack.receiver.received), "the notification")
    files = [p for p in Path(os.environ["AIRFLOW_HOME"]).rglob("*") if p.is_file()]
    for path in files:
        assert_no_form(path.read_bytes().decode("utf-8", errors="replace"), str(path))
    listing = requests.get(f"{stack.gcs.url}/storage/v1/b/{BUCKET}/o", timeout=30).json()  # names and metadata
    assert listing["items"]
    assert_no_form(json.dumps(listing), "GCS object names and metadata")
    for item in listing["items"]:
        data = stack.gcs.read(BUCKET, item["name"])
        assert_no_form((gzip.decompress(data) if item["name"].endswith(".gz") else data).decode(), item["name"])
