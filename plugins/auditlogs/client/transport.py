"""How requests reach an API: proxies, the CA bundle and a client certificate, from the Airflow connection's
extras, read as `providers-http`'s `HttpHook` reads them, so a connection set up for HttpHook works here.

Extras (all optional):
* `proxies` (or `proxy`): `{"https": "http://proxy.corp:3128"}` (a single URL string is used for both schemes).
  An https API is reached through a `CONNECT` tunnel, so the proxy sees the host name and port only, never
  the credential. A plain-http API through a proxy is refused: the proxy would read the token.
* `verify` (or `verify_ssl`): the path of a CA bundle (a TLS-inspecting gateway's CA), or `false`.
* `cert`: a client certificate (PEM with its key), or `[certificate, key]` paths, for mutual TLS.
* `trust_env` (default true): whether `HTTPS_PROXY`, `NO_PROXY` and `REQUESTS_CA_BUNDLE` of the worker apply.
  The connection's own `proxies` and `verify` win over them.

HttpHook's `timeout` is the config's `request_timeout` here, and `allow_redirects`, `max_redirects`, `stream`
and `check_response` have no effect: redirects are never followed (the credential stays on the API host)
and bodies are always streamed within the size caps. Unlike HttpHook, other extras are not sent as headers:
our connections carry tenant and account ids there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.utils import select_proxy

from auditlogs.errors import ConfigError, register_secret

CertType = str | tuple[str, str] | None


@dataclass(frozen=True)
class Transport:
    """The connection's network settings; empty ones leave requests' defaults (and the environment) alone."""

    proxies: dict[str, str] = field(default_factory=dict)
    #: True/False, or a CA bundle path; None: not set (requests' default, REQUESTS_CA_BUNDLE if trusted).
    verify: bool | str | None = None
    cert: CertType = None
    trust_env: bool = True

    @classmethod
    def from_connection(cls, connection: Any, where: str = "") -> Transport:
        extra = getattr(connection, "extra_dejson", None) or {}
        if not isinstance(extra, dict):
            return cls()
        conn = f"Airflow connection '{connection.conn_id}'"
        return cls(
            proxies=_proxies(extra.get("proxies", extra.get("proxy")), conn, where),
            verify=_verify(extra.get("verify", extra.get("verify_ssl")), conn, where),
            cert=_cert(extra.get("cert"), conn, where),
            trust_env=_flag(extra.get("trust_env", True), conn, "trust_env", where),
        )

    def session(self) -> ConnectionSession:
        return ConnectionSession(self)


class ConnectionSession(requests.Session):
    """A session whose connection settings win over the worker's environment.

    requests lets `HTTPS_PROXY` and `REQUESTS_CA_BUNDLE` override a session's own `proxies` and `verify`
    (psf/requests#2018, #3829); HttpHook works around it by passing them on every request, this does it once.
    """

    def __init__(self, transport: Transport):
        super().__init__()
        self.transport = transport
        self.trust_env = transport.trust_env
        self.proxies = dict(transport.proxies)
        if transport.verify is not None:
            self.verify = transport.verify
        self.cert = transport.cert

    def bare(self) -> ConnectionSession:
        """A session with the same network settings and no headers or auth (for a token endpoint)."""
        return ConnectionSession(self.transport)

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # noqa: ANN001 (requests' signature)
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.transport.proxies:
            merged["proxies"] = {**merged["proxies"], **self.transport.proxies}
        if self.transport.verify is not None:
            merged["verify"] = self.transport.verify
        return merged

    def proxy_for(self, url: str) -> str | None:
        """The proxy a request to `url` goes through, the environment's included."""
        return select_proxy(url, self.merge_environment_settings(url, {}, None, None, None)["proxies"])


def session_like(session: Any) -> requests.Session:
    """A fresh session with `session`'s network settings, for requests beside the API (token endpoints)."""
    return session.bare() if isinstance(session, ConnectionSession) else requests.Session()


def check_credential_stays_private(session: requests.Session, base_url: str, conn_id: str, where: str) -> None:
    """A plain-http API behind a proxy would hand the proxy every request's credential in clear text."""
    if urlsplit(base_url).scheme != "http" or not isinstance(session, ConnectionSession):
        return
    proxy = session.proxy_for(base_url)
    if proxy:
        raise ConfigError(
            f"the API URL {urlsplit(base_url).scheme}://{urlsplit(base_url).netloc} is plain http and requests to "
            f"it would go through the proxy {_without_credentials(proxy)}, which would read the credential",
            where=where,
            hint=f"use the API's https URL in Airflow connection '{conn_id}' (the proxy then sees a CONNECT "
            "tunnel only), or exempt the host with NO_PROXY",
        )


def _proxies(value: Any, conn: str, where: str) -> dict[str, str]:
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        value = {"http": value, "https": value}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConfigError(
            f"{conn} has a 'proxies' extra that is not a map of scheme to proxy URL",
            where=where,
            hint='set it like {"https": "http://proxy.example.com:3128"}',
        )
    for url in value.values():
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
            raise ConfigError(
                f"{conn} has a proxy URL without a scheme and host ({_without_credentials(url)})",
                where=where,
                hint="write it as http://host:port",
            )
        register_secret(parts.password)  # a proxy password must not reach a log either
    return dict(value)


def _verify(value: Any, conn: str, where: str) -> bool | str | None:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if not isinstance(value, str) or not os.path.exists(value):
        raise ConfigError(
            f"{conn} has a 'verify' extra that is neither true/false nor an existing CA bundle path ({value!r})",
            where=where,
            hint="set it to the path of a PEM CA bundle readable by the Airflow workers",
        )
    return value


def _cert(value: Any, conn: str, where: str) -> CertType:
    if value in (None, ""):
        return None
    paths = [value] if isinstance(value, str) else value
    if (
        not isinstance(paths, (list, tuple))
        or len(paths) not in (1, 2)
        or not all(isinstance(p, str) and os.path.exists(p) for p in paths)
    ):
        raise ConfigError(
            f"{conn} has a 'cert' extra that is not a client certificate path or a "
            "[certificate, key] pair of existing paths",
            where=where,
            hint="set it to the PEM file with certificate and key, or a list of the two paths",
        )
    return paths[0] if len(paths) == 1 else (paths[0], paths[1])


def _flag(value: Any, conn: str, key: str, where: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ConfigError(f"{conn} has a '{key}' extra that is not true or false", where=where)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
