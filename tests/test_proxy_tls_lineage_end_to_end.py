"""The generated Slack DAG run for real (`airflow dags test`) the way a corporate network has it: the API behind
a TLS server whose certificate only a private CA bundle verifies and which admits only a client certificate
of that CA, reached through a CONNECT proxy, all named by the connection's extras; with the OpenLineage
provider writing its events to a file, which name the API endpoint and the stream folder, once each."""

from __future__ import annotations

import json
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

import pytest

from harness import assert_interval_holds, connection_env, dags_test, interval_folder, running_stack, write_config
from network import ConnectProxy, TlsServer, private_ca
from sandbox import ground_truth

pytestmark = pytest.mark.e2e

TOKEN = "xoxp-corporate-network-token-5e2a"
BUCKET = "e2e-bucket"
UTC = timezone.utc
NOW = datetime(2026, 3, 2, tzinfo=UTC)
DELAY = timedelta(minutes=30)
START, END = datetime(2026, 3, 1, 4, tzinfo=UTC), datetime(2026, 3, 1, 5, tzinfo=UTC)
SCENARIO = {
    "seed": 44,
    "sources": {"slack": {"events_per_hour": 600, "burst_fraction": 0.3, "token": TOKEN, "rate_limit_per_minute": 0}},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Runs the DAG once; yields what the test modules assert on: the stack, the proxy, the TLS server and the
    lineage events."""
    folder = tmp_path_factory.mktemp("network")
    ca = private_ca(folder)
    config = write_config(
        folder / "sources.yaml",
        {"slack": {"type": "slack", "conn_id": "slack_audit", "limit": 100}},
        bucket=BUCKET,
        prefix="raw",
        start_date="2026-01-01T00:00:00Z",
        delay="30m",
        retries=0,
        deadline="off",
    )
    lineage_file = folder / "openlineage.jsonl"
    fronts, running = {}, ExitStack()

    def connections(url: str) -> dict:
        fronts["tls"] = running.enter_context(TlsServer(ca, int(url.rsplit(":", 1)[1]), require_client_cert=True))
        fronts["proxy"] = running.enter_context(ConnectProxy())
        return connection_env(
            "slack_audit",
            host=fronts["tls"].url,
            password=TOKEN,
            extra={"proxies": {"https": fronts["proxy"].url}, "verify": str(ca.ca), "cert": str(ca.client)},
        )

    with running, running_stack(SCENARIO, BUCKET, connections, clock=NOW, config=config) as stack:
        env = {
            **stack.env,
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "auditlogs-e2e",
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(lineage_file), "append": True}
            ),
        }
        result = dags_test("auditlogs_slack", END.isoformat(), env)
        assert result.returncode == 0, result.output[-3000:]
        assert TOKEN not in result.output
        events = [json.loads(line) for line in lineage_file.read_text().splitlines()] if lineage_file.exists() else []
        yield stack, fronts["proxy"], fronts["tls"], events


def test_the_dag_collects_the_interval_through_the_proxy_from_the_private_ca_server(run):
    stack, proxy, tls, _ = run
    expected = {e["id"] for e in ground_truth("slack", START - DELAY, END, SCENARIO, now=NOW)}
    manifest = assert_interval_holds(
        stack.gcs, BUCKET, interval_folder("raw", "slack", "audit", START, END), "id", expected
    )
    assert manifest["pages"] > 3 and len(stack.api.admin.requests()) == manifest["requests"]["count"]
    assert tls.refused_handshakes == 0


def test_the_proxy_saw_tunnels_to_the_api_host_and_never_the_token(run):
    _, proxy, tls, _ = run
    assert set(proxy.requested()) == {f"CONNECT 127.0.0.1:{tls.port}"}
    assert TOKEN.encode() not in proxy.seen and b"Authorization" not in proxy.seen


def test_lineage_names_the_api_endpoint_and_the_stream_folder_with_the_interval(run):
    *_, events = run
    task = [e for e in events if e["job"]["name"] == "auditlogs_slack.collect_audit"]
    complete = [e for e in task if e["eventType"] == "COMPLETE"]
    assert len(complete) == 1, [e["eventType"] for e in task]
    _, _, tls, _ = run
    assert [(d["namespace"], d["name"]) for d in complete[0]["inputs"]] == [(tls.url, "/audit/v1/logs")]
    # One output for the stream, not one per part or staging file (GCSHook's hook lineage is not used).
    assert [(d["namespace"], d["name"]) for d in complete[0]["outputs"]] == [(f"gs://{BUCKET}", "raw/slack/audit")]
    facet = complete[0]["run"]["facets"]["auditlogs_interval"]
    assert {key: facet[key] for key in ("start", "end", "windowStart", "windowEnd")} == {
        "start": START.isoformat(),
        "end": END.isoformat(),
        "windowStart": (START - DELAY).isoformat(),
        "windowEnd": END.isoformat(),
    }
    assert facet["events"] > 100 and facet["manifest"].startswith(f"gs://{BUCKET}/raw/slack/audit/dt=2026-03-01/")
