"""Generic HTTP core: routing, request log, fault injection and the /_sandbox/ admin API.

API modules only contribute routes (see sources.py); everything a test needs to
observe or perturb the traffic lives here, identical for every API.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson

from sandbox.admin import SandboxAdmin
from sandbox.events import Clock
from sandbox.faults import FaultQueue, fault_response, parse_fault, random_schedule
from sandbox.scenario import Scenario, load_scenario
from sandbox.sources import SOURCE_TYPES, event_store
from sandbox.truth import truth_events
from sandbox.web import Handler, Request, Response, Route, json_response

logger = logging.getLogger("sandbox")

ADMIN_PREFIX = "/_sandbox/"
# Bounds memory of a long-running demo server; tests clear the log long before this.
MAX_LOGGED_REQUESTS = 100_000


class RequestLog:
    """Every API request (admin calls excluded), recorded before the response is sent."""

    def __init__(self) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=MAX_LOGGED_REQUESTS)
        self._lock = threading.Lock()

    def record(self, req: Request, status: int, at: float, fault: str | None) -> None:
        headers = dict(req.headers)
        auth = headers.get("authorization")
        scheme = auth.partition(" ")[0] if auth else None
        if auth is not None:
            headers["authorization"] = f"{scheme} <redacted>"
        entry = {
            "method": req.method,
            "path": req.path,
            "query": req.query,
            "headers": headers,
            "auth_scheme": scheme,
            "auth_ok": req.auth_ok,
            "body": req.body.decode("utf-8", "replace") if req.body else None,
            "status": status,
            "at": at,
            "connection": req.connection,
            "fault": fault,
        }
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class Epoch:
    """The time between two resets. A request that arrived before a reset belongs to the test that sent it:
    a reset cuts its delay fault short and it is then neither answered nor recorded, so an abandoned slow
    request never lands in the next test's log or budget. `in_flight` counts API requests being handled."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self.number = 0
        self.in_flight = 0

    def begin(self) -> int:
        with self._changed:
            self.in_flight += 1
            self._changed.notify_all()
            return self.number

    def end(self) -> None:
        with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def next(self) -> None:
        with self._changed:
            self.number += 1
            self._changed.notify_all()

    def sleep(self, number: int, seconds: float) -> bool:
        """Sleeps up to `seconds` unless epoch `number` ends first; whether it is still current."""
        with self._changed:
            return not self._changed.wait_for(lambda: self.number != number, seconds)

    def wait_idle(self, timeout: float) -> bool:
        """Waits until no API request is being handled: a test that let a slow answer time out waits for it
        here, so the request is recorded in its own log rather than cut short by the next reset."""
        with self._changed:
            return self._changed.wait_for(lambda: self.in_flight == 0, timeout)

    def wait_in_flight(self, count: int, timeout: float) -> bool:
        """Waits until at least `count` API requests are being handled (for tests that reset mid-request)."""
        with self._changed:
            return self._changed.wait_for(lambda: self.in_flight >= count, timeout)


