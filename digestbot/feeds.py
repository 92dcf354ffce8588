"""Feed parsing: RSS 0.9x/1.0/2.0, Atom and JSON Feed bytes to a normalised ParsedFeed."""

from __future__ import annotations

import codecs
import html
import io
import json
import re
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax import SAXParseException

import feedparser

from digestbot.errors import FeedError
from digestbot.feedxml import read_feed_fast
from digestbot.feedxml_read import is_plain_url
from digestbot.records import FeedEntry, ParsedFeed
from digestbot.text import BIDI_CONTROLS
from digestbot.urls import resolve_link

MAX_ENTRIES = 500
MAX_TITLE = 500
MAX_HTML = 1_000_000
MAX_SHORT = 2_000  # guid, author
# Stopping at the next "<" keeps unterminated tags from making the scan quadratic.
_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>")
_SPACE = re.compile(r"\s+")
# Markup whose inside an XML parser never reads as declarations, with its terminator.
_OPAQUE_START = re.compile(rb"<!--|<\?|<!\[CDATA\[")
_OPAQUE_END = {b"<!--": b"-->", b"<?": b"?>", b"<![CDATA[": b"]]>"}
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)
_ENTITY_START = re.compile(rb"<![Ee]")
_XML_ENCODING = re.compile(rb"""<\?xml[^>]*encoding\s*=\s*["']([\w.:-]+)""", re.IGNORECASE)
_CHARSET = re.compile(r"""charset\s*=\s*["']?([\w.:-]+)""", re.IGNORECASE)
_HTML_START = re.compile(rb"\s*(?:<!DOCTYPE\s+html|<html[\s>]|<head[\s>]|<body[\s>])",
                         re.IGNORECASE)
