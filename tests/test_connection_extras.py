"""A connection's `proxies`, `verify` and `cert` extras, as providers-http's HttpHook reads them, for real: the
client reaches a TLS server whose certificate only the configured CA bundle verifies and which admits only
the configured client certificate, through a CONNECT proxy that sees host and port, never the credential."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from auditlogs.errors import CertificateError, ConfigError
from auditlogs.window import Window
from harness import Connection, collect_window, sandbox_fixtures
from network import ConnectProxy, TlsServer, private_ca
from sandbox import ground_truth
from sandbox import zoom as fake_zoom

TOKEN = "xoxp-proxy-test-token-77c1"
ZOOM_ID, ZOOM_SECRET = "zoomClientIdProxy", "zoom-client-secret-Proxy~9"
UTC = timezone.utc
NOW = datetime(2026, 5, 1, tzinfo=UTC)
SCENARIO = {
    "seed": 8,
    "sources": {
        "slack": {"events_per_hour": 600, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0},
        "zoom": {
            "events_per_hour": 60,
            "burst_fraction": 0.3,
            "token": f"{ZOOM_ID}:{ZOOM_SECRET}",
            "rate_limit_per_minute": 0,
        },
    },
}
WINDOW = Window(datetime(2026, 4, 30, 10, tzinfo=UTC), datetime(2026, 4, 30, 11, tzinfo=UTC))

server, api = sandbox_fixtures(SCENARIO, NOW)


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    return private_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tls(ca, server):
    with TlsServer(ca, server.port, require_client_cert=True) as front:
        yield front


@pytest.fixture
def proxy():
    with ConnectProxy() as running:
        yield running


def slack(host: str, **extra) -> Connection:
    return Connection("slack_audit", host, TOKEN, extra_dejson=extra)


def collect_slack(connection: Connection, tmp_path):
    return collect_window("slack", {"limit": 100}, "audit", connection, WINDOW, tmp_path)


def test_a_window_is_collected_through_the_proxy_from_a_server_only_the_ca_bundle_verifies(
    api, tls, proxy, ca, tmp_path
):
    connection = slack(tls.url, proxies={"https": proxy.url}, verify=str(ca.ca), cert=str(ca.client))
    collected = collect_slack(connection, tmp_path)
    assert [e["id"] for e in collected.events] == [
        e["id"] for e in ground_truth("slack", WINDOW.start, WINDOW.end, SCENARIO, now=NOW)
    ]
    pages = api.requests.entries()
    assert len(pages) == collected.client.stats.requests > 3 and tls.refused_handshakes == 0
    # The proxy was asked for tunnels to the API's host and port only; the token never crossed it in clear.
    assert set(proxy.requested()) == {f"CONNECT 127.0.0.1:{tls.port}"}
    assert TOKEN.encode() not in proxy.seen and b"Authorization" not in proxy.seen


def test_the_oauth_token_exchange_goes_through_the_proxy_and_the_ca_bundle_too(api, tls, proxy, ca, tmp_path):
    connection = Connection(
        "zoom_reports",
        tls.url,
        ZOOM_SECRET,
        login=ZOOM_ID,
        extra_dejson={
            "account_id": fake_zoom.ACCOUNT,
            "token_url": f"{tls.url}/oauth/token",
            "proxies": {"https": proxy.url},
            "verify": str(ca.ca),
            "cert": str(ca.client),
        },
    )
    collected = collect_window("zoom", {"page_size": 100}, "activities", connection, WINDOW, tmp_path)
    token, *pages = api.requests.entries()
    assert token["path"] == "/oauth/token" and token["status"] == 200 and len(pages) == collected.client.stats.requests
    assert set(proxy.requested()) == {f"CONNECT 127.0.0.1:{tls.port}"}
    assert ZOOM_SECRET.encode() not in proxy.seen


def test_the_connection_wins_over_the_workers_proxy_and_ca_environment(api, tls, proxy, ca, tmp_path, monkeypatch):
    import certifi

    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())  # public CAs only: would not verify the server
    connection = slack(tls.url, proxies={"https": proxy.url}, verify=str(ca.ca), cert=str(ca.client))
    assert len(collect_slack(connection, tmp_path).events) > 100
    assert set(proxy.requested()) == {f"CONNECT 127.0.0.1:{tls.port}"}


def test_without_the_ca_bundle_the_page_fails_at_once_naming_the_verify_extra(api, tls, ca, tmp_path):
    with pytest.raises(CertificateError) as raised:
        collect_slack(slack(tls.url, cert=str(ca.client)), tmp_path)
    message = str(raised.value)
    assert f"https://127.0.0.1:{tls.port}" in message and "did not verify" in message
    assert "extra 'verify' of Airflow connection 'slack_audit'" in message and TOKEN not in message
    assert raised.value.retryable is False and api.requests.entries() == []


def test_a_plain_http_api_behind_a_proxy_is_refused_before_any_request(api, proxy, tmp_path):
    with pytest.raises(ConfigError) as raised:
        collect_slack(slack(api.url, proxies={"http": proxy.url, "https": proxy.url}), tmp_path)
    message = str(raised.value)
    assert f"is plain http and requests to it would go through the proxy {proxy.url}" in message
    assert "connection 'slack_audit'" in message
    assert proxy.heads == [] and api.requests.entries() == []


def test_a_worker_proxy_from_the_environment_counts_for_plain_http_too(api, proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", "")
    with pytest.raises(ConfigError, match="would read the credential"):
        collect_slack(slack(api.url), tmp_path)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the host exempted: sent directly, as before
    assert len(collect_slack(slack(api.url), tmp_path).events) > 100 and proxy.heads == []


@pytest.mark.parametrize(
    "extra, named",
    [
        ({"proxies": ["http://proxy:3128"]}, "'proxies' extra that is not a map of scheme to proxy URL"),
        ({"proxies": {"https": "proxy.corp:3128"}}, "proxy URL without a scheme and host"),
        ({"verify": "/nonexistent/ca.pem"}, "'verify' extra that is neither true/false nor an existing CA bundle path"),
        ({"cert": ["/nonexistent/client.pem", "/nonexistent/client.key"]}, "'cert' extra that is not a client"),
        ({"trust_env": "sometimes"}, "'trust_env' extra that is not true or false"),
    ],
)
def test_a_malformed_extra_is_a_config_error_naming_the_connection_and_the_extra(api, tmp_path, extra, named):
    with pytest.raises(ConfigError) as raised:
        collect_slack(slack(api.url, **extra), tmp_path)
    assert "Airflow connection 'slack_audit'" in str(raised.value) and named in str(raised.value)
    assert api.requests.entries() == []


def test_a_proxy_password_never_appears_in_an_error(api, tmp_path):
    with pytest.raises(ConfigError) as raised:
        collect_slack(slack(api.url, proxies={"http": "http://user:Pr0xyPassw0rd@127.0.0.1:9"}), tmp_path)
    assert "Pr0xyPassw0rd" not in str(raised.value) and "http://127.0.0.1:9" in str(raised.value)
