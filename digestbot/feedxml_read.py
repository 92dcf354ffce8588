"""Reading a parsed feed document as feedparser's strict parser would: element names, text
repairs, dates, and the walk over channel, items and authors that fills feedparser-shaped dicts.

`feedxml` decides which documents get here; anything this walk does not mirror raises Fallback.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.datetimes.rfc822 import _parse_date_rfc822
from feedparser.html import _cp1252
from feedparser.mixin import _FeedParserMixin
from feedparser.urls import _urljoin
from feedparser.util import FeedParserDict

RDF_NS = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
ATOM_NS = "http://www.w3.org/2005/Atom"
_RDF_ABOUT = f"{{{RDF_NS}}}about"
RDF_ROOT = f"{{{RDF_NS}}}RDF"
ROOTS = frozenset({"rss", RDF_ROOT, f"{{{ATOM_NS}}}feed"})
# feedparser's namespace table: URI (lower-cased) -> the prefix its element names get.
KNOWN_NS: dict[str, str] = {uri.lower(): prefix.lower()
                            for uri, prefix in _FeedParserMixin.namespaces.items()}
STD_PREFIXES = frozenset(p for p in KNOWN_NS.values() if p)
# Absolute http(s) URLs that urljoin, urlsplit and feedparser's URI fixer all return unchanged.
PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::([0-9]{1,5}))?"
                       r"(?:/[A-Za-z0-9._~!$'()*+,=:@%/&-]*)?(?:\?[A-Za-z0-9._~!$'()*+,=:@%/?&-]+)?")

# feedparser's pattern for an e-mail address inside author text.
_EMAIL = re.compile(r"(([a-zA-Z0-9\_\-\.\+]+)@((\[[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.)|"
                    r"(([a-zA-Z0-9\-]+\.)+))([a-zA-Z]{2,4}|[0-9]{1,3})(\]?))(\?subject=\S+)?")
_LINK_REF = re.compile("&([A-Za-z0-9_]+);")
_C1_CONTROLS = re.compile("[\x80-\x9f]")
_RFC822 = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{1,2} "
                     r"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
                     r"[0-9]{2}:[0-9]{2}:[0-9]{2} (?:GMT|UT|Z|[+-][0-9]{4})")
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_COPIED_TYPES = frozenset({"text/plain"}) | _HTML_TYPES
# Content types whose text feedparser keeps as written (no base64 decoding, no XHTML rebuild).
_PLAIN_TYPES = frozenset({"text/plain", "text/html"})
_TYPE_NAMES = {"text": "text/plain", "plain": "text/plain", "html": "text/html",
               "xhtml": "application/xhtml+xml"}

_TITLES = frozenset({"title", "dc_title"})
_PUBLISHED = frozenset({"pubdate", "published", "issued", "dcterms_issued"})
_UPDATED = frozenset({"updated", "modified", "lastbuilddate", "dc_date", "dcterms_modified"})
_AUTHORS = frozenset({"author", "dc_creator", "dc_author", "itunes_author"})
_PERSON_PARTS = frozenset({"name", "email", "uri", "url", "homepage"})
# Elements with feedparser handlers whose effects never reach the fields read here, given they
# hold no child elements.
_ITEM_INERT = frozenset({
    "category", "dc_subject", "enclosure", "rights", "copyright", "dc_rights", "language",
    "dc_language", "created", "dcterms_created", "expirationdate", "media_content",
    "media_thumbnail", "media_credit", "media_category", "media_rating", "media_keywords",
    "dc_publisher", "webmaster"})
_FEED_INERT = _ITEM_INERT | _PUBLISHED | _UPDATED | frozenset({
    "link", "description", "subtitle", "tagline", "generator", "cloud", "id", "guid"})
_IMAGE_PARTS = frozenset({"title", "link", "url", "width", "height", "description"})
_TEXTINPUT_PARTS = frozenset({"title", "link", "description", "name"})
# Keys feedparser would store a handler-less element under that clash with the fields read here.
_CLASHES = frozenset({"title", "link", "links", "id", "summary", "content", "author", "authors",
                      "author_detail", "published_parsed", "updated_parsed", "ttl", "guidislink"})




class Fallback(Exception):
    """The document holds something only feedparser reads faithfully."""



# Caches keyed by tag and element name; the bound keeps hostile feeds from growing them forever.
_CACHE_BOUND = 5_000
_names: dict[str, str | None] = {}
_generic: dict[str, bool] = {}



def normalise_ns(uri: str) -> str:
    """Take a namespace URI; return it as feedparser looks it up (lower-cased, userland merged)."""
    low = uri.lower()
    return "http://backend.userland.com/rss" if "backend.userland.com/rss" in low else low

def is_plain_url(url: str) -> bool:
    """Take a URL; return whether it is a plain absolute http(s) URL that joining leaves as is."""
    m = PLAIN_URL.fullmatch(url)
    return m is not None and (m.group(1) is None or int(m.group(1)) <= 65535)


def element_name(tag: object) -> str:
    """Take an lxml tag; return feedparser's name for it (prefix_local), or raise Fallback."""
    if not isinstance(tag, str):
        raise Fallback
    name = _names.get(tag)
    if name is None:
        if tag not in _names:
            ns, _, local = tag[1:].partition("}") if tag[:1] == "{" else ("", "", tag)
            prefix = KNOWN_NS.get(normalise_ns(ns))
            name = None if prefix is None else (f"{prefix}_{local}" if prefix else local).lower()
            if len(_names) < _CACHE_BOUND:
                _names[tag] = name
        if name is None:
            raise Fallback
    return name


