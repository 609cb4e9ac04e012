"""Test-wide setup: the package and sandbox on sys.path, and a throw-away AIRFLOW_HOME (SQLite) set
before anything imports Airflow and removed when the session ends."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in (ROOT / "tests", ROOT / "include", ROOT / "plugins"):
    sys.path.insert(0, str(folder))

AIRFLOW_HOME = tempfile.mkdtemp(prefix="auditlogs-airflow-home-")
os.environ["AIRFLOW_HOME"] = AIRFLOW_HOME
os.environ.update(
    {
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "include")]),
        "NO_PROXY": "127.0.0.1,localhost",
    }
)


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(AIRFLOW_HOME, ignore_errors=True)


import pytest  # noqa: E402 (after the environment above, which must be set before Airflow is imported)


@pytest.fixture
def webhook_receiver():
    """The one webhook receiver (tests/webhook_receiver.py), running for one test."""
    from webhook_receiver import WebhookReceiver

    with WebhookReceiver() as receiver:
        yield receiver
