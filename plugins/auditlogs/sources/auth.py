"""How a source puts the Airflow connection's credential on the session: in headers only, never in URLs."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from auditlogs.client.api import base_url_of
from auditlogs.client.transport import session_like
from auditlogs.errors import AuthError, ConfigError, MalformedResponseError, TransientError, excerpt, register_secret


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
        session.auth = GoogleCredentialsAuth(
            delegated_credentials(connection.conn_id, subject, scopes), connection.conn_id, http=session_like(session)
        )

    return auth


def delegated_credentials(conn_id: str, subject: str, scopes: tuple[str, ...]) -> Any:
    """The connection's service-account credentials, narrowed to `scopes` and acting for `subject`."""
    from airflow.providers.google.common.hooks.base_google import GoogleBaseHook

    credentials: Any = GoogleBaseHook(gcp_conn_id=conn_id).get_credentials()  # checked by what it can do
    if not hasattr(credentials, "with_subject"):
        raise ConfigError(
            f"Airflow connection '{conn_id}' does not hold a service-account key, so it cannot act for '{subject}'",
            hint="give the connection the key of a service account with domain-wide delegation "
            "(extra key_path, keyfile_dict or key_secret_name)",
        )
    return credentials.with_scopes(list(scopes)).with_subject(subject)


class GoogleCredentialsAuth(requests.auth.AuthBase):
    """Puts a fresh access token on every request; a refused token exchange is an AuthError, never retried."""

    def __init__(self, credentials: Any, conn_id: str, http: requests.Session | None = None):
        self.credentials = credentials
        self.conn_id = conn_id
        #: Token requests go out like the API's (the connection's proxies and CA bundle).
        self.http = http or requests.Session()

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from google.auth.exceptions import RefreshError
        from google.auth.transport.requests import Request

        if not self.credentials.valid:
            try:
                self.credentials.refresh(Request(session=self.http))
            except RefreshError as exc:
                raise AuthError(
                    f"Google refused to issue an access token: {excerpt(str(exc))}",
                    hint=f"check the service account key in Airflow connection '{self.conn_id}', that the service "
                    "account's client id has domain-wide delegation of the scopes "
                    f"{', '.join(self.credentials.scopes or [])}, and that the 'subject' is an admin",
                ) from None
            register_secret(self.credentials.token)  # minted here, after the client was built
        self.credentials.apply(request.headers)
        return request


#: Refresh an access token this long before the expiry its issuer stated, so no request carries a token
#: that expires on the way.
TOKEN_REFRESH_MARGIN = 300.0


def checked_token_url(url: str, conn_id: str, api_url: str) -> str:
    """A token endpoint the client secret may be posted to: an absolute https URL without credentials or
    query, so a typo cannot send the secret elsewhere; plain http only on the API's own origin (the sandbox),
    which the connection already trusts with the token."""
    parts = urlsplit(url)
    same_origin = (parts.scheme, parts.netloc) == tuple(urlsplit(api_url)[:2])
    if (
        parts.scheme not in ("https", "http")
        or (parts.scheme == "http" and not same_origin)
        or not parts.hostname
        or parts.username
        or parts.password
        or parts.query
        or parts.fragment
    ):
        raise ConfigError(
            f"Airflow connection '{conn_id}' names the token endpoint {parts.scheme}://{parts.hostname or ''}"
            f"{parts.path}, which is not an https URL without credentials or query",
            hint="set the token authority in the connection extra to the identity provider's https URL, such as "
            "https://login.microsoftonline.com",
        )
    return url


