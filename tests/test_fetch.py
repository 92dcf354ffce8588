"""The HTTP edge against real local servers: statuses, redirects, caps, deadlines, SSRF guard."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
import tracemalloc
import zlib
from collections.abc import Coroutine
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any, TypeVar

import pytest
from conftest import LocalServer, Response

from digestbot.errors import BlockedAddressError, FetchError
from digestbot.fetch import (
    check_peer_address,
    content_hash,
    decode_html,
    fetch_url,
    is_blocked_address,
    make_client,
    parse_retry_after,
)
from digestbot.records import FetchResult

T = TypeVar("T")
USER_AGENT = "digestbot-test/1.0 (+https://digestbot.example/bot)"
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Quay Post</title></channel></rss>'


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine with a hard time bound so no test can hang."""
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout=20)
    return asyncio.run(bounded())


def fetch(url: str, **kwargs: Any) -> FetchResult:
    """Fetch one URL with a fresh client (private addresses allowed unless told otherwise)."""
    kwargs.setdefault("allow_private", True)
    kwargs.setdefault("deadline", 10.0)

    async def go() -> FetchResult:
        async with make_client(user_agent=USER_AGENT, timeout=5.0) as client:
            return await fetch_url(client, url, **kwargs)
    return run(go())




def test_ok_response_headers_and_user_agent(server: LocalServer) -> None:
    server.routes["/feed.xml"] = Response(RSS, headers={"ETag": '"abc"',
                                                        "Last-Modified": "Tue, 06 May 2031"})
    result = fetch(server.url("/feed.xml"))
    assert result.status == 200
    assert result.content == RSS
    assert result.url == result.final_url == server.url("/feed.xml")
    assert result.headers["content-type"] == "application/rss+xml; charset=utf-8"
    assert result.etag == '"abc"'
    assert result.last_modified == "Tue, 06 May 2031"
    assert 0 < result.elapsed < 10
    assert not result.not_modified
    seen = server.requests[0].headers
    assert seen["User-Agent"] == USER_AGENT
    assert seen["Accept"].startswith("application/rss+xml")
    assert "gzip" in seen["Accept-Encoding"]
    assert "If-None-Match" not in seen


def test_conditional_get_returns_304_with_validators(server: LocalServer) -> None:
    def answer(handler: BaseHTTPRequestHandler) -> Response:
        if handler.headers.get("If-None-Match") == '"v7"':
            return Response(b"", status=304, headers={"ETag": '"v7"'})
        return Response(RSS, headers={"ETag": '"v7"'})
    server.routes["/feed.xml"] = Response(dynamic=answer)
    first = fetch(server.url("/feed.xml"))
    assert first.status == 200 and first.etag == '"v7"'
    again = fetch(server.url("/feed.xml"), etag='"v7"',
                  last_modified="Wed, 07 May 2031 10:00:00 GMT")
    assert again.status == 304
    assert again.not_modified
    assert again.content == b""
    assert again.etag == '"v7"'
    assert again.last_modified == "Wed, 07 May 2031 10:00:00 GMT"
    sent = server.requests[1].headers
    assert sent["If-None-Match"] == '"v7"'
    assert sent["If-Modified-Since"] == "Wed, 07 May 2031 10:00:00 GMT"


@pytest.mark.parametrize("status", [404, 410, 500, 502])
def test_error_status_raises_fetch_error_with_status(server: LocalServer, status: int) -> None:
    server.routes["/x"] = Response(b"nope", status=status, content_type="text/plain")
    with pytest.raises(FetchError) as info:
        fetch(server.url("/x"))
    assert info.value.status == status
    assert info.value.reason == f"HTTP {status}"
    assert info.value.retry_after is None


def test_429_with_retry_after_seconds(server: LocalServer) -> None:
    server.routes["/busy"] = Response(b"", status=429, headers={"Retry-After": "120"})
    with pytest.raises(FetchError) as info:
        fetch(server.url("/busy"))
    assert info.value.status == 429
    assert info.value.retry_after == 120.0


