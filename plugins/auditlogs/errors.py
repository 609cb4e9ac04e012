"""Every failure a user can see, as a specific class that says what happened and what to do.

Messages are read in an Airflow task log at 3 a.m.: they name the source, stream and window, the HTTP
status and a short excerpt of the response body with every secret scrubbed out.
"""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from urllib.parse import quote, quote_plus

EXCERPT_CHARS = 300
#: How much of a body an excerpt reads: enough that a pretty-printed error page still shows its message.
EXCERPT_SCAN_BYTES = 64 * 1024
#: Secrets shorter than this are not scrubbed as literals (they would blank out ordinary words).
MIN_SECRET_CHARS = 4

# Token shapes of the APIs we talk to, scrubbed even when we do not know the literal value.
_TOKEN_PATTERNS = [
    re.compile(r"xox[a-z]-[A-Za-z0-9-]+"),  # Slack
    re.compile(r"SG\.[A-Za-z0-9_.-]{10,}"),  # SendGrid
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub
    re.compile(r"ya29\.[A-Za-z0-9_-]{10,}"),  # Google OAuth access tokens
    # A credential after its scheme word; it must hold a digit or be long, so prose ("token endpoint") survives.
    re.compile(
        r"(?i)\b(bearer|ssws|basic|token)\s+(?:(?=[A-Za-z._~+/=-]*\d)[A-Za-z0-9._~+/=-]{8,}|[A-Za-z0-9._~+/=-]{20,})"
    ),
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),  # JWTs (1Password)
]

#: Every credential the clients of this process were built with (register_secret), scrubbed from every output.
_REGISTERED: set[str] = set()


def secret_forms(secret: str) -> set[str]:
    """The literal forms a credential can take in a body, header or log line: as stored and trimmed, and
    the trimmed one URL-encoded and fully JSON-escaped (mixed escapes are caught by `_secret_pattern`)."""
    trimmed = secret.strip()
    escaped = "".join(f"\\u{ord(c):04x}" for c in trimmed)
    forms = {secret, trimmed, quote(trimmed, safe=""), quote_plus(trimmed), escaped}
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


def basic_credential(login: str, password: str) -> str:
    """What HTTP Basic sends for a login and password: base64 of `login:password`."""
    return base64.b64encode(f"{login}:{password}".encode()).decode()


def register_secret(secret: str | None) -> None:
    """Scrub `secret` (and its derived forms) from everything this process outputs, Airflow's own logs
    included: the client registers its credentials when it is built."""
    if not secret or len(secret.strip()) < MIN_SECRET_CHARS:
        return
    _REGISTERED.add(secret)
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # the package used without Airflow (tests of the plain classes, the sandbox)
        return
    for form in secret_forms(secret) | {repr(secret)[1:-1]}:
        mask_secret(form)