class SandboxServer:
    """A sandbox on a background thread: `with SandboxServer(scenario) as srv: srv.url`.

    The socket is bound in the constructor, so `url` is known before `start()`.
    """

    def __init__(
        self,
        scenario: Scenario | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.scenario = load_scenario(scenario)
        self.clock = Clock()
        self.faults = FaultQueue()
        self.requests = RequestLog()
        self.epoch = Epoch()
        self._apis = [
            SOURCE_TYPES[name].make_api(config, event_store(self.scenario, name), self.clock)
            for name, config in self.scenario.sources.items()
        ]
        self._routes: dict[str, dict[str, Handler]] = {}
        for route in [r for api in self._apis for r in api.routes()] + self._admin_routes():
            methods = self._routes.setdefault(route.path, {})
            if route.method in methods:
                raise ValueError(f"duplicate route {route.method} {route.path}")
            methods[route.method] = route.handler
        self._httpd = _HTTPServer((host, port), self)
        self.host = host
        self.port: int = self._httpd.server_address[1]
        self.url = f"http://{host}:{self.port}"
        self.admin = SandboxAdmin(self.url)
        self._thread: threading.Thread | None = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> SandboxServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sandbox-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections so no handler thread lingers."""
        self.epoch.next()  # wakes handlers sleeping in a delay fault
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        for conn in list(self._httpd.connections):
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()

    def reset(self) -> None:
        """Forget requests (those still in flight too: see Epoch), faults, clock override and rate-limit
        windows (between tests)."""
        self.epoch.next()
        self.requests.clear()
        self.faults.clear()
        self.clock.set(None)
        for api in self._apis:
            api.reset()

    def pass_rate_limit_windows(self) -> None:
        """As if every rate-limit window had passed: for a test whose injected sleep stands in for the wait."""
        for api in self._apis:
            api.reset()

    def dispatch(self, req: Request) -> Response:
        methods = self._routes.get(req.path) or self._routes.get(self._prefix_of(req.path), None)
        if methods is None:
            return json_response(404, {"ok": False, "error": "unknown_method"})
        handler = methods.get(req.method)
        if handler is None:
            return json_response(
                405, {"ok": False, "error": "method_not_allowed"}, {"Allow": ", ".join(sorted(methods))}
            )
        try:
            return handler(req)
        except Exception:
            logger.exception("handler for %s %s failed", req.method, req.path)
            return json_response(500, {"ok": False, "error": "internal_error"})

    def _prefix_of(self, path: str) -> str:
        """The route `prefix*` that `path` falls under (O365's content URIs end in a blob id), or ''."""
        prefixes = [route for route in self._routes if route.endswith("*") and path.startswith(route[:-1])]
        return max(prefixes, key=len, default="")

    def _admin_routes(self) -> list[Route]:
        p = ADMIN_PREFIX
        return [
            Route("GET", p + "health", lambda req: json_response(200, {"ok": True})),
            Route("GET", p + "requests", lambda req: json_response(200, self.requests.entries())),
            Route("DELETE", p + "requests", lambda req: _ok(self.requests.clear())),
            Route("GET", p + "faults", lambda req: json_response(200, {"faults": self.faults.pending()})),
            Route("POST", p + "faults", self._add_faults),
            Route("POST", p + "faults/random", self._add_random_faults),
            Route("DELETE", p + "faults", lambda req: _ok(self.faults.clear())),
            Route("GET", p + "clock", lambda req: json_response(200, self._clock_state())),
            Route("POST", p + "clock", self._set_clock),
            Route("GET", p + "truth", self._truth),
            Route("POST", p + "reset", lambda req: _ok(self.reset())),
        ]

    def _add_faults(self, req: Request) -> Response:
        try:
            body = orjson.loads(req.body or b"null")
            if not isinstance(body, dict) or not isinstance(body.get("faults"), list):
                raise ValueError('expected {"faults": [...]}')
            faults = [parse_fault(raw) for raw in body["faults"]]
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            return json_response(400, {"ok": False, "error": "invalid_fault", "detail": str(exc)})
        self.faults.add(faults)
        return json_response(200, {"ok": True, "pending": len(self.faults.pending())})

    def _add_random_faults(self, req: Request) -> Response:
        try:
            body = orjson.loads(req.body or b"null")
            if not isinstance(body, dict) or not isinstance(body.get("seed"), int):
                raise ValueError('expected {"seed": N, ...}')
            faults = random_schedule(**body)
        except (ValueError, TypeError) as exc:
            return json_response(400, {"ok": False, "error": "invalid_fault", "detail": str(exc)})
        self.faults.add(faults)
        return json_response(200, {"ok": True, "faults": [f.to_dict() for f in faults]})

    def _clock_state(self) -> dict[str, Any]:
        return {"ok": True, "now": self.clock.now(), "frozen": self.clock.fixed is not None}

    def _set_clock(self, req: Request) -> Response:
        try:
            body = orjson.loads(req.body or b"null")
        except orjson.JSONDecodeError:
            body = None
        now = body.get("now", False) if isinstance(body, dict) else False
        if now is not None and (isinstance(now, bool) or not isinstance(now, (int, float))):
            return json_response(
                400, {"ok": False, "error": "invalid_clock", "detail": 'expected {"now": <unix seconds> | null}'}
            )
        self.clock.set(now)
        return json_response(200, self._clock_state())

    def _truth(self, req: Request) -> Response:
        try:
            source = req.param("source") or ""
            start, end = float(req.param("start") or ""), float(req.param("end") or "")
            ids = [e.id for e in truth_events(source, start, end, self.scenario, self.clock.now())]
        except ValueError as exc:
            return json_response(400, {"ok": False, "error": "invalid_truth_query", "detail": str(exc)})
        return json_response(200, {"ids": ids, "count": len(ids)})


def _ok(_: None) -> Response:
    return json_response(200, {"ok": True})


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], sandbox: SandboxServer) -> None:
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping connections (often on purpose, in fault tests) is not an error.
        logger.debug("connection %s ended abruptly", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox"
    # Headers and body are separate writes; with Nagle on, delayed ACKs add ~40 ms per response.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connections.discard(self.connection)

    def _handle(self) -> None:
        at = time.time()
        sandbox = self.server.sandbox
        url = urlsplit(self.path)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "invalid Content-Length")
            return
        req = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=self.rfile.read(length) if length > 0 else b"",
            connection="{}:{}".format(*self.client_address[:2]),
        )
        if url.path.startswith(ADMIN_PREFIX):
            self._send(sandbox.dispatch(req))
            return
        epoch = sandbox.epoch.begin()
        try:
            fault = sandbox.faults.take(url.path)
            kind = fault.kind if fault else None
            if fault is not None and kind == "delay" and not sandbox.epoch.sleep(epoch, fault.seconds):
                self.close_connection = True  # reset while it waited: its test is over, no answer
                return
            resp = fault_response(fault) if fault is not None and kind in ("status", "html") else sandbox.dispatch(req)
            if sandbox.epoch.number != epoch:
                self.close_connection = True
                return
            sandbox.requests.record(req, resp.status, at, fault and (fault.label or kind))
        finally:
            sandbox.epoch.end()
        if kind == "reset":
            self._send_reset(resp)
        else:
            self._send(resp, truncate=kind == "truncate")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _send_head(self, resp: Response) -> None:
        self.send_response(resp.status)
        for name, value in resp.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(resp.body)))
        self.end_headers()

    def _send(self, resp: Response, truncate: bool = False) -> None:
        """Send the response; `truncate` sends half the body under the full Content-Length, then closes."""
        self._send_head(resp)
        self.wfile.write(resp.body[: len(resp.body) // 2] if truncate else resp.body)
        if truncate:
            self.close_connection = True

    def _send_reset(self, resp: Response) -> None:
        """Headers only, then a TCP RST (SO_LINGER 0) instead of the body."""
        self._send_head(resp)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drop the makefile reference so close() really closes the fd
        self.connection.close()
        self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Path only: query strings could carry credentials for some APIs; headers are never logged.
        logger.info("%s %s %s %s", self.client_address[0], self.command, urlsplit(self.path).path, code)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.client_address[0], *args)
