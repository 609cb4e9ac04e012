"""The benchmark's data: N realistic, varied audit events per API shape, pre-rendered into pages.

Bodies come from a pool of distinct rendered events (Slack's from the sandbox's renderer, 1Password's from
a small renderer here) with every event's id and time substituted, so ids are unique, bodies vary like real
ones (about 590 bytes for Slack) and gzip ratios are honest. Pages are rendered once, before any pipeline
runs, and served from memory, so the server is never the bottleneck.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import orjson

from sandbox.microsoft365 import TENANT as O365_TENANT  # the tenant sandbox.connections puts on the connection

POOL = 20_000
#: Every event lies in [WINDOW_START, WINDOW_END): the collector's data interval in the benchmark.
WINDOW_START = datetime(2026, 3, 1, tzinfo=timezone.utc)
WINDOW_END = datetime(2026, 3, 2, tzinfo=timezone.utc)
SPAN = int((WINDOW_END - WINDOW_START).total_seconds())
TOKEN = "bench-token-not-a-secret"


@dataclass(frozen=True)
class Shape:
    name: str
    max_page_size: int
    path: str
    method: str
    stream: str  #: the product's stream name for this endpoint
    source_type: str = ""  #: the product's source type, when not the shape's name
    #: A listing of content blobs, each fetched on its own (a two-level fetch): max_page_size is blobs a listing.
    blobs: bool = False


SLACK = Shape("slack", 9999, "/audit/v1/logs", "GET", "audit")
ONEPASSWORD = Shape("onepassword", 1000, "/api/v2/auditevents", "POST", "auditevents")
O365_FEED = f"/api/v1.0/{O365_TENANT}/activity/feed/"
OFFICE365 = Shape(
    "office365",
    100,
    O365_FEED + "subscriptions/content",
    "GET",
    "audit_sharepoint",
    source_type="microsoft365",
    blobs=True,
)
SHAPES = {shape.name: shape for shape in (SLACK, ONEPASSWORD, OFFICE365)}
#: Records in one content blob: SharePoint blobs of a busy tenant hold hundreds to a few thousand.
BLOB_RECORDS = 2000
#: The identity platform's client credentials the bench server accepts for its token (`expires_in` 3599 s).
O365_CLIENT = "bench-client:bench-client-secret-not-a-secret"


def event_id(i: int) -> str:
    bits = (i * 0x9E3779B97F4A7C15F39CC0605CEDC835 + 0x1234567) % (1 << 128)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


def event_second(i: int, n: int) -> int:
    """Event i's Unix second, spread over the window; i = 0 is the oldest."""
    return int(WINDOW_START.timestamp()) + i * SPAN // n


def _slack_pool(seed: int) -> list[bytes]:
    """Bodies after `"date_create":<ts>`; the renderer puts id and date_create first."""
    from sandbox.slack import make_renderer

    render, rng = make_renderer(seed), random.Random(seed)
    tails = []
    for _ in range(POOL):
        body = orjson.dumps(render(rng, 0, "x"))
        head = b'{"id":"x","date_create":0'
        assert body.startswith(head)
        tails.append(body[len(head) :])
    return tails


_OP_ACTIONS = [
    ("reveal", "item", 30),
    ("update", "item", 8),
    ("create", "item", 6),
    ("delete", "item", 2),
    ("share", "item", 3),
    ("join", "vault", 2),
    ("grant", "vault", 3),
    ("revoke", "vault", 1),
    ("create", "vault", 1),
    ("suspend", "user", 0.5),
    ("reactivate", "user", 0.3),
    ("invite", "user", 1),
    ("provision", "user", 0.5),
    ("updatemfa", "user", 0.5),
    ("changename", "user", 0.3),
    ("sso-login", "account", 12),
    ("begin-recovery", "user", 0.2),
    ("addcustomer", "group", 0.2),
    ("updatepolicy", "account", 0.1),
    ("export", "account", 0.1),
]
_CITIES = [
    ("CA", "Ontario", "Toronto", 43.65, -79.38),
    ("US", "California", "San Francisco", 37.77, -122.42),
    ("DE", "Berlin", "Berlin", 52.52, 13.40),
    ("GB", "England", "London", 51.51, -0.13),
    ("IN", "Karnataka", "Bengaluru", 12.97, 77.59),
    ("BR", "Sao Paulo", "Sao Paulo", -23.55, -46.63),
    ("US", "New York", "New York", 40.71, -74.01),
    ("NL", "North Holland", "Amsterdam", 52.37, 4.90),
]
_NAMES = "Ava Ben Chloe Dmitri Elena Farah Gabriel Hana Ivan Jonas Kenji Lena Mateo Nia Omar Priya".split()
_SURNAMES = "Okafor Schmidt Tanaka Rossi Novak Haddad Silva Kim Larsen Moreau Patel Nguyen".split()
_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _op_uuid(rng: random.Random) -> str:
    return "".join(rng.choices(_B32, k=26))


