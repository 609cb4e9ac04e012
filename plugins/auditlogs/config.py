"""The YAML config: one `defaults:` block merged into every entry of `sources:`, validated with pydantic.

A broken source must not hide the others, so validation is per source: `load_config` returns the valid
sources and, separately, a readable error for each broken one. Only a file that cannot be read at all
raises.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auditlogs.errors import ConfigError

CONFIG_ENV = "AUDITLOGS_CONFIG"
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "include" / "sources.yaml"

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SIZE = re.compile(r"^(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_UNSUPPORTED_SCHEDULES = {"@once", "@continuous", "none"}


def parse_duration(value: Any) -> timedelta:
    """'30m', '1h30m', '2d', '45s', or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    text = str(value).strip().replace(" ", "")
    match = _DURATION.match(text)
    if not text or not match:
        raise ValueError(f"invalid duration {value!r}: use numbers with d, h, m, s, such as '30m' or '1h30m'")
    days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def parse_size(value: Any) -> int:
    """'64MiB', '16MB', or a number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value).strip())
    if not match:
        raise ValueError(f"invalid size {value!r}: use a number of bytes or a unit such as '64MiB'")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]


def schedule_period(schedule: str, at: datetime) -> timedelta:
    """The length of the first schedule interval after `at` (one cron step)."""
    from croniter import croniter

    cron = croniter(schedule, at)
    start = cron.get_next(datetime)
    return cron.get_next(datetime) - start


def previous_intervals(schedule: str, start: datetime, count: int) -> list[tuple[datetime, datetime]]:
    """The `count` schedule intervals before the one starting at `start`, newest first."""
    from croniter import croniter

    cron = croniter(schedule, start)
    intervals, end = [], start
    for _ in range(count):
        begin = cron.get_prev(datetime)
        intervals.append((begin, end))
        end = begin
    return intervals


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"), (seconds % 3600 // 60, "m"), (seconds % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


class NotifyConfig(BaseModel):
    """Where notifications go. Channels are Airflow connection ids: no secret ever sits in the config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A Slack incoming webhook: the connection's password (or host) is the webhook URL.
    slack: str | None = None
    #: A generic JSON webhook: host = URL; a password, if set, is sent as a Bearer token.
    webhook: str | None = None
    #: Addresses mailed through the SMTP provider's connection `smtp_conn_id`.
    email: tuple[str, ...] = ()
    smtp_conn_id: str = "smtp_default"

    @property
    def channels(self) -> list[str]:
        return [name for name, on in (("slack", self.slack), ("webhook", self.webhook), ("email", self.email)) if on]


