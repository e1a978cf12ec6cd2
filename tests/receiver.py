"""A real HTTP receiver on loopback for tests: it can be down (refusing, or answering
503) and come back, and it keeps every request it took, bytes and headers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.procs import free_port


class Receiver:
    """POST requests on http://127.0.0.1:<port>/; `check` may refuse one (raise)."""

    def __init__(self, check: Callable[[bytes, dict[str, str]], Any] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.taken: list[tuple[dict[str, str], bytes]] = []
        self.refused = 0
        self.answer = 204  # 503: up, but not taking anything
        self._check = check
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.answer
                if status < 300 and receiver._check is not None:
                    try:
                        receiver._check(body, headers)
                    except Exception:
                        status = 401
                if status < 300:
                    receiver.taken.append((headers, body))
                else:
                    receiver.refused += 1
                self.send_response(status)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: nothing listens on the port."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
