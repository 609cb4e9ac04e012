"""The one webhook receiver of the tests: records every POST (path, headers, JSON body) and answers 200, or
the statuses a test queued with `answer()` first. Slack, the generic webhook and stock notifiers post to
different paths of it. In a test module: `with WebhookReceiver() as receiver`, or the `webhook_receiver`
fixture (tests/conftest.py)."""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[dict] = []
        self._answers: deque[int] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(
                        {
                            "path": self.path,
                            "headers": {k.lower(): v for k, v in self.headers.items()},
                            "body": json.loads(body or b"null"),
                        }
                    )
                    status = receiver._answers.popleft() if receiver._answers else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, *statuses: int) -> None:
        """The statuses the next POSTs get, in order (then 200 again)."""
        with self._lock:
            self._answers.extend(statuses)

    def posts(self, path_prefix: str = "/") -> list[dict]:
        with self._lock:
            return [dict(post) for post in self.received if post["path"].startswith(path_prefix)]

    def bodies(self, path_prefix: str = "/") -> list:
        return [post["body"] for post in self.posts(path_prefix)]
