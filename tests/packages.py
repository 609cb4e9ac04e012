"""Installing things the way a user does: a fresh venv with `pip install .` of this repository, and tiny
third-party packages, built here, that add source types through the `auditlogs.sources` entry points."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from textwrap import dedent

ROOT = Path(__file__).resolve().parents[1]
#: uv as the Makefile runs it (`python3.11 -m uv`): the machine's, not the venv's.
UV = ["python3.11", "-m", "uv"]

#: A source type outside this repository: PagerDuty's audit records (the sandbox fakes the API), as its
#: own declarative module on the package's public pieces instead of a `type: rest` entry.
PAGERDUTY_MODULE = '''
"""PagerDuty audit records (`GET /audit/records`) as a source type from a separately installed package."""

from typing import Literal

from pydantic import Field

from auditlogs.client.api import ApiRequest
from auditlogs.client.pagination import BodyCursor
from auditlogs.config import SourceConfig
from auditlogs.sources.auth import token_header
from auditlogs.sources.base import Order, SourceSpec, events_at, field, rfc3339, rfc3339_text

MAX_LIMIT = 1000


class PagerDutyConfig(SourceConfig):
    type: Literal["pagerduty"]
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    streams = ("audit_records",)


def first_request(config, stream, window):
    # `since` inclusive, `until` exclusive: the window as it is.
    params = {"since": rfc3339_text(window.start), "until": rfc3339_text(window.end), "limit": config.limit}
    return ApiRequest("GET", "audit/records", params=params)


SPEC = SourceSpec(
    type="pagerduty",
    config=PagerDutyConfig,
    auth=token_header("Authorization", "Token token="),
    first_request=first_request,
    paginator=BodyCursor(cursor_path=("next_cursor",), cursor_param="cursor"),
    events=events_at("records"),
    event_id=field("id"),
    event_time=rfc3339("execution_time"),
    order=Order.NEWEST_FIRST,
    max_page_size=MAX_LIMIT,
    requests_per_minute=900,
    permission="a REST API key of an account with audit records",
    headers={"Accept": "application/vnd.pagerduty+json;version=2"},
)
'''


def write_package(root: Path, name: str, modules: dict[str, str], sources: dict[str, str]) -> Path:
    """A source tree `root/name` of a package whose modules are `modules` (module name: code) and which
    registers `sources` (type name: `module:attribute`) in the `auditlogs.sources` group."""
    project = root / name
    project.mkdir(parents=True)
    entry_points = "\n".join(f'{type_name} = "{target}"' for type_name, target in sources.items())
    (project / "pyproject.toml").write_text(
        dedent(f"""\
        [build-system]
        requires = ["setuptools>=77"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "{name}"
        version = "0.1.0"
        dependencies = ["auditlogs"]

        [tool.setuptools]
        py-modules = {sorted(modules)!r}

        [project.entry-points."auditlogs.sources"]
        """)
        + entry_points
        + "\n"
    )
    for module, code in modules.items():
        (project / f"{module}.py").write_text(code)
    return project


def uv_pip_install(python: Path | str, *args: str) -> None:
    """`uv pip install` into the environment of `python`; pinned to the lock so nothing else changes."""
    completed = subprocess.run(
        [*UV, "pip", "install", "--quiet", "--python", str(python), "-c", str(ROOT / "requirements.txt"), *args],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def install_target(target: Path, project: Path) -> Path:
    """Installs a package (not its dependencies) into the folder `target`, as `pip install --target` does:
    a directory that becomes part of an environment once it is on `sys.path`."""
    uv_pip_install(sys.executable, "--no-deps", "--target", str(target), str(project))
    return target
