"""A local HTTP server for connector tests: stdlib ``ThreadingHTTPServer`` in
a thread on 127.0.0.1 and a free port, answering through a route function.

The fake API keeps its own clock (also sent as the ``Date`` header, as real
servers do), logs every request, and can be told to answer the next requests
with a fault (a 429, a 500) or to stall, so tests drive the failure paths
through real HTTP.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["ApiServer", "Request", "Reply"]


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]  # the last value of each parameter
    headers: dict[str, str]  # names lower-cased
    body: Any  # parsed JSON, or None


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-able
    headers: dict[str, str] = field(default_factory=dict)


class _Quiet(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a stalled answer closes its socket: expected here


class ApiServer:
    def __init__(self, route: Callable[[Request], Reply], *, clock: float = 1_700_000_000.0) -> None:
        self.route = route
        self.clock = clock  # epoch seconds; only tests move it
        self.requests: list[Request] = []
        self.faults: deque[Reply] = deque()
        self.stall_s = 0.0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def date_time_string(self, timestamp: float | None = None) -> str:
                return email.utils.formatdate(server.clock, usegmt=True)

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path,
                                  {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()},
                                  {k.lower(): v for k, v in self.headers.items()},
                                  json.loads(raw) if raw else None)
                if server.stall_s:
                    time.sleep(server.stall_s)
                with server.lock:
                    server.requests.append(request)
                    reply = server.faults.popleft() if server.faults else server.route(request)
                payload = json.dumps(reply.body).encode() if reply.body is not None else b""
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = _Quiet(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), name="fake-api",
                                       daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> ApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def tick(self, seconds: float) -> None:
        with self.lock:
            self.clock += seconds

    def fail_next(self, reply: Reply, times: int = 1) -> None:
        with self.lock:
            self.faults.extend([reply] * times)

    def take_requests(self) -> list[Request]:
        """The requests since the last call."""
        with self.lock:
            taken, self.requests = self.requests, []
        return taken
