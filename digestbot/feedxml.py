"""Fast feed reading: well-formed RSS 2.0, RSS 1.0 and Atom 1.0 through lxml, read as feedparser
reads them.

feedparser stays the authority. This module mirrors, for a whitelist of elements, what
feedparser's strict (SAX) parser stores for the fields `feeds.build_entries` reads (title, link,
id, summary, content, published/updated, author) and the feed's title and ttl, in the same
dict shapes. Any element, attribute or structure whose effect it does not mirror makes it give
up (`read_feed_fast` returns None) so the caller runs feedparser instead.
"""

from __future__ import annotations

import codecs
import re
import threading
from dataclasses import dataclass
from typing import Any

from feedparser.encodings import convert_to_utf8, parse_content_type
from feedparser.urls import make_safe_absolute_uri
from lxml import etree

from digestbot.feedxml_read import (
    KNOWN_NS,
    ROOTS,
    STD_PREFIXES,
    Fallback,
    Reader,
    normalise_ns,
)

# A document that binds one of feedparser's own prefixes (dc, content, ...) to another
# namespace makes feedparser rename elements; those are left to it, as are xml:base (and any
# "base" attribute), which moves the base URI, and xlink declarations, which feedparser copies
# into the next element's attributes.
_XMLNS_DECL = re.compile(rb"""xmlns:([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_BASE_XPATH = "boolean(//@*[translate(local-name(), 'BASE', 'base') = 'base'])"
_XLINK = b"http://www.w3.org/1999/xlink"
_UTF16_BOMS = (codecs.BOM_UTF16_BE, codecs.BOM_UTF16_LE)
_MARKERS = frozenset({b"\x4c\x6f\xa7\x94", b"\x00\x3c\x00\x3f", b"\x3c\x00\x3f\x00",
                      b"\x00\x00\x00\x3c", b"\x3c\x00\x00\x00", codecs.BOM_UTF32_BE,
                      codecs.BOM_UTF32_LE})
_APPLICATION_XML = frozenset({"application/xml", "application/xml-dtd",
                              "application/xml-external-parsed-entity"})
_XML_DECLARATION = re.compile(r"^<\?xml[^>]*?>")
_NEW_DECLARATION = "<?xml version='1.0' encoding='utf-8'?>"


@dataclass(frozen=True, slots=True)
class RawFeed:
    """A feed as feedparser would report it: its feed dict and entry dicts (same keys)."""

    feed: dict[str, Any]
    entries: list[dict[str, Any]]


# Polls parse in worker threads; each thread gets its own parser and XPath evaluator, which
# lxml would otherwise serialise behind one lock.
_local = threading.local()


def xml_tools() -> tuple[Any, Any]:
    """Return this thread's XML parser (no entities, network, DTDs or huge trees) and the XPath
    that finds "base" attributes."""
    tools = getattr(_local, "tools", None)
    if tools is None:
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False,
                                 huge_tree=False, remove_comments=True, remove_pis=True,
                                 strip_cdata=True)
        tools = _local.tools = (parser, etree.XPath(_BASE_XPATH))
    return tools


def read_feed_fast(content: bytes, *, url: str, content_type: str | None) -> RawFeed | None:
    """Take a feed body, its URL and Content-Type; return what feedparser would read from it,
    or None where only feedparser itself can tell."""
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    data = to_utf8(headers, content)
    if data is None or _XLINK in data:
        return None
    if not namespaces_are_plain(data):
        return None
    base = document_base(url)
    if base is None:
        return None
    parser, has_base = xml_tools()
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root.tag not in ROOTS or root.getroottree().docinfo.doctype or has_base(root):
        return None
    reader = Reader(base)
    try:
        reader.read_root(root)
    except Fallback:
        return None
    return RawFeed(reader.feed, reader.entries) if reader.entries else None


def to_utf8(headers: dict[str, str], data: bytes) -> bytes | None:
    """Take response headers and a body; return the body as feedparser hands it to its XML
    parser (decoded per RFC 3023, re-encoded as UTF-8 with a UTF-8 declaration), or None where
    feedparser would not use its strict parser."""
    if data[:2] in _UTF16_BOMS or data[:3] == codecs.BOM_UTF8 or data[:4] in _MARKERS:
        # Byte order marks and non-ASCII encodings: feedparser's own function decides.
        return feedparser_utf8(headers, data)
    try:
        found = xml_pi_encoding(data)
        xml_encoding = found.decode("utf-8").lower() if found is not None else ""
    except UnicodeDecodeError:
        return None
    media, http_encoding = parse_content_type(headers.get("content-type") or "")
    if media in _APPLICATION_XML or (media.startswith("application/") and media.endswith("+xml")):
        encoding = http_encoding or xml_encoding or "utf-8"
    elif media.startswith("text/"):
        encoding = http_encoding or "us-ascii"
    elif "content-type" not in headers:
        encoding = xml_encoding or "iso-8859-1"
    else:
        encoding = xml_encoding or "utf-8"
    if encoding.lower() == "gb2312":
        encoding = "gb18030"
    text = None
    for candidate in (encoding, "gb18030" if xml_encoding == "gb2312" else xml_encoding):
        if not candidate:
            continue
        try:
            text = data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
        except Exception:  # odd codecs (idna, punycode...): feedparser's own path decides
            return None
        break
    if text is None:
        # feedparser goes on to guess (chardet, then fixed fallbacks); its own function knows how.
        return feedparser_utf8(headers, data)
    if _XML_DECLARATION.search(text):
        text = _XML_DECLARATION.sub(_NEW_DECLARATION, text)
    else:
        text = _NEW_DECLARATION + "\n" + text
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return None


def feedparser_utf8(headers: dict[str, str], data: bytes) -> bytes | None:
    """Take response headers and a body; return feedparser's UTF-8 conversion of it, or None
    where it finds no encoding (and would use its lenient parser)."""
    result: dict[str, Any] = {}
    converted: bytes = convert_to_utf8(headers, data, result)
    return converted if result.get("encoding") else None


def xml_pi_encoding(data: bytes) -> bytes | None:
    """Take a body; return what feedparser's RE_XML_PI_ENCODING captures from it, or None.

    The pattern is `^<\\?.*encoding=['"](.*?)['"].*\\?>` on the first line; run as a regular
    expression it backtracks through the whole line, which in one-line feeds is the document.
    """
    if not data.startswith(b"<?"):
        return None
    end = data.find(b"\n")
    line = data if end < 0 else data[:end]
    last_close = line.rfind(b"?>")
    start = line.rfind(b"encoding=")
    # The greedy ".*" makes the rightmost workable "encoding=" win; the lazy group ends at the
    # first quote after it, which works only if a "?>" follows that quote.
    while start >= 2:
        opening = start + 9
        if line[opening:opening + 1] in (b'"', b"'"):
            quotes = [i for i in (line.find(b'"', opening + 1), line.find(b"'", opening + 1))
                      if i >= 0]
            if quotes and last_close > min(quotes):
                return line[opening + 1:min(quotes)]
        start = line.rfind(b"encoding=", 0, start + 8)
    return None


def namespaces_are_plain(data: bytes) -> bool:
    """Take UTF-8 XML; return whether no declaration binds a feedparser prefix to another URI."""
    for m in _XMLNS_DECL.finditer(data):
        prefix = m.group(1).decode("utf-8", "replace")
        if prefix in STD_PREFIXES:
            uri = (m.group(2) if m.group(2) is not None else m.group(3)).decode("utf-8", "replace")
            if "&" in uri or KNOWN_NS.get(normalise_ns(uri)) != prefix:
                return False
    return True



def document_base(url: str) -> str | None:
    """Take the feed URL; return the base URI feedparser resolves against, None if unstable."""
    # feedparser re-derives the base at every start tag; past the root it must be settled.
    first = make_safe_absolute_uri("", url) or ""
    steps = [first]
    for _ in range(3):
        step = make_safe_absolute_uri(steps[-1], steps[-1]) or steps[-1] if steps[-1] else ""
        steps.append(step)
    return steps[1] if steps[1] == steps[2] == steps[3] else None