_JSON_FEED_VERSION = "https://jsonfeed.org/version/"
_XML_DECL = re.compile(rb"""^(<\?xml[^>]*?encoding\s*=\s*)(["'])[\w.:-]+\2""")
_BOMS = ((codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
         (codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))
_UTF8_LABELS = frozenset({"utf-8", "utf8", "unicode-1-1-utf-8"})
# surrogateescape turns an undecodable byte b into U+DC00+b; this maps it to its cp1252 reading.
_ESCAPED_CP1252 = {0xDC00 + b: bytes([b]).decode("cp1252", errors="replace")
                   for b in range(0x80, 0x100)}
# The earliest plausible news date: older dates are CMS defaults (epoch, year 1), not facts.
EARLIEST_DATE = datetime(1990, 1, 1, tzinfo=UTC)


def parse_feed(content: bytes, *, url: str, content_type: str | None = None,
               fast: bool = True) -> ParsedFeed:
    """Take a feed body, its URL and Content-Type; return the ParsedFeed or raise FeedError.

    Well-formed RSS/Atom is read by the lxml fast path where it is sure to read it as feedparser
    would; everything else (and everything with fast=False) goes through feedparser.
    """
    try:
        return _parse_feed(content, url=url, content_type=content_type, fast=fast)
    except (UnicodeError, LookupError) as exc:
        # A declared charset such as "idna" or "unicode_escape" is a codec that cannot decode
        # a document; that is this feed's problem, not the poll's.
        raise FeedError(url, f"not a feed: unusable text encoding ({exc.__class__.__name__})"
                        ) from None


def _parse_feed(content: bytes, *, url: str, content_type: str | None, fast: bool) -> ParsedFeed:
    if not strip_bom(content).strip():
        raise FeedError(url, "empty response")
    head = strip_bom(content).lstrip()
    if head[:1] in (b"{", b"["):
        return parse_json_feed(content, url=url)
    reject_entities(content, url, content_type)
    if _HTML_START.match(skip_prolog(head)):
        raise FeedError(url, "not a feed: got an HTML page")
    content, content_type = repair_encoding(content, content_type)
    if fast and (raw := read_feed_fast(content, url=url, content_type=content_type)):
        fast_entries = build_entries(raw.entries, url)
        # An empty result takes feedparser's path, which decides which error it is.
        if fast_entries:
            return ParsedFeed(url=url, title=clean_text(raw.feed.get("title")) or None,
                              entries=fast_entries, ttl_minutes=parse_ttl(raw.feed.get("ttl")))
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    # Bytes handed to feedparser directly may be opened as a file path; a stream never is.
    parsed: Any = feedparser.parse(io.BytesIO(content), response_headers=headers,
                                   sanitize_html=False, resolve_relative_uris=False)
    feed: Mapping[str, Any] = parsed.get("feed", {})
    title = clean_text(feed.get("title")) or None
    entries = build_entries(parsed.get("entries", []), url)
    if not entries:
        if not title and content_type and "html" in content_type.lower():
            raise FeedError(url, "not a feed: got an HTML page")
        problem = parsed.get("bozo_exception")
        # feedparser also flags mere charset notes as bozo; those say nothing about the document.
        # A broken document that yielded no entries fails even with a title: a lenient parse
        # of it would read as "ok, nothing new" and hide the breakage from the operator.
        if parsed.get("bozo") and not isinstance(problem, feedparser.ThingsNobodyCaresAboutButMe):
            raise FeedError(url, f"not a feed: {short_reason(problem)}")
        if not title and not parsed.get("version"):
            raise FeedError(url, "not a feed: no RSS or Atom root element")
    return ParsedFeed(url=url, title=title, entries=entries, ttl_minutes=parse_ttl(feed.get("ttl")))


def declared_charset(content: bytes, content_type: str | None) -> str:
    """Take a body and its Content-Type; return the charset label it declares (utf-8 if none)."""
    if content_type and (m := _CHARSET.search(content_type)):
        return m.group(1).lower()
    if m2 := _XML_ENCODING.search(content[:1024]):
        return m2.group(1).decode("ascii").lower()
    return "utf-8"


def relabel_utf8(text: str, content_type: str | None) -> tuple[bytes, str]:
    """Take a decoded document; return it as UTF-8 bytes and a Content-Type that says so."""
    data = _XML_DECL.sub(rb'\1"utf-8"', text.encode("utf-8"), count=1)
    media = (content_type or "application/xml").split(";", 1)[0].strip() or "application/xml"
    return data, f"{media}; charset=utf-8"


def decode_utf8_or_cp1252(data: bytes) -> str:
    """Take bytes meant as UTF-8; return text with each invalid byte read as windows-1252."""
    return data.decode("utf-8", errors="surrogateescape").translate(_ESCAPED_CP1252)


def repair_encoding(content: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """Take a body and Content-Type; return them with BOM documents and broken UTF-8 (stray
    windows-1252 bytes, whole or in part) turned into clean UTF-8, anything else unchanged."""
    for bom, codec in _BOMS:
        if content.startswith(bom):
            # A byte order mark is unambiguous, so it wins over any label.
            return relabel_utf8(content[len(bom):].decode(codec, errors="replace"), content_type)
    if declared_charset(content, content_type) not in _UTF8_LABELS or b"\x00" in content[:64]:
        return content, content_type
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        # Feeds are often assembled from parts in two encodings; keep each part readable.
        return relabel_utf8(decode_utf8_or_cp1252(content), content_type)
    return content, content_type


def strip_bom(data: bytes) -> bytes:
    """Take bytes; return them without a leading UTF-8/16/32 byte order mark."""
    for bom in (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF8,
                codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        if data.startswith(bom):
            return data[len(bom):]
    return data


def skip_prolog(head: bytes) -> bytes:
    """Take the start of a document; return it past leading XML declaration, PIs and comments."""
    pos = 0
    while True:
        while pos < len(head) and head[pos:pos + 1].isspace():
            pos += 1
        m = _OPAQUE_START.match(head, pos)
        if m is None:
            return head[pos:]
        end = head.find(_OPAQUE_END[m.group()], m.end())
        if end < 0:
            return b""
        pos = end + len(_OPAQUE_END[m.group()])


def strip_opaque(data: bytes) -> bytes:
    """Take XML bytes; return them without comments, PIs and CDATA, scanned leftmost-first."""
    # Leftmost-first mirrors an XML tokenizer, so a "<!--" inside a PI hides nothing.
    kept: list[bytes] = []
    pos = 0
    while (m := _OPAQUE_START.search(data, pos)) is not None:
        kept.append(data[pos:m.start()])
        end = data.find(_OPAQUE_END[m.group()], m.end())
        if end < 0:
            # A parser stops at an unterminated comment too, so nothing after it is live.
            return b"".join(kept)
        pos = end + len(_OPAQUE_END[m.group()])
    kept.append(data[pos:])
    return b"".join(kept)


def sniff_views(content: bytes, content_type: str | None) -> Iterable[bytes]:
    """Take a body; yield it as ASCII-compatible bytes under each encoding a parser might use."""
    yield content
    labels: list[str] = []
    if content_type and (m := _CHARSET.search(content_type)):
        labels.append(m.group(1))
    if m2 := _XML_ENCODING.search(content[:1024]):
        labels.append(m2.group(1).decode("ascii"))
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in content[:64]:
        labels += ["utf-16", "utf-16-le", "utf-16-be", "utf-32"]
    for label in labels:
        try:
            text = content.decode(label, errors="replace")
        except LookupError:
            continue
        yield text.encode("utf-8")


def reject_entities(content: bytes, url: str, content_type: str | None) -> None:
    """Take a body; raise FeedError if its DOCTYPE may declare entities (expansion attacks)."""
    checked: list[bytes] = []
    for view in sniff_views(content, content_type):
        # Most labels decode to the very same bytes; one scan of those is enough.
        if any(view == seen for seen in checked):
            continue
        checked.append(view)
        # A literal "<!ENTITY" in an article's CDATA is harmless only when no DOCTYPE is live.
        # The case-sensitive "<!E" search is a fast first sieve for the case-blind one.
        if (_ENTITY_START.search(view) and _ENTITY.search(view)
                and _DOCTYPE.search(strip_opaque(view))):
            raise FeedError(url, "feed declares XML entities")


def short_reason(exc: object) -> str:
    """Take feedparser's bozo exception; return a one-line reason of at most 120 characters."""
    if isinstance(exc, SAXParseException):
        text = f"{exc.getMessage()} at line {exc.getLineNumber()}"
    else:
        text = str(exc) if exc is not None else ""
    return _SPACE.sub(" ", text).strip()[:120] or "unparseable document"


def clean_text(value: object, limit: int = MAX_TITLE) -> str:
    """Take a title-like value; return plain text, tags and entities removed, spaces collapsed."""
    if not isinstance(value, str):
        return ""
    text = value[:100_000]
    if "<" in text or "&" in text:
        text = _TAG.sub(" ", html.unescape(_TAG.sub(" ", text)))
    text = _SPACE.sub(" ", text)
    return (text if text.isascii() else text.translate(BIDI_CONTROLS)).strip()[:limit]


def cap(value: object, limit: int) -> str:
    """Take a field value; return it as a string of at most limit characters, bidi controls
    removed."""
    if not isinstance(value, str):
        return ""
    return value[:limit] if value.isascii() else value[:limit].translate(BIDI_CONTROLS)


def parse_ttl(value: object) -> int | None:
    """Take an RSS <ttl> value; return positive minutes or None."""
    text = value.strip() if isinstance(value, str) else ""
    return int(text) if text.isdigit() and 0 < int(text) <= 525_600 else None


def struct_to_datetime(value: object) -> datetime | None:
    """Take feedparser's parsed UTC time tuple; return an aware UTC datetime or None."""
    if not isinstance(value, time.struct_time):
        return None
    try:
        when = datetime(*value[:6], tzinfo=UTC)
    except (ValueError, OverflowError):
        return None
    return when if when >= EARLIEST_DATE else None


def longest_content(entry: Mapping[str, Any]) -> str | None:
    """Take a feedparser entry; return its longest content value (content:encoded) or None."""
    values = [c.get("value") for c in entry.get("content") or [] if isinstance(c, Mapping)]
    texts = [v for v in values if isinstance(v, str) and v.strip()]
    return cap(max(texts, key=len), MAX_HTML) if texts else None


def build_entries(raw: Iterable[dict[str, Any]], url: str) -> tuple[FeedEntry, ...]:
    """Take feedparser entries and the feed URL; return FeedEntries, deduplicated and capped."""
    out: list[FeedEntry] = []
    seen: set[str] = set()
    for entry in raw:
        guid = cap(entry.get("id"), MAX_SHORT).strip() or None
        if guid is not None and guid in seen:
            continue
        raw_link = cap(entry.get("link"), MAX_SHORT)
        # resolve_link returns a plain absolute URL unchanged; skipping it saves two URL parses.
        link = raw_link if is_plain_url(raw_link) else resolve_link(url, raw_link or None)
        if link is None and guid is not None:
            link = resolve_link(url, guid) if guid.startswith(("http://", "https://")) else None
        title = clean_text(entry.get("title"))
        if link is None and not title:
            continue
        if guid is not None:
            seen.add(guid)
        # dict.get skips FeedParserDict's deprecated updated->published key aliasing.
        published = (struct_to_datetime(dict.get(entry, "published_parsed"))
                     or struct_to_datetime(dict.get(entry, "updated_parsed")))
        out.append(FeedEntry(
            feed_url=url, link=link, guid=guid, title=title,
            summary_html=cap(entry.get("summary"), MAX_HTML),
            content_html=longest_content(entry), published=published,
            author=clean_text(entry.get("author"), MAX_SHORT) or None))
        if len(out) >= MAX_ENTRIES:
            break
    return tuple(out)


def parse_json_feed(content: bytes, *, url: str) -> ParsedFeed:
    """Take a JSON Feed 1.0/1.1 body; return the ParsedFeed or raise FeedError."""
    try:
        doc = json.loads(strip_bom(content).decode("utf-8", errors="replace"))
    except (ValueError, RecursionError):
        raise FeedError(url, "not a feed: got JSON") from None
    version = doc.get("version") if isinstance(doc, dict) else None
    if not isinstance(version, str) or not version.startswith(_JSON_FEED_VERSION):
        raise FeedError(url, "not a feed: got JSON")
    items = doc.get("items")
    out: list[FeedEntry] = []
    seen: set[str] = set()
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        entry = json_item_entry(item, url)
        if entry is None or (entry.guid is not None and entry.guid in seen):
            continue
        if entry.guid is not None:
            seen.add(entry.guid)
        out.append(entry)
        if len(out) >= MAX_ENTRIES:
            break
    return ParsedFeed(url=url, title=clean_text(doc.get("title")) or None, entries=tuple(out))


def json_item_entry(item: Mapping[str, Any], url: str) -> FeedEntry | None:
    """Take one JSON Feed item; return its FeedEntry, or None without link and title."""
    raw_id = item.get("id")
    guid = cap(str(raw_id) if isinstance(raw_id, (str, int)) else None, MAX_SHORT) or None
    link = resolve_link(url, cap(item.get("url"), MAX_SHORT) or None)
    if link is None:
        link = resolve_link(url, cap(item.get("external_url"), MAX_SHORT) or None)
    if link is None and guid is not None and guid.startswith(("http://", "https://")):
        link = resolve_link(url, guid)
    title = clean_text(item.get("title"))
    if link is None and not title:
        return None
    content_html = cap(item.get("content_html"), MAX_HTML) or None
    text = cap(item.get("content_text"), MAX_HTML)
    if content_html is None and text.strip():
        content_html = "".join(f"<p>{html.escape(p.strip())}</p>"
                               for p in text.split("\n\n") if p.strip())
    return FeedEntry(
        feed_url=url, link=link, guid=guid, title=title,
        summary_html=html.escape(cap(item.get("summary"), MAX_HTML)),
        content_html=content_html,
        published=parse_iso_date(item.get("date_published"))
        or parse_iso_date(item.get("date_modified")),
        author=json_author(item))


def json_author(item: Mapping[str, Any]) -> str | None:
    """Take a JSON Feed item; return its first author's name (1.1 authors or 1.0 author)."""
    authors = item.get("authors")
    candidates = authors if isinstance(authors, list) else [item.get("author")]
    for author in candidates:
        if isinstance(author, dict) and (name := clean_text(author.get("name"), MAX_SHORT)):
            return name
    return None


def parse_iso_date(value: object) -> datetime | None:
    """Take an RFC 3339 date string; return an aware UTC datetime or None."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip())
        when = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    return when if when >= EARLIEST_DATE else None
