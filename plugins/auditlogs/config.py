"""The YAML config: one `defaults:` block merged into every entry of `sources:`, validated with pydantic.

A broken source must not hide the others, so validation is per source: `load_config` returns the valid
sources and, separately, a readable error for each broken one. Only a file that cannot be read at all
raises.
"""

from __future__ import annotations

import gc
import math
import os
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from auditlogs.errors import ConfigError

if TYPE_CHECKING:
    from auditlogs.client.api import RetryBudget

CONFIG_ENV = "AUDITLOGS_CONFIG"
DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "include" / "sources.yaml"

_DURATION = re.compile(r"^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_SIZE = re.compile(r"^(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?$", re.IGNORECASE)
_SIZE_UNITS = {"b": 1, "kb": 1000, "kib": 1024, "mb": 1000**2, "mib": 1024**2, "gb": 1000**3, "gib": 1024**3}
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_UNSUPPORTED_SCHEDULES = {"@once", "@continuous", "none"}
#: Presets both Airflow's timetables (its CRON_PRESETS) and croniter understand, as cron expressions.
SCHEDULE_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
#: Longer than any window, delay or retention an API has; longer values are typos (and overflow datetimes).
MAX_DURATION = timedelta(days=3650)
#: Start dates before Unix time cannot be asked of any of the APIs.
_EARLIEST_START = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: GCS object names are at most 1024 bytes; the folders and file names below the prefix take about 160.
MAX_PREFIX_BYTES = 800
_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_IP_ADDRESS = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")
_PREFIX_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f#\[\]*?]")
#: Time a task gets beyond its pages for writing parts and publishing the manifest (execution_timeout).
PUBLISH_ALLOWANCE = timedelta(minutes=10)
#: No derived execution_timeout is longer than this.
MAX_EXECUTION_TIMEOUT = timedelta(days=365)


def is_source_name(name: str) -> bool:
    """Valid names become DAG ids and GCS folders as they are."""
    return bool(_NAME.fullmatch(name))


def parse_duration(value: Any) -> timedelta:
    """'30m', '1h30m', '2d', '45s', or a number of seconds; at most MAX_DURATION."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"invalid duration {value!r}: not a finite number of seconds")
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        seconds = value
    else:
        text = str(value).strip().replace(" ", "")
        match = _DURATION.match(text)
        if not text or not match:
            raise ValueError(f"invalid duration {value!r}: use numbers with d, h, m, s, such as '30m' or '1h30m'")
        days, hours, minutes, secs = (int(g or 0) for g in match.groups())
        seconds = ((days * 24 + hours) * 60 + minutes) * 60 + secs  # an int: cannot overflow before the check
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(
            f"invalid duration {value!r}: longer than {MAX_DURATION.days}d (10 years), more than any window, "
            "delay or retention needs"
        )
    return timedelta(seconds=seconds)


def parse_size(value: Any) -> int:
    """'64MiB', '16MB', or a number of bytes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE.match(str(value).strip())
    if not match:
        raise ValueError(f"invalid size {value!r}: use a number of bytes or a unit such as '64MiB'")
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "b").lower()]


def cron_expression(schedule: str) -> str:
    """The cron expression of a schedule: presets spelled out, as Airflow's timetable does."""
    return SCHEDULE_PRESETS.get(schedule, schedule)


def schedule_period(schedule: str, at: datetime) -> timedelta:
    """The length of the first schedule interval after `at` (one cron step)."""
    from croniter import croniter

    cron = croniter(cron_expression(schedule), at)
    start = cron.get_next(datetime)
    return cron.get_next(datetime) - start


def previous_intervals(schedule: str, start: datetime, count: int) -> list[tuple[datetime, datetime]]:
    """The `count` schedule intervals before the one starting at `start`, newest first."""
    from croniter import croniter

    cron = croniter(cron_expression(schedule), start)
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


