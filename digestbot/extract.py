"""Article text: trafilatura's main-text extraction, then boilerplate cleanup (pure).

Pages go through `extract_article_text`, feed-carried HTML through `html_to_text`; both return
plain text with paragraphs separated by a blank line, after the text rules of `clean_paragraphs`.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass

import trafilatura
from lxml import etree
from lxml import html as lxml_html

from digestbot.extract_rules import Block, clean_blocks, clean_paragraphs, normalize_space

__all__ = [
    "Block",
    "clean_paragraphs",
    "extract_article_text",
    "html_to_text",
    "is_full_text",
]

# Pages beyond this are almost always inline-script bloat; trafilatura's cost grows with size.
MAX_PAGE_BYTES = 8_000_000
MAX_FRAGMENT_CHARS = 1_000_000
MAX_OUTPUT_CHARS = 200_000
FULL_TEXT_MIN_CHARS = 600
FULL_TEXT_MIN_PARAGRAPHS = 3

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LOOKS_LIKE_HTML = re.compile(r"<[a-zA-Z!/]")
_BLANK_LINES = re.compile(r"\n\s*\n")
_TEASER_END = re.compile(r"\b(continue reading|read (the )?(full|more|rest))\b", re.I)
_LOOKS_LIKE_FULL_HTML = re.compile(r"^\s*<(?:html|!doctype)", re.I).match  # as lxml.html's
_XHTML = "{http://www.w3.org/1999/xhtml}"
_HTML_PARSER = etree.HTMLParser()  # lxml.html's parser options, without its element classes
_LINK_SHARE_TAGS = ("p", "li", "h1", "h2", "h3", "h4", "h5", "h6", "div", "span", "td",
                    "dd", "dt", "blockquote", "figcaption", "section", "strong", "em", "b")
_CAPTIONS = etree.XPath(
    "//figcaption | //*[contains(@class, 'caption') or contains(@class, 'credit')"
    " or contains(@class, 'byline') or contains(@class, 'dateline')][not(self::body)]"
    "[not(.//p[string-length(normalize-space()) > 200])]")
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "body", "center", "dd", "details", "dialog",
    "dir", "div", "dl", "dt", "fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hgroup", "hr", "li", "main", "menu", "nav", "ol", "p", "pre",
    "section", "summary", "table", "tbody", "td", "tfoot", "th", "thead", "tr", "ul", "caption",
})
_DROP_TAGS = frozenset({
    "script", "style", "noscript", "template", "iframe", "svg", "math", "object", "embed",
    "figcaption", "button", "select", "textarea", "input", "form", "head", "title", "meta",
    "link", "video", "audio", "canvas", "map",
})

def extract_article_text(html: str | bytes, url: str | None = None) -> str:
    """Take a whole article page and return its cleaned main text ("" when none is found)."""
    try:
        return _extract_article_text(html, url)
    except Exception:  # garbage pages must never stop the pipeline
        return ""


def _extract_article_text(html: str | bytes, url: str | None) -> str:
    """Take a page and return cleaned text; may raise on inputs lxml cannot take."""
    if not _looks_like_html(html):
        return ""
    tree = trafilatura.load_html(html)
    if tree is None:
        return ""
    signals = read_page_signals(tree)
    xml = trafilatura.extract(
        tree, url=url, output_format="xml", include_comments=False, include_tables=True,
        include_images=False, include_links=False, include_formatting=False,
        deduplicate=False, with_metadata=False,
    )
    if not xml:
        return ""
    main = etree.fromstring(xml.encode("utf-8")).find("main")
    if main is None:
        return ""
    blocks = [Block(b.text, b.kind, signals.link_shares.get(_key(b.text), 0.0), b.group)
              for b in read_xml_blocks(main)
              if b.kind == "table" or _key(b.text) not in signals.captions]
    return join_paragraphs(clean_blocks(blocks))


@dataclass(frozen=True, slots=True)
class PageSignals:
    """What the page's HTML tells about block texts that trafilatura's output no longer shows."""

    link_shares: dict[str, float]  # normalised block text -> share of it that is link text
    captions: frozenset[str]  # normalised texts of figure captions, credits and bylines


def read_page_signals(tree: lxml_html.HtmlElement) -> PageSignals:
    """Take a parsed page and return its link shares and caption texts."""
    shares: dict[str, float] = {}
    # linked characters per link, read once however many blocks nest around it; holding the
    # elements as keys keeps lxml handing out these same objects for them
    link_chars: dict[lxml_html.HtmlElement, int] = {}
    for element in tree.iter(*_LINK_SHARE_TAGS):
        text = normalize_space(element.text_content())
        if not text or len(text) > 600:
            continue
        linked = 0
        for a in element.iter("a"):
            chars = link_chars.get(a)
            if chars is None:
                chars = link_chars[a] = (0 if (a.get("href") or "#").startswith("#")
                                         else len(normalize_space(a.text_content())))
            linked += chars
        key = text.lower()  # _key(text): text is normalised already
        share = min(1.0, linked / len(text))
        # the same words unlinked elsewhere (a title also in the breadcrumbs) are not a link
        shares[key] = min(shares.get(key, share), share)
    captions = {_key(e.text_content()) for e in _CAPTIONS(tree)}
    return PageSignals(shares, frozenset(c for c in captions if c))


def _looks_like_html(html: str | bytes) -> bool:
    """Take page content and return whether it is text with at least one tag."""
    if isinstance(html, bytes):
        if not html or len(html) > MAX_PAGE_BYTES or b"\x00" in html[:4096]:
            return False
        head = html[:65536].decode("utf-8", errors="replace")
    else:
        if not html or len(html) > MAX_PAGE_BYTES or "\x00" in html[:4096]:
            return False
        head = html[:65536]
    return _LOOKS_LIKE_HTML.search(head) is not None


def _key(text: str) -> str:
    """Take a paragraph and return the form used to look it up in the link-share map."""
    return " ".join(text.split()).lower()


def read_xml_blocks(main: etree._Element) -> list[Block]:
    """Take trafilatura's XML <main> and return its paragraphs in document order."""
    blocks: list[Block] = []
    for element in main:
        tag = element.tag
        if tag == "list":
            group = len(blocks)  # unique per list: the index of its first item
            for item in element.iter("item"):
                blocks.extend(Block(t, "item", group=group)
                              for t in split_breaks(_xml_text(item, nested=False)))
        elif tag == "table":
            rows = [" | ".join(c for c in (normalize_space("".join(cell.itertext()))
                                           for cell in row.iter("cell")) if c)
                    for row in element.iter("row")]
            text = "\n".join(r for r in rows if r)
            if text:
                blocks.append(Block(text, "table"))
        elif tag == "div":
            blocks.extend(read_xml_blocks(element))
        elif tag in ("p", "head", "quote", "code"):
            kind = "p" if tag == "code" else str(tag)
            blocks.extend(Block(t, kind) for t in split_breaks(_xml_text(element, nested=True)))
    return blocks


