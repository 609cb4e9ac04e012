"""One HTTP client for every source: deadlines, size caps, bounded retries of the same page, rate-limit waits,
scrubbing.

The client retries what a retry can fix (429, 5xx, broken connections, unreadable bodies) a bounded number
of times with a bounded total wait, then raises so that Airflow's task retries take over. Credentials live
in session headers only, never in URLs, and every error is scrubbed (errors.scrub), `requests`' own
exceptions included. A request has a total deadline (the whole body within the request timeout, however
slowly it drips) and its body is capped on the wire and decompressed, so no answer can hang a task or
exhaust its memory.
"""

from __future__ import annotations

import email.utils
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urljoin, urlsplit

import orjson
import requests
import urllib3

from auditlogs import exact_json
from auditlogs.client.ratelimit import RateBudget, TokenBucket
from auditlogs.errors import (
    AuditLogError,
    AuthError,
    CertificateError,
    MalformedResponseError,
    PaginationError,
    RateLimitedError,
    RedirectError,
    RequestRejectedError,
    ResponseTooLargeError,
    TransientError,
    excerpt,
    scrub,
)

log = logging.getLogger(__name__)

_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
#: Bytes read from the socket at a time: large, so that the deadline and caps cost no throughput.
READ_CHUNK = 1024 * 1024
#: A body that decompresses to more than this many times its size on the wire is a decompression bomb.
MAX_COMPRESSION_RATIO = 100
DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024**2
DEFAULT_MAX_COMPRESSED_RESPONSE_BYTES = 64 * 1024**2


#: Decides whether a non-429 response is a rate limit (GitHub answers 403 for both limits and permissions).
RateLimitTest = Callable[[int, Any, bytes | bytearray], bool]
#: For APIs whose documentation or rate-limit body asks for a longer wait than their headers (GitHub's secondary
#: limits: "wait a few minutes", at least a minute): the least seconds to wait, or None.
RateLimitFloor = Callable[[int, Any, bytes | bytearray], "float | None"]
#: For APIs whose refusal can mean something other than a wrong credential (Graph's licence refusal): the
#: (what, hint) a user should read instead, or None.
RefusalTest = Callable[[int, bytes | bytearray], "tuple[str, str] | None"]


class _Retryable(Exception):
    def __init__(self, error: AuditLogError, delay: float):
        self.error, self.delay = error, delay


class _DeadlinePassed(Exception):
    """The whole answer did not arrive within the request timeout."""


@dataclass(frozen=True)
class ApiRequest:
    method: str
    #: A path below the connection's base URL, or an absolute URL the API handed us (next links).
    url: str
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: Any
    body: Any
    size: int


@dataclass
class RetryBudget:
    """How hard one page is retried inside a task before the task fails and Airflow retries it."""

    max_attempts: int = 5
    max_total_wait: float = 600.0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    #: Server-requested waits are floored (Retry-After: 0 must not cause a burst) and capped.
    min_rate_limit_wait: float = 1.0
    max_rate_limit_wait: float = 300.0

    def most_requests(self) -> int:
        """The most requests one page can send (for the task's execution_timeout): the first, and one after
        each wait: `max_attempts - 1` after failures, and after rate limits as many as their ever longer
        waits (`send`: doubling from `min_rate_limit_wait`) fit in `max_total_wait`, plus one that waits
        what is left of it."""
        limited, waited, wait = 0, 0.0, self.min_rate_limit_wait
        while waited + wait <= self.max_total_wait:
            limited, waited, wait = limited + 1, waited + wait, min(2 * wait, self.max_rate_limit_wait)
        return self.max_attempts + limited + 1


@dataclass(frozen=True)
class ResponseLimits:
    """Caps on one response body, with the config keys that set them (named in the error)."""

    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    max_compressed_bytes: int = DEFAULT_MAX_COMPRESSED_RESPONSE_BYTES


@dataclass
class ClientStats:
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    transient_failures: int = 0
    bytes_received: int = 0
    waited_seconds: float = 0.0
    connections: set = field(default_factory=set, repr=False)


