"""`python -m auditlogs.setup pools` creates one Airflow pool per credential pool named in the config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness import AIRFLOW, migrate_db, write_config


def test_pools_are_created_with_their_slots(tmp_path):
    migrate_db()
    config = write_config(
        tmp_path / "sources.yaml",
        {
            "slack": {"type": "slack", "conn_id": "s", "pool": "slack_token"},
            "op": {"type": "onepassword", "conn_id": "o", "pool": "op_token", "pool_slots": 2},
            "okta": {"type": "okta", "conn_id": "k"},
        },
        bucket="bucket",
        start_date="2026-01-01T00:00:00Z",
    )
    subprocess.run(
        [sys.executable, "-m", "auditlogs.setup", "pools", "--config", str(config)],
        check=True,
        capture_output=True,
        env={**os.environ, "PATH": f"{Path(AIRFLOW).parent}:{os.environ['PATH']}"},
    )
    listed = subprocess.run(
        [AIRFLOW, "pools", "list", "--output", "json"], check=True, capture_output=True, text=True
    ).stdout
    pools = {p["pool"]: int(p["slots"]) for p in json.loads(listed[listed.index("[") :])}
    assert pools["slack_token"] == 1 and pools["op_token"] == 2 and "okta" not in " ".join(pools)