def is_generic(name: str) -> bool:
    """Take an element name; return whether feedparser has no handler for it (stores it as is)."""
    known = _generic.get(name)
    if known is None:
        known = not (hasattr(_FeedParserMixin, "_start_" + name)
                     or hasattr(_FeedParserMixin, "_end_" + name))
        key = FeedParserDict.keymap.get(name, name)
        if (key[0] if isinstance(key, list) else key) in _CLASHES:
            known = False
        if len(_generic) < _CACHE_BOUND:
            _generic[name] = known
    return known


def attributes(el: Any) -> dict[str, str]:
    """Take an element; return its attributes as feedparser's handlers see them (by local name,
    lower-cased; rel and type values lower-cased)."""
    out: dict[str, str] = {}
    for key, value in el.attrib.items():
        local = key.rpartition("}")[2].lower()
        if local in out:
            raise Fallback
        out[local] = value.lower() if local in ("rel", "type") else value
    return out


def finish(text: str) -> str:
    """Take an element's stripped text; return it after feedparser's encoding repairs."""
    if text.isascii():
        return text
    # feedparser's repair of UTF-8 read as Latin-1, then of C1 controls meant as windows-1252.
    with contextlib.suppress(UnicodeError):
        text = text.encode("iso-8859-1").decode("utf-8")
    return text.translate(_cp1252) if _C1_CONTROLS.search(text) else text


def parse_date(text: str) -> Any:
    """Take a date string; return feedparser's UTC time tuple for it, or None."""
    if _RFC822.fullmatch(text):
        # feedparser's first parser (W3C-DTF) rejects these, so its RFC 822 one decides.
        try:
            parsed = _parse_date_rfc822(text)
        except (KeyError, OverflowError, ValueError, AttributeError):
            parsed = None
        if parsed is not None and len(parsed) == 9:
            return parsed
    return _parse_date(text)


def map_type(value: str) -> str:
    """Take a type attribute; return the media type feedparser maps it to."""
    value = value.lower()
    return _TYPE_NAMES.get(value, value)


def leaf_text(el: Any) -> str:
    """Take an element that must hold text only; return its text, stripped."""
    if len(el):
        raise Fallback
    text = el.text
    return text.strip() if text else ""


def content_text(el: Any, default_type: str) -> tuple[str, str]:
    """Take a title/summary/content element; return its finished text and media type."""
    kind = default_type
    if len(el.attrib):
        attrs = attributes(el)
        if "mode" in attrs or "src" in attrs:
            raise Fallback
        kind = map_type(attrs.get("type", default_type))
        if kind not in _PLAIN_TYPES:
            raise Fallback
    return finish(leaf_text(el)), kind


def check_inert(el: Any, *, nested: bool) -> None:
    """Take a handler-less or inert element; raise Fallback unless its subtree is harmless."""
    if not len(el):
        return
    if not nested:
        raise Fallback
    for child in el.iterdescendants():
        if not is_generic(element_name(child.tag)):
            raise Fallback


