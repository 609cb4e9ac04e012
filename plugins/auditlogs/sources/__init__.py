"""The registry of source types: one module per API, named as its type and exporting a `SPEC` (one line per
source), plus the types other installed packages register under the `auditlogs.sources` entry-point group.
A built-in module is imported when its type is first looked up, so a task imports only its own API's."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from auditlogs.config import SourceConfig
from auditlogs.sources.base import SourceSpec

log = logging.getLogger(__name__)

#: A package registers a source type as `name = "module:SPEC"` in this group, `SPEC` a `SourceSpec` of that type.
ENTRY_POINT_GROUP = "auditlogs.sources"

#: The built-in source types with a fixed spec, each `auditlogs/sources/<type>.py`.
BUILT_IN = (
    "slack",
    "onepassword",
    "github",
    "okta",
    "twilio",
    "sendgrid",
    "google_workspace",
    "microsoft365",
    "entra_id",
    "zoom",
    "gitlab",
    "atlassian",
    "duo",
    "zendesk",
    "cloudflare",
    "box",
    "dropbox",
)


class _Lazy(Mapping):
    """A read-only mapping of type name to what `read` takes from the built-in type's module (imported on
    first use), or to an installed package's value."""

    def __init__(self, types: tuple[str, ...], read: Callable[[Any], Any], installed: Mapping[str, Any]):
        self._types, self._read, self._installed = types, read, installed
        self._found: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name in self._installed:
            return self._installed[name]
        if name not in self._types:
            raise KeyError(name)
        if name not in self._found:
            self._found[name] = self._read(importlib.import_module(f"auditlogs.sources.{name}"))
        return self._found[name]

    def __iter__(self) -> Iterator[str]:
        return iter((*self._types, *self._installed))

    def __len__(self) -> int:
        return len(self._types) + len(self._installed)


@dataclass(frozen=True)
class Registry:
    #: Every usable source type's spec, the built-in ones and the installed packages'.
    specs: Mapping[str, SourceSpec]
    #: Every source type's config model; `rest` has no fixed spec, its config declares one.
    configs: Mapping[str, type[SourceConfig]]
    #: Source types an installed package registers but that cannot be used, and why: the error of each
    #: source of such a type (the other sources are unaffected).
    broken: dict[str, str]


@cache
def registry() -> Registry:
    """The built-in types and the installed packages' (entry points read once per process; built-in modules
    imported when first looked up)."""
    installed: dict[str, SourceSpec] = {}
    broken: dict[str, str] = {}
    claims: dict[str, list[str]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        claims.setdefault(entry.name, []).append(_provider(entry))
        spec, problem = _load(entry)
        if problem:
            broken[entry.name] = problem
        elif spec is not None:
            installed.setdefault(entry.name, spec)
    for name, providers in claims.items():
        if name in BUILT_IN or name == "rest" or len(providers) > 1:
            owners = (["auditlogs itself"] if name in BUILT_IN or name == "rest" else []) + providers
            broken[name] = (
                f"source type {name!r} is registered more than once ({', '.join(owners)}): "
                "uninstall all but one of the packages, or rename the type in its entry point"
            )
    for name, problem in broken.items():
        installed.pop(name, None)
        log.error("auditlogs: %s", problem)
    usable = tuple(name for name in BUILT_IN if name not in broken)
    specs: Mapping[str, SourceSpec] = _Lazy(usable, lambda module: module.SPEC, installed)
    configs: Mapping[str, type[SourceConfig]] = _Lazy(
        (*usable, "rest"),
        lambda module: module.RestConfig if module.__name__.endswith(".rest") else module.SPEC.config,
        {name: spec.config for name, spec in installed.items()},
    )
    return Registry(specs, configs, broken)


def _provider(entry: EntryPoint) -> str:
    dist = entry.dist
    package = f"package {dist.name} {dist.version}" if dist is not None else "an installed package"
    return f"{package} (entry point {entry.name} = {entry.value})"


def _load(entry: EntryPoint) -> tuple[SourceSpec | None, str | None]:
    """The entry point's spec, or why it cannot be used (never raises: one package's bug is its types' error)."""
    where = f"source type {entry.name!r} from {_provider(entry)}"
    try:
        spec = entry.load()
    except Exception as exc:  # whatever its import raises, it is this type's error only
        return None, f"{where} cannot be loaded: {type(exc).__name__}: {str(exc)[:500]}"
    if not isinstance(spec, SourceSpec):
        return None, f"{where} is a {type(spec).__name__}, not an auditlogs.sources.base.SourceSpec"
    if spec.type != entry.name:
        return None, f"{where} is registered as {entry.name!r} but its SourceSpec has type {spec.type!r}"
    if not (isinstance(spec.config, type) and issubclass(spec.config, SourceConfig)):
        return None, f"{where} has a config that is not a subclass of auditlogs.config.SourceConfig"
    return spec, None


def spec_for(config: SourceConfig) -> SourceSpec:
    """The spec a configured source runs with: its type's, or the one a `type: rest` config declares."""
    if config.type == "rest":
        from auditlogs.sources import rest

        return rest.spec_of(config)  # type: ignore[arg-type]  # a `type: rest` entry validates as a RestConfig
    return registry().specs[config.type]


def __getattr__(name: str) -> Any:
    """`SPECS` and `SOURCE_TYPES` as before, read lazily so that a package's source module may import
    `auditlogs.sources` (its entry points are loaded on first use, not while this module loads)."""
    if name == "SPECS":
        return registry().specs
    if name == "SOURCE_TYPES":
        return registry().configs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
