"""GitHub audit log (https://api.github.com, or GHES under /api/v3): enterprise and organization paths.

Behaviours a collector must cope with: `created:` bounds inside `phrase` with whole seconds only (a
fraction is a 422), events in epoch milliseconds, `include` web (default) / git / all with Git events
kept 7 days, `order` desc by default, `per_page` default 30 and clamped to 100, opaque `after` cursors in
an absolute Link rel="next" (none on the last page), `x-ratelimit-*` on every answer and a 403 with
remaining 0 when the quota is spent, `{"message", "documentation_url"}` errors.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

import orjson

from sandbox.events import Event
from sandbox.vendor import (
    PLACES,
    USER_AGENTS,
    People,
    TokenApi,
    base64url_id,
    decode_token,
    encode_token,
    ip,
    millis,
    part_of,
    scan_ms,
    take_page,
)
from sandbox.web import Request, Response, Route, json_response

NAME = "github"
ENTERPRISE = "northwind-ent"
ORG = "northwind"
#: GitHub Enterprise Server serves the same API below this prefix.
GHES_PREFIX = "/api/v3"
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 30
GIT_RETENTION_DAYS = 7
DEFAULT_WINDOW_DAYS = 90
DOCS = "https://docs.github.com/rest/enterprise-admin/audit-log"
_WEB_ACTIONS = [
    "repo.create",
    "repo.access",
    "org.add_member",
    "org.remove_member",
    "team.add_member",
    "protected_branch.update",
    "oauth_application.create",
    "personal_access_token.request_created",
    "org.update_member",
    "repo.destroy",
    "business.set_actions_retention_limit",
    "secret_scanning_alert.dismiss",
    "workflows.completed_workflow_run",
]
_GIT_ACTIONS = ["git.clone", "git.fetch", "git.push"]
_REPOS = ["api", "web", "infra", "payments", "mobile", "docs", "terraform", "data-pipeline", "auth-service", "billing"]
_QUALIFIER = re.compile(r"created:(>=|<=|>|<)?(\S+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})")


def is_git(event_id: str) -> bool:
    return part_of(event_id, 4) == 0


def event_millis(event: dict[str, Any]) -> int:
    return event["@timestamp"]


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        ms = millis(ts, event_id)
        actor = people.pick(rng)
        country = rng.choice(PLACES)[0]
        repo = f"{ORG}/{rng.choice(_REPOS)}"
        action = rng.choice(_GIT_ACTIONS if is_git(event_id) else _WEB_ACTIONS)
        event = {
            "@timestamp": ms,
            "_document_id": base64url_id(event_id),
            "action": action,
            "actor": actor["login"],
            "actor_id": rng.randrange(10**6, 10**8),
            "actor_ip": ip(rng),
            "actor_location": {"country_code": country},
            "business": ENTERPRISE,
            "business_id": 4242,
            "created_at": ms,
            "org": ORG,
            "org_id": 1234567,
            "operation_type": "access" if action.startswith("git.") else rng.choice(["create", "modify", "remove"]),
            "user_agent": "git/2.47.1" if action.startswith("git.") else rng.choice(USER_AGENTS),
        }
        if action.startswith(("repo.", "git.", "protected_branch.")):
            event.update(repo=repo, repo_id=rng.randrange(10**7, 10**9))
        if action in ("org.add_member", "org.remove_member", "team.add_member", "org.update_member"):
            event["user"] = people.pick(rng)["login"]
        return event

    return render


class _Invalid(Exception):
    pass


class GitHubApi(TokenApi):
    def routes(self) -> list[Route]:
        paths = [f"/enterprises/{ENTERPRISE}/audit-log", f"/orgs/{ORG}/audit-log"]
        return [Route("GET", prefix + path, self.audit_log) for prefix in ("", GHES_PREFIX) for path in paths]

    def audit_log(self, req: Request) -> Response:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() not in ("bearer", "token") or not token.strip():
            return _error(401, "Requires authentication")
        if token.strip() != self._token:
            return _error(401, "Bad credentials")
        req.auth_ok = True
        over = self._limiter.acquire(self._token)
        headers = self._rate_headers()
        if over is not None:
            return _error(
                403,
                "API rate limit exceeded for user ID 4242. If you reach out to GitHub Support for help, "
                "please include the request ID.",
                headers,
            )
        try:
            return self._page(req, headers)
        except _Invalid as exc:
            return _error(422, f"Validation Failed: {exc}", headers)

    def _rate_headers(self) -> dict[str, str]:
        limit, remaining, reset_in = self._limiter.usage(self._token)
        if not limit:
            limit, remaining = 5000, 4999
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(remaining),
            "x-ratelimit-used": str(limit - remaining),
            "x-ratelimit-reset": str(math.ceil(datetime.now(timezone.utc).timestamp()) + reset_in),
            "x-ratelimit-resource": "audit_log",
        }

    def _page(self, req: Request, headers: dict[str, str]) -> Response:
        now = self._clock.now()
        lo_ms, hi_ms, filters = _phrase(req.param("phrase") or "")
        include = req.param("include") or "web"
        order = req.param("order") or "desc"
        if include not in ("web", "git", "all") or order not in ("asc", "desc"):
            raise _Invalid("include must be web, git or all; order asc or desc")
        try:
            per_page = min(int(req.param("per_page") or DEFAULT_PER_PAGE), MAX_PER_PAGE)
        except ValueError:
            raise _Invalid("per_page must be a number") from None
        if per_page < 1:
            raise _Invalid("per_page must be positive")
        after = req.param("after")
        position = None
        if after:
            try:
                position = tuple(decode_token(after)["p"])
            except (ValueError, KeyError, TypeError):
                raise _Invalid("after is not a cursor of this endpoint") from None
        page, more = take_page(self._matching(lo_ms, hi_ms, filters, include, order, now, position), per_page)
        links = []
        if more:
            query = {k: v[0] for k, v in req.query.items() if k not in ("after", "before")}
            base = f"http://{req.headers.get('host', 'localhost')}{req.path}?"
            nxt = urlencode(
                {**query, "after": encode_token({"p": [page[-1].ts, page[-1].id]}), "before": ""}, quote_via=quote
            )
            first = urlencode({**query, "after": "", "before": ""}, quote_via=quote)
            links = [f'<{base}{nxt}>; rel="next"', f'<{base}{first}>; rel="first"']
        body = b"[" + b",".join(e.payload for e in page) + b"]"
        return Response(
            200,
            body,
            {
                "Content-Type": "application/json; charset=utf-8",
                **headers,
                **({"Link": ", ".join(links)} if links else {}),
            },
        )

    def _matching(self, lo_ms, hi_ms, filters, include, order, now, position) -> Iterator[Event]:
        if lo_ms is None:  # without created:, GitHub searches the past three months
            lo_ms = int(now - DEFAULT_WINDOW_DAYS * 86400) * 1000
        git_since = (now - GIT_RETENTION_DAYS * 86400) * 1000
        for event in scan_ms(self._store, lo_ms, hi_ms, now, position, order == "asc"):
            git = is_git(event.id)
            if (
                (include == "web" and git)
                or (include == "git" and not git)
                or (git and millis(event.ts, event.id) < git_since)
            ):
                continue
            if filters and not _matches(event.payload, filters):
                continue
            yield event


def _phrase(phrase: str) -> tuple[int | None, int | None, dict[str, str]]:
    """(lowest, highest) event milliseconds, both inclusive, and the other qualifiers."""
    lo: int | None = None
    hi: int | None = None
    filters: dict[str, str] = {}
    for term in phrase.split():
        match = _QUALIFIER.fullmatch(term)
        if match:
            op, value = match.groups()
            if op is None and ".." in value:
                start, end = value.split("..", 1)
                lo, hi = _span(start)[0], _span(end)[1]
            else:
                first, last = _span(value)
                if op in (None, ">="):
                    lo = first
                if op in (None, "<="):
                    hi = last
                if op == ">":
                    lo = last + 1
                if op == "<":
                    hi = first - 1
            continue
        key, sep, value = term.partition(":")
        if not sep or key not in ("action", "actor", "repo") or not value:
            raise _Invalid(f"unsupported search term {term!r}")
        filters[key] = value
    return lo, hi, filters


def _span(value: str) -> tuple[int, int]:
    """The first and last millisecond a date or a whole-second date-time names."""
    if _DATE.fullmatch(value):
        day = int(datetime.fromisoformat(value).replace(tzinfo=timezone.utc).timestamp()) * 1000
        return day, day + 86_400_000 - 1
    if not _DATETIME.fullmatch(value):
        raise _Invalid(f"created: takes a date or a date-time in whole seconds, not {value!r}")
    moment = int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()) * 1000
    return moment, moment


def _matches(payload: bytes, filters: dict[str, str]) -> bool:
    event = orjson.loads(payload)
    return all(event.get(key) == value for key, value in filters.items())


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return json_response(status, {"message": message, "documentation_url": DOCS, "status": str(status)}, headers)
