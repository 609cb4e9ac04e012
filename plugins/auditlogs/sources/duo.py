"""Duo Admin API logs: `authentication` (`/admin/v2/logs/authentication`), `administrator`
(`/admin/v1/logs/administrator`), `telephony` (`/admin/v2/logs/telephony`), and the preview `activity`
(`/admin/v2/logs/activity`, off by default).

Every request is signed as Duo's own client signs it (`duo_client/client.py`): an HMAC over the `Date`
header, method, host, path and the query re-encoded with RFC 3986 quoting, sent as Basic `ikey:signature`.
The v2 logs take `mintime`/`maxtime` in epoch milliseconds, both inclusive, so a window asks
`[start_ms, end_ms - 1]`, oldest first, and `metadata.next_offset` (a `[ms, txid]` array for
authentication, a `"ms,id"` string for the others) is sent back comma-joined with the filters. Duo shows
events only two minutes after they happen and answers empty before, so a window is never asked for before
its end is `buffer` in the past. The administrator log (v1) has no `maxtime` and no cursor: it answers the
earliest 1000 rows from `mintime` (seconds), so the next page starts at the last row's second, not the one
after (that would skip the rest of a second), and the repeats of that second are dropped as usual.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlsplit

import requests
from pydantic import Field, field_validator

from auditlogs.client.api import ApiRequest, ApiResponse
from auditlogs.client.pagination import BadPage
from auditlogs.config import parse_duration
from auditlogs.errors import ConfigError, PaginationError
from auditlogs.sources.base import (
    BadEventError,
    ChosenStreams,
    Order,
    SourceSpec,
    content_key,
    rfc3339,
    unix_seconds,
)
from auditlogs.window import Window

MAX_LIMIT = 1000
#: The administrator log answers at most this many rows per call, with no way to ask for fewer or more.
ADMIN_PAGE = 1000
#: Duo's deliberate delay before an event shows in the API ("more recent than two minutes will return as empty").
DUO_BUFFER = timedelta(minutes=2)
#: stream -> (path, where its events are in `response`)
LOGS = {
    "authentication": ("admin/v2/logs/authentication", "authlogs"),
    "administrator": ("admin/v1/logs/administrator", None),
    "telephony": ("admin/v2/logs/telephony", "items"),
    "activity": ("admin/v2/logs/activity", "items"),
}
DEFAULT_STREAMS = ("authentication", "administrator", "telephony")
_EMPTY_SHA512 = hashlib.sha512(b"").hexdigest()


class DuoConfig(ChosenStreams):
    type: Literal["duo"]
    limit: int = Field(MAX_LIMIT, ge=1, le=MAX_LIMIT)
    #: How long after a window's end it is first asked for: Duo's 2 minutes plus a margin for clock skew.
    buffer: timedelta = timedelta(minutes=2, seconds=30)
    #: An MSP's child account (`account_id`, signed like every parameter).
    account_id: str | None = Field(None, min_length=1, pattern=r"^[A-Za-z0-9]+$")
    streams = tuple(LOGS)

    @field_validator("buffer", mode="before")
    @classmethod
    def _buffer(cls, value: Any) -> timedelta:
        buffer = parse_duration(value)
        if buffer < DUO_BUFFER:
            raise ValueError("must be at least 2m: Duo answers the last two minutes empty, so they would be lost")
        return buffer

    def stream_names(self) -> tuple[str, ...]:
        return self.selected_streams or DEFAULT_STREAMS


@dataclass(frozen=True)
class AdminLogRequest(ApiRequest):
    """A request of the administrator log, which knows where its window ends (Duo cannot be told)."""

    until: float = math.inf


def first_request(config: DuoConfig, stream: str, window: Window) -> ApiRequest:
    extra = {"account_id": config.account_id} if config.account_id else {}
    path = LOGS[stream][0]
    if stream == "administrator":
        params = {"mintime": math.floor(window.start.timestamp()), **extra}
        return AdminLogRequest("GET", path, params=params, until=window.end.timestamp())
    params = {
        "mintime": math.floor(window.start.timestamp() * 1000),
        "maxtime": math.ceil(window.end.timestamp() * 1000) - 1,  # inclusive
        "limit": config.limit,
        "sort": "ts:asc",
        **extra,
    }
    return ApiRequest("GET", path, params=params)


@dataclass(frozen=True)
class DuoPaging:
    """v2: `metadata.next_offset` until it is null. v1 (administrator): the next call starts at the last
    row's second while a page is full and has not passed the window's end."""

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        answer = _answer(response.body)
        if isinstance(previous, AdminLogRequest):
            return _next_admin_page(previous, answer)
        metadata = (answer.get("metadata") if isinstance(answer, dict) else None) or response.body.get("metadata") or {}
        offset = metadata.get("next_offset") if isinstance(metadata, dict) else None
        if offset is None or offset == "" or offset == []:
            return None
        if isinstance(offset, list) and all(isinstance(part, (str, int)) for part in offset):
            offset = ",".join(str(part) for part in offset)
        if not isinstance(offset, str):
            raise BadPage(f"metadata.next_offset is {offset!r}, neither an array nor a string")
        return replace(previous, params={**(previous.params or {}), "next_offset": offset})


def _next_admin_page(previous: AdminLogRequest, rows: Any) -> ApiRequest | None:
    if not isinstance(rows, list):
        raise BadPage("the administrator log's response is not a list")
    if len(rows) < ADMIN_PAGE:
        return None
    last = rows[-1].get("timestamp") if isinstance(rows[-1], dict) else None
    if isinstance(last, bool) or not isinstance(last, int):
        raise BadPage(f"the administrator log's last row has timestamp {last!r}, not Unix seconds")
    if last >= previous.until:
        return None
    if last <= int((previous.params or {})["mintime"]):
        raise PaginationError(
            f"the administrator log answered {len(rows)} rows all in the second {last}: Duo answers at most "
            f"{ADMIN_PAGE} rows from a second and cannot be asked for the rest of it; nothing was written",
            hint="report it to Duo support; this second cannot be collected completely through the Admin API",
            retryable=False,
        )
    return replace(previous, params={**(previous.params or {}), "mintime": last})


def _answer(body: Any) -> Any:
    """The `response` of a `{"stat": "OK", "response": ...}` envelope; any other stat is a broken page."""
    if not isinstance(body, dict) or body.get("stat") != "OK":
        stat = body.get("stat") if isinstance(body, dict) else None
        raise BadEventError(f"the answer's stat is {stat!r}, not 'OK'")
    return body.get("response")


def events(body: Any) -> list:
    answer = _answer(body)
    if isinstance(answer, list):
        return answer  # the administrator log
    key = next((key for key in ("authlogs", "items") if isinstance(answer, dict) and key in answer), None)
    if key is None or not isinstance(answer[key], list):
        raise BadEventError("the response has neither an 'authlogs' nor an 'items' list")
    return answer[key]


def event_id(event: dict) -> Any:
    """`telephony_id`, `activity_id`, then `txid` (telephony rows carry a txid too); the administrator log
    has no id: `sha256:` of the row's canonical JSON."""
    for name in ("telephony_id", "activity_id", "txid"):
        if event.get(name) is not None:
            return event[name]
    return content_key(event)


