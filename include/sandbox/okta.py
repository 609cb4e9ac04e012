"""Okta System Log (`GET https://{org}.okta.com/api/v1/logs`).

Behaviours a collector must cope with: `SSWS` API tokens and `Bearer` OAuth tokens; bounded requests
(`since` and `until`, both inclusive here: undocumented, so the strictest reading) that end with a last
page without rel="next"; polling requests (no `until`) whose next link never ends; `after` cursors only
inside next links (`since` with `after` is a 400); `limit` 0..1000, default 100; `X-Rate-Limit-*` on
every answer and 429 E0000047 when spent; `since` more than 180 days back is 400 E0000053.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any
from urllib.parse import quote, urlencode

from sandbox.vendor import (
    PLACES,
    USER_AGENTS,
    People,
    TokenApi,
    decode_token,
    encode_token,
    ip,
    millis,
    parse_rfc3339,
    rfc3339_ms,
    scan_ms,
    take_page,
)
from sandbox.web import Request, Response, Route, json_response

NAME = "okta"
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_SINCE_DAYS = 180
_EVENTS = [
    ("user.session.start", "User login to Okta", "INFO"),
    ("user.authentication.sso", "User single sign on to app", "INFO"),
    ("user.authentication.auth_via_mfa", "Authentication of user via MFA", "INFO"),
    ("user.session.end", "User logout from Okta", "INFO"),
    ("user.account.lock", "Max sign in attempts exceeded", "WARN"),
    ("user.lifecycle.create", "Create okta user", "INFO"),
    ("group.user_membership.add", "Add user to group membership", "INFO"),
    ("policy.evaluate_sign_on", "Evaluation of sign-on policy", "INFO"),
    ("system.api_token.create", "Create API token", "WARN"),
    ("user.mfa.factor.deactivate", "Reset factor for user", "WARN"),
    ("application.user_membership.add", "Add user to application membership", "INFO"),
]
_APPS = ["Salesforce", "Slack", "GitHub Enterprise", "Google Workspace", "AWS IAM Identity Center", "Zoom"]


def make_renderer(seed: int):
    people = People(seed, NAME, "northwind.example.com")

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        actor = people.pick(rng)
        event_type, message, severity = rng.choice(_EVENTS)
        country, state, city, lat, lon = rng.choice(PLACES)
        address = ip(rng)
        failed = rng.random() < 0.08
        return {
            "uuid": event_id,
            "published": rfc3339_ms(millis(ts, event_id)),
            "eventType": event_type,
            "version": "0",
            "severity": severity,
            "legacyEventType": None,
            "displayMessage": message,
            "actor": {
                "id": "00u" + actor["uuid"][:17].lower(),
                "type": "User",
                "alternateId": actor["email"],
                "displayName": actor["name"],
                "detailEntry": None,
            },
            "client": {
                "userAgent": {
                    "rawUserAgent": rng.choice(USER_AGENTS),
                    "os": rng.choice(["Mac OS X", "Windows 10", "iOS"]),
                    "browser": rng.choice(["CHROME", "FIREFOX", "SAFARI"]),
                },
                "zone": "null",
                "device": "Computer",
                "id": None,
                "ipAddress": address,
                "geographicalContext": {
                    "city": city,
                    "state": state,
                    "country": country,
                    "postalCode": None,
                    "geolocation": {"lat": lat, "lon": lon},
                },
            },
            "outcome": {
                "result": "FAILURE" if failed else "SUCCESS",
                "reason": "INVALID_CREDENTIALS" if failed else None,
            },
            "target": [
                {
                    "id": "0oa" + event_id[:17].replace("-", ""),
                    "type": "AppInstance",
                    "alternateId": app,
                    "displayName": app,
                    "detailEntry": None,
                }
                for app in rng.sample(_APPS, rng.randint(0, 2))
            ],
            "transaction": {"type": "WEB", "id": event_id.replace("-", "")[:20], "detail": {}},
            "debugContext": {
                "debugData": {"requestUri": "/idp/idx/authenticate", "threatSuspected": str(failed).lower()}
            },
            "authenticationContext": {"authenticationStep": 0, "externalSessionId": "102" + event_id[-12:]},
            "securityContext": {
                "asNumber": rng.randrange(1000, 60000),
                "asOrg": "example isp",
                "isp": "example isp",
                "domain": None,
                "isProxy": False,
            },
            "request": {
                "ipChain": [
                    {
                        "ip": address,
                        "geographicalContext": {"city": city, "country": country},
                        "version": "V4",
                        "source": None,
                    }
                ]
            },
        }

    return render


class _BadRequest(Exception):
    def __init__(self, code: str, summary: str) -> None:
        self.code, self.summary = code, summary


class OktaApi(TokenApi):
    def routes(self) -> list[Route]:
        return [Route("GET", "/api/v1/logs", self.logs)]

    def logs(self, req: Request) -> Response:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        if scheme not in ("SSWS", "Bearer") or token.strip() != self._token:
            return _error(401, "E0000011", "Invalid token provided")
        req.auth_ok = True
        over = self._limiter.acquire(self._token)
        limit, remaining, reset_in = self._limiter.usage(self._token)
        reset = math.ceil(time.time()) + reset_in
        headers = {
            "X-Rate-Limit-Limit": str(limit or 120),
            "X-Rate-Limit-Remaining": str(remaining if limit else 119),
            "X-Rate-Limit-Reset": str(reset),
        }
        if over is not None:
            return _error(429, "E0000047", "API call exceeded rate limit due to too many requests.", headers)
        try:
            return self._page(req, headers)
        except _BadRequest as exc:
            return _error(400, exc.code, exc.summary, headers)

    def _page(self, req: Request, headers: dict[str, str]) -> Response:
        now = self._clock.now()
        order = req.param("sortOrder") or "ASCENDING"
        if order not in ("ASCENDING", "DESCENDING"):
            raise _BadRequest("E0000001", "Api validation failed: sortOrder")
        try:
            limit = int(req.param("limit") or DEFAULT_LIMIT)
        except ValueError:
            raise _BadRequest("E0000001", "Api validation failed: limit") from None
        if not 0 <= limit <= MAX_LIMIT:
            raise _BadRequest("E0000001", "Api validation failed: limit")
        since, until, after = req.param("since"), req.param("until"), req.param("after")
        if since is not None and after is not None:
            raise _BadRequest("E0000001", "Api validation failed: since and after cannot be used together")
        until_s = self._time("until", until)
        if after is not None:
            try:
                state = decode_token(after)
                lo_ms, position = int(state["lo"]), tuple(state["p"]) if state["p"] else None
            except (ValueError, KeyError, TypeError):
                raise _BadRequest("E0000001", "Api validation failed: after") from None
        else:
            since_s = self._time("since", since)
            if since_s is None:
                since_s = (now if until_s is None else until_s) - 7 * 86400
            if since_s < now - MAX_SINCE_DAYS * 86400:
                raise _BadRequest(
                    "E0000053", "Invalid parameter: The since parameter is over 180 days prior to the current day."
                )
            lo_ms, position = math.ceil(since_s * 1000), None
        hi_ms = None if until_s is None else math.floor(until_s * 1000)
        page, more = take_page(scan_ms(self._store, lo_ms, hi_ms, now, position, order == "ASCENDING"), limit)
        polling = until is None
        base = f"http://{req.headers.get('host', 'localhost')}{req.path}"
        self_query = urlencode({k: v[0] for k, v in req.query.items()}, quote_via=quote)
        links = [f'<{base}?{self_query}>; rel="self"']
        if more or polling:
            last = [page[-1].ts, page[-1].id] if page else (list(position) if position else None)
            query = {k: v[0] for k, v in req.query.items() if k not in ("since", "after")}
            query["after"] = encode_token({"lo": lo_ms, "p": last})
            links.append(f'<{base}?{urlencode(query, quote_via=quote)}>; rel="next"')
        body = b"[" + b",".join(e.payload for e in page) + b"]"
        return Response(200, body, {"Content-Type": "application/json", "Link": ", ".join(links), **headers})

    @staticmethod
    def _time(name: str, value: str | None) -> float | None:
        if value is None:
            return None
        parsed = parse_rfc3339(value)
        if parsed is None:
            raise _BadRequest("E0000001", f"Api validation failed: {name}")
        return parsed


def _error(status: int, code: str, summary: str, headers: dict[str, str] | None = None) -> Response:
    body = {
        "errorCode": code,
        "errorSummary": summary,
        "errorLink": code,
        "errorId": "oaeSandbox" + code,
        "errorCauses": [],
    }
    return json_response(status, body, headers)
