"""Slack Audit Logs API (https://api.slack.com/audit/v1/): event bodies and endpoints.

Mirrors the behaviours a collector must cope with: inclusive oldest/latest, newest-first
order, opaque cursors that do not remember the original filters, pages that grow past
`limit` rather than split a same-second group, Tier 3 rate limiting per token.
"""

from __future__ import annotations

import base64
import binascii
import random
from bisect import bisect
from collections.abc import Callable
from itertools import accumulate
from typing import Any

import orjson

from sandbox.events import Clock, EventStore
from sandbox.ratelimit import SlidingWindowLimiter
from sandbox.scenario import SourceConfig
from sandbox.web import Request, Response, Route, json_response

NAME = "slack"
MAX_LIMIT = 9999
DEFAULT_LIMIT = 100

_FIRST = (
    "Ava Ben Chloe Dmitri Elena Farah Gabriel Hana Ivan Jonas Kenji Lena Mateo Nia Omar Priya Quinn Rosa "
    "Sven Tariq Uma Viktor Wen Ximena Yusuf Zoe Amara Bruno Carmen Diego"
).split()
_LAST = (
    "Okafor Schmidt Tanaka Rossi Novak Haddad Silva Kim Larsen Moreau Patel Nguyen Kowalski Fischer Costa "
    "Ibrahim Jensen Alvarez Mueller Sato Dubois Popescu Andersen Reyes Cohen Varga Lindqvist Mensah Ortiz "
    "Brennan"
).split()
_ORGS = [
    ("Northwind Traders", "northwind"),
    ("Globex", "globex"),
    ("Initech", "initech"),
    ("Umbrella Health", "umbrella"),
]
_WORKSPACES = [
    ("Engineering", "eng"),
    ("Sales", "sales"),
    ("Customer Support", "support"),
    ("HQ", "hq"),
    ("Contractors", "ext"),
]
_CHANNEL_PREFIX = "proj team help ext inc announce social ops sec data".split()
_CHANNEL_WORD = (
    "apollo billing onboarding sre payments design q3-planning oncall mobile infra sales-emea hiring "
    "security launch analytics support legal finance"
).split()
_FILES = [
    ("pdf", "Q{q} board deck"),
    ("xlsx", "Forecast FY{y} v{v}"),
    ("docx", "Contract draft {v}"),
    ("png", "Screenshot {y}-{q:02d}-{v:02d}"),
    ("csv", "export_users_{v}"),
    ("zip", "logs-bundle-{v}"),
    ("key", "Roadmap {y}"),
    ("mp4", "Recording standup {v}"),
    ("txt", "notes {v}"),
]
_APPS = [
    ("Google Drive", ["files:read", "links:read", "links:write"]),
    ("Jira Cloud", ["commands", "chat:write", "channels:read"]),
    ("GitHub", ["chat:write", "links:read", "commands", "users:read"]),
    ("Zoom", ["calls:write", "commands", "users:read.email"]),
    ("PagerDuty", ["chat:write", "channels:join", "incoming-webhook"]),
    ("Salesforce", ["chat:write", "users:read", "team:read"]),
    ("Okta", ["admin", "users:read", "users:read.email"]),
    ("Polly", ["chat:write", "reactions:read"]),
    ("Workflow Builder", ["workflow.steps:execute"]),
    ("Datadog", ["chat:write", "files:write", "channels:read"]),
    ("Loom", ["links:read", "links:write"]),
    ("Asana", ["chat:write", "commands", "im:history"]),
]
_UAS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.41.105 "
    "Chrome/130.0.6723.137 Electron/33.2.1 Safari/537.36 Sonic Slack_SSB/4.41.105",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.41.105 "
    "Chrome/130.0.6723.137 Electron/33.2.1 Safari/537.36 Sonic Slack_SSB/4.41.105",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 "
    "Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36 Edg/131.0.2903.70",
    "com.tinyspeck.chatlyio/24.11.10 (iPhone; iOS 18.1.1; Scale/3.00)",
    "com.Slack/24.11.10.0 (Linux; Android 14; Pixel 8 Pro)",
    "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 "
    "Mobile/15E148 Safari/604.1",
    "python-requests/2.32.3",
    "Slack-Bolt-Python/1.21.2 Python/3.12.7 slackclient/3.33.4 Linux/6.8.0",
]
_PREFS = {
    "pref.sso_setting_changed": (["optional", "required", "off"], ["required", "optional"]),
    "pref.two_factor_auth_changed": (["required", "optional"], ["optional", "required"]),
    "pref.session_duration_changed": (["604800", "2592000", "1209600"], ["86400", "604800"]),
    "pref.allow_calls": (["true"], ["false"]),
    "pref.public_channel_retention_changed": (["forever", "365"], ["90", "730"]),
    "pref.app_dir_only": (["false"], ["true"]),
    "pref.hide_referers": (["false"], ["true"]),
}
_ROLES = ["user", "admin", "owner", "guest"]
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def _slack_id(rng: random.Random, prefix: str, length: int = 10) -> str:
    return prefix + "".join(rng.choices(_ALPHABET, k=length))


