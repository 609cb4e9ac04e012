"""The Airflow connection that points a source type at the sandbox, with the scenario's token.

One place knows each type's connection shape (Twilio's SID as login, Google's static token on a
`google_cloud_platform` connection), so `make run`, docker compose's deploy/sandbox.env and the scale bench
agree with the product's auth code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sandbox import box, dropbox, entra_id, microsoft365, zoom
from sandbox.scenario import Scenario

#: OAuth client-credentials types: the fake's tenant, its token endpoint on the sandbox itself.
_TENANTS = {"microsoft365": microsoft365.TENANT, "entra_id": entra_id.TENANT}


def sandbox_connection(source_type: str, api_url: str, token: str) -> dict[str, Any]:
    if source_type == "twilio":
        sid, _, secret = token.partition(":")  # the scenario's token is "SID:secret", as Basic auth sends it
        return {"conn_type": "http", "host": api_url, "login": sid, "password": secret}
    if source_type in _TENANTS:
        client_id, _, secret = token.partition(":")  # the scenario's token is "client_id:client_secret"
        return {
            "conn_type": "http",
            "host": api_url,
            "login": client_id,
            "password": secret,
            "extra": {"tenant_id": _TENANTS[source_type], "authority": api_url},
        }
    if source_type == "zoom":
        client_id, _, secret = token.partition(":")
        return {
            "conn_type": "http",
            "host": api_url,
            "login": client_id,
            "password": secret,
            "extra": {"account_id": zoom.ACCOUNT, "token_url": f"{api_url}/oauth/token"},
        }
    if source_type in ("duo", "zendesk"):
        login, _, secret = token.partition(":")  # Duo "ikey:skey"; Zendesk "email/token:api_token"
        return {"conn_type": "http", "host": api_url, "login": login, "password": secret}
    if source_type == "cloudflare":
        return {"conn_type": "http", "host": f"{api_url}/client/v4", "password": token}
    if source_type == "box":
        client_id, _, secret = token.partition(":")  # Box's token endpoint is the API host's oauth2/token
        return {
            "conn_type": "http",
            "host": api_url,
            "login": client_id,
            "password": secret,
            "extra": {"box_subject_type": "enterprise", "box_subject_id": box.ENTERPRISE},
        }
    if source_type == "dropbox":
        app_key, _, secret = token.partition(":")
        return {
            "conn_type": "http",
            "host": api_url,
            "login": app_key,
            "password": secret,
            "extra": {"refresh_token": dropbox.REFRESH_TOKEN, "token_url": f"{api_url}{dropbox.TOKEN_PATH}"},
        }
    if source_type == "google_workspace":
        # A password on the connection is used as a static bearer token instead of delegated credentials.
        return {"conn_type": "google_cloud_platform", "host": api_url, "password": token}
    return {"conn_type": "http", "host": api_url, "password": token}


def sandbox_api(name: str, source: Mapping[str, Any]) -> str:
    """The sandbox API serving a configured source: its type's, or for `type: rest` the one named like the source."""
    return name if source["type"] == "rest" else source["type"]


def connection_env(sources: Mapping[str, Mapping[str, Any]], scenario: Scenario, api_url: str) -> dict[str, str]:
    """`AIRFLOW_CONN_<CONN_ID>` for every source of a config's `sources:`."""
    return {
        f"AIRFLOW_CONN_{source['conn_id'].upper()}": json.dumps(
            sandbox_connection(source["type"], api_url, scenario.sources[sandbox_api(name, source)].token)
        )
        for name, source in sources.items()
    }
