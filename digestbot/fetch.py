"""The HTTP edge: size-capped, deadline-bound, SSRF-guarded GETs with conditional requests."""

from __future__ import annotations

import asyncio
import codecs
import hashlib
import ipaddress
import re
import socket
import time
import zlib
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpx

from digestbot.errors import BlockedAddressError, FetchError
from digestbot.records import FetchResult
from digestbot.text import BIDI_CONTROLS

DEFAULT_ACCEPT = ("application/rss+xml, application/atom+xml, application/xml;q=0.9, "
                  "text/xml;q=0.9, */*;q=0.8")
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# We decode bodies ourselves so a compressed body can be capped before it is inflated.
ACCEPT_ENCODING = "gzip, deflate"
DECODE_STEP = 64 * 1024
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
_META_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""",
    re.IGNORECASE)
# Browsers read these labels as windows-1252; Python's latin-1 would turn curly quotes into C1.
_WINDOWS_1252_LABELS = frozenset({"iso-8859-1", "iso8859-1", "latin-1", "latin1", "l1", "ascii",
                                  "us-ascii", "iso_8859-1", "cp819", "ibm819"})


_KEEPALIVE = 16


def make_client(*, user_agent: str, timeout: float = 20.0,
                max_connections: int = 32) -> httpx.AsyncClient:
    """Take the user agent and limits; return the one shared client (redirects not followed)."""
    return httpx.AsyncClient(
        headers={"User-Agent": user_agent},
        timeout=httpx.Timeout(timeout),
        # httpcore scans every pooled connection once per idle one on each request, so a pool
        # holding many idle connections costs CPU quadratically; a few are enough for reuse.
        limits=httpx.Limits(max_connections=max_connections,
                            max_keepalive_connections=min(max_connections, _KEEPALIVE)),
        follow_redirects=False,
        # A proxy from the environment would make the connected address the proxy's.
        trust_env=False,
    )


def is_blocked_address(address: str) -> bool:
    """Take an IP address string; return True when it is not a public unicast address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0].strip("[]"))
    except ValueError:
        return True
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None and is_blocked_address(str(embedded)):
            return True
        if ip.teredo is not None and any(is_blocked_address(str(a)) for a in ip.teredo):
            return True
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def check_address(url: str, address: str) -> None:
    """Take a URL and an address it reaches; raise BlockedAddressError unless it is public."""
    if is_blocked_address(address):
        raise BlockedAddressError(url, f"address {address} is not public")


