"""Notifications to people: one message shape, delivered to the channels a source's `notify:` names.

Built-in channels (`slack`, `webhook`, `email`) are Airflow connections, looked up when a notification is
sent (never at parse time), so webhook URLs and passwords stay in the secrets backend. Stock Airflow
notifiers listed under `notifiers:` get every notification too, with the notification in their template
context as `auditlogs`. A channel that fails is logged without its URL (which for Slack is itself the
secret) and the other channels are still tried. `alerts.AuditLogNotifier` is the Airflow notifier that
sends these from failure callbacks and Deadline Alerts.
"""

from __future__ import annotations

import asyncio
import html
import logging
import re
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import tenacity

from auditlogs.client.transport import Transport
from auditlogs.config import NotifyConfig, StockNotifier, notifier_class
from auditlogs.errors import register_secret, scrub

log = logging.getLogger(__name__)

SEND_TIMEOUT = 15.0
SEND_ATTEMPTS = 3
#: The longest wait between two attempts of one notification.
MAX_SEND_WAIT = 8.0
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")
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

    def template_context(self) -> dict[str, Any]:
        """What a stock notifier's templates see as `auditlogs`: every field, and `text`."""
        return {**self.payload(), "text": self.text()}

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


def deliver(notification: Notification, notify: NotifyConfig, context: Any = None) -> list[str]:
    """Sends to every configured channel and stock notifier; returns those that accepted it. `context` is the
    Airflow context the notification came from (task, or a Deadline Alert's), for the stock notifiers."""
    if not notify.channels and not notify.notifiers:
        log.warning(
            "auditlogs: %s (no notify channels configured for source '%s')", notification.summary, notification.source
        )
        return []
    sends = [(channel, lambda channel=channel: _CHANNELS[channel](notification, notify)) for channel in notify.channels]
    sends += [
        (stock.notifier.rpartition(".")[2], lambda stock=stock: _send_stock(stock, notification, context))
        for stock in notify.notifiers
    ]
    sent = []
    for name, send in sends:
        try:
            send()
        except Exception as exc:  # one broken channel must not silence the others
            log.error(
                "auditlogs: could not send the %s notification through %s: %s", notification.kind, name, _describe(exc)
            )
        else:
            sent.append(name)
            log.info("auditlogs: sent the %s notification through %s", notification.kind, name)
    return sent


def _send_stock(stock: StockNotifier, notification: Notification, context: Any) -> None:
    """A stock notifier, rendered against the Airflow context plus `auditlogs`, sent synchronously (we are in a
    task, a callback, or a thread of the triggerer). Not through `__call__`, which logs the raw exception."""
    from airflow.sdk import BaseNotifier

    merged = {**(context or {}), "auditlogs": notification.template_context()}
    _mask_connection_urls(stock.kwargs)
    notifier = notifier_class(stock.notifier)(**stock.kwargs)
    notifier.render_template_fields(merged)
    if type(notifier).notify is BaseNotifier.notify:  # only async_notify implemented
        asyncio.run(notifier.async_notify(merged))
    else:
        notifier.notify(merged)


def _mask_connection_urls(kwargs: dict) -> None:
    """Airflow masks a connection's password in logs, not its host; but a webhook URL in the host (and its
    path: a Slack webhook's is the secret) shows up in the logs of the hooks stock notifiers use."""
    for key, conn_id in kwargs.items():
        if not (key.endswith("conn_id") and isinstance(conn_id, str)):
            continue
        try:
            host = (_connection(conn_id).host or "").strip()
        except Exception:  # noqa: BLE001 (the notifier itself will report an unknown connection)
            continue
        if "://" in host:
            register_secret(host)
            register_secret(urlsplit(host).path.rstrip("/"))


def _send_slack(notification: Notification, notify: NotifyConfig) -> None:
    connection = _connection(notify.slack)
    url = connection.password if (connection.password or "").startswith("http") else _host_url(connection)
    _post(connection, url, {"text": notification.text()}, {})


def _send_webhook(notification: Notification, notify: NotifyConfig) -> None:
    connection = _connection(notify.webhook)
    headers = {"Authorization": f"Bearer {connection.password}"} if connection.password else {}
    _post(connection, _host_url(connection), notification.payload(), headers)


def _send_email(notification: Notification, notify: NotifyConfig) -> None:
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    body = "<pre>" + html.escape(notification.text()) + "</pre>"
    with SmtpHook(smtp_conn_id=notify.smtp_conn_id) as smtp:
        smtp.send_email_smtp(to=list(notify.email), subject=f"[auditlogs] {notification.summary}", html_content=body)


_CHANNELS = {"slack": _send_slack, "webhook": _send_webhook, "email": _send_email}


def _connection(conn_id: str | None):
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def _host_url(connection) -> str:
    host = (connection.host or "").strip()
    if "://" not in host:
        raise ValueError(f"connection '{connection.conn_id}' needs the full webhook URL (https://...) as its host")
    return host


class _Refused(Exception):
    def __init__(self, status: int):
        super().__init__(f"HTTP status {status}")
        self.status = status


def _worth_retrying(exc: BaseException) -> bool:
    return isinstance(exc, requests.RequestException) or (
        isinstance(exc, _Refused) and (exc.status >= 500 or exc.status == 429)
    )


# tenacity, not urllib3's Retry: urllib3 logs every retry with the URL, and a Slack webhook URL is the secret.
@tenacity.retry(
    retry=tenacity.retry_if_exception(_worth_retrying),
    stop=tenacity.stop_after_attempt(SEND_ATTEMPTS),
    wait=tenacity.wait_exponential(multiplier=0.5, max=MAX_SEND_WAIT),
    reraise=True,
)
def _post(connection: Any, url: str, body: dict, headers: dict) -> None:
    """Through the connection's proxies and CA bundle (its extras, as for the APIs); retried on network errors,
    429 and 5xx; never redirected (the body would follow)."""
    with Transport.from_connection(connection, f"notify connection '{connection.conn_id}'").session() as session:
        response = session.post(url, json=body, headers=headers, timeout=SEND_TIMEOUT, allow_redirects=False)
    if response.status_code >= 300:
        raise _Refused(response.status_code)


def _describe(exc: Exception) -> str:
    """Never the exception text of requests, nor any URL in another's: a Slack webhook URL is a secret."""
    if isinstance(exc, requests.RequestException):
        return type(exc).__name__
    return _URL.sub("<url>", scrub(f"{type(exc).__name__}: {exc}"))[:300]
