"""Set-up commands run once per deployment (and after config changes): `python -m auditlogs.setup pools`.

A task whose pool does not exist is never scheduled, so every `pool:` named in the config must be created
before its DAG runs. Sources that share a credential should share a pool: the pool's slots bound how many
of their tasks (scheduled runs and backfills together) call the API at once. Each task's client also paces
itself at `requests_per_minute / pool_slots`, so the pool shares the credential's request budget.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from auditlogs.config import load_config
from auditlogs.errors import ConfigError


def pools_from_config(config_path: Path | str | None = None) -> dict[str, tuple[int, str]]:
    """Pool name -> (slots, description) for every pool the valid sources name."""
    loaded = load_config(config_path)
    pools: dict[str, tuple[int, list[str]]] = {}
    for source in loaded.sources.values():
        if not source.pool:
            continue
        slots, users = pools.setdefault(source.pool, (source.pool_slots, []))
        if slots != source.pool_slots:
            raise ConfigError(
                f"{loaded.path}: pool '{source.pool}' is given {slots} slots by source '{users[0]}' and "
                f"{source.pool_slots} by source '{source.name}'",
                hint="sources sharing a pool must give it the same pool_slots",
            )
        users.append(source.name)
    return {name: (slots, "auditlogs API budget of " + ", ".join(users)) for name, (slots, users) in pools.items()}


def _airflow() -> str:
    sibling = Path(sys.executable).with_name("airflow")
    return str(sibling) if sibling.exists() else (shutil.which("airflow") or "airflow")


def create_pools(config_path: Path | str | None = None, dry_run: bool = False) -> list[list[str]]:
    commands = [
        [_airflow(), "pools", "set", name, str(slots), description]
        for name, (slots, description) in sorted(pools_from_config(config_path).items())
    ]
    for command in commands:
        print(" ".join(command[1:4]), f"{command[4]!r}", flush=True)
        if not dry_run:
            subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return commands


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m auditlogs.setup", description=__doc__)
    parser.add_argument("command", choices=["pools"])
    parser.add_argument("--config", help="config file (default: AUDITLOGS_CONFIG or include/sources.yaml)")
    parser.add_argument("--dry-run", action="store_true", help="print the airflow commands without running them")
    args = parser.parse_args(argv)
    try:
        create_pools(args.config, args.dry_run)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
