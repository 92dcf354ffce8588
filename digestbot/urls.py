"""URL identity and link resolution: canonical article URLs, absolute http(s) links, hosts."""

from __future__ import annotations

import re
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import idna

TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "dclid", "mc_cid", "mc_eid", "igshid", "ref_src", "_ga", "yclid",
    "msclkid",
})
DEFAULT_PORTS = {"http": 80, "https": 443}
WEB_SCHEMES = frozenset({"http", "https"})

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
# Characters a path or query part may carry unescaped; "%" stays so existing escapes survive.
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_PART_SAFE = "/:@!$'()*+,;?-._~%"
# WHATWG URL parsing drops ASCII tab and newline anywhere in a link; feeds often wrap long ones.
_TAB_NEWLINE = re.compile(r"[\t\r\n]")


def normalize_escapes(part: str, safe: str) -> str:
    """Take a URL component; return it with unreserved escapes decoded and the rest upper-cased."""
    part = _LONE_PERCENT.sub("%25", part)

    def fix(m: re.Match[str]) -> str:
        char = chr(int(m.group(1), 16))
        return char if char in _UNRESERVED else "%" + m.group(1).upper()

    return quote(_ESCAPE.sub(fix, part), safe=safe)


def remove_dot_segments(path: str) -> str:
    """Take a URL path and return it with "." and ".." segments applied (RFC 3986 5.2.4)."""
    if "." not in path:
        return path
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") or not path.startswith("/") else "/" + result


def encode_host(host: str) -> str:
    """Take a host name and return it lower-cased, without a trailing dot, IDN as punycode."""
    host = host.strip().rstrip(".").lower()
    if not host or host.isascii():
        return host
    try:
        return idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        try:
            return host.encode("idna").decode("ascii")
        except UnicodeError:
            return host


def format_host(host: str) -> str:
    """Take a host as urlsplit gives it and return it as a URL authority writes it."""
    return f"[{host}]" if ":" in host else encode_host(host)


def canonicalize_url(url: str) -> str:
    """Take an article URL and return its canonical form, the article's identity."""
    url = _TAB_NEWLINE.sub("", url.strip())
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return url
    scheme = parts.scheme.lower()
    netloc = parts.netloc
    if parts.hostname is not None:
        netloc = format_host(parts.hostname)
        if port is not None and DEFAULT_PORTS.get(scheme) != port:
            netloc = f"{netloc}:{port}"
        if parts.username is not None:
            userinfo = parts.netloc.rpartition("@")[0]
            netloc = f"{userinfo}@{netloc}"
    path = remove_dot_segments(normalize_escapes(parts.path, _PATH_SAFE))
    if netloc:
        path = path.rstrip("/") or "/"
    return urlunsplit((scheme, netloc, path, canonical_query(parts.query), ""))


def canonical_query(query: str) -> str:
    """Take a raw query string and return it without tracking params, params sorted."""
    kept: list[str] = []
    for pair in query.split("&"):
        if not pair:
            continue
        key, eq, value = pair.partition("=")
        key = normalize_escapes(key, _QUERY_PART_SAFE)
        name = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), key).lower()
        if name.startswith("utm_") or name in TRACKING_PARAMS:
            continue
        kept.append(key + eq + normalize_escapes(value, _QUERY_PART_SAFE + "="))
    return "&".join(sorted(kept))


def resolve_link(base: str, link: str | None) -> str | None:
    """Take a feed/page URL and a link found in it; return the absolute http(s) URL or None."""
    if link is None:
        return None
    link = _TAB_NEWLINE.sub("", link.strip())
    if not link:
        return None
    try:
        absolute = urljoin(_TAB_NEWLINE.sub("", base.strip()), link)
        parts = urlsplit(absolute)
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError:
        return None
    if parts.scheme.lower() not in WEB_SCHEMES or not parts.hostname:
        return None
    return absolute


def host_of(url: str) -> str:
    """Take a URL and return its host, lower-cased and punycode, without port; "" if none."""
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return ""
    return encode_host(host) if host else ""