def _onepassword_pool(seed: int) -> list[bytes]:
    """1Password Events API v2 auditevents items (fields as in its reference), after `"timestamp":"..."`."""
    rng = random.Random(seed)
    people = [(_op_uuid(rng), f"{f} {s}", f"{f.lower()}.{s.lower()}@example.com") for f in _NAMES for s in _SURNAMES]
    vaults = [_op_uuid(rng) for _ in range(40)]
    account = _op_uuid(rng)
    weights = [w for _, _, w in _OP_ACTIONS]
    tails = []
    for _ in range(POOL):
        action, object_type, _ = rng.choices(_OP_ACTIONS, weights)[0]
        actor = rng.choice(people)
        country, region, city, lat, lon = rng.choice(_CITIES)
        event = {
            "uuid": "x",
            "timestamp": "x",
            "actor_uuid": actor[0],
            "actor_details": {"uuid": actor[0], "name": actor[1], "email": actor[2]},
            "account_uuid": account,
            "action": action,
            "object_type": object_type,
            "object_uuid": rng.choice(vaults) if object_type == "vault" else _op_uuid(rng),
            "aux_id": rng.randrange(1, 90000),
            "aux_uuid": rng.choice(vaults),
            "aux_info": rng.choice(["", "{accessor: 1, permissions: 126}", "{vault_name: Engineering}", "B"]),
            "session": {
                "uuid": _op_uuid(rng),
                "login_time": f"2026-02-28T{rng.randrange(24):02d}:{rng.randrange(60):02d}:11Z",
                "device_uuid": _op_uuid(rng),
                "ip": f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            },
            "location": {
                "country": country,
                "region": region,
                "city": city,
                "latitude": round(lat + rng.uniform(-0.2, 0.2), 4),
                "longitude": round(lon + rng.uniform(-0.2, 0.2), 4),
            },
        }
        if object_type == "item" and rng.random() < 0.5:
            system, role = (
                rng.choice(["AWS", "GitHub", "Okta", "VPN", "DB"]),
                rng.choice(["prod", "staging", "root", "admin"]),
            )
            event["object_details"] = {"title": f"{system} {role}"}
        body = orjson.dumps(event)
        head = b'{"uuid":"x","timestamp":"x"'
        assert body.startswith(head)
        tails.append(body[len(head) :])
    return tails


_SP_OPERATIONS = [
    ("FileAccessed", 40),
    ("FileModified", 12),
    ("FileDownloaded", 10),
    ("FilePreviewed", 10),
    ("FileUploaded", 6),
    ("PageViewed", 10),
    ("SharingSet", 2),
    ("AnonymousLinkCreated", 0.5),
    ("FileDeleted", 2),
    ("FileRecycled", 1),
    ("SearchQueryPerformed", 3),
]
_SP_SITES = ["Finance", "Engineering", "HR", "Legal", "Sales", "Marketing", "Board", "IT"]
_SP_FILES = [
    ("Q1 budget", "xlsx"),
    ("Roadmap 2026", "pptx"),
    ("Offer letter", "docx"),
    ("Contract draft", "docx"),
    ("Architecture", "vsdx"),
    ("Payroll", "xlsx"),
    ("Minutes", "docx"),
    ("Diagram", "png"),
    ("Report", "pdf"),
]
_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36",
    "Microsoft Office Excel 2014",
    "OneDriveMpc-Transform_Thumbnail/1.0",
    "Microsoft SkyDriveSync 24.201 ship; Windows NT 10.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605",
]


def _guid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _office365_pool(seed: int) -> list[bytes]:
    """Office 365 Management Activity API SharePoint records (the common and SharePoint schemas' fields, as in
    Microsoft's sample), after `"CreationTime":"...","Id":"..."`."""
    rng = random.Random(seed)
    organization = _guid(rng)
    people = [
        (f"{f.lower()}.{s.lower()}@contoso.com", f"i:0h.f|membership|{rng.getrandbits(52):x}@live.com")
        for f in _NAMES
        for s in _SURNAMES
    ]
    sites = {name: (_guid(rng), _guid(rng), _guid(rng)) for name in _SP_SITES}
    weights = [w for _, w in _SP_OPERATIONS]
    tails = []
    for _ in range(POOL):
        operation = rng.choices(_SP_OPERATIONS, weights)[0][0]
        user, key = rng.choice(people)
        site = rng.choice(_SP_SITES)
        site_id, web_id, list_id = sites[site]
        title, extension = rng.choice(_SP_FILES)
        name = f"{title} {rng.randrange(1, 400)}.{extension}"
        address = ".".join(
            map(
                str,
                (rng.choice([20, 40, 52, 81, 104, 185]), rng.randrange(256), rng.randrange(256), rng.randrange(1, 255)),
            )
        )
        record = {
            "CreationTime": "x",
            "Id": "x",
            "Operation": operation,
            "OrganizationId": organization,
            "RecordType": 6,
            "UserKey": key,
            "UserType": 0,
            "Version": 1,
            "Workload": "SharePoint",
            "ClientIP": address,
            "ObjectId": f"https://contoso.sharepoint.com/sites/{site}/Shared Documents/{name}",
            "UserId": user,
            "CorrelationId": _guid(rng),
            "EventSource": "SharePoint",
            "ItemType": "File",
            "ListId": list_id,
            "ListItemUniqueId": _guid(rng),
            "Site": site_id,
            "UserAgent": rng.choice(_AGENTS),
            "WebId": web_id,
            "HighPriorityMediaProcessing": False,
            "SourceFileExtension": extension,
            "SiteUrl": f"https://contoso.sharepoint.com/sites/{site}/",
            "SourceFileName": name,
            "SourceRelativeUrl": "Shared Documents",
        }
        body = orjson.dumps(record)
        head = b'{"CreationTime":"x","Id":"x"'
        assert body.startswith(head)
        tails.append(body[len(head) :])
    return tails


