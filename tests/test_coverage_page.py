"""The coverage page in a running Airflow API server, loaded by headless Chromium: a planted gap, a failed run
and an empty interval show as such; anonymous requests are refused; a user who may not read a source's DAG
does not see that source."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

import pytest
import requests

from browser import Browser
from harness import write_config
from sandbox.cluster import AIRFLOW, AirflowCluster
from sandbox.coverage import plant
from sandbox.gcs import GcsEmulatorProcess

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "coverage-page"
DAY = datetime.combine(datetime.now(timezone.utc).date() - timedelta(days=3), time(), timezone.utc)
GAP, EMPTY, FAILED = DAY + timedelta(hours=3), DAY + timedelta(hours=5), DAY + timedelta(hours=10)
PASSWORDS = {"admin": "admin-pw", "limited": "limited-pw"}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory):
    from auditlogs.config import load_config

    home = tmp_path_factory.mktemp("coverage-airflow")
    with GcsEmulatorProcess((BUCKET,)) as gcs:
        config = write_config(
            home / "sources.yaml",
            {
                "gappy": {"type": "slack", "conn_id": "slack_audit"},
                "broken": {"type": "slack", "conn_id": "no_such_connection", "retries": 0},
                "hidden": {"type": "okta", "conn_id": "okta"},
            },
            bucket=BUCKET,
            prefix="raw",
            start_date=(DAY - timedelta(days=30)).isoformat(),
            delay="30m",
        )
        sources = load_config(config).sources
        plant(gcs, sources["gappy"], "audit", DAY, DAY + timedelta(days=1), gaps={GAP}, empty={EMPTY})
        plant(gcs, sources["broken"], "audit", DAY, DAY + timedelta(days=1), gaps={FAILED})
        plant(gcs, sources["hidden"], "systemlog", DAY, DAY + timedelta(days=1))
        (home / "passwords.json").write_text(json.dumps(PASSWORDS))
        env = {
            **gcs.connection_env(),
            "AUDITLOGS_CONFIG": str(config),
            "AIRFLOW__CORE__AUTH_MANAGER": "coverage_auth.HiddenSourceAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,limited:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "PYTHONPATH": os.pathsep.join(str(ROOT / p) for p in ("plugins", "include", "tests")),
        }
        # The UI's API server alone: the page reads GCS and the metadata database, nothing runs.
        with AirflowCluster(home, extra_env=env, roles=("api-server",)) as cluster:
            # The failed run: its task finds no connection and has no retries. A manual run at FAILED + 1h
            # gets the data interval [FAILED, FAILED + 1h).
            run_after = (FAILED + timedelta(hours=1)).isoformat()
            failed = subprocess.run(
                [AIRFLOW, "dags", "test", "auditlogs_broken", run_after],
                env=cluster.env,
                capture_output=True,
                text=True,
                timeout=600,
            )
            assert "no_such_connection" in failed.stdout + failed.stderr, (failed.stdout + failed.stderr)[-3000:]
            cluster.start()
            yield cluster.api_url


def token(base: str, user: str) -> str:
    response = requests.post(f"{base}/auth/token", json={"username": user, "password": PASSWORDS[user]}, timeout=30)
    assert response.status_code == 201, response.text
    return response.json()["access_token"]


def page_url(base: str) -> str:
    return f"{base}/auditlogs/coverage/?from={DAY:%Y-%m-%d}&to={DAY:%Y-%m-%d}"


def test_an_anonymous_request_is_refused(airflow):
    for path in ("/auditlogs/coverage/", "/auditlogs/coverage/data"):
        assert requests.get(airflow + path, timeout=30).status_code == 401


def test_a_user_who_may_not_read_a_dag_does_not_see_its_source(airflow):
    def sources(user):
        response = requests.get(
            f"{airflow}/auditlogs/coverage/data",
            params={"from": f"{DAY:%Y-%m-%d}"},
            headers={"Authorization": f"Bearer {token(airflow, user)}"},
            timeout=120,
        )
        assert response.status_code == 200, response.text
        return {stream["source"] for stream in response.json()["streams"]}

    assert sources("admin") == {"gappy", "broken", "hidden"}
    assert sources("limited") == {"gappy", "broken"}


def test_the_page_is_linked_from_the_navigation_and_each_dag(airflow):
    response = requests.get(
        f"{airflow}/api/v2/plugins", headers={"Authorization": f"Bearer {token(airflow, 'admin')}"}, timeout=60
    )
    views = [v for p in response.json()["plugins"] if p["name"] == "auditlogs_coverage" for v in p["external_views"]]
    assert {(v["destination"], v["href"]) for v in views} == {
        ("nav", "/auditlogs/coverage/"),
        ("dag", "/auditlogs/coverage/?dag_id={DAG_ID}"),
    }


def test_the_browser_shows_the_gap_the_failed_run_and_the_empty_interval(airflow, tmp_path):
    with Browser() as browser:
        browser.open(page_url(airflow), cookies={"_token": token(airflow, "admin")})
        cells = browser.evaluate("""JSON.stringify([...document.querySelectorAll('section.source')].map(s => [
            s.dataset.source, [...s.querySelectorAll('a.cell')].map(c => [c.dataset.start, c.dataset.state])]))""")
        shot = browser.screenshot(tmp_path / "coverage.png")
        if os.environ.get("AUDITLOGS_SCREENSHOT"):
            Path(os.environ["AUDITLOGS_SCREENSHOT"]).write_bytes(shot.read_bytes())
    by_source = {source: dict(states) for source, states in json.loads(cells)}
    assert {source: len(states) for source, states in by_source.items()} == {"broken": 24, "gappy": 24, "hidden": 24}
    odd = {
        (source, start): state
        for source, states in by_source.items()
        for start, state in states.items()
        if state != "complete"
    }
    assert odd == {
        ("gappy", GAP.isoformat()): "missing",
        ("gappy", EMPTY.isoformat()): "empty",
        ("broken", FAILED.isoformat()): "failed",
    }
    assert shot.stat().st_size > 10_000
