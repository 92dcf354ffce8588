"""Shared parts of the hostile-input and fault tests: config, feeds, raw servers, a poll runner."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx

from digestbot.config import Config, load_config
from digestbot.feedlog import FeedState
from digestbot.pipeline import FeedReport, PollReport, poll
from digestbot.store import Store

CORPUS = Path(__file__).parent
NOW = datetime.now(UTC).replace(microsecond=0)

# The well-behaved feed that shares every poll with a hostile one.
CONTROL_ITEMS = (
    ("Lantern festival returns to Varrow quay", "https://varrow-post.example/lanterns",
     "The lantern festival returns to Varrow quay this weekend, organisers said."),
    ("Varrow council approves new harbour crane", "https://varrow-post.example/crane",
     "Councillor Ilse Marrow said the harbour crane would be working by spring."),
)


def read_corpus(name: str) -> bytes:
    """Take a corpus file name; return its bytes."""
    return (CORPUS / name).read_bytes()


def rss_items(items: list[tuple[str, str, str]], *, title: str = "Feed",
              age: timedelta = timedelta(hours=1)) -> str:
    """Take (title, link, description) triples; return an RSS 2.0 document."""
    entries = "".join(
        f"<item><title>{t}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{format_datetime(NOW - age)}</pubDate><description>{d}</description></item>"
        for t, link, d in items)
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>{title}</title>{entries}</channel></rss>")


def control_feed() -> str:
    """Return the control feed's RSS body."""
    return rss_items(list(CONTROL_ITEMS), title="Varrow Post")


def write_config(tmp_path: Path, feeds: list[tuple[str, str]], *, full_text: bool = False,
                 allow_private: bool = True, deadline: float = 3.0,
                 max_bytes: int = 1_000_000, max_redirects: int = 5,
                 concurrency: int = 16) -> Path:
    """Take (url, name) feeds and fetch settings; write config + watchlist, return its path."""
    folder = tmp_path / "watchlists"
    folder.mkdir(exist_ok=True)
    (folder / "watch.yaml").write_text(
        "name: watch\n"
        "deliver:\n  - console: {}\n"
        "topics:\n"
        "  - name: Everything\n    query: 'varrow OR harbour OR quay OR feed OR story OR item'\n",
        encoding="utf-8")
    lines = [
        "timezone: UTC",
        "database: sqlite:///state/digestbot.db",
        "fetch:",
        f"  full_text: {'true' if full_text else 'false'}",
        f"  allow_private: {'true' if allow_private else 'false'}",
        f"  deadline: {deadline}",
        "  timeout: 2",
        f"  max_bytes: {max_bytes}",
        f"  max_redirects: {max_redirects}",
        f"  concurrency: {concurrency}",
        "feeds:",
        *(f"  - {{url: '{url}', name: '{name}'}}" for url, name in feeds),
        "watchlists_dir: watchlists",
    ]
    path = tmp_path / "digestbot.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@dataclass
class Outcome:
    """What one bounded poll did: its report, the store afterwards and how long it took."""

    config: Config
    report: PollReport
    elapsed: float
    states: dict[str, FeedState]
    stored_urls: set[str]

    def feed(self, url: str) -> FeedReport:
        """Take a feed URL; return its FeedReport."""
        return next(r for r in self.report.feeds if r.url == url)


def run_poll(config_path: Path, *, client: httpx.AsyncClient | None = None,
             bound: float = 20.0) -> Outcome:
    """Take a config file; poll once with a hard time bound, return the Outcome."""
    config = load_config(config_path, env={})
    started = time.monotonic()
    with Store.open(config.database) as store:
        report = asyncio.run(asyncio.wait_for(poll(config, store, client=client), bound))
        elapsed = time.monotonic() - started
        states = {s.url: s for s in store.feeds.states()}
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        stored = {a.url for a, _ in store.placed_articles_since(epoch)}
        stored.update(store.unplaced_urls(epoch))
    return Outcome(config, report, elapsed, states, stored)


def assert_control_ok(outcome: Outcome, control_url: str) -> None:
    """Take an Outcome; assert the control feed polled fine and its articles are stored."""
    report = outcome.feed(control_url)
    assert (report.status, report.error) == ("ok", None)
    assert {link for _, link, _ in CONTROL_ITEMS} <= outcome.stored_urls
    assert outcome.states[control_url].error_count == 0




def trickle(conn: socket.socket, stop: threading.Event) -> None:
    """Answer 200 with a long Content-Length, then one byte a second."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                 b"Content-Length: 100000\r\n\r\n")
    while not stop.is_set():
        conn.sendall(b"<")
        stop.wait(1.0)


def endless(conn: socket.socket, stop: threading.Event) -> None:
    """Answer 200 with a chunked body that never ends."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (65536, b"<x>" * 21845 + b"a")
    while not stop.is_set():
        conn.sendall(chunk)


class _PeerStream:
    """The part of httpcore's network stream that the SSRF guard reads."""

    def __init__(self, address: str) -> None:
        self.address = address

    def get_extra_info(self, name: str) -> Any:
        return (self.address, 80) if name == "server_addr" else None


class PublicHostTransport(httpx.AsyncBaseTransport):
    """Stands in for the internet: requests to `public_ip` are served by the local server and
    reported as coming from that public address; every other request goes out unchanged."""

    def __init__(self, public_ip: str, local_port: int) -> None:
        self.public_ip = public_ip
        self.local_port = local_port
        self.inner = httpx.AsyncHTTPTransport()
        self.public_requests: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != self.public_ip:
            return await self.inner.handle_async_request(request)
        self.public_requests.append(str(request.url))
        request.url = request.url.copy_with(host="127.0.0.1", port=self.local_port)
        response = await self.inner.handle_async_request(request)
        response.extensions = {**response.extensions,
                               "network_stream": _PeerStream(self.public_ip)}
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()
