"""A scripted hostile HTTP server on 127.0.0.1, for the hostile-API test tier.

The vendor fakes (`server.py`) behave as the real APIs do; this one behaves as an attacker's or a broken
API would: each request is answered by the test's `script(request) -> Reply`, which controls the wire
(status, headers, a body sent in chunks with pauses, a connection dropped mid-body). Every request is
recorded as sent, credentials included, so a test can assert where the token went.

    def script(request: HostileRequest) -> Reply:
        return Reply(200, body=b'{"entries": []}', headers={"Content-Type": "application/json"})

    with HostileServer(script) as api:
        ... api.url ... api.requests ...
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class HostileRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names, values as sent
    body: bytes
    #: 1 for the first request the server saw, 2 for the next, ...
    number: int
    #: The client's (host, port): requests over one kept-alive TCP connection share it.
    peer: tuple[str, int] = ("", 0)


@dataclass
class Reply:
    status: int = 200
    #: The whole body, or chunks sent one after another (with `pause` seconds before each but the first).
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    pause: float = 0.0
    #: Sent as Content-Length; None: the length of `body` when it is bytes, else no length (close-delimited).
    content_length: int | None = None
    #: Drop the connection after the body (or after this many body bytes when `cut_after` is set).
    cut_after: int | None = None


Script = Callable[[HostileRequest], Reply]


class HostileServer:
    def __init__(self, script: Script, host: str = "127.0.0.1", keep_bodies: bool = True):
        self.script = script
        #: False: the script still gets each body, `requests` keeps none (tests measuring the client's memory).
        self.keep_bodies = keep_bodies
        self.requests: list[HostileRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self.url = f"http://{host}:{self._httpd.server_address[1]}"
        self._thread: threading.Thread | None = None

    def __enter__(self) -> HostileServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()  # ends slow drips at once
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()

    def _record(self, handler: BaseHTTPRequestHandler, body: bytes) -> HostileRequest:
        split = urlsplit(handler.path)
        with self._lock:
            request = HostileRequest(
                method=handler.command,
                path=split.path,
                query=parse_qs(split.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in handler.headers.items()},
                body=body,
                number=len(self.requests) + 1,
                peer=tuple(handler.client_address[:2]),
            )
            self.requests.append(request if self.keep_bodies else replace(request, body=b""))
        return request


def _handler_for(server: HostileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = server._record(self, self.rfile.read(length) if length else b"")
            reply = server.script(request)
            chunks = [reply.body] if isinstance(reply.body, bytes) else reply.body
            self.send_response_only(reply.status)
            headers = dict(reply.headers)
            if reply.content_length is not None:
                headers["Content-Length"] = str(reply.content_length)
            elif isinstance(reply.body, bytes):
                headers["Content-Length"] = str(len(reply.body))
            else:
                headers["Connection"] = "close"
                self.close_connection = True
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            sent = 0
            try:
                for index, chunk in enumerate(chunks):
                    if index and reply.pause and server._stopping.wait(reply.pause):
                        break
                    if reply.cut_after is not None and sent + len(chunk) >= reply.cut_after:
                        self.wfile.write(chunk[: reply.cut_after - sent])
                        break
                    self.wfile.write(chunk)
                    sent += len(chunk)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
                return
            if reply.cut_after is not None:
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler
