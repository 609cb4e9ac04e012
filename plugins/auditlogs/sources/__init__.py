"""The registry of source types: one module per API, each exporting a `SPEC` (one line per source), plus
the types other installed packages register under the `auditlogs.sources` entry-point group."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from auditlogs.config import SourceConfig
from auditlogs.sources import slack
from auditlogs.sources import onepassword
from auditlogs.sources import github
from auditlogs.sources import okta
from auditlogs.sources import twilio
from auditlogs.sources import sendgrid
from auditlogs.sources import google_workspace
from auditlogs.sources import microsoft365
from auditlogs.sources import entra_id
from auditlogs.sources import zoom
from auditlogs.sources import gitlab
from auditlogs.sources import atlassian
from auditlogs.sources import duo, zendesk, cloudflare
from auditlogs.sources import box
from auditlogs.sources import dropbox
from auditlogs.sources import rest
from auditlogs.sources.base import SourceSpec

log = logging.getLogger(__name__)

#: A package registers a source type as `name = "module:SPEC"` in this group, `SPEC` a `SourceSpec` of that type.
ENTRY_POINT_GROUP = "auditlogs.sources"

BUILT_IN: dict[str, SourceSpec] = {
    spec.type: spec
    for spec in (
        slack.SPEC,
        onepassword.SPEC,
        github.SPEC,
        okta.SPEC,
        twilio.SPEC,
        sendgrid.SPEC,
        google_workspace.SPEC,
        microsoft365.SPEC,
        entra_id.SPEC,
        zoom.SPEC,
        gitlab.SPEC,
        atlassian.SPEC,
        duo.SPEC,
        zendesk.SPEC,
        cloudflare.SPEC,
        box.SPEC,
        dropbox.SPEC,
    )
}


@dataclass(frozen=True)
class Registry:
    #: Every usable source type's spec, the built-in ones and the installed packages'.
    specs: dict[str, SourceSpec]
    #: Every source type's config model; `rest` has no fixed spec, its config declares one.
    configs: dict[str, type[SourceConfig]]
    #: Source types an installed package registers but that cannot be used, and why: the error of each
    #: source of such a type (the other sources are unaffected).
    broken: dict[str, str]


@cache
def registry() -> Registry:
    """The built-in types and the installed packages' (read once per process)."""
    specs = dict(BUILT_IN)
    broken: dict[str, str] = {}
    claims: dict[str, list[str]] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        claims.setdefault(entry.name, []).append(_provider(entry))
        spec, problem = _load(entry)
        if problem:
            broken[entry.name] = problem
        elif spec is not None:
            specs.setdefault(entry.name, spec)
    for name, providers in claims.items():
        if name in BUILT_IN or name == "rest" or len(providers) > 1:
            owners = (["auditlogs itself"] if name in BUILT_IN or name == "rest" else []) + providers
            broken[name] = (
                f"source type {name!r} is registered more than once ({', '.join(owners)}): "
                "uninstall all but one of the packages, or rename the type in its entry point"
            )
    for name, problem in broken.items():
        specs.pop(name, None)
        log.error("auditlogs: %s", problem)
    configs: dict[str, type[SourceConfig]] = {name: spec.config for name, spec in specs.items()}
    configs["rest"] = rest.RestConfig
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
    if isinstance(config, rest.RestConfig):
        return rest.spec_of(config)
    return registry().specs[config.type]


def __getattr__(name: str) -> Any:
    """`SPECS` and `SOURCE_TYPES` as before, read lazily so that a package's source module may import
    `auditlogs.sources` (its entry points are loaded on first use, not while this module loads)."""
    if name == "SPECS":
        return registry().specs
    if name == "SOURCE_TYPES":
        return registry().configs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
