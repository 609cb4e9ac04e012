"""Set-up commands run once per deployment: `python -m auditlogs.setup pools`.

`pools` creates (or resizes) one Airflow pool per `pool:` named in the config, with `pool_slots` slots, so
that every task using one credential (backfills, concurrent runs, parallel streams) shares its request
budget: each task's client paces itself at `requests_per_minute / pool_slots`. A pool that does not exist
would leave the tasks unscheduled, so the command exists to be run before unpausing the DAGs.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from auditlogs.config import SourceConfig, load_config


def pools_from_config(sources: dict[str, SourceConfig]) -> dict[str, tuple[int, str]]:
    """pool name -> (slots, description); sources naming the same pool must agree on its slots."""
    pools: dict[str, tuple[int, str]] = {}
    for source in sources.values():
        if not source.pool:
            continue
        slots, users = pools.get(source.pool, (source.pool_slots, ""))
        if slots != source.pool_slots:
            raise SystemExit(f"sources sharing pool '{source.pool}' disagree on pool_slots ({slots} vs {source.pool_slots})")
        pools[source.pool] = (slots, f"{users}, {source.name}".lstrip(", "))
    return {name: (slots, f"auditlogs credential pool for: {users}") for name, (slots, users) in pools.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auditlogs.setup")
    parser.add_argument("command", choices=["pools"])
    parser.add_argument("--config", help="config file (default: AUDITLOGS_CONFIG or include/sources.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="print the airflow commands instead of running them")
    args = parser.parse_args(argv)
    for name, (slots, description) in sorted(pools_from_config(load_config(args.config).sources).items()):
        command = ["airflow", "pools", "set", name, str(slots), description]
        print(" ".join(command))
        if not args.dry_run:
            subprocess.run(command, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
