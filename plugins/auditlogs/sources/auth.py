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


def ssws_or_bearer_token(connection: Any, session: Any) -> None:
    """Okta: `SSWS <API token>` (default) or `Bearer <OAuth access token>`, as the connection extra
    `{"auth_scheme": "SSWS" | "Bearer"}` says."""
    scheme = (connection.extra_dejson or {}).get("auth_scheme", "SSWS")
    if scheme not in ("SSWS", "Bearer"):
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' has extra auth_scheme {scheme!r}",
            hint='set the extra to {"auth_scheme": "SSWS"} for an API token or {"auth_scheme": "Bearer"} for an '
            "OAuth access token",
        )
    session.headers["Authorization"] = f"{scheme} {_token(connection)}"