def _xml_text(element: etree._Element, *, nested: bool) -> str:
    """Take an XML element and return its text with <lb/> as newlines."""
    parts: list[str] = [element.text or ""]
    for child in element:
        if child.tag == "lb":
            parts.append("\n")
        elif child.tag == "list" and not nested:
            pass  # nested list items are read on their own by the caller
        elif child.tag in ("item", "p", "head", "list"):
            parts.append("\n\n" + _xml_text(child, nested=True) + "\n\n")
        else:
            parts.append(_xml_text(child, nested=nested))
        parts.append(child.tail or "")
    return "".join(parts)


def split_breaks(text: str) -> list[str]:
    """Take text with newlines and return paragraphs: blank lines split, single breaks stay."""
    paragraphs = []
    for chunk in _BLANK_LINES.split(text):
        if "\n" in chunk:
            paragraph = "\n".join(line for line in map(normalize_space, chunk.split("\n")) if line)
        else:
            paragraph = normalize_space(chunk)
        if paragraph:
            paragraphs.append(paragraph)
    return paragraphs


def join_paragraphs(paragraphs: list[str]) -> str:
    """Take paragraphs and return them as one text of at most MAX_OUTPUT_CHARS characters."""
    out: list[str] = []
    room = MAX_OUTPUT_CHARS
    for paragraph in paragraphs:
        if len(paragraph) > room:
            cut = paragraph[:room].rsplit(" ", 1)[0] if room > 0 else ""
            if cut:
                out.append(cut)
            break
        out.append(paragraph)
        room -= len(paragraph) + 2
    return "\n\n".join(out)


