"""Shared test fixtures: a real HTTP server on 127.0.0.1 and real SQLite files."""

from __future__ import annotations

import gzip
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fake_slack import FakeSlackServer

from digestbot.store import Store

_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                    "all_proxy")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep a CI proxy from catching the tests' requests to 127.0.0.1 (slack-sdk uses it)."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """Put back the digestbot logger's handlers that a CLI run in a test replaces, so later
    tests never log to a closed capture stream."""
    logger = logging.getLogger("digestbot")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved[0], saved[1], saved[2]


@dataclass
class Response:
    """What the local server answers for one path."""

    body: bytes | str = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/rss+xml; charset=utf-8"
    gzip: bool = False
    # Called instead of the fields above when set: (handler) -> Response
    dynamic: Callable[[BaseHTTPRequestHandler], Response] | None = None


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (size caps, deadlines) are expected, not errors."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalServer:
    """A threaded HTTP server on 127.0.0.1 whose routes tests set and whose requests they read."""

    def __init__(self) -> None:
        self.routes: dict[str, Response] = {}
        self.requests: list[SeenRequest] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server._lock:
                    server.requests.append(
                        SeenRequest(self.command, self.path, dict(self.headers.items()), body))
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    route = Response(b"not found", status=404, content_type="text/plain")
                if route.dynamic is not None:
                    route = route.dynamic(self)
                payload = route.body.encode("utf-8") if isinstance(route.body, str) else route.body
                if route.gzip:
                    payload = gzip.compress(payload)
                self.send_response(route.status)
                if route.content_type:
                    self.send_header("Content-Type", route.content_type)
                if route.gzip:
                    self.send_header("Content-Encoding", "gzip")
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = _serve
            do_POST = _serve
            do_HEAD = _serve

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def paths_requested(self) -> list[str]:
        with self._lock:
            return [r.path for r in self.requests]

    def start(self) -> LocalServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

class RawServer:
    """A TCP server on 127.0.0.1 whose handler writes raw bytes to each connection."""

    def __init__(self, handler: Callable[[socket.socket, threading.Event], None]) -> None:
        self.handler = handler
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)  # the request; its content does not matter here
                self.handler(conn, self.stop)
            except OSError:
                pass

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        self.sock.close()
        self.thread.join(timeout=2)


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A fresh local HTTP server; set `server.routes[path] = Response(...)`."""
    srv = LocalServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLAlchemy URL of a real SQLite file in a temporary folder."""
    return f"sqlite:///{tmp_path / 'digestbot.db'}"


@pytest.fixture
def postgres_url() -> str:
    """The PostgreSQL test database, or a skip naming why."""
    url = os.environ.get("DIGESTBOT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("DIGESTBOT_TEST_POSTGRES_URL is not set; PostgreSQL tests need a server")
    return url


@pytest.fixture
def store(sqlite_url: str) -> Iterator[Store]:
    """A Store on a real SQLite file, closed afterwards."""
    with Store.open(sqlite_url) as st:
        yield st


@pytest.fixture
def slack() -> Iterator[FakeSlackServer]:
    """A fake Slack Web API on 127.0.0.1 (slack-sdk reaches it through `base_url`)."""
    srv = FakeSlackServer().start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def raw_server() -> Iterator[Callable[[Callable[[socket.socket, threading.Event], None]],
                                      RawServer]]:
    """Start raw servers for a test and stop them all afterwards."""
    started: list[RawServer] = []

    def start(handler: Callable[[socket.socket, threading.Event], None]) -> RawServer:
        srv = RawServer(handler)
        started.append(srv)
        return srv
    yield start
    for srv in started:
        srv.close()