class ClientCredentialsAuth(requests.auth.AuthBase):
    """OAuth client credentials (Microsoft identity platform, Zoom Server-to-Server): puts a bearer token on
    every request, exchanging the client secret for a new one before the current one expires.

    The secret travels only in the token request's body or Basic header, never in a URL. A refused exchange
    (400/401: wrong secret, unknown client or tenant, no consent) is an AuthError naming the connection and
    is never retried; a failing token endpoint (5xx) is a TransientError, retried like any page.
    """

    def __init__(
        self,
        token_url: str,
        form: dict[str, str],
        conn_id: str,
        secrets: tuple[str, ...],
        api_url: str,
        basic: tuple[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 60.0,
        query: dict[str, str] | None = None,
        http: requests.Session | None = None,
    ):
        self.token_url = checked_token_url(token_url, conn_id, api_url)
        #: Token requests go out like the API's (the connection's proxies and CA bundle).
        self.http = http or requests.Session()
        self.form = form
        self.conn_id = conn_id
        self.secrets = tuple(s for s in secrets if s)
        self.basic = basic
        #: Non-secret grant parameters some providers want in the URL (Zoom's grant_type and account_id).
        self.query = query
        self.clock = clock
        self.timeout = timeout
        self._token: str | None = None
        self._expires_at = 0.0
        #: Token exchanges made (tests and the manifest's request figures can count them).
        self.exchanges = 0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        if self._token is None or self.clock() >= self._expires_at - TOKEN_REFRESH_MARGIN:
            self._exchange()
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def _exchange(self) -> None:
        self.exchanges += 1
        where = f"token endpoint of Airflow connection '{self.conn_id}'"
        asked_at = self.clock()  # the lifetime runs from when the token is issued, not from when its answer arrived
        response = self.http.post(
            self.token_url,
            params=self.query,
            data=self.form,
            auth=self.basic,
            timeout=self.timeout,
            allow_redirects=False,
            headers={"Accept": "application/json"},
        )
        body = excerpt(response.content, self.secrets)
        if response.status_code in (400, 401, 403):
            raise AuthError(
                "the identity provider refused to issue an access token",
                where=where,
                status=response.status_code,
                body_excerpt=body,
                hint=f"check the client id, client secret and tenant or account id in Airflow connection "
                f"'{self.conn_id}', and that the application was granted the API's permission; not retried",
            )
        if response.status_code >= 300:
            raise TransientError(
                "the identity provider failed to issue an access token",
                where=where,
                status=response.status_code,
                body_excerpt=body,
            )
        try:
            answer = response.json()
            token, lifetime = answer["access_token"], float(answer.get("expires_in", 3600))  # "3599" in Microsoft's v1
        except (ValueError, KeyError, TypeError):
            raise MalformedResponseError(
                "the token endpoint answered without an access_token and a numeric expires_in",
                where=where,
                status=response.status_code,
                body_excerpt=body,
            ) from None
        if not isinstance(token, str) or not token:
            raise MalformedResponseError("the token endpoint's access_token is empty", where=where)
        register_secret(token)  # minted mid-run, after the client registered its credentials
        self._token, self._expires_at = token, asked_at + lifetime


def _secret_pair(connection: Any, what: str) -> tuple[str, str]:
    if not connection.login:
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' has no login",
            hint=f"put the {what} client (application) id in the connection's login field",
        )
    return connection.login, _token(connection)


def _extra(connection: Any, key: str, hint: str) -> str:
    value = (connection.extra_dejson or {}).get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"Airflow connection '{connection.conn_id}' has no '{key}' extra", hint=hint)
    return value.strip()


def microsoft_identity(default_resource: str) -> Callable[[Any, Any], None]:
    """App-only tokens of the Microsoft identity platform (v2.0 endpoint): the connection's login is the
    application (client) id, its password the client secret, extra `tenant_id`; extra `authority` for national
    clouds (default https://login.microsoftonline.com) and `scope` (default: the API host's `/.default`)."""

    def auth(connection: Any, session: Any) -> None:
        client_id, secret = _secret_pair(connection, "Microsoft Entra application's")
        tenant = microsoft_tenant(connection)
        extra = connection.extra_dejson or {}
        authority = str(extra.get("authority") or "https://login.microsoftonline.com").rstrip("/")
        resource = (connection.host or default_resource).rstrip("/")
        if "://" not in resource:
            resource = f"https://{resource}"
        scope = str(extra.get("scope") or f"{resource}/.default")
        form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret, "scope": scope}
        session.auth = ClientCredentialsAuth(
            f"{authority}/{tenant}/oauth2/v2.0/token",
            form,
            connection.conn_id,
            (secret,),
            resource,
            http=session_like(session),
        )

    return auth