def base_url_of(connection: Any, default: str | None = None) -> str:
    """The API base URL from an Airflow connection: host as given, or schema://host:port; else `default`."""
    host = (connection.host or "").strip() or (default or "")
    if not host:
        raise ValueError(f"connection '{connection.conn_id}' has no host: set it to the API base URL")
    if "://" not in host:
        scheme = connection.schema or "https"
        host = f"{scheme}://{host}"
        if connection.port:
            host = f"{host}:{connection.port}"
    return host.rstrip("/") + "/"


class ApiClient:
    def __init__(
        self,
        *,
        base_url: str,
        session: requests.Session,
        timeout: float,
        where: str,
        conn_id: str,
        permission: str,
        secrets: tuple[str, ...],
        budget: RetryBudget | None = None,
        sleep: Callable[[float], None] = time.sleep,
        is_rate_limited: RateLimitTest | None = None,
        rate: TokenBucket | RateBudget | None = None,
        limits: ResponseLimits | None = None,
        refusal: RefusalTest | None = None,
        rate_limit_floor: RateLimitFloor | None = None,
    ):
        self.base_url = base_url
        self.session = session
        self.timeout = timeout
        self.where = where
        self.conn_id = conn_id
        self.permission = permission
        self.secrets = secrets
        self.budget = budget or RetryBudget()
        self.sleep = sleep
        self.is_rate_limited = is_rate_limited
        #: The task's share of the source's request budget; every attempt, retries included, takes a token.
        self.rate = rate
        self.limits = limits or ResponseLimits()
        self.refusal = refusal
        self.rate_limit_floor = rate_limit_floor
        self.stats = ClientStats()
        self._origin = urlsplit(base_url)[:2]
        #: Seconds to wait before the next request: the API said its quota is used up until its reset.
        self._quota_wait = 0.0

    def resolve(self, url: str) -> str:
        """Join a path to the base URL; refuse an absolute URL on another scheme or host (the token would follow)."""
        absolute = urljoin(self.base_url, url.lstrip("/")) if "://" not in url else url
        if urlsplit(absolute)[:2] != self._origin:
            raise PaginationError(
                f"the API sent a next-page URL on another host or scheme ({urlsplit(absolute).scheme}://"
                f"{urlsplit(absolute).netloc}); refusing to send the credential there",
                where=self.where,
                hint="check the connection's host; if the API really moved, point the connection at the new host",
                retryable=False,
            )
        return absolute

    def send(self, request: ApiRequest) -> ApiResponse:
        """The page's answer. A rate limit is the API pacing us: rate-limited answers slow the task's pace
        and wait ever longer (the server's wait, or the source's documented one, as the least) for as long
        as `page_max_wait` allows, without using up the page's attempts; 5xx, resets and bad bodies get
        `page_attempts` attempts in all."""
        url = self.resolve(request.url)
        waited = 0.0
        if self._quota_wait:
            log.info(
                "%s: the API's rate-limit quota is used up; waiting %.1fs for its reset", self.where, self._quota_wait
            )
            self.sleep(self._quota_wait)
            self.stats.waited_seconds += self._quota_wait
            self._quota_wait = 0.0
        failures = limited = sent = 0
        while True:
            sent += 1
            try:
                response = self._attempt(request, url, failures + 1)
            except _Retryable as retryable:
                failure, delay = retryable.error, retryable.delay
            else:
                if self.rate is not None and hasattr(self.rate, "recover"):
                    self.rate.recover()
                return response
            if isinstance(failure, RateLimitedError):
                limited += 1
                throttled = self._throttled_wait(delay, limited, waited)
                if limited > 1 and self.rate is not None and hasattr(self.rate, "slow_down"):
                    self.rate.slow_down()  # asked again right after waiting: our pace is too fast for the API
                last, delay = throttled is None, throttled or 0.0
                what = f"{limited} rate-limited answers in a row, {failures} other failures"
            else:
                failures += 1
                last = failures == self.budget.max_attempts or waited + delay > self.budget.max_total_wait
                what = f"attempt {failures} of {self.budget.max_attempts}"
            if last:
                raise failure.add_note_to_what(
                    f"(gave up on this page after {sent} attempts and {waited:.0f}s of waits"
                    + (f", {limited} of them rate-limited; page_max_wait is spent)" if limited else ")")
                )
            log.warning("%s: %s; retrying the same page in %.1fs (%s)", self.where, failure.what, delay, what)
            self.sleep(delay)
            waited += delay
            self.stats.retries += 1
            self.stats.waited_seconds += delay
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _throttled_wait(self, asked: float, limited: int, waited: float) -> float | None:
        """The wait after the `limited`-th rate-limited answer in a row: what the server (or the source's
        documentation) asked, doubling from the floor with every further one, capped; the rest of
        `page_max_wait` if that is shorter but still covers what was asked; None when it does not."""
        budget = self.budget
        escalated = min(budget.min_rate_limit_wait * 2 ** (limited - 1), budget.max_rate_limit_wait)
        delay = max(asked, escalated)
        remaining = budget.max_total_wait - waited
        if delay <= remaining:
            return delay
        return remaining if remaining >= asked else None

    def _attempt(self, request: ApiRequest, url: str, attempt: int) -> ApiResponse:
        """One request: the response, or _Retryable with the error to raise once the budget is spent."""
        if self.rate is not None:
            self.stats.waited_seconds += self.rate.acquire()
        self.stats.requests += 1
        deadline = time.monotonic() + self.timeout
        refused: str | None = None
        untrusted = False
        try:
            response = self.session.request(
                request.method,
                url,
                params=request.params,
                json=request.json,
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
            content = self._read_body(response, deadline)
        except (TransientError, MalformedResponseError) as exc:
            # The session's token exchange failed (a 5xx or a truncated answer of the token endpoint): retried
            # like the page it was for, not left to cost a whole task try per hit. A redirect will not change.
            if exc.status is not None and 300 <= exc.status < 400:
                raise
            self.stats.transient_failures += 1
            raise _Retryable(exc, self._backoff(attempt)) from None
        except (_DeadlinePassed, OSError, urllib3.exceptions.HTTPError) as exc:  # requests' errors are OSErrors
            if isinstance(exc, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
                untrusted = True
            elif isinstance(exc, requests.RequestException) and not isinstance(exc, _NETWORK_ERRORS):
                refused = f"{type(exc).__name__}: {scrub(str(exc), self.secrets)}"
            else:
                self.stats.transient_failures += 1
                raise _Retryable(
                    TransientError(
                        f"network error ({type(exc).__name__}): no complete answer within the request timeout of "
                        f"{self.timeout:g}s (request_timeout), or the connection broke",
                        where=self.where,
                    ),
                    self._backoff(attempt),
                ) from None
        if untrusted:
            raise CertificateError(
                f"the TLS certificate of {self._origin[0]}://{self._origin[1]} (or of the proxy in between) did not "
                "verify against the trusted certificate authorities",
                where=self.where,
                hint=f"if a TLS-inspecting gateway or a private CA signs it, set the extra 'verify' of Airflow "
                f"connection '{self.conn_id}' to the path of that CA's PEM bundle (README: Proxies and CA bundles)",
            )
        if refused is not None:  # raised outside the except block: the original exception carries the secret
            raise RequestRejectedError(
                f"the HTTP library refused to send the request ({refused})",
                where=self.where,
                hint=f"check the credential and host in Airflow connection '{self.conn_id}' for characters a "
                "header or URL cannot carry (a pasted newline or quote); retrying will not help",
            )

        status = response.status_code
        self.stats.bytes_received += len(content)
        if 200 <= status < 300:
            try:
                body = exact_json.loads(content)
            except orjson.JSONDecodeError:
                error = MalformedResponseError(
                    "the API answered success with a body that is not JSON (truncated or an error page)",
                    where=self.where,
                    status=status,
                    body_excerpt=excerpt(content, self.secrets),
                )
                raise _Retryable(error, self._backoff(attempt)) from None
            self._quota_wait = self._quota_exhausted_wait(response.headers)
            return ApiResponse(status, response.headers, body, len(content))
        body_excerpt = excerpt(content, self.secrets)
        if 300 <= status < 400:
            raise RedirectError(
                f"the API answered with a redirect (HTTP {status}) to {self._redirect_target(response, url)}; "
                "redirects are never followed, so that the credential is sent to the connection's host only",
                where=self.where,
                status=status,
                hint=f"if the API really moved, set the host of Airflow connection '{self.conn_id}' to where it "
                "points now; if it should not redirect, check for a proxy or captive portal in between",
            )
        if status == 429 or (self.is_rate_limited and self.is_rate_limited(status, response.headers, content)):
            self.stats.rate_limited += 1
            wait = self._rate_limit_wait(response.headers, attempt)
            documented = self.rate_limit_floor(status, response.headers, content) if self.rate_limit_floor else None
            wait = max(wait, documented or 0.0)
            raise _Retryable(
                RateLimitedError(
                    f"the API kept rate-limiting (HTTP {status}); its last answer asked to wait {wait:.0f}s",
                    reset_after=wait,
                    where=self.where,
                    status=status,
                    body_excerpt=body_excerpt,
                ),
                wait,
            )
        refusal = self.refusal(status, content) if self.refusal else None
        if refusal:
            raise AuthError(refusal[0], where=self.where, status=status, body_excerpt=body_excerpt, hint=refusal[1])
        if status in (401, 403):
            raise AuthError(
                "the API refused the credential",
                where=self.where,
                status=status,
                body_excerpt=body_excerpt,
                hint=(
                    f"fix the token in Airflow connection '{self.conn_id}' (it is wrong, revoked or lacks "
                    f"{self.permission}); the task is not retried so that the account is not locked"
                ),
            )
        if status >= 500 or status == 408:
            self.stats.transient_failures += 1
            raise _Retryable(
                TransientError("the API failed", where=self.where, status=status, body_excerpt=body_excerpt),
                self._backoff(attempt),
            )
        rejected = RequestRejectedError(
            "the API rejected the request", where=self.where, status=status, body_excerpt=body_excerpt
        )
        try:
            rejected.body = exact_json.loads(content)
        except orjson.JSONDecodeError:
            pass  # a plain-text error (Dropbox's 400s, Zendesk's 429s): only the excerpt says what it was
        raise rejected

    def _read_body(self, response: requests.Response, deadline: float) -> bytearray:
        """The whole body before `deadline`, decompressed, within the size caps; the connection is kept
        for the next request only when the body was read to its end."""
        raw = response.raw
        body = bytearray()
        try:
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _DeadlinePassed()
                if raw.connection is not None and raw.connection.sock is not None:
                    raw.connection.sock.settimeout(remaining)  # no single read may outlast the deadline
                chunk = raw.read1(READ_CHUNK, decode_content=True)
                if not chunk:
                    break
                body += chunk
                self._check_size(len(body), raw.tell())
        except BaseException:
            response.close()
            raise
        raw.release_conn()
        return body

    def _check_size(self, size: int, wire: int) -> None:
        limits = self.limits
        for grown, cap, key, what in (
            (wire, limits.max_compressed_bytes, "max_compressed_response_bytes", "bytes on the wire"),
            (size, limits.max_bytes, "max_response_bytes", "bytes"),
        ):
            if grown > cap:
                raise ResponseTooLargeError(
                    f"the API's answer grew to more than {grown:,} {what}, past the cap of {cap:,} bytes ({key}); "
                    "stopped reading it",
                    where=self.where,
                    hint=f"lower the source's page size, or raise '{key}' if such pages are genuine; retrying the "
                    "same request will not help",
                )
        if size > READ_CHUNK and size > MAX_COMPRESSION_RATIO * max(wire, 1):
            raise ResponseTooLargeError(
                f"the API's answer decompressed to {size:,} bytes from {wire:,} on the wire, more than "
                f"{MAX_COMPRESSION_RATIO} times: a decompression bomb; stopped reading it",
                where=self.where,
                hint="no genuine page compresses that well; if the API's does, lower the source's page size and "
                "report it",
            )

    def _redirect_target(self, response: requests.Response, url: str) -> str:
        """Where a redirect pointed, scheme://host/path only (no query) and scrubbed."""
        location = urlsplit(urljoin(url, response.headers.get("Location") or ""))
        if not location.netloc:
            return "no Location"
        return scrub(f"{location.scheme}://{location.netloc}{location.path}", self.secrets)[:200]

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.budget.backoff_cap, self.budget.backoff_base * 2 ** (attempt - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _rate_limit_wait(self, headers: Any, attempt: int) -> float:
        """Retry-After (seconds or an HTTP date) or a rate-limit reset header (RESET_HEADERS), floored, capped and
        jittered; a Retry-After that says no readable time falls back to the backoff, with a warning."""
        value = headers.get("Retry-After")
        wait = _retry_after(value)
        if value is not None and wait is None:
            log.warning(
                "%s: the API's Retry-After %r is neither seconds nor an HTTP date; waiting with backoff instead",
                self.where,
                scrub(value, self.secrets)[:60],
            )
        if wait is None:
            wait = _reset_in(headers)
        if wait is None:
            wait = self._backoff(attempt)
        wait = min(max(wait, self.budget.min_rate_limit_wait), self.budget.max_rate_limit_wait)
        return wait + random.uniform(0, 0.1 * wait)

    def _quota_exhausted_wait(self, headers: Any) -> float:
        """After a success that used the last request of the quota (remaining 0), the wait until its reset,
        capped; asking earlier would only earn a rate-limit answer."""
        remaining = next((value for name in REMAINING_HEADERS if (value := headers.get(name)) is not None), None)
        if remaining is None or remaining.strip() != "0":
            return 0.0
        wait = _reset_in(headers)
        if wait is None:
            return self.budget.min_rate_limit_wait
        if wait <= 0:
            return 0.0
        return min(max(wait, self.budget.min_rate_limit_wait), self.budget.max_rate_limit_wait)


#: Where APIs say how many requests are left in the current rate-limit window: GitLab and the IETF draft
#: (`RateLimit-*`, PagerDuty's lower-case too), GitHub and SendGrid (`X-RateLimit-*`), Okta (`X-Rate-Limit-*`).
REMAINING_HEADERS = ("RateLimit-Remaining", "X-RateLimit-Remaining", "X-Rate-Limit-Remaining")
#: ... and when that window resets: a number (Unix time, or seconds from now when below EPOCH_FLOOR: the IETF
#: draft's and PagerDuty's reading), or a date: Atlassian's `X-Ratelimit-Reset` is an ISO time to the minute
#: (`2026-03-01T10:05+0000`), GitLab's `RateLimit-ResetTime` an HTTP date.
RESET_HEADERS = ("RateLimit-Reset", "X-RateLimit-Reset", "X-Rate-Limit-Reset", "RateLimit-ResetTime")
EPOCH_FLOOR = 1_000_000_000


def _reset_in(headers: Any) -> float | None:
    """Seconds until the rate-limit window resets, from the first reset header the API sent that reads."""
    for name in RESET_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        value = value.strip()
        if value.isdigit():
            number = int(value)
            return number - time.time() if number >= EPOCH_FLOOR else float(number)
        seconds = _retry_after(value)
        if seconds is not None:
            return seconds
    return None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; None when it is missing or unreadable (`soon`, `nan`, `inf`, `-5`)."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:  # an HTTP date, or an ISO 8601 instant as Zoom sends ("2020-05-31T00:00:00Z")
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                return None
        if parsed.tzinfo is None:  # "-0000": UTC, as RFC 5322 says
            parsed = parsed.replace(tzinfo=timezone.utc)
        seconds = max(0.0, parsed.timestamp() - time.time())
    return seconds if math.isfinite(seconds) and seconds >= 0 else None