_TS, _ISO, _SECONDS = rfc3339("ts"), rfc3339("isotimestamp"), unix_seconds("timestamp")


def event_time(event: dict) -> datetime:
    """Telephony and activity: `ts`. Authentication: `isotimestamp` (microseconds; `timestamp` is whole
    seconds while the filter is in milliseconds). Administrator: `timestamp` (its `isotimestamp` has been
    seen malformed)."""
    if "ts" in event:
        return _TS(event)
    if "txid" in event:
        return _ISO(event)
    return _SECONDS(event)


class DuoSignature(requests.auth.AuthBase):
    """Signs each request as `duo_client` does: v5 (its default: SHA-512, with the hashes of an empty body and
    of no `X-Duo-*` headers) or v2 (`digest` SHA-512 or SHA-1, as Elastic's collector uses)."""

    def __init__(
        self, ikey: str, skey: str, sig_version: int = 5, digest: str = "sha512", date: Any = email.utils.formatdate
    ):
        self.ikey, self.skey, self.sig_version, self.digest, self.date = ikey, skey, sig_version, digest, date

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = urlsplit(request.url or "")
        date = self.date()
        params = parse_qsl(url.query, keep_blank_values=True)
        request.headers["Date"] = date
        request.headers["Authorization"] = self.authorization(
            request.method or "GET", url.netloc, url.path, params, date
        )
        return request

    def authorization(self, method: str, host: str, path: str, params: list[tuple[str, str]], date: str) -> str:
        lines = [date, method.upper(), host.lower(), path, canon_params(params)]
        if self.sig_version == 5:
            lines += [_EMPTY_SHA512, _EMPTY_SHA512]
        digest = hashlib.sha512 if self.sig_version == 5 else getattr(hashlib, self.digest)
        signature = hmac.new(self.skey.encode(), "\n".join(lines).encode(), digest).hexdigest()
        return "Basic " + base64.b64encode(f"{self.ikey}:{signature}".encode()).decode()


def canon_params(params: list[tuple[str, str]]) -> str:
    """Duo's canonical query: keys and values quoted with only `A-Za-z0-9_.-~` kept, sorted, `k=v&...`."""
    return "&".join(f"{k}={v}" for k, v in sorted((quote(k, "~"), quote(v, "~")) for k, v in params))


def auth(connection: Any, session: Any) -> None:
    """Login = integration key, password = secret key; extra `sig_version` (5, default, or 2) and, for 2,
    `digest` (`sha512`, default, or `sha1`)."""
    ikey, skey = connection.login, connection.password
    if not ikey or not skey:
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' lacks its {'login' if not ikey else 'password'}",
            hint="put the Admin API application's integration key (ikey) in the login and its secret key (skey) "
            "in the password",
        )
    extra = connection.extra_dejson or {}
    version, digest = extra.get("sig_version", 5), extra.get("digest", "sha512")
    if isinstance(version, str) and version.strip() in ("2", "5"):  # typed as text in the connection form
        version = int(version)
    if version not in (2, 5) or digest not in ("sha512", "sha1"):
        raise ConfigError(
            f"Airflow connection '{connection.conn_id}' has extra sig_version {version!r} / digest {digest!r}",
            hint='set the extra to {"sig_version": 5} (Duo\'s current default) or {"sig_version": 2, "digest": "sha1"}',
        )
    session.auth = DuoSignature(ikey, skey, version, digest)


SPEC = SourceSpec(
    type="duo",
    config=DuoConfig,
    auth=auth,
    first_request=first_request,
    paginator=DuoPaging(),
    events=events,
    event_id=event_id,
    event_time=event_time,
    order=Order.OLDEST_FIRST,
    max_page_size=MAX_LIMIT,
    requests_per_minute=30,  # no numeric quota published; Duo asks for few log calls, Elastic paces at 0.5/s
    permission="the 'Grant read log' permission of the Admin API application (Duo Essentials, Advantage or Premier)",
    visible_after=lambda config: config.buffer,  # type: ignore[attr-defined]  # a DuoConfig, as first_request's
)
