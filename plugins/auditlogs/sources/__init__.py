"""The registry of source types: one module per API, named as its type and exporting a `SPEC` (one line per
source). A module is imported when its type is first looked up, so a task imports only its own API's."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from auditlogs.config import SourceConfig
from auditlogs.sources.base import SourceSpec

#: The source types with a fixed spec, each `auditlogs/sources/<type>.py`.
SPEC_TYPES = (
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
)


class _Registry(Mapping):
    """A read-only mapping of type name to what `read` takes from the type's module, imported on first use."""

    def __init__(self, types: tuple[str, ...], read: Callable[[Any], Any]):
        self._types, self._read, self._found = types, read, {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._types:
            raise KeyError(name)
        if name not in self._found:
            self._found[name] = self._read(importlib.import_module(f"auditlogs.sources.{name}"))
        return self._found[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)


SPECS: Mapping[str, SourceSpec] = _Registry(SPEC_TYPES, lambda module: module.SPEC)
#: Every source type's config model; `rest` has no fixed spec, its config declares one.
SOURCE_TYPES: Mapping[str, type[SourceConfig]] = _Registry(
    (*SPEC_TYPES, "rest"), lambda module: module.RestConfig if module.__name__.endswith(".rest") else module.SPEC.config)


def spec_for(config: SourceConfig) -> SourceSpec:
    """The spec a configured source runs with: its type's, or the one a `type: rest` config declares."""
    if config.type == "rest":
        from auditlogs.sources import rest

        return rest.spec_of(config)
    return SPECS[config.type]
