"""How a source puts the Airflow connection's credential on the session: in headers only, never in URLs."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import requests

from auditlogs.errors import AuthError, ConfigError, excerpt


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


def basic_auth(connection: Any, session: Any) -> None:
    """HTTP Basic: the connection's login is the user (e.g. an Account SID or API key SID), its password the secret."""
    if not connection.login:
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' has no login",
            hint="put the user name (for Twilio the Account SID or API key SID) in the connection's login field",
        )
    pair = f"{connection.login}:{_token(connection)}".encode()
    session.headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()


def google_service_account(*scopes: str) -> Callable[[Any, Any], None]:
    """OAuth bearer tokens of a Google service account with domain-wide delegation.

    The connection is a `google_cloud_platform` one: its key (`key_path`, `keyfile_dict`, `key_secret_name`,
    as the google provider reads them) signs for the user in the extra `subject` (an admin), with `scopes`.
    Tokens are refreshed before they expire. A connection with a password uses it as a static bearer token
    instead: for the sandbox, or for a token minted elsewhere.
    """

    def auth(connection: Any, session: Any) -> None:
        if connection.password:
            bearer_token(connection, session)
            return
        subject = (connection.extra_dejson or {}).get("subject")
        if not subject:
            raise ConfigError(
                f"Airflow connection '{connection.conn_id}' has no 'subject' extra",
                hint="set the extra 'subject' to the email of the admin the service account acts for "
                "(domain-wide delegation)",
            )
        session.auth = GoogleCredentialsAuth(delegated_credentials(connection.conn_id, subject, scopes), connection.conn_id)

    return auth


def delegated_credentials(conn_id: str, subject: str, scopes: tuple[str, ...]) -> Any:
    """The connection's service-account credentials, narrowed to `scopes` and acting for `subject`."""
    from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

    credentials = GoogleBaseHook(gcp_conn_id=conn_id).get_credentials()
    if not hasattr(credentials, "with_subject"):
        raise ConfigError(
            f"Airflow connection '{conn_id}' does not hold a service-account key, so it cannot act for '{subject}'",
            hint="give the connection the key of a service account with domain-wide delegation "
            "(extra key_path, keyfile_dict or key_secret_name)",
        )
    return credentials.with_scopes(list(scopes)).with_subject(subject)


class GoogleCredentialsAuth(requests.auth.AuthBase):
    """Puts a fresh access token on every request; a refused token exchange is an AuthError, never retried."""

    def __init__(self, credentials: Any, conn_id: str):
        self.credentials = credentials
        self.conn_id = conn_id

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from google.auth.exceptions import RefreshError
        from google.auth.transport.requests import Request

        if not self.credentials.valid:
            try:
                self.credentials.refresh(Request())
            except RefreshError as exc:
                raise AuthError(
                    f"Google refused to issue an access token: {excerpt(str(exc))}",
                    hint=f"check the service account key in Airflow connection '{self.conn_id}', that the service "
                    "account's client id has domain-wide delegation of the scopes "
                    f"{', '.join(self.credentials.scopes or [])}, and that the 'subject' is an admin",
                ) from None
        self.credentials.apply(request.headers)
        return request


def token_header(name: str, prefix: str = "") -> Callable[[Any, Any], None]:
    """The connection's password in one request header, after `prefix` (GitLab's `PRIVATE-TOKEN`, an API's
    `X-Api-Key`, `Authorization: Token token=`)."""

    def auth(connection: Any, session: Any) -> None:
        session.headers[name] = prefix + _token(connection)

    return auth