class StockNotifier(BaseModel):
    """An Airflow notifier a user already runs (Slack, Apprise for Teams, PagerDuty, SMTP, HTTP, ...): its
    import path and constructor kwargs, which may use `{{ auditlogs.text }}` and the other fields of the
    notification (README: Notifications). Connection ids go in the kwargs; secrets stay in the connections."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    notifier: str = Field(pattern=r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")
    kwargs: dict[str, Any] = {}

    @field_validator("notifier")
    @classmethod
    def _is_a_notifier(cls, path: str) -> str:
        notifier_class(path)
        return path


def notifier_class(path: str) -> type:
    """The BaseNotifier subclass at `path`; ValueError (named in the config error) if it is not one."""
    from importlib import import_module

    from airflow.sdk import BaseNotifier

    module, _, name = path.rpartition(".")
    try:
        found = getattr(import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import {path} ({type(exc).__name__}: {exc}); is its provider installed?") from None
    if not (isinstance(found, type) and issubclass(found, BaseNotifier)):
        raise ValueError(f"{path} is not an Airflow notifier (a subclass of airflow.sdk.BaseNotifier)")
    return found


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
    #: Stock Airflow notifiers, each sent every notification too.
    notifiers: tuple[StockNotifier, ...] = ()

    @property
    def channels(self) -> list[str]:
        """The built-in channels configured (stock notifiers are in `notifiers`)."""
        return [name for name, on in (("slack", self.slack), ("webhook", self.webhook), ("email", self.email)) if on]


class SourceConfig(BaseModel):
    """Keys every source has. Each source type subclasses it with its own keys and `type` literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str
    conn_id: str = Field(min_length=1)
    bucket: str
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
    #: How often a task keeps what it fetched so far in GCS (its parts and a checkpoint), so that the next
    #: try of the run continues there if the task dies; 0: only when a page fails (README: Failure behaviour).
    checkpoint_every: timedelta = timedelta(minutes=5)
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
    #: Longest a task may run before Airflow stops it; None: derived (see `task_timeout`).
    execution_timeout: timedelta | None = None

    # --- The HTTP client's bounds (issue 12: secrets, caps, rate limits) ---
    #: Caps on one response body: decompressed, and as sent on the wire (README: Security).
    max_response_bytes: int = Field(256 * 1024**2, ge=1024)
    max_compressed_response_bytes: int = Field(64 * 1024**2, ge=1024)
    #: The credential's hourly budget besides the minute's; None: the API's documented one, if any.
    requests_per_hour: int | None = Field(None, ge=1)

    #: Streams this type collects; a source with several streams gets one task per stream.
    streams: ClassVar[tuple[str, ...]] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not is_source_name(value):
            raise ValueError(
                "source names become DAG ids and GCS folders: use lower-case letters, digits and '_', "
                "starting with a letter"
            )
        if value == "coverage_audit":
            raise ValueError("'coverage_audit' is reserved: auditlogs_coverage_audit is the completeness audit's DAG")
        return value

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str) -> str:
        if value.startswith("gs://") or "/" in value:
            raise ValueError("give the bare bucket name (no gs://, no path); put folders in 'prefix'")
        return check_bucket_name(value)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        return check_prefix(value.strip("/"))

    @field_validator("schedule", "sweep_schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        return check_schedule(value)

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

    @field_validator("start_date")
    @classmethod
    def _start_date_range(cls, value: datetime) -> datetime:
        if not _EARLIEST_START <= value <= datetime(9000, 1, 1, tzinfo=timezone.utc):
            raise ValueError(f"{value.isoformat()} must be between 1970-01-01 and 9000-01-01")
        return value

    @field_validator(
        "delay", "retry_delay", "max_retry_delay", "request_timeout", "page_max_wait", "checkpoint_every", mode="before"
    )
    @classmethod
    def _durations(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("sweep", mode="before")
    @classmethod
    def _sweep(cls, value: Any) -> timedelta | None:
        return None if value is None else parse_duration(value)

    @field_validator("execution_timeout", mode="before")
    @classmethod
    def _execution_timeout(cls, value: Any) -> timedelta | None:
        if value is None:
            return None
        if value is False or str(value).strip().lower() == "off":
            raise ValueError("cannot be off: a task without a timeout can hang forever; leave it out to derive one")
        return parse_duration(value)

    @field_validator("deadline", "retention", mode="before")
    @classmethod
    def _optional_durations(cls, value: Any) -> timedelta | None:
        if value is None:
            return None
        if value is False or str(value).strip().lower() == "off":
            return timedelta(0)
        return parse_duration(value)

    @field_validator("part_size", "max_response_bytes", "max_compressed_response_bytes", mode="before")
    @classmethod
    def _part_size(cls, value: Any) -> int:
        return parse_size(value)

    @model_validator(mode="after")
    def _positive_timeout(self) -> SourceConfig:
        if self.request_timeout <= timedelta(0):
            raise ValueError("request_timeout must be more than 0s")
        if self.sweep is not None and self.sweep <= timedelta(0):
            raise ValueError("sweep must be more than 0s (or left out for no sweep)")
        if self.execution_timeout is not None and self.execution_timeout <= timedelta(0):
            raise ValueError("execution_timeout must be more than 0s (or left out to derive it)")
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
    def page_budget(self) -> RetryBudget:
        """How hard the client retries one page: `page_attempts` within `page_max_wait` of waits."""
        from auditlogs.client.api import RetryBudget

        return RetryBudget(max_attempts=self.page_attempts, max_total_wait=self.page_max_wait.total_seconds())

    @property
    def task_timeout(self) -> timedelta:
        """Airflow's `execution_timeout` of each collecting and sweep task: `execution_timeout`, else the
        longest a run takes while the API paces it no harder than the client slows down for (README:
        `execution_timeout`): every one of `max_pages` pages taking the whole `request_timeout` at an eighth
        of the credential's pace, plus one page's whole budget (every request it may send at
        `request_timeout`, `page_max_wait` of waits and a quota reset) and 10 minutes to publish. Capped at 365d."""
        if self.execution_timeout is not None:
            return self.execution_timeout
        from auditlogs.client.ratelimit import DEFAULT_REQUESTS_PER_MINUTE, SLOWEST
        from auditlogs.sources import registry

        per_minute = (
            self.requests_per_minute or registry().specs[self.type].requests_per_minute or DEFAULT_REQUESTS_PER_MINUTE
        )
        slowest_pace = 60.0 * max(1, self.concurrent_tasks()) / per_minute / SLOWEST
        request = self.request_timeout.total_seconds()
        budget = self.page_budget
        seconds = (
            self.max_pages * (request + slowest_pace)
            + budget.most_requests() * request
            + budget.max_total_wait
            + budget.max_rate_limit_wait
            + PUBLISH_ALLOWANCE.total_seconds()
        )
        return timedelta(seconds=math.ceil(min(seconds, MAX_EXECUTION_TIMEOUT.total_seconds())))

    @property
    def deadline_after_end(self) -> timedelta | None:
        """How long after an interval ends its logs must be in GCS: `deadline`, else one period plus the
        delay (hourly with a 30m delay: 1h30m), None when switched off."""
        if self.deadline is None:
            return self.period + self.delay
        return self.deadline or None


def check_schedule(value: str) -> str:
    """A 5-field cron expression or a preset both Airflow and croniter know, that fires at least twice."""
    from croniter import croniter

    text = value.strip()
    if text.lower() in _UNSUPPORTED_SCHEDULES:
        raise ValueError("needs a periodic schedule (a cron expression or @hourly, @daily, ...)")
    if text.startswith("@"):
        if text.lower() not in SCHEDULE_PRESETS:
            presets = ", ".join(SCHEDULE_PRESETS)
            raise ValueError(f"{value!r} is not a preset; use one of {presets} or a cron expression")
        return text.lower()
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(
            f"{value!r} is not a cron expression or preset such as '@hourly' or '*/15 * * * *' "
            "(cron has 5 fields: minute hour day month weekday)"
        )
    try:
        cron = croniter(text, datetime(2000, 1, 1, tzinfo=timezone.utc))
        cron.get_next(datetime), cron.get_next(datetime)
    except Exception:  # croniter's CroniterBadDateError, or an overflow on absurd steps
        raise ValueError(f"{value!r} never fires (no date matches it, such as 30 February): fix the day or month")
    return text


def check_bucket_name(value: str) -> str:
    """GCS bucket naming rules (cloud.google.com/storage/docs/buckets#naming), checked before any run."""
    problem = None
    components = value.split(".")
    if not 3 <= len(value) <= (222 if len(components) > 1 else 63):
        problem = "must be 3-63 characters (up to 222 when it contains dots)"
    elif not _BUCKET_CHARS.match(value):
        problem = "use lower-case letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    elif any(not 1 <= len(part) <= 63 for part in components):
        problem = "each dot-separated part must be 1-63 characters"
    elif value.startswith("goog") or "google" in value or "g00gle" in value:
        problem = "cannot start with 'goog' or contain 'google'"
    elif _IP_ADDRESS.match(value):
        problem = "cannot be an IP address"
    if problem:
        raise ValueError(f"{value!r} is not a GCS bucket name: {problem}")
    return value


def check_prefix(value: str) -> str:
    """A folder usable in every object name below it: GCS object naming rules, kept practical."""
    segments = value.split("/")
    if _PREFIX_FORBIDDEN.search(value):
        raise ValueError(f"{value!r}: no control characters, '#', '[', ']', '*' or '?' in a GCS folder")
    if any(segment in ("", ".", "..") for segment in segments) and value:
        raise ValueError(f"{value!r}: no empty, '.' or '..' folder names in a GCS folder")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"{value!r} is not valid UTF-8") from None
    if size > MAX_PREFIX_BYTES:
        raise ValueError(f"{size} bytes long; at most {MAX_PREFIX_BYTES}, as object names are at most 1024 bytes")
    return value


#: The coverage audit's DAG id: here, so that the factory finds a task's DAG without importing the audit.
COVERAGE_AUDIT_DAG_ID = "auditlogs_coverage_audit"


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
        return check_schedule(value)

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
    #: The line of each entry under `sources:`, for messages that must say which entry they mean.
    lines: dict[str, int] = field(default_factory=dict)

    def label(self, name: str) -> str:
        """`source '<name>'`; a name too long or odd to show whole is shortened and given its line."""
        if len(name) <= _SHOWN_NAME and name.isprintable():
            return f"source '{name}'"
        shown = repr(name[:_SHOWN_NAME])[1:-1] + ("..." if len(name) > _SHOWN_NAME else "")
        line = f", line {self.lines[name]}" if self.lines.get(name) else ""
        return f"source '{shown}' ({len(name)} characters{line})"

    def where(self, name: str) -> str:
        return f"{self.path}: {self.label(name)}"


_SHOWN_NAME = 64
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(frozen=True)
class DuplicateKey:
    path: tuple
    key: Any
    first_line: int
    second_line: int

    def __str__(self) -> str:
        where = ".".join(str(part) for part in self.path)
        return (
            f"key '{self.key}' appears twice in '{where}' (lines {self.first_line} and {self.second_line}): "
            "YAML would silently keep the second; remove or rename one"
        )


_FastestSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _KeyCheckingLoader(_FastestSafeLoader):  # type: ignore[valid-type,misc]  # LibYAML's when PyYAML has it
    """PyYAML's SafeLoader, but a key given twice in one mapping is recorded with both lines instead of the
    last one silently winning. Keys brought in by a `<<:` merge may be overridden, as YAML intends.
    LibYAML's parser when PyYAML has it (its wheels do): the same documents, several times faster to read,
    which every task process pays for the whole config."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[DuplicateKey] = []
        self.lines: dict[tuple, int] = {}

    def construct_document(self, node: yaml.Node) -> Any:
        self._check(node, (), set())
        return super().construct_document(node)

    def _check(self, node: yaml.Node, path: tuple, seen: set[int]) -> None:
        if id(node) in seen:  # an alias of a node already checked (or a recursive one)
            return
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._check(item, (*path, index), seen)
        if not isinstance(node, yaml.MappingNode):
            return
        first_lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key, line = self._key(key_node), key_node.start_mark.line + 1
            if key in first_lines:
                self.duplicates.append(DuplicateKey(path, key, first_lines[key], line))
            elif key is not None:
                first_lines[key] = line
                self.lines[(*path, key)] = line
            self._check(value_node, (*path, key), seen)

    def _key(self, node: yaml.Node) -> Any:
        """The key as the mapping will hold it (`1` and `0x1` are one key), None when not a plain scalar."""
        if not isinstance(node, yaml.ScalarNode):
            return None
        try:
            key = self.construct_object(node)
            hash(key)
        except Exception:  # an unreadable key fails the normal construction with YAML's own message
            return None
        return key


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def _read(path: Path) -> tuple[Any, _KeyCheckingLoader]:
    """The document, read with the cyclic garbage collector paused: the parse allocates a node per value and
    frees them all by reference counting, and collections during it would only promote them (at 1,000
    sources one full collection of the interpreter's heap followed in every task, 0.1 to 0.2 CPU s)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse(path)
    finally:
        if paused:
            gc.enable()


def _parse(path: Path) -> tuple[Any, _KeyCheckingLoader]:
    try:
        loader = _KeyCheckingLoader(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist", hint=f"create it or point {CONFIG_ENV} at it")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text: {exc}")
    try:
        return loader.get_single_data(), loader
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}")
    finally:
        loader.dispose()


def load_config(
    path: Path | str | None = None, select: Callable[[dict[str, Any]], Collection[str] | None] | None = None
) -> LoadedConfig:
    """Read and validate the config. Raises ConfigError only when the file as a whole is unusable.

    `select` gets every entry merged with the defaults (None for an entry that is not a mapping) and names
    the entries to validate, or None for all; the others are left out of `sources` and `errors` (a task
    process validates only the entries its DAG can depend on, see factory.build_dags)."""
    path = Path(path) if path else config_path()
    document, loader = _read(path)
    if not isinstance(document, dict) or not isinstance(document.get("sources"), dict):
        raise ConfigError(f"config file {path} must be a mapping with a 'sources:' mapping of source name to settings")
    defaults = document.get("defaults") or {}
    unknown_top = sorted(set(map(str, document)) - {"defaults", "sources", "coverage_audit"})
    if not isinstance(defaults, dict) or unknown_top:
        raise ConfigError(
            f"config file {path}: 'defaults' must be a mapping"
            if not isinstance(defaults, dict)
            else f"config file {path}: unknown top-level keys {unknown_top}; allowed: defaults, sources, coverage_audit"
        )
    top_level = [str(d) for d in loader.duplicates if not d.path]
    if top_level:  # two `sources:` blocks: which entries were meant cannot be told
        raise ConfigError(f"config file {path}: {'; '.join(top_level)}")

    try:
        audit = CoverageAuditConfig.model_validate(document.get("coverage_audit") or {})
    except ValidationError as exc:
        raise ConfigError(_describe(f"config file {path}: coverage_audit", exc))

    loaded = LoadedConfig(path=path, coverage_audit=audit)
    keys_by_name: dict[str, list] = {}
    for key in document["sources"]:
        keys_by_name.setdefault(str(key), []).append(key)
        loaded.lines.setdefault(str(key), loader.lines.get(("sources", key), 0))
    in_defaults = [str(d) for d in loader.duplicates if d.path[:1] == ("defaults",)]
    chosen = (
        select(
            {
                name: {**defaults, **entry} if isinstance(entry := document["sources"][keys[0]], dict) else None
                for name, keys in keys_by_name.items()
            }
        )
        if select
        else None
    )
    for name, keys in keys_by_name.items():
        if chosen is not None and name not in chosen:
            continue
        where = loaded.where(name)
        duplicates = in_defaults + [str(d) for d in loader.duplicates if _is_within(d, keys)]
        if len(keys) > 1:
            lines = " and ".join(str(loader.lines.get(("sources", k))) for k in keys)
            duplicates.append(f"{len(keys)} entries (lines {lines}) have this name; rename all but one")
        if duplicates:
            loaded.errors[name] = f"{where}: " + "; ".join(duplicates)
            continue
        try:
            loaded.sources[name] = _validate(name, document["sources"][keys[0]], defaults, where)
        except ConfigError as exc:
            loaded.errors[name] = exc.what
        except Exception as exc:  # whatever a validator raises, it is this entry's error, not the file's
            loaded.errors[name] = f"{where}: cannot be validated: {type(exc).__name__}: {str(exc)[:500]}"
    return loaded


def _is_within(duplicate: DuplicateKey, keys: list) -> bool:
    """Whether a duplicate key is one of these entries under `sources:`, or inside one of them."""
    path = duplicate.path
    if path == ("sources",):
        return duplicate.key in keys
    return len(path) > 1 and path[0] == "sources" and path[1] in keys


def _validate(name: str, entry: Any, defaults: dict, where: str) -> SourceConfig:
    from auditlogs.sources import registry

    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a mapping of settings")
    merged = {**defaults, **entry, "name": name}
    source_type = merged.get("type")
    types = registry()
    if isinstance(source_type, str) and source_type in types.broken:
        raise ConfigError(f"{where}: field 'type': {types.broken[source_type]}")
    model = types.configs.get(source_type) if isinstance(source_type, str) else None
    if model is None:
        allowed = ", ".join(sorted(types.configs))
        raise ConfigError(f"{where}: field 'type': {source_type!r} is not a known source type; allowed: {allowed}")
    try:
        return model.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(where, exc)) from None


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