class _Org:
    """The seeded organisation every event draws its people, channels and apps from."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(f"{seed}:{NAME}:org")
        name, domain = rng.choice(_ORGS)
        self.enterprise = {"id": _slack_id(rng, "E", 8), "name": name, "domain": f"{domain}-corp"}
        self.email_domain = f"{domain}.example.com"
        self.workspaces = [
            {"id": _slack_id(rng, "T", 8), "name": f"{name} {ws}", "domain": f"{domain}-{sub}"}
            for ws, sub in _WORKSPACES
        ]
        people = rng.sample([(f, last) for f in _FIRST for last in _LAST], 400)
        self.users = [
            {
                "id": _slack_id(rng, "W", 8),
                "name": f"{f} {last}",
                "email": f"{f.lower()}.{last.lower()}@{self.email_domain}",
                "team": rng.choice(self.workspaces)["id"],
            }
            for f, last in people
        ]
        self.slack_user = {"id": "USLACKUSER", "name": "Slack", "email": "", "team": self.enterprise["id"]}
        self.slack_security = {
            "id": "USLACKSECURITY",
            "name": "Slack Security",
            "email": "",
            "team": self.enterprise["id"],
        }
        names = rng.sample([f"{p}-{w}" for p in _CHANNEL_PREFIX for w in _CHANNEL_WORD], 150) + ["general", "random"]
        self.channels = []
        for channel_name in names:
            shared = rng.random() < 0.2
            self.channels.append(
                {
                    "id": _slack_id(rng, "C"),
                    "privacy": "private" if rng.random() < 0.3 else "public",
                    "name": channel_name,
                    "is_shared": shared,
                    "is_org_shared": shared and rng.random() < 0.5,
                    "teams_shared_with": [w["id"] for w in rng.sample(self.workspaces, rng.randint(2, 4))]
                    if shared
                    else [],
                }
            )
        self.apps = [
            {
                "id": _slack_id(rng, "A"),
                "name": app,
                "is_distributed": rng.random() < 0.8,
                "is_directory_approved": rng.random() < 0.6,
                "is_workflow_app": app == "Workflow Builder",
                "scopes": scopes,
            }
            for app, scopes in _APPS
        ]


Details = Callable[[random.Random, _Org, int], dict[str, Any] | None]


def _no_details(rng: random.Random, org: _Org, ts: int) -> None:
    return None


def _pref_details(action: str) -> Details:
    before, after = _PREFS[action]
    return lambda rng, org, ts: {"previous_value": rng.choice(before), "new_value": rng.choice(after)}


def _role_details(new_role: str) -> Details:
    return lambda rng, org, ts: {
        "previous_role": rng.choice([r for r in _ROLES if r != new_role]),
        "new_role": new_role,
    }


def _login_details(rng: random.Random, org: _Org, ts: int) -> dict[str, Any]:
    return {"type": rng.choice(["saml", "saml", "google", "password", "magic_link"]), "mobile_only": rng.random() < 0.1}


def _channel_join_details(rng: random.Random, org: _Org, ts: int) -> dict[str, Any]:
    if rng.random() < 0.5:
        return {"reason": "self_join"}
    return {"reason": "invite", "inviter": rng.choice(org.users)}


def _file_share_details(rng: random.Random, org: _Org, ts: int) -> dict[str, Any]:
    channel = rng.choice(org.channels)
    return {"shared_to": channel["id"], "channel_name": channel["name"], "is_external": channel["is_shared"]}


def _app_install_details(rng: random.Random, org: _Org, ts: int) -> dict[str, Any]:
    app_name, scopes = rng.choice(_APPS)
    return {
        "app_owner_id": rng.choice(org.users)["id"],
        "is_internal_integration": rng.random() < 0.2,
        "is_token_rotation_enabled_app": rng.random() < 0.3,
        "scopes": scopes,
        "bot_scopes": ["chat:write", "commands"],
        "granular_bot_token": True,
        "name": app_name,
    }


def _scope_details(rng: random.Random, org: _Org, ts: int) -> dict[str, Any]:
    _, scopes = rng.choice(_APPS)
    return {
        "previous_scopes": scopes[:1],
        "new_scopes": scopes,
        "granular_bot_token": True,
        "is_internal_integration": False,
    }


def _anomaly_details(rng: random.Random, org: _Org, ts: int) -> dict[str, Any]:
    return {
        "action_timestamp": (ts - rng.randint(0, 600)) * 1000,
        "reason": rng.sample(["asn", "ip_address", "session_fingerprint", "tor", "user_agent"], rng.randint(1, 3)),
        "is_internal": False,
        "previous_ip_address": _ip(rng),
        "previous_ua": rng.choice(_UAS),
        "location": rng.choice(["US", "DE", "BR", "IN", "SG", "NL"]),
    }


# (action, entity type, relative weight, details)
_ACTIONS: list[tuple[str, str, float, Details]] = [
    ("user_login", "user", 30, _login_details),
    ("user_logout", "user", 8, _no_details),
    ("user_session_invalidated", "user", 1, _no_details),
    ("user_session_reset_by_admin", "user", 0.4, _no_details),
    ("user_created", "user", 0.5, _no_details),
    ("user_deactivated", "user", 0.3, _no_details),
    ("user_reactivated", "user", 0.1, _no_details),
    ("guest_created", "user", 0.2, _no_details),
    ("guest_deactivated", "user", 0.1, _no_details),
    ("custom_tos_accepted", "user", 0.3, _no_details),
    ("role_change_to_admin", "user", 0.1, _role_details("admin")),
    ("role_change_to_owner", "user", 0.05, _role_details("owner")),
    ("role_change_to_user", "user", 0.1, _role_details("user")),
    ("role_change_to_guest", "user", 0.05, _role_details("guest")),
    ("user_email_updated", "user", 0.2, _no_details),
    ("anomaly", "user", 0.2, _anomaly_details),
    ("file_downloaded", "file", 20, _no_details),
    ("file_uploaded", "file", 8, _no_details),
    ("file_shared", "file", 4, _file_share_details),
    ("file_public_link_created", "file", 0.5, _no_details),
    ("file_public_link_revoked", "file", 0.2, _no_details),
    ("file_downloaded_blocked", "file", 0.3, _no_details),
    ("user_channel_join", "channel", 10, _channel_join_details),
    ("user_channel_leave", "channel", 3, _no_details),
    ("public_channel_created", "channel", 1, _no_details),
    ("private_channel_created", "channel", 0.8, _no_details),
    ("public_channel_archive", "channel", 0.4, _no_details),
    ("private_channel_archive", "channel", 0.2, _no_details),
    ("channel_renamed", "channel", 0.2, _no_details),
    ("guest_channel_added", "channel", 0.1, _no_details),
    ("channel_moved", "channel", 0.05, _no_details),
    ("app_installed", "app", 0.3, _app_install_details),
    ("app_uninstalled", "app", 0.1, _no_details),
    ("app_scopes_expanded", "app", 0.1, _scope_details),
    ("app_approved", "app", 0.1, _no_details),
    ("app_restricted", "app", 0.05, _no_details),
    ("app_token_preserved", "app", 0.05, _no_details),
    ("bot_token_upgraded", "app", 0.02, _no_details),
    *((pref, "workspace", 0.05, _pref_details(pref)) for pref in _PREFS),
]
_CUM_WEIGHTS = list(accumulate(w for _, _, w, _ in _ACTIONS))
_APP_ACTIONS = frozenset(a for a, entity, _, _ in _ACTIONS if entity == "app")


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.15:
        return "2001:db8:" + ":".join(f"{rng.getrandbits(16):x}" for _ in range(6))
    first = rng.choice([203, 198, 81, 145, 34, 52, 91])
    return f"{first}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _file(rng: random.Random) -> dict[str, Any]:
    filetype, template = rng.choice(_FILES)
    title = template.format(q=rng.randint(1, 4), y=rng.randint(2023, 2026), v=rng.randint(1, 40))
    return {
        "id": _slack_id(rng, "F"),
        "name": f"{title.replace(' ', '_')}.{filetype}",
        "filetype": filetype,
        "title": title,
    }


def make_renderer(seed: int) -> Callable[[random.Random, int, str], dict[str, Any]]:
    """Slack audit log entry bodies for one seeded organisation."""
    org = _Org(seed)
    total = _CUM_WEIGHTS[-1]

    def render(rng: random.Random, ts: int, event_id: str) -> dict[str, Any]:
        action, entity_type, _, details = _ACTIONS[bisect(_CUM_WEIGHTS, rng.random() * total)]
        if action == "anomaly":
            actor = org.slack_security
        else:
            actor = org.slack_user if rng.random() < 0.03 else rng.choice(org.users)
        if entity_type == "user":
            target: dict[str, Any] = (
                rng.choice(org.users) if rng.random() < 0.7 or actor["id"].startswith("U") else actor
            )
        elif entity_type == "channel":
            target = rng.choice(org.channels)
        elif entity_type == "file":
            target = _file(rng)
        elif entity_type == "app":
            target = rng.choice(org.apps)
        else:
            target = rng.choice(org.workspaces)
        location = org.enterprise if rng.random() < 0.4 else rng.choice(org.workspaces)
        session = rng.random()
        context: dict[str, Any] = {
            "location": {"type": "enterprise" if location is org.enterprise else "workspace", **location},
            "ua": rng.choice(_UAS),
            "ip_address": _ip(rng),
            # Slack documents an int, but strings and nulls show up in the wild.
            "session_id": rng.randrange(10**12, 10**13)
            if session < 0.7
            else (str(rng.randrange(10**12, 10**13)) if session < 0.85 else None),
        }
        if action in _APP_ACTIONS or rng.random() < 0.08:
            context["app"] = rng.choice(org.apps)
        entry: dict[str, Any] = {
            "id": event_id,
            "date_create": ts,
            "action": action,
            "actor": {"type": "user", "user": actor},
            "entity": {"type": entity_type, entity_type: target},
            "context": context,
        }
        extra = details(rng, org, ts)
        if extra is not None:
            entry["details"] = extra
        return entry

    return render


def _actions_body() -> bytes:
    groups: dict[str, list[str]] = {}
    for action, entity, _, _ in _ACTIONS:
        groups.setdefault("workspace_or_org" if entity == "workspace" else entity, []).append(action)
    return orjson.dumps({"actions": groups})


_SCHEMAS_BODY = orjson.dumps(
    {
        "schemas": [
            {"type": "workspace", "workspace": {"id": "", "name": "", "domain": ""}},
            {"type": "enterprise", "enterprise": {"id": "", "name": "", "domain": ""}},
            {"type": "user", "user": {"id": "", "name": "", "email": "", "team": ""}},
            {"type": "file", "file": {"id": "", "name": "", "filetype": "", "title": ""}},
            {
                "type": "channel",
                "channel": {
                    "id": "",
                    "name": "",
                    "privacy": "",
                    "is_shared": False,
                    "is_org_shared": False,
                    "teams_shared_with": [],
                },
            },
            {
                "type": "app",
                "app": {
                    "id": "",
                    "name": "",
                    "is_distributed": False,
                    "is_directory_approved": False,
                    "is_workflow_app": False,
                    "scopes": [],
                },
            },
        ]
    }
)
_JSON = {"Content-Type": "application/json; charset=utf-8"}


class _BadRequest(Exception):
    def __init__(self, error: str) -> None:
        self.error = error


def encode_cursor(ts: int, event_id: str) -> str:
    """Standard (not URL-safe) base64, padding included, so clients must URL-encode it."""
    return base64.b64encode(f"event:{ts}:{event_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        kind, ts, event_id = base64.b64decode(cursor, validate=True).decode().split(":")
        if kind != "event" or not event_id:
            raise ValueError(cursor)
        return int(ts), event_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _BadRequest("invalid_cursor") from None


class SlackApi:
    """The /audit/v1 endpoints over one EventStore."""

    def __init__(self, config: SourceConfig, store: EventStore, clock: Clock) -> None:
        self._token = config.token
        self._store = store
        self._clock = clock
        self._limiter = SlidingWindowLimiter(config.rate_limit_per_minute)
        self._actions_body = _actions_body()

    def routes(self) -> list[Route]:
        return [
            Route("GET", "/audit/v1/logs", self.logs),
            Route("GET", "/audit/v1/schemas", lambda req: Response(200, _SCHEMAS_BODY, dict(_JSON))),
            Route("GET", "/audit/v1/actions", lambda req: Response(200, self._actions_body, dict(_JSON))),
        ]

    def reset(self) -> None:
        self._limiter.reset()

    def logs(self, req: Request) -> Response:
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return json_response(401, {"ok": False, "error": "missing_authentication"})
        if token != self._token:
            return json_response(401, {"ok": False, "error": "invalid_authentication"})
        req.auth_ok = True
        retry_after = self._limiter.acquire(token)
        if retry_after is not None:
            return json_response(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)})
        try:
            return self._page(req)
        except _BadRequest as exc:
            return json_response(400, {"ok": False, "error": exc.error})

    def _page(self, req: Request) -> Response:
        oldest, latest = _int_param(req, "oldest"), _int_param(req, "latest")
        if oldest is not None and latest is not None and oldest > latest:
            raise _BadRequest("invalid_range")
        limit = _limit(req.param("limit"))
        cursor = req.param("cursor")
        before = decode_cursor(cursor) if cursor else None
        matches = _filter(req)
        now = self._clock.now()
        events = self._store.iter_desc(
            0 if oldest is None else oldest, int(now) if latest is None else latest, now, before
        )
        page = []
        more = False
        for event in events:
            if matches is not None and not matches(event.payload):
                continue
            # Past the limit, keep going only to finish the same-second group: never split it.
            if len(page) >= limit and event.ts != page[-1].ts:
                more = True
                break
            page.append(event)
        next_cursor = encode_cursor(page[-1].ts, page[-1].id) if more else ""
        body = b"".join(
            (
                b'{"ok":true,"entries":[',
                b",".join(e.payload for e in page),
                b'],"response_metadata":{"next_cursor":',
                orjson.dumps(next_cursor),
                b"}}",
            )
        )
        return Response(200, body, dict(_JSON))


def _int_param(req: Request, name: str) -> int | None:
    raw = req.param(name)
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise _BadRequest("invalid_range") from None


def _limit(raw: str | None) -> int:
    """Absent: 100. Above 9999: clamped (the docs only say results are "optimized" for < 9999)."""
    if raw is None:
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise _BadRequest("invalid_limit") from None
    if limit < 1:
        raise _BadRequest("invalid_limit")
    return min(limit, MAX_LIMIT)


def _filter(req: Request) -> Callable[[bytes], bool] | None:
    """Predicate over an event's JSON for the action/actor/entity filters, None when unfiltered."""
    actions = {a for a in (req.param("action") or "").split(",") if a}
    actor = req.param("actor")
    entity = req.param("entity")
    if not (actions or actor or entity):
        return None

    def matches(payload: bytes) -> bool:
        entry = orjson.loads(payload)
        if actions and entry["action"] not in actions:
            return False
        if actor and entry["actor"]["user"]["id"] != actor:
            return False
        return not entity or entry["entity"][entry["entity"]["type"]]["id"] == entity

    return matches
