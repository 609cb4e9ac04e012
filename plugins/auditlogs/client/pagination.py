"""The one paging loop of the project, and the paging strategies sources choose from.

A strategy only reads where the next page is (`next_request`). The loop guards every API alike: a cursor
or next URL seen twice, a run of pages that still say there is more but bring no new event (no progress),
or more pages than the cap fails the task instead of looping or stopping short. A next URL on another host or scheme is
refused by the client (`ApiClient.resolve`) before any request is sent. A strategy may also say that a refused
continuation means "start the query again" (`restart`, Dropbox's `reset`): the loop then pages the window again
from its first request, a bounded number of times, and the collector drops what it already has.
"""

from __future__ import annotations

import gc
import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from requests.utils import parse_header_links

from auditlogs.client.api import ApiClient, ApiRequest, ApiResponse
from auditlogs.errors import MalformedResponseError, PaginationError, RequestRejectedError, excerpt

log = logging.getLogger(__name__)

DEFAULT_MAX_PAGES = 100_000
#: Consecutive pages without a new event that still point to a next page before paging counts as making no
#: progress. Some APIs legitimately answer a few empty pages mid-window (Google's Reports API does); none
#: answers dozens, and none repeats the same events behind a fresh cursor.
MAX_PAGES_WITHOUT_PROGRESS = 20
#: Times one window's paging may start over because the API invalidated its cursor (Dropbox's `reset`,
#: "in rare cases"): more than this is an API that cannot finish the window, not bad luck.
MAX_RESTARTS = 3


class Paginator(Protocol):
    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        """The request for the page after `response`, or None when the API says there is none."""


class BadPage(ValueError):
    """A page whose paging fields are missing or of the wrong type: the loop reports it as malformed."""