def html_to_text(fragment: str) -> str:
    """Take feed-carried HTML (or plain text) and return cleaned paragraphs as plain text."""
    try:
        # fragment_paragraphs already gives what clean_paragraphs would make of its paragraphs:
        # lines normalised, empty ones dropped
        return join_paragraphs(clean_blocks([Block(p) for p in fragment_paragraphs(fragment)]))
    except Exception:  # a broken feed item must not stop the pipeline
        return ""


def fragment_paragraphs(fragment: str) -> list[str]:
    """Take an HTML fragment or plain text and return its paragraphs."""
    text = _CONTROL_CHARS.sub("", fragment[:MAX_FRAGMENT_CHARS])
    if not text.strip():
        return []
    if not _LOOKS_LIKE_HTML.search(text):
        return split_breaks(htmllib.unescape(text))
    chunks: list[str] = ["\n\n"]  # fragment_fromstring(create_parent="div") wraps it in a <div>
    for node in _parse_fragment(text):
        if isinstance(node, str):
            chunks.append(node)
        else:
            _walk_fragment(node, chunks)
    chunks.append("\n\n")
    return split_breaks("".join(chunks))


def _parse_fragment(text: str) -> list[str | etree._Element]:
    """Take HTML and return what lxml.html.fragments_fromstring does: leading text, elements."""
    # Its steps, but with a parser that makes plain elements: lxml.html's looks up a Python
    # class for every element it hands out, which costs more than the parse, and the walk
    # reads only tags, text and tails, the same in both.
    if not _LOOKS_LIKE_FULL_HTML(text):
        text = f"<html><body>{text}</body></html>"
    doc = etree.fromstring(text, _HTML_PARSER)
    if doc is None:
        raise etree.ParserError("Document is empty")
    assert _strip_xhtml(doc.tag) == "html"
    bodies = [e for e in doc if _strip_xhtml(e.tag) == "body"]
    assert len(bodies) == 1, f"too many bodies: {bodies!r}"
    body = bodies[0]
    nodes: list[str | etree._Element] = []
    if body.text and body.text.strip():
        nodes.append(body.text)
    nodes.extend(body)
    return nodes


def _strip_xhtml(tag: object) -> object:
    """Take an element's tag and return it without the XHTML namespace, as lxml.html does."""
    if isinstance(tag, str) and tag.startswith(_XHTML):
        return tag[len(_XHTML):]
    return tag


def _walk_fragment(element: etree._Element, out: list[str]) -> None:
    """Take an element and append its text to out, with blank lines around block elements."""
    tag = element.tag
    if not isinstance(tag, str) or tag in _DROP_TAGS:  # comments and PIs have no str tag
        tail = element.tail
        if tail:
            out.append(tail)
        return
    block = tag in _BLOCK_TAGS  # td and th among them, so cells end with a blank line
    if block:
        out.append("\n\n")
    elif tag == "br":
        out.append("\n")
    text = element.text
    if text:
        out.append(text)
    for child in element:
        _walk_fragment(child, out)
    if block:
        out.append("\n\n")
    tail = element.tail
    if tail:
        out.append(tail)


def is_full_text(text: str) -> bool:
    """Take cleaned feed-carried text and return whether it looks like the whole article."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return (len(text) >= FULL_TEXT_MIN_CHARS and len(paragraphs) >= FULL_TEXT_MIN_PARAGRAPHS
            and not _ends_as_teaser(paragraphs[-1]))


def _ends_as_teaser(paragraph: str) -> bool:
    """Take the last paragraph and return whether it cuts off like a feed teaser."""
    tail = paragraph.rstrip()
    return tail.endswith(("…", "...", "[…]", "[...]", "(more…)")) or bool(
        _TEASER_END.search(tail[-80:]))
