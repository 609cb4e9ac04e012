"""Transport-neutral request/response types shared by the server core and the API modules."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    connection: str  # "client_ip:client_port", stable for a keep-alive connection
    # Set by the API handler once the credentials check out; recorded in the request log.
    auth_ok: bool = False

    def param(self, name: str) -> str | None:
        """First value of a query parameter, as most HTTP frameworks resolve repeats."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def json_response(status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status, orjson.dumps(obj), {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


Handler = Callable[[Request], Response]


class Route(NamedTuple):
    method: str
    path: str
    handler: Handler