#: JSON's and Python's short escapes (a repr of a header value shows a newline as backslash-n).
_SHORT_ESCAPES = {"/": "\\/", "\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "'": "\\'", "\\": "\\\\"}


def _char_pattern(char: str) -> str:
    """One character of a secret as it may appear in text: itself, JSON-escaped (\\u0041, \\/, \\n) or
    %-encoded."""
    code = ord(char)
    options = [re.escape(char), "\\\\u" + _any_case(f"{code:04x}"), re.escape(_SHORT_ESCAPES.get(char, char))]
    if code < 128:
        options.append("%" + _any_case(f"{code:02x}"))
    if char == " ":
        options.append(r"\+")
    return "(?:" + "|".join(option for option in options if option) + ")"


def _any_case(hex_digits: str) -> str:
    return "".join(f"[{d}{d.upper()}]" if d.isalpha() else d for d in hex_digits)


@lru_cache(maxsize=256)
def _secret_pattern(secrets: frozenset[str]) -> re.Pattern | None:
    """Matches any known secret, trimmed, with any mix of plain, JSON-escaped and URL-encoded characters."""
    trimmed = sorted({s.strip() for s in secrets if len(s.strip()) >= MIN_SECRET_CHARS}, key=len, reverse=True)
    if not trimmed:
        return None
    return re.compile("|".join("".join(_char_pattern(c) for c in s) for s in trimmed))


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secrets (passed or registered, in any of their forms) and anything shaped like a token
    from text meant for a log, an error, a notification or GCS."""
    pattern = _secret_pattern(frozenset(secrets) | frozenset(_REGISTERED))
    if pattern is not None:
        text = pattern.sub("***", text)
    for token in _TOKEN_PATTERNS:
        text = token.sub("***", text)
    return text


def holds_secret(text: str, secrets: tuple[str, ...] = ()) -> bool:
    """Whether text carries a known secret (passed or registered) in any of the forms `scrub` removes."""
    pattern = _secret_pattern(frozenset(secrets) | frozenset(_REGISTERED))
    return pattern is not None and pattern.search(text) is not None


def excerpt(body: bytes | bytearray | str, secrets: tuple[str, ...] = ()) -> str:
    """A short, single-line, scrubbed view of a response body: scrubbed before it is cut, so that no cut
    can leave part of a secret readable."""
    cut = len(body) > EXCERPT_SCAN_BYTES
    text = body[:EXCERPT_SCAN_BYTES]
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8", errors="replace")
    words = text.split()
    if cut and words:
        words.pop()  # may be the first part of a secret that the scan cut through
    text = scrub(" ".join(words), secrets)
    return text[:EXCERPT_CHARS] + ("..." if len(text) > EXCERPT_CHARS or cut else "")


class AuditLogError(Exception):
    """Base class: `what` happened, `where` (source/stream/window), optional status and body, `hint`.

    `retryable` says whether a task retry can help; the task's retry policy (operators/retry.py) reads it.
    """

    hint = ""
    retryable = True

    def __init__(
        self,
        what: str,
        *,
        where: str = "",
        status: int | None = None,
        body_excerpt: str | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
    ):
        self.what = what
        self.where = where
        self.status = status
        self.body_excerpt = body_excerpt
        if hint is not None:
            self.hint = hint
        if retryable is not None:
            self.retryable = retryable
        super().__init__(self._message())

    def add_note_to_what(self, note: str) -> AuditLogError:
        """Extends `what` (such as how many attempts were made) and the message with it."""
        self.what = f"{self.what} {note}"
        self.args = (self._message(),)
        return self

    def _message(self) -> str:
        """Scrubbed as a whole: no part of an error (what, where, excerpt, hint) can carry a credential."""
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.status is not None:
            parts.append(f"HTTP status {self.status}")
        if self.body_excerpt:
            parts.append(f"response body: {self.body_excerpt}")
        if self.hint:
            parts.append(f"What to do: {self.hint}")
        return scrub(". ".join(parts))


class ConfigError(AuditLogError):
    """The YAML config is unreadable or a source's entry is invalid."""

    hint = "fix the config file; the other sources keep running"
    retryable = False


class AuthError(AuditLogError):
    """401/403 that is not a rate limit: the credential is wrong, revoked or lacks a scope. Never retried."""

    retryable = False


class RequestRejectedError(AuditLogError):
    """A 4xx other than auth and rate limits: the request itself is wrong (config or a bug). Never retried."""

    hint = "check the source's config (window, filters, page size); retrying the same request will not help"
    retryable = False
    #: The API's JSON error body, parsed (None if it was not JSON): for paging strategies that must tell a
    #: cursor the API invalidated (Dropbox's `reset`) from a wrong request. Never part of the message.
    body: object = None


class RateLimitedError(AuditLogError):
    """The API kept answering 429 past the retry budget; `reset_after` is the server's last wait hint."""

    hint = "the task retries after the API's reset; lower the source's requests_per_minute or pool if this repeats"

    def __init__(self, what: str, *, reset_after: float | None = None, **kwargs):
        self.reset_after = reset_after
        super().__init__(what, **kwargs)


class TransientError(AuditLogError):
    """5xx, timeouts and broken connections past the retry budget."""

    hint = "the task retries with backoff; check the API's status page if this repeats"


class MalformedResponseError(AuditLogError):
    """A 2xx response we cannot trust: not JSON, not the documented shape, or an event with a bad field."""

    hint = "the task retries; if it repeats the API changed or is failing, report it with this excerpt"


class MalformedEventError(MalformedResponseError):
    """A well-formed page holding an event without its time field, or with a time that does not parse.

    The same page gives the same answer, so retrying does not help: the task fails at once and nothing is
    written (the event is never dropped silently)."""

    hint = "the API's event format differs from the documented one; report it with this excerpt, nothing was written"
    retryable = False


class IncompleteWindowError(AuditLogError):
    """The API cannot show the whole window (a snapshot API asked about the past): never written as complete."""

    retryable = False


class ShrinkingRerunError(AuditLogError):
    """A rerun found fewer events than the interval's existing manifest recorded: the data may have aged out
    of the API's retention, or the API answered empty pages during an outage. The existing output is kept."""

    hint = (
        "the interval's existing objects were kept unchanged; if the smaller result is intended (events really "
        "deleted upstream), set allow_shrink: true on the source for this rerun"
    )
    retryable = False


class PaginationError(AuditLogError):
    """The API's paging went wrong (a cursor repeated, no progress, a foreign next URL, too many pages):
    never loop, never stop short. Retryable unless the error says otherwise (a page cap or a foreign host)."""

    hint = "the interval was not written; report the excerpt, the run is safe to retry"


class OutsideRetentionError(AuditLogError):
    """The window reaches back past what the API still keeps: collecting would write an empty "complete"
    interval. Never retried."""

    retryable = False


class RedirectError(AuditLogError):
    """The API answered with a redirect: never followed, so the credential goes to the configured host only."""

    retryable = False


class CertificateError(AuditLogError):
    """The API's TLS certificate did not verify against the trusted CAs: a TLS-inspecting gateway or a private
    CA needs the connection's `verify` extra. The same handshake fails the same way: never retried."""

    retryable = False


class ResponseTooLargeError(AuditLogError):
    """An answer past the size caps (on the wire, decompressed, or a decompression bomb): reading stopped
    before it could exhaust the task's memory. The same request gives the same answer: never retried."""

    retryable = False