def microsoft_tenant(connection: Any) -> str:
    return _extra(connection, "tenant_id", "set the extra 'tenant_id' to the directory (tenant) id, a GUID")


def zoom_server_to_server(connection: Any, session: Any) -> None:
    """Zoom Server-to-Server OAuth: `grant_type=account_credentials` and extra `account_id` in the URL of a POST
    to extra `token_url` (default https://zoom.us/oauth/token; Grove found Zoom wants them there, not in the
    body), the client id and secret as HTTP Basic."""
    client_id, secret = _secret_pair(connection, "Zoom Server-to-Server OAuth app's")
    account = _extra(connection, "account_id", "set the extra 'account_id' to the Zoom account id of the app")
    token_url = str((connection.extra_dejson or {}).get("token_url") or "https://zoom.us/oauth/token")
    grant = {"grant_type": "account_credentials", "account_id": account}
    api_url = base_url_of(connection, "https://api.zoom.us")
    session.auth = ClientCredentialsAuth(
        token_url,
        {},
        connection.conn_id,
        (secret,),
        api_url,
        basic=(client_id, secret),
        query=grant,
        http=session_like(session),
    )


def _own_token_url(connection: Any, default_api: str) -> tuple[str, str]:
    """(token URL, API URL) of an API whose token endpoint lives on its own host (Box, Dropbox): the API's
    `oauth2/token`, or the extra `token_url` (an alias host, or the sandbox's path for it)."""
    api_url = base_url_of(connection, default_api)
    return str((connection.extra_dejson or {}).get("token_url") or f"{api_url}oauth2/token"), api_url


def box_client_credentials(connection: Any, session: Any) -> None:
    """Box Client Credentials Grant: the connection's login is the Platform app's client id, its password the
    client secret; extra `box_subject_type` (`enterprise`, the default, or `user`) and `box_subject_id` (the
    enterprise id). Posted as a form to `{host}/oauth2/token`; the 60-minute token is exchanged again five
    minutes before it expires, so a long window's later pages never carry an expired one."""
    client_id, secret = _secret_pair(connection, "Box Platform app's")
    subject_type = str((connection.extra_dejson or {}).get("box_subject_type") or "enterprise")
    if subject_type not in ("enterprise", "user"):
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' has extra box_subject_type {subject_type!r}",
            hint='set it to "enterprise" (with box_subject_id the enterprise id) or "user"',
        )
    subject_id = _extra(
        connection,
        "box_subject_id",
        "set the extra 'box_subject_id' to the Box enterprise id (Admin Console > Account & Billing)",
    )
    token_url, api_url = _own_token_url(connection, "https://api.box.com")
    form = {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        "box_subject_type": subject_type,
        "box_subject_id": subject_id,
    }
    session.auth = ClientCredentialsAuth(
        token_url, form, connection.conn_id, (secret,), api_url, http=session_like(session)
    )


def dropbox_refresh_token(connection: Any, session: Any) -> None:
    """Dropbox short-lived team tokens: the connection's login is the app key, its password the app secret,
    extra `refresh_token` (offline access of a team-linked app with `events.read`), exchanged at
    `{host}/oauth2/token` (`grant_type=refresh_token`) and again five minutes before each token expires."""
    app_key, secret = _secret_pair(connection, "Dropbox app's")
    refresh = _extra(
        connection,
        "refresh_token",
        "set the extra 'refresh_token' to the refresh token of the team-linked app (token_access_type=offline)",
    )
    register_secret(refresh)  # kept in the extra, not a field the client registers itself
    token_url, api_url = _own_token_url(connection, "https://api.dropboxapi.com")
    form = {"grant_type": "refresh_token", "refresh_token": refresh, "client_id": app_key, "client_secret": secret}
    session.auth = ClientCredentialsAuth(
        token_url, form, connection.conn_id, (secret, refresh), api_url, http=session_like(session)
    )


def token_header(name: str, prefix: str = "") -> Callable[[Any, Any], None]:
    """The connection's password in one request header, after `prefix` (GitLab's `PRIVATE-TOKEN`, an API's
    `X-Api-Key`, `Authorization: Token token=`)."""

    def auth(connection: Any, session: Any) -> None:
        session.headers[name] = prefix + _token(connection)

    return auth
