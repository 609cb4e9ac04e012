"""Scenario: the knobs that define what a sandbox serves (seed, rates, tokens, limits).

A scenario fully determines the event stream, so the server and the test suite can
both derive the same ground truth from it without talking to each other.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

DEFAULT_SCENARIO_PATH = os.path.join(os.path.dirname(__file__), "scenario.yaml")


@dataclass(frozen=True)
class LagProfile:
    """A seeded fraction `p_late` of events arrives 1..max_lag_seconds after it happened."""

    p_late: float
    max_lag_seconds: int


@dataclass(frozen=True)
class MalformedTimes:
    """For the hostile tier: every event in [start, end) (Unix seconds) whose body has the dotted `field` carries
    `value` there instead, a time no calendar holds or none at all; everything else about it is unchanged."""

    field: str
    value: str | int | float | None
    start: int
    end: int


@dataclass(frozen=True)
class SourceConfig:
    events_per_hour: float = 600
    burst_fraction: float = 0.2
    token: str = "xoxp-sandbox-token"
    # None or 0 disables rate limiting.
    rate_limit_per_minute: int | None = 50
    lag: LagProfile | None = None
    # APIs that list content blobs (Office 365): a seeded fraction of blobs is listed late, after its time.
    listing_lag: LagProfile | None = None
    # Events older than now - retention_days are not served; also bounds scans without `oldest`.
    retention_days: int = 90
    malformed_times: MalformedTimes | None = None


@dataclass(frozen=True)
class Scenario:
    seed: int
    sources: Mapping[str, SourceConfig] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_scenario(source: Scenario | Mapping[str, Any] | str | os.PathLike[str] | None = None) -> Scenario:
    """Build a validated Scenario from a Scenario, a dict, or a YAML/JSON file (None: the default file)."""
    if isinstance(source, Scenario):
        return source
    if source is None:
        source = DEFAULT_SCENARIO_PATH
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="utf-8") as fh:
            source = yaml.safe_load(fh)
    if not isinstance(source, Mapping):
        raise ValueError("scenario must be a mapping")
    _reject_unknown(source, {"seed", "sources"}, "scenario")
    sources = source.get("sources") or {}
    if not isinstance(sources, Mapping):
        raise ValueError("scenario.sources must be a mapping")
    return Scenario(
        seed=int(source.get("seed", 0)),
        sources={str(name): _source_config(name, cfg or {}) for name, cfg in sources.items()},
    )


def _source_config(name: str, raw: Mapping[str, Any]) -> SourceConfig:
    where = f"scenario.sources.{name}"
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be a mapping")
    _reject_unknown(raw, {f.name for f in dataclasses.fields(SourceConfig)}, where)
    values = dict(raw)
    for name in ("lag", "listing_lag"):
        lag = values.get(name)
        if lag is not None:
            if not isinstance(lag, Mapping):
                raise ValueError(f"{where}.{name} must be a mapping or null")
            _reject_unknown(lag, {"p_late", "max_lag_seconds"}, f"{where}.{name}")
            values[name] = LagProfile(
                p_late=float(lag.get("p_late", 0.0)), max_lag_seconds=int(lag.get("max_lag_seconds", 0))
            )
    malformed = values.get("malformed_times")
    if malformed is not None:
        if not isinstance(malformed, Mapping):
            raise ValueError(f"{where}.malformed_times must be a mapping or null")
        _reject_unknown(malformed, {"field", "value", "start", "end"}, f"{where}.malformed_times")
        value = malformed.get("value")
        if isinstance(value, (dict, list)):
            raise ValueError(f"{where}.malformed_times.value must be a string, a number or null")
        values["malformed_times"] = MalformedTimes(
            str(malformed["field"]), value, int(malformed["start"]), int(malformed["end"])
        )
    cfg = SourceConfig(**values)
    if cfg.events_per_hour < 0:
        raise ValueError(f"{where}.events_per_hour must be >= 0")
    if not 0 <= cfg.burst_fraction <= 1:
        raise ValueError(f"{where}.burst_fraction must be within [0, 1]")
    for name, lag in (("lag", cfg.lag), ("listing_lag", cfg.listing_lag)):
        if lag is not None and (not 0 <= lag.p_late <= 1 or lag.max_lag_seconds < 1):
            raise ValueError(f"{where}.{name} needs 0 <= p_late <= 1 and max_lag_seconds >= 1")
    return cfg


def _reject_unknown(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Typos in a scenario would silently fall back to defaults; fail loudly instead."""
    unknown = set(raw) - allowed
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}")
