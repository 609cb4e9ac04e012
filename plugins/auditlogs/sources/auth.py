"""How a source puts the Airflow connection's credential on the session: in headers only, never in URLs."""

from __future__ import annotations

from typing import Any

from auditlogs.errors import ConfigError


def _token(connection: Any) -> str:
    token = connection.password
    if not token:
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' has no password",
            hint="put the API token in the connection's password field",
        )
    return token


def bearer_token(connection: Any, session: Any) -> None:
    session.headers["Authorization"] = f"Bearer {_token(connection)}"
