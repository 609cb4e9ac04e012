"""Microsoft Entra ID audit logs on Microsoft Graph (`https://graph.microsoft.com/v1.0/auditLogs/...`) and
the identity platform's token endpoint, as the fact sheet's checklist has it:

* `POST /{tenant}/oauth2/v2.0/token` (client credentials); a Bearer token issued there on every call, else
  401 `InvalidAuthenticationToken`.
* `directoryAudits` (`activityDateTime`) and `signIns` (`createdDateTime`): each generated event is one of
  the two. `$filter` takes `<time> ge <ISO> and <time> le <ISO>` (both inclusive); `lt`/`gt` are 400
  `invalidRequest`, as they are undocumented. Newest first (directory audits honour `$orderby ... asc`).
  `$top` clamps at 1000 (default 1000 for sign-ins, 100 for directory audits).
* `@odata.nextLink`: an absolute URL whose opaque `$skiptoken` encodes the whole query (other parameters
  sent with it are ignored); the second page of every chain is empty and still has a next link, and
  sign-ins' next links lower-case the path (`/auditlogs/signins`).
* Times with 7 fractional digits; directory-audit ids are not GUIDs.
* A tenant without P1/P2 (a client id starting with `free`) gets 403
  `Authentication_RequestFromNonPremiumTenantOrB2CTenant` on sign-ins.
* Throttling: 429 `activityLimitReached` without Retry-After, after `rate_limit_per_minute`.

The scenario's `token` is `client_id:client_secret`.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.events import Clock, EventStore
from sandbox.oauth import TokenIssuer
from sandbox.ratelimit import SlidingWindowLimiter
from sandbox.scenario import SourceConfig
from sandbox.vendor import decode_token, encode_token, ip, millis, part_of, scan_ms, take_page
from sandbox.web import Request, Response, Route, json_response

NAME = "entra_id"
TENANT = "2b8e6d40-5c1f-4e7a-9b3d-8a6c4f2e1d07"
#: Graph path -> (the stream's time field, default $top)
LOGS = {"directoryAudits": ("activityDateTime", 100), "signIns": ("createdDateTime", 1000)}
MAX_TOP = 1000
_FILTER = re.compile(r"^\(?(\w+) (ge|le|gt|lt) (\S+) and (\w+) (ge|le|gt|lt) (\S+?)\)?$")
_ACTIVITIES = [
    ("UserManagement", "Add user", "Core Directory"),
    ("RoleManagement", "Add member to role", "Core Directory"),
    ("GroupManagement", "Add member to group", "Core Directory"),
    ("ApplicationManagement", "Consent to application", "Core Directory"),
    ("UserManagement", "Reset password (by admin)", "Self-service Password Management"),
]


def log_of(event_id: str) -> str:
    return ("directoryAudits", "signIns")[part_of(event_id, 2)]


def log_of_event(event: dict[str, Any]) -> str:
    """The Graph log a rendered event belongs to."""
    return "directoryAudits" if "activityDateTime" in event else "signIns"


def ticks(ts: int, event_id: str) -> int:
    """The event's time in 100 ns ticks (Graph's 7 fractional digits), increasing with the id in a second."""
    return millis(ts, event_id) * 10_000 + int(event_id[9:13], 16) % 10_000


def graph_time(tick: int) -> str:
    moment = datetime.fromtimestamp(tick // 10_000_000, timezone.utc)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{tick % 10_000_000:07d}Z"


def make_renderer(seed: int):
    users = [
        (f"{random.Random(f'{seed}:{n}').getrandbits(128):032x}", f"user{n}@contoso.onmicrosoft.com") for n in range(30)
    ]

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        (user_id, upn), when = rng.choice(users), graph_time(ticks(ts, event_id))
        if log_of(event_id) == "directoryAudits":
            category, activity, service = rng.choice(_ACTIVITIES)
            return {
                "id": f"Directory_{event_id.replace('-', '')[:20]}_{int(event_id[:6], 16)}",
                "category": category,
                "correlationId": event_id,
                "result": "success",
                "resultReason": "",
                "activityDisplayName": activity,
                "activityDateTime": when,
                "loggedByService": service,
                "operationType": "Add",
                "initiatedBy": {"app": None, "user": {"id": user_id, "userPrincipalName": upn, "ipAddress": ip(rng)}},
                "targetResources": [{"id": rng.choice(users)[0], "type": "User", "modifiedProperties": []}],
                "additionalDetails": [],
            }
        failed = rng.random() < 0.1
        return {
            "id": event_id,
            "createdDateTime": when,
            "userPrincipalName": upn,
            "userId": user_id,
            "appId": "de8bc8b5-d9f9-48b1-a8ad-b748da725064",
            "appDisplayName": "Graph Explorer",
            "ipAddress": ip(rng),
            "clientAppUsed": "Browser",
            "conditionalAccessStatus": "notApplied",
            "isInteractive": True,
            "status": {
                "errorCode": 50126 if failed else 0,
                "failureReason": "Invalid username or password." if failed else None,
            },
            "location": {"city": "Redmond", "state": "Washington", "countryOrRegion": "US"},
        }

    return render


def graph_error(status: int, code: str, message: str) -> Response:
    return json_response(
        status,
        {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"request-id": "sandbox", "date": "2026-01-01T00:00:00"},
            }
        },
    )


class _Invalid(Exception):
    pass


class EntraIdApi:
    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self.issuer = TokenIssuer(config.token, clock, "client_credentials")
        self._free = self.issuer.client_id.startswith("free")
        self._limiter = SlidingWindowLimiter(config.rate_limit_per_minute)

    def routes(self) -> list[Route]:
        routes = [Route("POST", f"/{TENANT}/oauth2/v2.0/token", self.issuer.token)]
        for log in LOGS:
            for path in {f"/v1.0/auditLogs/{log}", f"/v1.0/auditlogs/{log.lower()}"}:
                routes.append(Route("GET", path, lambda req, log=log: self.logs(req, log)))
        return routes

    def reset(self) -> None:
        self.issuer.reset()
        self._limiter.reset()

    def logs(self, req: Request, log: str) -> Response:
        if not self.issuer.valid(req):
            return graph_error(401, "InvalidAuthenticationToken", "Access token is empty or invalid.")
        req.auth_ok = True
        if self._limiter.acquire(TENANT) is not None:
            return graph_error(429, "activityLimitReached", "The request has been throttled")
        if log == "signIns" and self._free:
            return graph_error(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
            )
        try:
            state = self._state(req, log)
        except _Invalid as exc:
            return graph_error(400, "invalidRequest", str(exc))
        body: dict[str, Any] = {"@odata.context": f"https://graph.microsoft.com/v1.0/$metadata#auditLogs/{log}"}
        if state["n"] == 1 and not state.get("empty_done"):  # an empty page that still has a next link
            page, more, state = [], True, {**state, "empty_done": True}
        else:
            lo, hi = state["lo"] // 10_000, -(-state["hi"] // 10_000)
            position = tuple(state["p"]) if state["p"] else None
            scan = scan_ms(self._store, lo, hi, self._clock.now(), position, ascending=state["asc"])
            inside = (e for e in scan if log_of(e.id) == log and state["lo"] <= ticks(e.ts, e.id) <= state["hi"])
            page, more = take_page(inside, state["top"])
            if page:
                state = {**state, "p": [page[-1].ts, page[-1].id]}
        body["value"] = "__VALUE__"
        if more:
            path = f"/v1.0/auditlogs/{log.lower()}" if log == "signIns" else req.path
            query = urlencode({"$skiptoken": encode_token({**state, "n": state["n"] + 1})}, quote_via=quote, safe="$")
            body["@odata.nextLink"] = f"http://{req.headers.get('host', 'localhost')}{path}?{query}"
        text = json_response(200, body).body.replace(b'"__VALUE__"', b"[" + b",".join(e.payload for e in page) + b"]")
        return Response(200, text, {"Content-Type": "application/json;odata.metadata=minimal"})

    def _state(self, req: Request, log: str) -> dict[str, Any]:
        token = req.param("$skiptoken")
        if token is not None:
            try:
                state = decode_token(token)
                if state.get("log") != log:
                    raise ValueError(token)
                return state
            except ValueError:
                raise _Invalid("Invalid $skiptoken") from None
        time_field, default_top = LOGS[log]
        match = _FILTER.match(req.param("$filter") or "")
        if not match or match[1] != time_field or match[4] != time_field:
            raise _Invalid(f"$filter must bound {time_field} with ge and le")
        if "gt" in (match[2], match[5]) or "lt" in (match[2], match[5]):
            raise _Invalid(f"Invalid filter clause: operator not supported for {time_field}")
        bounds = {match[2]: _ticks(match[3]), match[5]: _ticks(match[6])}
        if set(bounds) != {"ge", "le"} or None in bounds.values():
            raise _Invalid(f"$filter needs {time_field} ge <date-time> and {time_field} le <date-time>")
        try:
            top = min(int(req.param("$top") or default_top), MAX_TOP)
        except ValueError:
            raise _Invalid("Invalid $top") from None
        ascending = log == "directoryAudits" and (req.param("$orderby") or "").endswith(" asc")
        return {"log": log, "lo": bounds["ge"], "hi": bounds["le"], "top": top, "asc": ascending, "p": None, "n": 0}


def _ticks(text: str) -> int | None:
    match = re.fullmatch(r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,7}))?Z", text)
    if not match:
        return None
    whole = int(datetime.fromisoformat(match[1] + "+00:00").timestamp())
    return whole * 10_000_000 + int((match[2] or "0").ljust(7, "0"))
