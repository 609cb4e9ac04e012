"""Every failure a user can see, as a specific class that says what happened and what to do.

Messages are read in an Airflow task log at 3 a.m.: they name the source, stream and window, the HTTP
status and a short excerpt of the response body with every secret scrubbed out.
"""

from __future__ import annotations

import re

EXCERPT_CHARS = 300

# Token shapes of the APIs we talk to, scrubbed even when we do not know the literal value.
_TOKEN_PATTERNS = [
    re.compile(r"xox[a-z]-[A-Za-z0-9-]+"),  # Slack
    re.compile(r"SG\.[A-Za-z0-9_.-]{10,}"),  # SendGrid
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),  # GitHub
    re.compile(r"(?i)(bearer|ssws|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),  # JWTs (1Password)
]


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Remove known secrets and anything shaped like a token from text meant for a log or an error."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    for pattern in _TOKEN_PATTERNS:
        text = pattern.sub("***", text)
    return text


def excerpt(body: bytes | str, secrets: tuple[str, ...] = ()) -> str:
    """A short, single-line, scrubbed view of a response body."""
    if isinstance(body, bytes):
        body = body[: EXCERPT_CHARS * 4].decode("utf-8", errors="replace")
    text = " ".join(body.split())
    text = scrub(text, secrets)
    return text[:EXCERPT_CHARS] + ("..." if len(text) > EXCERPT_CHARS else "")


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
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.status is not None:
            parts.append(f"HTTP status {self.status}")
        if self.body_excerpt:
            parts.append(f"response body: {self.body_excerpt}")
        if self.hint:
            parts.append(f"What to do: {self.hint}")
        return ". ".join(parts)


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