def test_503_with_retry_after_http_date(server: LocalServer) -> None:
    later = datetime.fromtimestamp(time.time() + 3600, tz=UTC)
    stamp = later.strftime("%a, %d %b %Y %H:%M:%S GMT")
    server.routes["/down"] = Response(b"", status=503, headers={"Retry-After": stamp})
    with pytest.raises(FetchError) as info:
        fetch(server.url("/down"))
    assert info.value.status == 503
    assert info.value.retry_after is not None
    assert 3500 < info.value.retry_after <= 3600


def test_parse_retry_after_forms() -> None:
    now = datetime(2031, 5, 6, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after("Tue, 06 May 2031 12:05:00 GMT", now) == 300.0
    assert parse_retry_after("Tue, 06 May 2031 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_relative_redirect_is_followed(server: LocalServer) -> None:
    server.routes["/old"] = Response(b"", status=301, headers={"Location": "new/feed.xml"})
    server.routes["/new/feed.xml"] = Response(b"", status=307,
                                              headers={"Location": "/final.xml"})
    server.routes["/final.xml"] = Response(RSS)
    result = fetch(server.url("/old"))
    assert result.content == RSS
    assert result.url == server.url("/old")
    assert result.final_url == server.url("/final.xml")
    assert server.paths_requested() == ["/old", "/new/feed.xml", "/final.xml"]


def test_redirect_chain_up_to_the_limit_works_and_longer_fails(server: LocalServer) -> None:
    for i in range(6):
        server.routes[f"/r{i}"] = Response(b"", status=302, headers={"Location": f"/r{i + 1}"})
    server.routes["/r6"] = Response(RSS)
    assert fetch(server.url("/r3"), max_redirects=3).final_url == server.url("/r6")
    server.requests.clear()
    with pytest.raises(FetchError, match=r"too many redirects \(more than 3\)"):
        fetch(server.url("/r0"), max_redirects=3)
    # The fourth redirect is never followed.
    assert server.paths_requested() == ["/r0", "/r1", "/r2", "/r3"]


def test_redirect_loop_is_detected(server: LocalServer) -> None:
    server.routes["/a"] = Response(b"", status=302, headers={"Location": "/b"})
    server.routes["/b"] = Response(b"", status=302, headers={"Location": "/a"})
    with pytest.raises(FetchError, match="redirect loop"):
        fetch(server.url("/a"), max_redirects=10)
    assert len(server.requests) == 2


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://files.example/x",
                                      "javascript:alert(1)"])
def test_redirect_to_non_web_scheme_is_refused(server: LocalServer, location: str) -> None:
    server.routes["/go"] = Response(b"", status=302, headers={"Location": location})
    with pytest.raises(FetchError, match=r"not an http|invalid URL"):
        fetch(server.url("/go"))


def test_redirect_without_location_fails(server: LocalServer) -> None:
    server.routes["/nowhere"] = Response(b"", status=302)
    with pytest.raises(FetchError, match="without Location") as info:
        fetch(server.url("/nowhere"))
    assert info.value.status == 302


def test_body_over_the_cap_is_refused_and_at_the_cap_accepted(server: LocalServer) -> None:
    server.routes["/big"] = Response(b"x" * 2_000_001)
    server.routes["/exact"] = Response(b"y" * 1_000)
    with pytest.raises(FetchError, match="response exceeds 2000000 bytes"):
        fetch(server.url("/big"), max_bytes=2_000_000)
    assert len(fetch(server.url("/exact"), max_bytes=1_000).content) == 1_000


def test_gzip_body_is_decoded(server: LocalServer) -> None:
    server.routes["/z"] = Response(RSS * 50, gzip=True)
    assert fetch(server.url("/z")).content == RSS * 50