async def check_host(url: str) -> None:
    """Take a URL; resolve its host and raise BlockedAddressError if any address is private."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    else:
        check_address(url, host)
        return
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, parts.port or 0, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise FetchError(url, f"DNS lookup failed for {host}: {exc}") from None
    if not infos:
        raise FetchError(url, f"DNS lookup found no address for {host}")
    for info in infos:
        check_address(url, str(info[4][0]))


def check_peer_address(url: str, response: httpx.Response) -> None:
    """Take a streamed response; raise BlockedAddressError if it came from a private address."""
    stream = response.extensions.get("network_stream")
    peer = stream.get_extra_info("server_addr") if stream is not None else None
    if not peer:
        raise BlockedAddressError(url, "could not verify the connected address")
    check_address(url, str(peer[0]))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Take a Retry-After header (seconds or HTTP-date) and the time; return seconds to wait."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class BodyDecoder:
    """Inflates a gzip/deflate body in bounded steps so no step yields more than asked."""

    def __init__(self, url: str, encoding: str) -> None:
        self.url = url
        self.encoding = encoding
        self.started = False
        self.inflater: zlib._Decompress | None = None
        if encoding in ("gzip", "x-gzip"):
            self.inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif encoding == "deflate":
            self.inflater = zlib.decompressobj(zlib.MAX_WBITS)
        elif encoding not in ("", "identity"):
            raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")

    def decode(self, data: bytes, limit: int) -> bytes:
        """Take raw bytes and a byte limit; return at most limit+1 decoded bytes of them."""
        if self.inflater is None:
            return data
        if self.encoding == "deflate" and not self.started and data:
            self.started = True
            # Some servers send raw deflate without the zlib header the RFC asks for.
            has_header = (len(data) >= 2 and data[0] & 0x0F == 8
                          and ((data[0] << 8) | data[1]) % 31 == 0)
            if not has_header:
                self.inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        out: list[bytes] = []
        produced = 0
        pending = data
        try:
            while True:
                step = min(DECODE_STEP, limit + 1 - produced)
                chunk = self.inflater.decompress(pending, step)
                pending = self.inflater.unconsumed_tail
                out.append(chunk)
                produced += len(chunk)
                # A full step may leave output pending inside zlib even with no input left.
                if produced > limit or (len(chunk) < step and not pending):
                    break
        except zlib.error as exc:
            raise FetchError(self.url, f"could not decode {self.encoding} body: {exc}") from None
        return b"".join(out)


async def read_body(url: str, response: httpx.Response, max_bytes: int) -> bytes:
    """Take a streamed response and a cap; return its decoded body or raise past the cap."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    decoder = BodyDecoder(url, encoding)
    declared = response.headers.get("content-length", "")
    if decoder.inflater is None and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(url, f"response exceeds {max_bytes} bytes")
    chunks: list[bytes] = []
    total = 0
    async for raw in response.aiter_raw():
        chunk = decoder.decode(raw, max_bytes - total)
        total += len(chunk)
        if total > max_bytes:
            raise FetchError(url, f"response exceeds {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def build_headers(accept: str, etag: str | None, last_modified: str | None) -> dict[str, str]:
    """Take Accept and the validators; return the request headers of a conditional GET."""
    # Per request, so a caller's own client cannot ask for an encoding we cannot cap.
    headers = {"Accept": accept, "Accept-Encoding": ACCEPT_ENCODING}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    return headers


def check_scheme(url: str) -> None:
    """Take a URL; raise FetchError unless it is an absolute http(s) URL."""
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise FetchError(url, f"invalid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise FetchError(url, "not an http(s) URL")


async def fetch_url(client: httpx.AsyncClient, url: str, *, etag: str | None = None,
                    last_modified: str | None = None, max_bytes: int = 10_000_000,
                    deadline: float = 60.0, max_redirects: int = 5,
                    allow_private: bool = False,
                    accept: str = DEFAULT_ACCEPT) -> FetchResult:
    """Take a client and URL; return the FetchResult (200 or 304) or raise FetchError."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(deadline):
            return await follow_redirects(
                client, url, build_headers(accept, etag, last_modified),
                max_bytes=max_bytes, max_redirects=max_redirects,
                allow_private=allow_private, started=started, etag=etag,
                last_modified=last_modified)
    except FetchError:
        raise
    except TimeoutError:
        raise FetchError(url, f"deadline of {deadline:g}s exceeded") from None
    except httpx.InvalidURL as exc:
        # httpx parses a redirect's Location itself, before we get to judge it.
        raise FetchError(url, f"invalid URL: {exc}") from None
    except httpx.TimeoutException:
        raise FetchError(url, "timed out") from None
    except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError,
            httpx.WriteError) as exc:
        raise FetchError(url, f"connection failed: {str(exc) or type(exc).__name__}") from None
    except httpx.HTTPError as exc:
        raise FetchError(url, f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # the contract: callers only ever see FetchError
        raise FetchError(url, f"unexpected {type(exc).__name__}: {exc}") from None


async def follow_redirects(client: httpx.AsyncClient, url: str, headers: dict[str, str], *,
                           max_bytes: int, max_redirects: int, allow_private: bool,
                           started: float, etag: str | None,
                           last_modified: str | None) -> FetchResult:
    """Take the request settings; return the final hop's FetchResult, checking every hop."""
    current = url
    seen = {url}
    for _hop in range(max_redirects + 1):
        check_scheme(current)
        if not allow_private:
            await check_host(current)
        request = client.build_request("GET", current, headers=headers)
        response = await client.send(request, stream=True)
        try:
            if not allow_private:
                check_peer_address(current, response)
            if response.status_code in REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise FetchError(url, f"HTTP {response.status_code} without Location",
                                     status=response.status_code)
                current = urljoin(current, location.strip())
                if current in seen:
                    raise FetchError(url, f"redirect loop at {current}")
                seen.add(current)
                continue
            return await build_result(url, current, response, max_bytes=max_bytes,
                                      started=started, etag=etag, last_modified=last_modified)
        finally:
            await response.aclose()
    raise FetchError(url, f"too many redirects (more than {max_redirects})")


async def build_result(url: str, final_url: str, response: httpx.Response, *, max_bytes: int,
                       started: float, etag: str | None,
                       last_modified: str | None) -> FetchResult:
    """Take the final streamed response; return its FetchResult or raise on an error status."""
    status = response.status_code
    headers = dict(response.headers.items())
    if status == 304:
        content = b""
    elif 200 <= status < 300:
        content = await read_body(url, response, max_bytes)
    else:
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"), datetime.now(UTC))
        raise FetchError(url, f"HTTP {status}", status=status, retry_after=retry_after)
    return FetchResult(
        url=url, final_url=final_url, status=status, content=content, headers=headers,
        etag=headers.get("etag") or (etag if status == 304 else None),
        last_modified=headers.get("last-modified") or (last_modified if status == 304 else None),
        elapsed=time.monotonic() - started)


def content_hash(data: bytes) -> str:
    """Take a body; return its sha256 hex digest."""
    return hashlib.sha256(data).hexdigest()


def lookup_charset(label: str | None) -> str | None:
    """Take a charset label; return the Python codec name for it, or None if unknown."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    if label in _WINDOWS_1252_LABELS:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


def decode_html(result: FetchResult) -> str:
    """Take a fetched page; return its text decoded by BOM, Content-Type, then <meta> charset,
    without bidi embedding/override/isolate controls."""
    return read_html(result).translate(BIDI_CONTROLS)


def read_html(result: FetchResult) -> str:
    """Take a fetched page; return its text decoded by BOM, Content-Type, then <meta> charset."""
    data = result.content
    # A byte order mark is unambiguous, so it wins over labels (as in the HTML standard).
    for bom, bom_codec in ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
                           (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return data[len(bom):].decode(bom_codec, errors="replace")
    header = _CHARSET.search(result.headers.get("content-type", ""))
    codec = lookup_charset(header.group(1) if header else None)
    if codec is None:
        meta = _META_CHARSET.search(data[:4096])
        label = (meta.group(1) or meta.group(2)) if meta else None
        codec = lookup_charset(label.decode("ascii", "replace") if label else None)
        # A page read as ASCII bytes cannot really be UTF-16; browsers ignore that label too.
        if codec is not None and codec.startswith("utf-16"):
            codec = "utf-8"
    return data.decode(codec or "utf-8", errors="replace")
