"""Shared fixtures: one in-thread sandbox per session, reset and clock-frozen before each test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "include"))

from sandbox import SandboxServer  # noqa: E402

TOKEN = "xoxp-test-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# Frozen sandbox "now": every window in these tests is fully determined by the seed.
NOW = datetime(2025, 6, 2, 12, 0, 0, tzinfo=timezone.utc)
SCENARIO: dict[str, Any] = {
    "seed": 11,
    "sources": {"slack": {"events_per_hour": 600, "burst_fraction": 0.2, "token": TOKEN, "rate_limit_per_minute": 0}},
}


def ts(dt: datetime) -> int:
    return int(dt.timestamp())


@pytest.fixture(scope="session")
def _session_server() -> Iterator[SandboxServer]:
    with SandboxServer(SCENARIO) as srv:
        yield srv


@pytest.fixture
def server(_session_server: SandboxServer) -> SandboxServer:
    _session_server.reset()
    _session_server.clock.set(NOW.timestamp())
    return _session_server


def new_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # never route loopback through an environment proxy
    return session


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with new_session() as session:
        yield session


def fetch_pages(http: requests.Session, url: str, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Follow next_cursor to the end, re-sending `params` with every page as a correct client does."""
    pages = []
    cursor = ""
    while True:
        query = {**params, "cursor": cursor} if cursor else params
        resp = http.get(f"{url}/audit/v1/logs", params=query, headers=AUTH)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["ok"] is True
        pages.append(body["entries"])
        cursor = body["response_metadata"]["next_cursor"]
        if not cursor:
            return pages