class SourceConfig(BaseModel):
    """Keys every source has. Each source type subclasses it with its own keys and `type` literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str
    conn_id: str = Field(min_length=1)
    bucket: str = Field(min_length=3)
    prefix: str = ""
    gcp_conn_id: str = "google_cloud_default"
    schedule: str = "@hourly"
    start_date: datetime
    delay: timedelta = timedelta(0)
    catchup: bool = False
    retries: int = Field(3, ge=0, le=50)
    retry_delay: timedelta = timedelta(minutes=5)
    max_retry_delay: timedelta = timedelta(hours=1)
    max_active_runs: int = Field(1, ge=1, le=64)
    part_size: int = Field(64 * 1024**2, ge=1024)
    request_timeout: timedelta = timedelta(seconds=60)
    pool: str | None = None
    #: Slots of `pool` (what `python -m auditlogs.setup pools` creates): tasks sharing the credential at once.
    pool_slots: int = Field(1, ge=1, le=64)
    max_pages: int = Field(100_000, ge=1)
    #: Skip events an earlier, overlapping interval already stored (README: De-duplication and late arrivals).
    dedup: bool = True
    #: Trailing range a separate daily DAG re-fetches to recover events later than `delay` (None: no sweep).
    sweep: timedelta | None = None
    sweep_schedule: str = "@daily"
    #: The credential's request budget; None: the API's documented limit (see sources/), or 60 if none is.
    requests_per_minute: int | None = Field(None, ge=1)
    #: In-task retries of one page (429, 5xx, network, unreadable body) before the task fails and retries.
    page_attempts: int = Field(5, ge=1, le=50)
    page_max_wait: timedelta = timedelta(minutes=10)
    #: A rerun with fewer events than the interval's manifest records fails unless this is set.
    allow_shrink: bool = False
    #: Logs due in GCS this long after the interval ends; None: derived (see `deadline_after_end`); 0: off.
    deadline: timedelta | None = None
    notify: NotifyConfig = NotifyConfig()
    #: Notify when this many consecutive intervals had zero events; None: off (for quiet sources).
    silence_after: int | None = Field(None, ge=1, le=1000)
    #: How far back the API keeps events; intervals older than this fail instead of writing nothing.
    retention: timedelta | None = None
    #: `project.dataset`: also generate the example downstream DAG loading each interval into BigQuery.
    bigquery_dataset: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]+$")

    #: Streams this type collects; a source with several streams gets one task per stream.
    streams: ClassVar[tuple[str, ...]] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(
                "source names become DAG ids and GCS folders: use lower-case letters, digits and '_', "
                "starting with a letter"
            )
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if value.startswith("gs://") or "/" in value:
            raise ValueError("give the bare bucket name (no gs://, no path); put folders in 'prefix'")
        return value

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return value.strip("/")

    @field_validator("schedule", "sweep_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        from croniter import croniter

        if value.strip().lower() in _UNSUPPORTED_SCHEDULES:
            raise ValueError("needs a periodic schedule (a cron expression or @hourly, @daily, ...)")
        if not value.startswith("@") and not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression or preset such as '@hourly' or '*/15 * * * *'")
        return value

    @field_validator("start_date", mode="before")
    @classmethod
    def _start_date(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif not isinstance(value, datetime) and hasattr(value, "isoformat"):  # a YAML date
            value = datetime(value.year, value.month, value.day)
        if isinstance(value, datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)  # documented: naive times are UTC
        return value

    @field_validator("delay", "retry_delay", "max_retry_delay", "request_timeout", "page_max_wait", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("sweep", mode="before")
    @classmethod
    def _sweep(cls, value: Any) -> timedelta | None:
        return None if value is None else parse_duration(value)

    @field_validator("deadline", "retention", mode="before")
    @classmethod
    def _optional_durations(cls, value: Any) -> timedelta | None:
        if value is None:
            return None
        if value is False or str(value).strip().lower() == "off":
            return timedelta(0)
        return parse_duration(value)

    @field_validator("part_size", mode="before")
    @classmethod
    def _part_size(cls, value: Any) -> int:
        return parse_size(value)

    @model_validator(mode="after")
    def _positive_timeout(self) -> SourceConfig:
        if self.request_timeout <= timedelta(0):
            raise ValueError("request_timeout must be more than 0s")
        if self.sweep is not None and self.sweep <= timedelta(0):
            raise ValueError("sweep must be more than 0s (or left out for no sweep)")
        return self

    @property
    def dag_id(self) -> str:
        return f"auditlogs_{self.name}"

    def stream_names(self) -> tuple[str, ...]:
        return self.streams

    def concurrent_tasks(self) -> int:
        """How many of this source's tasks can hold its credential at once: the pool's slots, or else every
        stream of every active run."""
        return self.pool_slots if self.pool else len(self.stream_names()) * self.max_active_runs

    @property
    def period(self) -> timedelta:
        return schedule_period(self.schedule, self.start_date)

    @property
    def deadline_after_end(self) -> timedelta | None:
        """How long after an interval ends its logs must be in GCS: `deadline`, else one period plus the
        delay (hourly with a 30m delay: 1h30m), None when switched off."""
        if self.deadline is None:
            return self.period + self.delay
        return self.deadline or None


class CoverageAuditConfig(BaseModel):
    """The top-level `coverage_audit:` block: the completeness audit DAG (auditlogs/coverage/audit.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    schedule: str = "@daily"
    #: How far back each audit run looks for intervals without a manifest.
    lookback: timedelta = timedelta(days=7)

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return SourceConfig._schedule(value)

    @field_validator("lookback", mode="before")
    @classmethod
    def _lookback(cls, value: Any) -> timedelta:
        return parse_duration(value)


@dataclass
class LoadedConfig:
    path: Path
    sources: dict[str, SourceConfig] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    coverage_audit: CoverageAuditConfig = CoverageAuditConfig()


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_config(path: Path | str | None = None) -> LoadedConfig:
    """Read and validate the config. Raises ConfigError only when the file as a whole is unusable."""
    from auditlogs.sources import SOURCE_TYPES

    path = Path(path) if path else config_path()
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", hint=f"create it or point {CONFIG_ENV} at it")
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}")
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict):
        raise ConfigError(f"config file {path} must be a mapping with a 'sources:' mapping of source name to settings")
    defaults = document.get("defaults") or {}
    unknown_top = sorted(set(document) - {"defaults", "sources", "coverage_audit"})
    if not isinstance(defaults, dict) or unknown_top:
        raise ConfigError(
            f"config file {path}: 'defaults' must be a mapping"
            if not isinstance(defaults, dict)
            else f"config file {path}: unknown top-level keys {unknown_top}; allowed: defaults, sources, coverage_audit"
        )
    try:
        audit = CoverageAuditConfig.model_validate(document.get("coverage_audit") or {})
    except ValidationError as exc:
        raise ConfigError(_describe(f"config file {path}: coverage_audit", exc))

    loaded = LoadedConfig(path=path, coverage_audit=audit)
    for name, entry in document["sources"].items():
        name = str(name)
        where = f"{path}: source '{name}'"
        if not isinstance(entry, dict):
            loaded.errors[name] = f"{where}: must be a mapping of settings"
            continue
        merged = {**defaults, **entry, "name": name}
        source_type = merged.get("type")
        model = SOURCE_TYPES.get(source_type)
        if model is None:
            allowed = ", ".join(sorted(SOURCE_TYPES))
            loaded.errors[name] = f"{where}, field 'type': {source_type!r} is not a known source type; allowed: {allowed}"
            continue
        try:
            loaded.sources[name] = model.model_validate(merged)
        except ValidationError as exc:
            loaded.errors[name] = _describe(where, exc)
    return loaded


def _describe(where: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        field_name = ".".join(str(part) for part in error["loc"]) or "(entry)"
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling against the README's config reference)"
        elif error["type"] == "missing":
            message = "required, set it in the source or in 'defaults'"
        problems.append(f"field '{field_name}': {message}")
    return f"{where}: " + "; ".join(problems)