def _dig(body: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(body, dict):
            return None
        body = body.get(key)
    return body


def _events_in(body: Any, path: tuple[str, ...]) -> list:
    """The page's events, for strategies that end on the first page without any (never on a short one)."""
    events = _dig(body, path)
    if not isinstance(events, list):
        raise BadPage(f"page has no '{'.'.join(path)}' list")
    return events


@dataclass(frozen=True)
class BodyCursor:
    """A cursor in the body, sent back as a query parameter with the first request's filters re-sent
    (the server does not remember them). An empty or missing cursor ends paging."""

    cursor_path: tuple[str, ...]
    cursor_param: str

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        cursor = _dig(response.body, self.cursor_path)
        if not cursor:
            return None
        return replace(previous, params={**(previous.params or {}), self.cursor_param: cursor})


@dataclass(frozen=True)
class FlaggedCursor:
    """A boolean "more" flag and a cursor in the body, the cursor sent back as a query parameter with the
    first request's filters re-sent (Zendesk's `meta.has_more` and `meta.after_cursor`). The flag, never the
    cursor's presence, ends paging; "more" without a cursor is a malformed page, not the end."""

    more_path: tuple[str, ...]
    cursor_path: tuple[str, ...]
    cursor_param: str

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        more = _dig(response.body, self.more_path)
        if not isinstance(more, bool):
            raise BadPage(f"page has no boolean '{'.'.join(self.more_path)}'")
        if not more:
            return None
        cursor = _dig(response.body, self.cursor_path)
        if not isinstance(cursor, str) or not cursor:
            raise BadPage(f"page says {'.'.join(self.more_path)}=true but has no '{'.'.join(self.cursor_path)}'")
        return replace(previous, params={**(previous.params or {}), self.cursor_param: cursor})


@dataclass(frozen=True)
class PageNumber:
    """Numbered pages (`page=1, 2, ...`) with the filters re-sent, until a page without events (Cloudflare's
    v1 audit logs): never stopped by a short page, which some APIs send mid-stream."""

    page_param: str
    events_path: tuple[str, ...]

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        if not _events_in(response.body, self.events_path):
            return None
        page = int((previous.params or {}).get(self.page_param, 1))
        return replace(previous, params={**(previous.params or {}), self.page_param: page + 1})


@dataclass(frozen=True)
class LinkHeaderNext:
    """The next page is the Link header's rel="next" URL, followed as given: it carries the filters and
    the API's cursor. No rel="next" ends paging (GitHub, Okta bounded requests)."""

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        links = parse_header_links(response.headers.get("Link") or "")
        url = next((link.get("url") for link in links if "next" in link.get("rel", "").split()), None)
        return ApiRequest("GET", url) if url else None


@dataclass(frozen=True)
class PositionUntilEmpty:
    """A stream position in the body, sent back as a query parameter with the first request's filters
    re-sent, until a page brings no events (Box): a page shorter than the limit does not mean the end, and
    the last answer repeats the position. The position is opaque and exact: a string as given, an integer
    (beyond 2**53) as its digits, never a float."""

    position_path: tuple[str, ...]
    position_param: str
    events_path: tuple[str, ...]

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        if not _events_in(response.body, self.events_path):
            return None
        position = _dig(response.body, self.position_path)
        name = ".".join(self.position_path)
        if isinstance(position, bool) or not isinstance(position, (str, int)) or position == "":
            raise BadPage(
                f"page has events but its '{name}' is {excerpt(repr(position))}, not a string or an "
                "exact integer to continue from"
            )
        return replace(previous, params={**(previous.params or {}), self.position_param: str(position)})


@dataclass(frozen=True)
class PostedCursor:
    """A JSON body `{"cursor": ...}` POSTed back while `has_more` is true (1Password, Dropbox). The first
    request is the API's reset cursor or its query. A cursor also comes back on the last page (it is the
    tail position for later polls), so `has_more`, never the cursor's presence, ends paging."""

    cursor_field: str = "cursor"
    more_field: str = "has_more"
    #: Where the cursor is posted when not to the first request's URL (Dropbox's `.../get_events/continue`).
    continue_url: str | None = None
    #: `(status, JSON error body)` of a refused continuation -> True when the API invalidated the cursor and
    #: the query is to start again (Dropbox's 409 `reset`).
    restart_when: Callable[[int | None, Any], bool] | None = None

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        more = _dig(response.body, (self.more_field,))
        if not isinstance(more, bool):
            raise BadPage(f"page has no boolean '{self.more_field}'")
        if not more:
            return None
        cursor = _dig(response.body, (self.cursor_field,))
        if not isinstance(cursor, str) or not cursor:
            raise BadPage(f"page says {self.more_field}=true but has no '{self.cursor_field}'")
        return replace(previous, url=self.continue_url or previous.url, json={self.cursor_field: cursor})

    def restart(self, first: ApiRequest, refused: RequestRejectedError) -> ApiRequest | None:
        """The request to page the window again with, or None: the refusal stands."""
        if self.restart_when is not None and self.restart_when(refused.status, refused.body):
            return first
        return None


@dataclass(frozen=True)
class BodyNextUrl:
    """An absolute next-page URL in the body that already carries every parameter (filters, page size, page
    token): followed verbatim, nothing added. A null, empty or missing URL ends paging. The client refuses
    a URL on another host, so the credential never follows it elsewhere."""

    url_path: tuple[str, ...]

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        url = _dig(response.body, self.url_path)
        if not url:
            return None
        if not isinstance(url, str):
            raise BadPage(f"the API's next-page URL ('{'.'.join(self.url_path)}') is {url!r}, not a URL")
        return ApiRequest(previous.method, url)


@dataclass(frozen=True)
class HeaderNextUrl:
    """An absolute next-page URL in a response header (O365's `NextPageUri`), followed verbatim: it carries
    the filters and the API's page id. Header names are case-insensitive; no header ends paging."""

    header: str

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        url = (response.headers.get(self.header) or "").strip()
        return ApiRequest(previous.method, url) if url else None


@dataclass(frozen=True)
class SinglePage:
    """An API without paging: the first answer is the whole answer."""

    def next_request(self, previous: ApiRequest, response: ApiResponse) -> ApiRequest | None:
        return None


@dataclass
class PagingState:
    """What the loop's guards know of one window (or piece) so far: the digests of the positions sent, in
    order, the pages and the pages in a row without progress. A resumed try starts from a saved one."""

    sent: list[bytes] = field(default_factory=list)
    pages: int = 0
    stalled: int = 0
    #: The request of the page being handled (its digest is the last sent): a consumer can read the request
    #: after the page from it before the loop does. Not saved: a saved position names its next request.
    current: ApiRequest | None = None

    def to_json(self, positions: int | None = None) -> dict:
        return {
            "sent": [digest.hex() for digest in self.sent[:positions]],
            "pages": self.pages,
            "stalled": self.stalled,
        }

    @classmethod
    def from_json(cls, data: dict) -> PagingState:
        sent = [bytes.fromhex(digest) for digest in data["sent"]]
        if any(len(digest) != 16 for digest in sent):
            raise ValueError("a position digest is not 16 bytes")
        return cls(sent, int(data["pages"]), int(data["stalled"]))


def paginate(
    client: ApiClient,
    paginator: Paginator,
    first: ApiRequest,
    max_pages: int,
    new_events: Callable[[], int],
    state: PagingState | None = None,
    between_pages: Callable[[ApiRequest | None, PagingState], None] | None = None,
) -> Iterator[ApiResponse]:
    """Every page of one window, in the API's order.

    `new_events()` is the consumer's count of events not seen before in this window; it is read after the
    consumer has handled a page, so a page that leaves it unchanged (empty, repeats, outside the window)
    made no progress. Positions already sent are kept as fixed-size digests, so memory does not grow with
    the pages or with the size of a cursor. `between_pages(next request or None, state)` is called once a
    page is handled and its successor known, before that is sent: the moment a try's work can be kept."""
    state = state or PagingState()
    seen: set[bytes] = set(state.sent)
    request: ApiRequest | None = first
    restarts = 0
    #: Pages of the current pass (since the first request or a restart), and how many of the next pass
    #: re-read what an invalidated pass had already brought, so they are not taken for a lack of progress.
    in_pass = replaying = 0
    restart = getattr(paginator, "restart", None)
    while request is not None:
        pages = state.pages
        signature = hashlib.blake2b(
            repr((request.url, sorted((request.params or {}).items()), request.json)).encode(), digest_size=16
        ).digest()
        if signature in seen:
            raise PaginationError(
                f"the API sent the same next-page position twice after {pages} pages "
                f"({excerpt(_position(request), client.secrets)}); stopping instead of looping",
                where=client.where,
            )
        seen.add(signature)
        state.sent.append(signature)
        state.current = request
        if pages >= max_pages:
            raise PaginationError(
                f"more than {max_pages} pages in one window; stopping instead of running away",
                where=client.where,
                hint="raise the source's max_pages if the window really is that large, or shorten the schedule",
                retryable=False,
            )
        with _gc_paused():
            try:
                response = client.send(request)
            except RequestRejectedError as refused:
                again = restart(first, refused) if restart is not None and request is not first else None
                if again is None:
                    raise
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise PaginationError(
                        f"the API invalidated the window's cursor {restarts} times (page {pages}); stopping instead "
                        "of starting the window over again",
                        where=client.where,
                        status=refused.status,
                        body_excerpt=refused.body_excerpt,
                    ) from None
                log.warning(
                    "%s: the API invalidated the cursor after %d pages of this pass (HTTP %s); paging the "
                    "window again from its start, repeats are dropped",
                    client.where,
                    in_pass,
                    refused.status,
                )
                seen.clear()
                state.sent.clear()
                request, replaying, in_pass = again, in_pass, 0
                continue
            state.pages = pages = pages + 1
            in_pass += 1
            before = new_events()
            yield response
            try:
                request = paginator.next_request(request, response)
            except BadPage as exc:
                raise MalformedResponseError(str(exc), where=client.where, status=response.status) from None
            except PaginationError as exc:  # a strategy that sees the API cannot be paged (Duo's full second)
                if not exc.where:
                    exc.where = client.where
                    exc.args = (exc._message(),)
                raise
            if replaying:
                replaying -= 1
            else:
                state.stalled = state.stalled + 1 if new_events() == before and request is not None else 0
            stalled = state.stalled
            if stalled >= MAX_PAGES_WITHOUT_PROGRESS:
                raise PaginationError(
                    f"the API answered {stalled} pages in a row that each said there is more but brought no new "
                    f"event (empty, repeated or outside the window; page {pages}); stopping instead of paging "
                    "without progress",
                    where=client.where,
                    status=response.status,
                    body_excerpt=excerpt(repr(response.body), client.secrets),
                )
            del response  # hold one page at a time, not two, while the next one is fetched
        if between_pages is not None:
            between_pages(request, state)


def _position(request: ApiRequest) -> str:
    """The repeated position as a user can recognise it (the URL, cursor parameters or posted cursor)."""
    return f"{request.method} {request.url} params={request.params or {}} json={request.json or {}}"


@contextmanager
def _gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off for the life of one page (parse, the consumer's pass, release).

    A parsed page is hundreds of thousands of fresh containers that cannot be cyclic garbage, yet they wake
    the collector hundreds of times, and each pass walks them and the task process's heap again: measured,
    that was 45% of a task's CPU per event (BENCHMARKS.md). Resumed after every page, so the rare cycles
    the HTTP stack leaves are still collected and memory stays flat."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
