"""Notifications to people: one message shape, delivered to the channels a source's `notify:` names.

Channels are Airflow connections, looked up when a notification is sent (never at parse time), so webhook
URLs and passwords stay in the secrets backend. A channel that fails is logged (without its URL, which for
Slack is itself the secret) and the other channels are still tried.
"""

from __future__ import annotations

import html
import logging
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from auditlogs.config import NotifyConfig
from auditlogs.errors import scrub

log = logging.getLogger(__name__)

SEND_TIMEOUT = 15.0
SEND_ATTEMPTS = 3
DEFAULT_BASE_URL = "http://localhost:8080"


@dataclass(frozen=True)
class Notification:
    """What happened to which interval of which source, and where to look in the UI."""

    #: `deadline_missed`, `task_failed`, `source_silent` or `coverage_gaps` (the completeness audit).
    kind: str
    summary: str
    source: str
    dag_id: str
    run_id: str | None
    interval_start: str | None
    interval_end: str | None
    url: str
    #: Kind-specific facts: deadline, error class and message, connection to fix, silent intervals, ...
    details: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        return asdict(self)

    def text(self) -> str:
        lines = [f"[auditlogs] {self.summary}", f"DAG: {self.dag_id}"]
        if self.interval_start:
            lines.append(f"Interval: [{self.interval_start}, {self.interval_end})")
        lines += [f"{key.replace('_', ' ').capitalize()}: {value}" for key, value in self.details.items()]
        lines.append(f"Run: {self.url}")
        return "\n".join(lines)


def base_url() -> str:
    """The UI's address from Airflow's `[api] base_url`."""
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback=None) or DEFAULT_BASE_URL).rstrip("/")


def run_url(dag_id: str, run_id: str | None, task_id: str | None = None) -> str:
    url = f"{base_url()}/dags/{quote(dag_id, safe='')}"
    if run_id:
        url += f"/runs/{quote(run_id, safe='')}"
        if task_id:
            url += f"/tasks/{quote(task_id, safe='')}"
    return url


def deliver(notification: Notification, notify: NotifyConfig) -> list[str]:
    """Sends to every configured channel; returns the channels that accepted it."""
    if not notify.channels:
        log.warning("auditlogs: %s (no notify channels configured for source '%s')", notification.summary,
                    notification.source)
        return []
    sent = []
    for channel in notify.channels:
        try:
            _CHANNELS[channel](notification, notify)
        except Exception as exc:  # one broken channel must not silence the others
            log.error("auditlogs: could not send the %s notification through %s: %s", notification.kind,
                      channel, _describe(exc))
        else:
            sent.append(channel)
            log.info("auditlogs: sent the %s notification through %s", notification.kind, channel)
    return sent


def _send_slack(notification: Notification, notify: NotifyConfig) -> None:
    connection = _connection(notify.slack)
    url = connection.password if (connection.password or "").startswith("http") else _host_url(connection)
    _post(url, {"text": notification.text()}, {})


def _send_webhook(notification: Notification, notify: NotifyConfig) -> None:
    connection = _connection(notify.webhook)
    headers = {"Authorization": f"Bearer {connection.password}"} if connection.password else {}
    _post(_host_url(connection), notification.payload(), headers)


def _send_email(notification: Notification, notify: NotifyConfig) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    body = "<pre>" + html.escape(notification.text()) + "</pre>"
    with SmtpHook(smtp_conn_id=notify.smtp_conn_id) as smtp:
        smtp.send_email_smtp(to=list(notify.email), subject=f"[auditlogs] {notification.summary}",
                             html_content=body)


_CHANNELS = {"slack": _send_slack, "webhook": _send_webhook, "email": _send_email}


def _connection(conn_id: str | None):
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def _host_url(connection) -> str:
    host = (connection.host or "").strip()
    if "://" not in host:
        raise ValueError(f"connection '{connection.conn_id}' needs the full webhook URL (https://...) as its host")
    return host


def _post(url: str, body: dict, headers: dict) -> None:
    failure: Exception | None = None
    for _ in range(SEND_ATTEMPTS):
        try:
            response = requests.post(url, json=body, headers=headers, timeout=SEND_TIMEOUT, allow_redirects=False)
        except requests.RequestException as exc:
            failure = exc
            continue
        if response.status_code < 300:
            return
        failure = RuntimeError(f"HTTP status {response.status_code}")
        if response.status_code < 500 and response.status_code != 429:
            break
    raise failure


def _describe(exc: Exception) -> str:
    """Never the exception text of requests: it carries the URL, and a Slack webhook URL is a secret."""
    if isinstance(exc, requests.RequestException):
        return type(exc).__name__
    return scrub(f"{type(exc).__name__}: {exc}")[:300]