@pytest.mark.parametrize("raw", [False, True])
def test_deflate_body_is_decoded_with_or_without_zlib_header(server: LocalServer,
                                                             raw: bool) -> None:
    packer = zlib.compressobj(wbits=-15 if raw else 15)
    body = packer.compress(RSS * 50) + packer.flush()
    server.routes["/d"] = Response(body, headers={"Content-Encoding": "deflate"})
    assert fetch(server.url("/d")).content == RSS * 50


def test_corrupt_gzip_is_a_fetch_error(server: LocalServer) -> None:
    server.routes["/bad"] = Response(b"\x1f\x8b\x08\x00garbage-not-deflate" * 10,
                                     headers={"Content-Encoding": "gzip"})
    with pytest.raises(FetchError, match="could not decode gzip"):
        fetch(server.url("/bad"))


def test_gzip_bomb_is_cut_at_the_cap_without_inflating_it(server: LocalServer) -> None:
    bomb = gzip.compress(b"\0" * 200_000_000, compresslevel=9)
    assert len(bomb) < 300_000
    server.routes["/bomb"] = Response(bomb, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        with pytest.raises(FetchError, match="response exceeds 1000000 bytes"):
            fetch(server.url("/bomb"), max_bytes=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One inflated 64 KiB network read alone would be ~64 MB; we never hold more than a few MB.
    assert peak < 12_000_000


def test_endless_chunked_body_is_cut_at_the_cap(raw_server: Any) -> None:
    def endless(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n%s\r\n" % (65536, b"a" * 65536)
        while not stop.is_set():
            conn.sendall(chunk)
    srv = raw_server(endless)
    started = time.monotonic()
    with pytest.raises(FetchError, match="response exceeds 500000 bytes"):
        fetch(srv.url(), max_bytes=500_000)
    assert time.monotonic() - started < 5


def test_trickling_server_hits_the_deadline(raw_server: Any) -> None:
    def trickle(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 100000\r\n\r\n")
        while not stop.is_set():
            conn.sendall(b"<")
            time.sleep(0.1)
    srv = raw_server(trickle)
    started = time.monotonic()
    with pytest.raises(FetchError, match=r"deadline of 1.5s exceeded"):
        fetch(srv.url(), deadline=1.5)
    assert 1.4 < time.monotonic() - started < 3.5


def test_silent_server_hits_the_deadline(raw_server: Any) -> None:
    def silent(conn: socket.socket, stop: threading.Event) -> None:
        stop.wait(5)
    srv = raw_server(silent)
    started = time.monotonic()
    with pytest.raises(FetchError, match="deadline"):
        fetch(srv.url(), deadline=1.0)
    assert time.monotonic() - started < 3


def test_garbage_response_is_a_fetch_error(raw_server: Any) -> None:
    def garbage(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"SPEAK FRIEND AND ENTER\r\n\r\n")
    srv = raw_server(garbage)
    with pytest.raises(FetchError, match="connection failed"):
        fetch(srv.url())


def test_connection_refused_is_a_fetch_error() -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(FetchError, match="connection failed") as info:
        fetch(f"http://127.0.0.1:{port}/feed.xml")
    assert info.value.status is None


@pytest.mark.parametrize("url", ["ftp://files.example/feed", "http://", "not a url",
                                 "http://127.0.0.1:99999/"])
def test_unusable_url_is_a_fetch_error(url: str) -> None:
    with pytest.raises(FetchError):
        fetch(url)


def test_private_address_is_blocked_before_connecting(server: LocalServer) -> None:
    server.routes["/feed.xml"] = Response(RSS)
    with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.1 is not public"):
        fetch(server.url("/feed.xml"), allow_private=False)
    with pytest.raises(BlockedAddressError):
        fetch(f"http://localhost:{server.port}/feed.xml", allow_private=False)
    assert server.requests == []
    assert fetch(server.url("/feed.xml"), allow_private=True).content == RSS


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data/",
                                 "http://[::1]:9/x", "http://[::ffff:127.0.0.1]:9/x",
                                 "http://10.1.2.3/", "http://0.0.0.0:9/"])
def test_literal_private_addresses_are_blocked(url: str) -> None:
    started = time.monotonic()
    with pytest.raises(BlockedAddressError, match="is not public"):
        fetch(url, allow_private=False)
    # Refused before any connection attempt, so no timeout is waited for.
    assert time.monotonic() - started < 2


def test_connected_peer_address_is_checked(server: LocalServer) -> None:
    server.routes["/feed.xml"] = Response(RSS)

    async def go() -> None:
        async with make_client(user_agent=USER_AGENT) as client:
            request = client.build_request("GET", server.url("/feed.xml"))
            response = await client.send(request, stream=True)
            try:
                check_peer_address(server.url("/feed.xml"), response)
            finally:
                await response.aclose()
    with pytest.raises(BlockedAddressError, match=r"127\.0\.0\.1"):
        run(go())


@pytest.mark.parametrize("address", [
    "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.255.1", "192.168.1.20",
    "169.254.169.254", "127.0.0.1", "127.8.9.10", "0.0.0.0", "100.64.0.1", "224.0.0.251",
    "255.255.255.255", "240.0.0.1", "::1", "::", "fc00::1", "fd12:3456::1", "fe80::1",
    "fe80::1%eth0", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254",
    "2002:7f00:0001::1", "2002:a9fe:a9fe::", "64:ff9b::a9fe:a9fe", "2001:db8::1", "not-an-ip",
])
def test_non_public_addresses_are_blocked(address: str) -> None:
    assert is_blocked_address(address)


@pytest.mark.parametrize("address", [
    "93.184.216.34", "8.8.8.8", "1.1.1.1", "2606:4700::", "2606:4700::1111",
    "2001:4860:4860::8888", "2002:5db8:d822::1",
])
def test_public_addresses_pass(address: str) -> None:
    assert not is_blocked_address(address)


def test_content_hash_is_sha256_hex() -> None:
    assert content_hash(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert content_hash(RSS) != content_hash(RSS + b" ")


def page(content: bytes, content_type: str = "text/html") -> FetchResult:
    """A fetched HTML page as fetch_url would return it."""
    return FetchResult(url="https://p.example/", final_url="https://p.example/", status=200,
                       content=content, headers={"content-type": content_type})


def test_decode_html_uses_content_type_charset() -> None:
    body = "<p>“Ferry” café</p>".encode("cp1252")
    assert decode_html(page(body, "text/html; charset=ISO-8859-1")) == "<p>“Ferry” café</p>"


def test_decode_html_uses_meta_charset_when_header_has_none() -> None:
    body = '<html><head><meta charset="windows-1251"></head><p>Привет</p>'.encode("cp1251")
    assert "Привет" in decode_html(page(body))
    legacy = ('<meta http-equiv="Content-Type" content="text/html; charset=koi8-r">'
              "<p>Мир</p>").encode("koi8-r")
    assert "Мир" in decode_html(page(legacy))


def test_decode_html_bom_wins_over_labels() -> None:
    body = b"\xef\xbb\xbf" + "<p>Zürich</p>".encode()
    assert decode_html(page(body, "text/html; charset=iso-8859-1")) == "<p>Zürich</p>"
    utf16 = "<p>Zürich</p>".encode("utf-16")
    assert decode_html(page(utf16)) == "<p>Zürich</p>"


def test_decode_html_unknown_or_missing_charset_falls_back_to_utf8() -> None:
    assert decode_html(page("<p>Zürich</p>".encode(), "text/html; charset=bogus")) == \
        "<p>Zürich</p>"
    broken = decode_html(page(b"<p>Z\xfcrich</p>"))
    assert broken == "<p>Z\ufffdrich</p>"