class Reader:
    """Walks a parsed document keeping the part of feedparser's state that reaches our fields."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.feed: dict[str, Any] = {}
        self.entries: list[dict[str, Any]] = []
        self.title_depth = -1

    def resolve(self, uri: str) -> str:
        """Take a URI from the document; return it joined to the base as feedparser does."""
        return uri if is_plain_url(uri) else str(_urljoin(self.base, uri))

    def store_title(self, value: str, depth: int, target: dict[str, Any] | None) -> None:
        """Take a title at a depth; store it where feedparser would (the first non-empty one of
        an item wins), tracking the depth it remembers."""
        if not -1 < self.title_depth <= depth and target is not None:
            target["title"] = value
        if value:
            self.title_depth = depth

    def read_root(self, root: Any) -> None:
        """Take the document element; read its feed and entries."""
        if root.tag == "rss":
            for child in root:
                if element_name(child.tag) == "channel":
                    self.read_container(child, 2, in_feed=True)
                elif is_generic(element_name(child.tag)):
                    check_inert(child, nested=False)
                else:
                    raise Fallback
        else:
            self.read_container(root, 1, in_feed=root.tag != RDF_ROOT)

    def read_container(self, el: Any, depth: int, *, in_feed: bool) -> None:
        """Take a channel, Atom feed or RDF root; read its feed-level children and entries."""
        if len(el.attrib) and {"lastmod", "href"} & attributes(el).keys():
            raise Fallback
        target = self.feed if in_feed else None
        for child in el:
            name = element_name(child.tag)
            if name in ("item", "entry"):
                self.read_item(child, depth + 1)
            elif name in _TITLES:
                self.store_title(content_text(child, "text/plain")[0], depth + 1, target)
            elif name == "channel" and not in_feed and el.tag == RDF_ROOT:
                self.read_container(child, depth + 1, in_feed=True)
            elif name == "ttl" and in_feed:
                self.feed["ttl"] = (dict(child.attrib) if len(child.attrib)
                                    else finish(leaf_text(child)))
            elif name in ("image", "textinput"):
                self.read_image(child, depth + 1, _IMAGE_PARTS if name == "image"
                                else _TEXTINPUT_PARTS)
            elif name in _AUTHORS or name in ("managingeditor", "contributor"):
                for part in child:
                    if element_name(part.tag) not in _PERSON_PARTS or len(part):
                        raise Fallback
            elif name in _FEED_INERT:
                check_inert(child, nested=False)
            elif is_generic(name):
                check_inert(child, nested=True)
            else:
                raise Fallback

    def read_image(self, el: Any, depth: int, parts: frozenset[str]) -> None:
        """Take a feed-level image or textInput; track the title depth its title leaves."""
        self.title_depth = -1
        for child in el:
            name = element_name(child.tag)
            if name not in parts:
                raise Fallback
            if name == "title":
                # Stored in the image's own dict, never as the feed's title.
                self.store_title(content_text(child, "text/plain")[0], depth + 1, None)
            else:
                leaf_text(child)

    def read_item(self, el: Any, depth: int) -> None:
        """Take an RSS item or Atom entry; append its entry dict as feedparser builds it."""
        if len(el.attrib) and {"lastmod", "href"} & attributes(el).keys():
            raise Fallback
        entry: dict[str, Any] = {}
        self.entries.append(entry)
        self.title_depth = -1
        about = el.get(_RDF_ABOUT)
        if about:
            entry["id"] = about
        has_content = False
        depth += 1
        for child in el:
            name = _names.get(child.tag) or element_name(child.tag)
            handler = _ITEM_HANDLERS.get(name)
            if handler is not None:
                has_content = handler(self, child, entry, depth, has_content)
            elif name in _ITEM_INERT or is_generic(name):
                check_inert(child, nested=False)
            else:
                raise Fallback

    def item_title(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Read an item's title."""
        self.store_title(content_text(el, "text/plain")[0], depth, entry)
        return has

    def item_link(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Read an RSS link (text) or Atom link (href, rel, type)."""
        attrs = attributes(el) if len(el.attrib) else {}
        if "url" in attrs or "uri" in attrs:
            raise Fallback
        if "href" in attrs:
            if len(el):
                raise Fallback
            rel = attrs.get("rel", "alternate")
            kind = attrs.get("type", "application/atom+xml" if rel == "self" else "text/html")
            if rel == "alternate" and map_type(kind) in _HTML_TYPES:
                entry["link"] = self.resolve(attrs["href"])
            return has
        text = leaf_text(el)
        value = finish(self.resolve(text) if text else text)
        if "&" in value:
            # feedparser undoes what it takes for entity references in query strings.
            value = _LINK_REF.sub(r"&\g<1>", value.replace("&amp;", "&"))
        entry["link"] = value
        return has

    def item_guid(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Read a guid or Atom id; a permalink one also stands in for a missing link."""
        attrs = attributes(el) if len(el.attrib) else {}
        is_link = attrs.get("ispermalink", "true") == "true"
        text = leaf_text(el)
        value = finish(self.resolve(text) if text and is_link else text)
        entry["id"] = value
        if is_link:
            entry.setdefault("link", value)
        return has

    def item_description(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Read a description; a second one before any content becomes content."""
        if "summary" in entry and not has:
            return self.item_content(el, entry, depth, has, "text/plain")
        entry["summary"] = content_text(el, "text/html")[0]
        return has

    def item_summary(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Read an Atom summary; a second one before any content becomes content."""
        if "summary" in entry and not has:
            return self.item_content(el, entry, depth, has, "text/plain")
        entry["summary"] = content_text(el, "text/plain")[0]
        return has

    def item_content(self, el: Any, entry: dict[str, Any], depth: int, has: bool,
                     default: str = "text/plain") -> bool:
        """Read content (Atom content, or a summary read as content); it also fills a missing
        summary."""
        value, kind = content_text(el, default)
        entry.setdefault("content", []).append({"value": value, "type": kind})
        if kind in _COPIED_TYPES:
            entry.setdefault("summary", value)
        return True

    def item_encoded(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Read content:encoded."""
        return self.item_content(el, entry, depth, has, "text/html")

    def item_published(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Read a publication date (the last one wins, even when unparseable)."""
        entry["published_parsed"] = parse_date(finish(leaf_text(el)))
        return has

    def item_updated(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Read an update date (the last one wins, even when unparseable)."""
        entry["updated_parsed"] = parse_date(finish(leaf_text(el)))
        return has

    def item_source(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Read an RSS source: feedparser forgets the item's title depth there."""
        leaf_text(el)
        self.title_depth = -1
        return has

    def item_author(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Read an author (RSS text or Atom name/email/uri) as feedparser merges authors."""
        entry.setdefault("authors", []).append({})
        for part in el:
            name = element_name(part.tag)
            if name not in _PERSON_PARTS:
                raise Fallback
            text = leaf_text(part)
            if name in ("name", "email"):
                save_author(entry, name, text)
            else:
                save_author(entry, "href", finish(self.resolve(text) if text else text))
        own = (el.text or "") + "".join(part.tail or "" for part in el)
        entry["author"] = finish(own.strip())
        sync_author(entry)
        return has

    def item_contributor(self, el: Any, entry: dict[str, Any], depth: int, has: bool) -> bool:
        """Check an Atom contributor: its parts are kept apart from the author."""
        for part in el:
            if element_name(part.tag) not in _PERSON_PARTS or len(part):
                raise Fallback
        return has


def save_author(entry: dict[str, Any], key: str, value: str) -> None:
    """Take an entry and one author part; record it in feedparser's order (sync, then add)."""
    entry.setdefault("author_detail", {})[key] = value
    sync_author(entry)
    entry.setdefault("authors", [{}])[-1][key] = value


def sync_author(entry: dict[str, Any]) -> None:
    """Take an entry; set its author from the last author's parts, as feedparser does."""
    detail = entry.get("authors", [{}])[-1]
    if detail:
        name, email = detail.get("name"), detail.get("email")
        if name and email:
            entry["author"] = f"{name} ({email})"
        elif name:
            entry["author"] = name
        elif email:
            entry["author"] = email
        return
    author, email = entry.get("author"), None
    if not author:
        return
    # feedparser splits "name (email)" text into the detail the next part may read.
    match = _EMAIL.search(author)
    if match:
        email = match.group(0)
        author = author.replace(email, "").replace("()", "").replace("<>", "")
        author = author.replace("&lt;&gt;", "").strip()
        if author and author[0] == "(":
            author = author[1:]
        if author and author[-1] == ")":
            author = author[:-1]
        author = author.strip()
    if author or email:
        entry.setdefault("author_detail", detail)
    if author:
        detail["name"] = author
    if email:
        detail["email"] = email


_ItemHandler = Callable[[Reader, Any, dict[str, Any], int, bool], bool]
_ITEM_HANDLERS: dict[str, _ItemHandler] = {
    **dict.fromkeys(_TITLES, Reader.item_title),
    "link": Reader.item_link,
    "guid": Reader.item_guid, "id": Reader.item_guid,
    "description": Reader.item_description, "dc_description": Reader.item_description,
    "summary": Reader.item_summary,
    "content": Reader.item_content,
    "content_encoded": Reader.item_encoded, "fullitem": Reader.item_encoded,
    **dict.fromkeys(_PUBLISHED, Reader.item_published),
    **dict.fromkeys(_UPDATED, Reader.item_updated),
    **dict.fromkeys(_AUTHORS, Reader.item_author),
    "contributor": Reader.item_contributor,
    "source": Reader.item_source,
}
