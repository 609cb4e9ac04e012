"""A fast local API serving pre-rendered pages from memory, counting requests and TCP connections.

Slack shape: `GET /audit/v1/logs?oldest&latest&limit[&cursor]`, Bearer token, body cursor.
1Password shape: `POST /api/v2/auditevents` with a JSON ResetCursor or `{"cursor": ...}`, Bearer token.
Office 365 shape: the Management Activity API's `POST /{tenant}/oauth2/v2.0/token` (client credentials),
`GET subscriptions/list` (Audit.SharePoint on), `GET subscriptions/content` with contentType, startTime,
endTime (the next listing page in the `NextPageUri` header, an `/api/v1/` URL with `nextPage=`) and
`GET audit/{contentId}` (a bare array of records); PublisherIdentifier on every API call.
A request that drops the window filter or asks for another page size gets 400: each pipeline must page
the way a real client has to. `GET /_bench/stats` and `POST /_bench/reset` are for the harness.

Run as `python -m bench.server --shape slack --events N --port-file PATH`.
"""

from __future__ import annotations

import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import orjson

from bench.dataset import (
    O365_CLIENT,
    O365_FEED,
    O365_TENANT,
    ONEPASSWORD,
    SHAPES,
    SLACK,
    TOKEN,
    cursor,
    page_of,
    render_office365,
    render_pages,
    window_params,
)


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.connections = 0
        self.bytes = 0

    def as_dict(self):
        return {"requests": self.requests, "connections": self.connections, "bytes": self.bytes}


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    stats: Stats

    def setup(self):
        super().setup()
        with self.stats.lock:
            self.stats.connections += 1

    def log_message(self, *args):
        pass

    def _send(self, status: int, body: bytes, headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _counted(self, status: int, body: bytes, headers: dict | None = None):
        with self.stats.lock:
            self.stats.requests += 1
            self.stats.bytes += len(body)
        self._send(status, body, headers)

    def _reset(self):
        with self.stats.lock:
            self.stats.requests = self.stats.connections = self.stats.bytes = 0
        self._send(200, b"{}")


def make_handler(shape, pages: list[bytes], stats: Stats):
    expected = {k: str(v) for k, v in window_params(shape).items()}

    class Handler(BaseHandler):
        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/_bench/stats":
                return self._send(200, orjson.dumps(stats.as_dict()))
            if shape is not SLACK or url.path != shape.path:
                return self._send(404, b'{"error":"not_found"}')
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            cursor = query.pop("cursor", None)
            self._page(query, cursor)

        def do_POST(self):
            url = urlsplit(self.path)
            body = self._body()
            if url.path == "/_bench/reset":
                return self._reset()
            if shape is not ONEPASSWORD or url.path != shape.path:
                return self._send(404, b'{"error":"not_found"}')
            try:
                request = orjson.loads(body) if body else {}
            except orjson.JSONDecodeError:
                return self._send(400, b'{"error":"bad_json"}')
            cursor = request.pop("cursor", None)
            if cursor is not None:
                request = dict(expected)  # a cursor carries the window, as 1Password's does
            self._page({k: str(v) for k, v in request.items()}, cursor)

        def _page(self, query: dict, cursor: str | None):
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._send(401, b'{"error":"invalid_authentication"}')
            if query != expected:
                return self._send(400, orjson.dumps({"error": "bad_filter", "expected": expected, "got": query}))
            index = page_of(cursor) if cursor else 0
            if not 0 <= index < len(pages):
                return self._send(400, b'{"error":"invalid_cursor"}')
            self._counted(200, pages[index])

    Handler.stats = stats
    return Handler


def make_office365_handler(listings: list[bytes], blobs: list[bytes], stats: Stats):
    """Every call but the token's needs the issued Bearer token and PublisherIdentifier; a listing request
    must carry the window filter exactly, and a wrong nextPage or contentId is a 400/404 as Microsoft's."""
    expected = window_params(SHAPES["office365"])
    listing_paths = {f"/api/{version}/{O365_TENANT}/activity/feed/subscriptions/content" for version in ("v1.0", "v1")}
    client_id, _, secret = O365_CLIENT.partition(":")

    class Handler(BaseHandler):
        def do_POST(self):
            url, form = urlsplit(self.path), {k: v[0] for k, v in parse_qs(self._body().decode()).items()}
            if url.path == "/_bench/reset":
                return self._reset()
            if url.path != f"/{O365_TENANT}/oauth2/v2.0/token":
                return self._send(404, b'{"error":"not_found"}')
            if (form.get("grant_type"), form.get("client_id"), form.get("client_secret")) != (
                "client_credentials",
                client_id,
                secret,
            ):
                return self._counted(401, b'{"error":"invalid_client"}')
            self._counted(200, orjson.dumps({"token_type": "Bearer", "expires_in": "3599", "access_token": TOKEN}))

        def do_GET(self):
            url = urlsplit(self.path)
            if url.path == "/_bench/stats":
                return self._send(200, orjson.dumps(stats.as_dict()))
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._counted(401, b'{"error":{"code":"AF10001","message":"no valid token"}}')
            if query.get("PublisherIdentifier") != O365_TENANT:
                return self._counted(400, b'{"error":{"code":"bench","message":"no PublisherIdentifier"}}')
            if url.path == O365_FEED + "subscriptions/list":
                return self._counted(200, b'[{"contentType":"Audit.SharePoint","status":"enabled","webhook":null}]')
            if url.path.startswith(O365_FEED + "audit/"):
                index = unquote(url.path).rsplit("$", 1)[-1]
                if not index.isdigit() or int(index) >= len(blobs):
                    return self._counted(404, b'{"error":{"code":"AF20051","message":"Content requested not found"}}')
                return self._counted(200, blobs[int(index)])
            if url.path not in listing_paths:
                return self._send(404, b'{"error":"not_found"}')
            page = query.pop("nextPage", None)
            if query != expected:
                error = {"code": "AF20055", "expected": expected, "got": query}
                return self._counted(400, orjson.dumps({"error": error}))
            index = page_of(page) if page else 0
            host = f"http://{self.headers['Host']}"
            headers = {}
            if index + 1 < len(listings):
                params = {k: v for k, v in expected.items() if k != "PublisherIdentifier"}
                headers["NextPageUri"] = (
                    f"{host}/api/v1/{O365_TENANT}/activity/feed/subscriptions/content?"
                    f"{urlencode({**params, 'nextPage': cursor(index + 1)})}"
                )
            self._counted(200, listings[index].replace(b"@HOST@", host.encode()), headers)

    Handler.stats = stats
    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    shape = SHAPES[args.shape]
    if shape.blobs:
        handler = make_office365_handler(*render_office365(args.events), Stats())
    else:
        handler = make_handler(shape, render_pages(shape, args.events), Stats())
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    Path(args.port_file).write_text(str(server.server_address[1]))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
