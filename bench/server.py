"""A fast local API serving pre-rendered pages from memory, counting requests and TCP connections.

Slack shape: `GET /audit/v1/logs?oldest&latest&limit[&cursor]`, Bearer token, body cursor.
1Password shape: `POST /api/v2/auditevents` with a JSON ResetCursor or `{"cursor": ...}`, Bearer token.
A request that drops the window filter or asks for another page size gets 400: each pipeline must page
the way a real client has to. `GET /_bench/stats` and `POST /_bench/reset` are for the harness.

Run as `python -m bench.server --shape slack --events N --port-file PATH`.
"""

from __future__ import annotations

import argparse
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson

from bench.dataset import ONEPASSWORD, SHAPES, SLACK, TOKEN, page_of, render_pages, window_params


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.connections = 0
        self.bytes = 0

    def as_dict(self):
        return {"requests": self.requests, "connections": self.connections, "bytes": self.bytes}


def make_handler(shape, pages: list[bytes], stats: Stats):
    expected = {k: str(v) for k, v in window_params(shape).items()}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self):
            super().setup()
            with stats.lock:
                stats.connections += 1

        def log_message(self, *args):
            pass

        def _send(self, status: int, body: bytes):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

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
                with stats.lock:
                    stats.requests = stats.connections = stats.bytes = 0
                return self._send(200, b"{}")
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
            page = pages[index]
            with stats.lock:
                stats.requests += 1
                stats.bytes += len(page)
            self._send(200, page)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shape", choices=sorted(SHAPES), required=True)
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    shape = SHAPES[args.shape]
    pages = render_pages(shape, args.events)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(shape, pages, Stats()))
    server.daemon_threads = True
    Path(args.port_file).write_text(str(server.server_address[1]))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