def office365_content_id(k: int) -> str:
    """Blob k's contentId: like Microsoft's, `$`-separated (the collector must fetch its URI with them intact)."""
    return f"{20260301000000000 + k}${20260301000000000 + k}$audit_sharepoint$Audit_SharePoint$emea0008${k}"


def render_office365(n: int, seed: int = 8) -> tuple[list[bytes], list[bytes]]:
    """(listing pages, blob bodies) for N records: blobs of BLOB_RECORDS records (bare JSON arrays, records'
    `CreationTime` without a zone, as the API has it), listed max_page_size a page, oldest first, each blob's
    `contentCreated` just after its last record and inside the window. Listings hold `@HOST@` for the server's
    own origin, filled in per request."""
    tails = _office365_pool(seed)
    blobs, entries = [], []
    for k in range(-(-n // BLOB_RECORDS)):
        ids = range(k * BLOB_RECORDS, min((k + 1) * BLOB_RECORDS, n))
        blobs.append(
            b"[%s]"
            % b",".join(
                b'{"CreationTime":"%s","Id":"%s"%s'
                % (_rfc3339(event_second(i, n))[:-1].encode(), event_id(i).encode(), tails[i % POOL])
                for i in ids
            )
        )
        created = datetime.fromtimestamp(min(event_second(ids[-1], n) + 1, WINDOW_END.timestamp() - 1), timezone.utc)
        expires = created + timedelta(days=7)
        content_id = office365_content_id(k)
        entries.append(
            orjson.dumps(
                {
                    "contentType": "Audit.SharePoint",
                    "contentId": content_id,
                    "contentUri": f"@HOST@{O365_FEED}audit/{content_id}",
                    "contentCreated": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                    "contentExpiration": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                }
            )
        )
    size = OFFICE365.max_page_size
    listings = [b"[%s]" % b",".join(entries[k : k + size]) for k in range(0, len(entries), size)]
    return listings, blobs


def cursor(page: int) -> str:
    return base64.b64encode(f"page:{page}".encode()).decode()


def page_of(value: str) -> int:
    return int(base64.b64decode(value).decode().split(":")[1])


def render_pages(shape: Shape, n: int, seed: int = 8) -> list[bytes]:
    """Every page of the dataset, each holding `max_page_size` events (the last fewer), in API order:
    Slack newest first with a body cursor, 1Password oldest first with cursor + has_more."""
    size = shape.max_page_size
    pages = []
    count = -(-n // size)
    if shape is SLACK:
        tails = _slack_pool(seed)
        for k in range(count):
            events = [
                b'{"id":"%s","date_create":%d%s' % (event_id(i).encode(), event_second(i, n), tails[i % POOL])
                for i in range(n - 1 - k * size, max(n - (k + 1) * size, 0) - 1, -1)
            ]
            next_cursor = cursor(k + 1) if k + 1 < count else ""
            pages.append(
                b'{"ok":true,"entries":[%s],"response_metadata":{"next_cursor":"%s"}}'
                % (b",".join(events), next_cursor.encode())
            )
    else:
        tails = _onepassword_pool(seed)
        for k in range(count):
            events = [
                b'{"uuid":"%s","timestamp":"%s"%s'
                % (event_id(i).encode(), _rfc3339(event_second(i, n)).encode(), tails[i % POOL])
                for i in range(k * size, min((k + 1) * size, n))
            ]
            more = b"true" if k + 1 < count else b"false"
            pages.append(
                b'{"items":[%s],"cursor":"%s","has_more":%s}' % (b",".join(events), cursor(k + 1).encode(), more)
            )
    return pages


def _rfc3339(second: int) -> str:
    return datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_params(shape: Shape) -> dict:
    """The first request's window filter as each API wants it."""
    if shape is OFFICE365:
        return {
            "contentType": "Audit.SharePoint",
            "startTime": f"{WINDOW_START:%Y-%m-%dT%H:%M:%S}",
            "endTime": f"{WINDOW_END:%Y-%m-%dT%H:%M:%S}",
            "PublisherIdentifier": O365_TENANT,
        }
    if shape is SLACK:
        return {
            "oldest": int(WINDOW_START.timestamp()),
            "latest": int(WINDOW_END.timestamp()),
            "limit": shape.max_page_size,
        }
    return {
        "limit": shape.max_page_size,
        "start_time": _rfc3339(int(WINDOW_START.timestamp())),
        "end_time": _rfc3339(int(WINDOW_END.timestamp())),
    }
