"""Google Workspace Admin SDK Reports API, `activities.list`, plus a stand-in OAuth token endpoint.

`GET /admin/reports/v1/activity/users/all/applications/{app}` for the applications in APPLICATIONS: each
generated event belongs to one of them. Inclusive RFC 3339 `startTime`/`endTime` (a `startTime` after
now or after `endTime` is a 400), newest first, `maxResults` 1..1000 (default 1000), an opaque
`nextPageToken` that is valid only with the same application, `startTime` and `endTime` (else 400
"Invalid pageToken"), `items` and `nextPageToken` omitted when empty or at the end, Google JSON errors.

Bearer tokens: the scenario's static `token`, or one issued by `POST /token`, a stand-in for
`https://oauth2.googleapis.com/token` that takes a service account's signed JWT (grant type jwt-bearer),
checks its `scope` and `sub` (the delegated admin) claims (not its signature) and records them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
import threading
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs

import orjson

from sandbox.events import Clock, EventStore
from sandbox.ratelimit import SlidingWindowLimiter
from sandbox.scenario import SourceConfig
from sandbox.web import Request, Response, Route, json_response

NAME = "google_workspace"
PREFIX = "/admin/reports/v1/activity/users/all/applications/"
TOKEN_PATH = "/token"
SCOPE = "https://www.googleapis.com/auth/admin.reports.audit.readonly"
MAX_RESULTS = 1000
# application -> (weight, [(event type, event name)])
APPLICATIONS: dict[str, tuple[int, list[tuple[str, str]]]] = {
    "login": (
        10,
        [("login", "login_success"), ("login", "login_failure"), ("login", "logout"), ("login", "login_challenge")],
    ),
    "admin": (
        3,
        [
            ("USER_SETTINGS", "CREATE_USER"),
            ("USER_SETTINGS", "SUSPEND_USER"),
            ("DELEGATED_ADMIN_SETTINGS", "ASSIGN_ROLE"),
            ("APPLICATION_SETTINGS", "CHANGE_APPLICATION_SETTING"),
            ("SECURITY_SETTINGS", "ENFORCE_STRONG_AUTHENTICATION"),
        ],
    ),
    "token": (4, [("auth", "authorize"), ("auth", "revoke"), ("auth", "activity")]),
    "drive": (
        8,
        [("access", "view"), ("access", "edit"), ("access", "download"), ("acl_change", "change_user_access")],
    ),
    "saml": (2, [("login", "login_success"), ("login", "login_failure")]),
    "user_accounts": (
        1,
        [
            ("2sv_change", "2sv_enroll"),
            ("password_change", "password_edit"),
            ("recovery_info_change", "recovery_email_edit"),
        ],
    ),
    "groups": (1, [("acl_change", "change_acl_permission"), ("user_change", "add_user")]),
    "groups_enterprise": (1, [("moderator_action", "ban_user_with_moderation"), ("group_change", "add_member")]),
    "rules": (1, [("rule_trigger_type", "rule_match"), ("action_complete_type", "action_complete")]),
    "mobile": (
        2,
        [("device_updates", "DEVICE_REGISTER_UNREGISTER_EVENT"), ("suspicious_activity", "SUSPICIOUS_ACTIVITY_EVENT")],
    ),
    "chrome": (2, [("browser_extension", "BROWSER_EXTENSION_INSTALL"), ("password_reuse", "PASSWORD_REUSE")]),
    "context_aware_access": (1, [("ACCESS_DENY_EVENT", "ACCESS_DENY_EVENT")]),
    "access_transparency": (1, [("GSUITE_RESOURCE", "ACCESS")]),
    "gcp": (1, [("CLOUD_OSLOGIN", "POSIX_ACCOUNT_CREATED"), ("CLOUD_OSLOGIN", "SSH_KEY_ADDED")]),
    "calendar": (3, [("event_change", "create_event"), ("event_change", "change_event_guest_response")]),
    "chat": (2, [("user_action", "message_posted"), ("user_action", "attachment_uploaded")]),
    "meet": (2, [("call", "call_ended")]),
    "data_studio": (1, [("ACCESS", "VIEW")]),
    "keep": (1, [("user_action", "created_note")]),
    "jamboard": (1, [("TEAM_CREATION", "CREATE")]),
    "gplus": (1, [("post_change", "create_post")]),
}
_NAMES = "ana bo chen dara eli fatima gus hiro ines jon kemi lars mia noor oscar pia raj sofia tom uma".split()


def make_renderer(seed: int):
    org = random.Random(f"{seed}:{NAME}:org")
    customer = "C0" + "".join(org.choices("0123456789abcdefghjkmnpqrstuvwxyz", k=7))
    domain = org.choice(["northwind.example.com", "globex.example.com", "initech.example.com"])
    people = [(f"{name}@{domain}", str(org.randrange(10**20, 10**21))) for name in _NAMES]
    apps, weights = list(APPLICATIONS), [w for w, _ in APPLICATIONS.values()]

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        app = rng.choices(apps, weights)[0]
        event_type, event_name = rng.choice(APPLICATIONS[app][1])
        email, profile = rng.choice(people)
        qualifier = int(event_id.replace("-", "")[:16], 16) - 2**63
        return {
            "kind": "admin#reports#activity",
            "id": {
                "time": datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "uniqueQualifier": str(qualifier),
                "applicationName": app,
                "customerId": customer,
            },
            "etag": f'"{event_id[:12]}/{event_id[-12:]}"',
            "actor": {"callerType": "USER", "email": email, "profileId": profile},
            "ownerDomain": domain,
            "ipAddress": f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            "events": [
                {
                    "type": event_type,
                    "name": event_name,
                    "parameters": [
                        {"name": "login_type", "value": rng.choice(["google_password", "saml", "reauth"])},
                        {"name": "is_suspicious", "boolValue": rng.random() < 0.02},
                    ],
                }
            ],
        }

    return render


def application_of(payload: bytes, app: str) -> bool:
    return b'"applicationName":"' + app.encode() + b'"' in payload


def google_error(status: int, message: str, reason: str, state: str) -> Response:
    return json_response(
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "errors": [{"message": message, "domain": "global", "reason": reason}],
                "status": state,
            }
        },
    )


class _Invalid(Exception):
    def __init__(self, message: str) -> None:
        self.message = message


def _time(name: str, raw: str) -> float:
    try:
        if "T" not in raw or not (raw.endswith("Z") or raw[-6] in "+-"):
            raise ValueError(raw)
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except (ValueError, IndexError):
        raise _Invalid(f"Invalid value for: {name} ({raw!r} is not an RFC 3339 date-time)") from None


class GoogleWorkspaceApi:
    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._limiter = SlidingWindowLimiter(config.rate_limit_per_minute)
        self._static = config.token
        self._issued: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def routes(self) -> list[Route]:
        routes = [Route("GET", PREFIX + app, lambda req, app=app: self.activities(req, app)) for app in APPLICATIONS]
        return routes + [Route("POST", TOKEN_PATH, self.token)]

    def reset(self) -> None:
        self._limiter.reset()
        with self._lock:
            self._issued.clear()

    def issued(self) -> list[dict[str, Any]]:
        """The claims of every token issued by POST /token (for tests)."""
        with self._lock:
            return list(self._issued.values())

    def token(self, req: Request) -> Response:
        form = parse_qs(req.body.decode("utf-8", "replace"))
        if form.get("grant_type") != ["urn:ietf:params:oauth:grant-type:jwt-bearer"] or "assertion" not in form:
            return json_response(400, {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."})
        try:
            payload = form["assertion"][0].split(".")[1]
            claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, binascii.Error, ValueError):
            return json_response(400, {"error": "invalid_grant", "error_description": "Invalid JWT."})
        if SCOPE not in str(claims.get("scope", "")).split() or "@" not in str(claims.get("sub", "")):
            return json_response(
                401,
                {
                    "error": "unauthorized_client",
                    "error_description": "Client is unauthorized to retrieve access tokens using this method, "
                    "or client not authorized for any of the scopes requested.",
                },
            )
        access = "ya29.sandbox-" + hashlib.sha256(orjson.dumps(claims)).hexdigest()[:32]
        with self._lock:
            self._issued[access] = claims
        return json_response(200, {"access_token": access, "expires_in": 3599, "token_type": "Bearer"})

    def activities(self, req: Request, app: str) -> Response:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return google_error(401, "Login Required.", "required", "UNAUTHENTICATED")
        with self._lock:
            known = token == self._static or token in self._issued
        if not known:
            return google_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, "
                "login cookie or other valid authentication credential.",
                "authError",
                "UNAUTHENTICATED",
            )
        req.auth_ok = True
        if self._limiter.acquire(token) is not None:
            return google_error(
                429,
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user' "
                "of service 'admin.googleapis.com'.",
                "rateLimitExceeded",
                "RESOURCE_EXHAUSTED",
            )
        try:
            return self._page(req, app)
        except _Invalid as exc:
            return google_error(400, exc.message, "invalid", "INVALID_ARGUMENT")

    def _page(self, req: Request, app: str) -> Response:
        now = self._clock.now()
        raw_start, raw_end = req.param("startTime"), req.param("endTime")
        start = _time("startTime", raw_start) if raw_start else now - 180 * 86400
        end = _time("endTime", raw_end) if raw_end else now
        if start > now:
            raise _Invalid("Start time must be earlier than the current time.")
        if start > end:
            raise _Invalid("Start time must be earlier than end time.")
        size = req.param("maxResults") or str(MAX_RESULTS)
        if not size.isdigit() or not 1 <= int(size) <= MAX_RESULTS:
            raise _Invalid(f"Invalid value for: maxResults ({size!r}; 1 to {MAX_RESULTS})")
        size = int(size)
        binding = hashlib.sha256(f"{app}|{raw_start}|{raw_end}".encode()).hexdigest()[:16]
        before = None
        if req.param("pageToken"):
            before = self._decode(req.param("pageToken"), binding)
        lo, hi = -int(-start // 1), int(end)
        page, more = [], False
        for event in self._store.iter_desc(lo, hi, now, before):
            if not application_of(event.payload, app):
                continue
            if len(page) == size:
                more = True
                break
            page.append(event)
        parts = [b'{"kind":"admin#reports#activities","etag":"\\"sandbox\\""']
        if page:
            parts += [b',"items":[', b",".join(e.payload for e in page), b"]"]
        if more:
            parts.append(b',"nextPageToken":' + orjson.dumps(self._encode(page[-1].ts, page[-1].id, binding)))
        return Response(200, b"".join(parts) + b"}", {"Content-Type": "application/json; charset=UTF-8"})

    @staticmethod
    def _encode(ts: int, event_id: str, binding: str) -> str:
        return base64.urlsafe_b64encode(f"{ts}:{event_id}:{binding}".encode()).decode()

    @staticmethod
    def _decode(token: str, binding: str) -> tuple[int, str]:
        try:
            ts, event_id, bound = base64.urlsafe_b64decode(token).decode().split(":")
            if bound != binding:
                raise ValueError(token)
            return int(ts), event_id
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise _Invalid("Invalid pageToken (it is valid only with the request parameters it came with)") from None
