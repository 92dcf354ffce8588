"""Feed-fragment text and page signals as they were before the speed work: a test oracle.

A frozen copy of the feed path and `read_page_signals` of digestbot/extract.py at commit
9a319b2. tests/test_extract_equivalence.py checks the fast code gives the same output.
"""

from __future__ import annotations

import html as htmllib
import re
from dataclasses import dataclass

from lxml import etree
from lxml import html as lxml_html

from tests.reference_extract_rules import (
    clean_paragraphs,
    normalize_space,
)

MAX_FRAGMENT_CHARS = 1_000_000
MAX_OUTPUT_CHARS = 200_000
FULL_TEXT_MIN_CHARS = 600
FULL_TEXT_MIN_PARAGRAPHS = 3
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LOOKS_LIKE_HTML = re.compile(r"<[a-zA-Z!/]")
_BLANK_LINES = re.compile(r"\n\s*\n")
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


def html_to_text(fragment: str) -> str:
    """Take feed-carried HTML (or plain text) and return cleaned paragraphs as plain text."""
    try:
        return join_paragraphs(clean_paragraphs(fragment_paragraphs(fragment)))
    except Exception:  # a broken feed item must not stop the pipeline
        return ""


def fragment_paragraphs(fragment: str) -> list[str]:
    """Take an HTML fragment or plain text and return its paragraphs."""
    text = _CONTROL_CHARS.sub("", fragment[:MAX_FRAGMENT_CHARS])
    if not text.strip():
        return []
    if not _LOOKS_LIKE_HTML.search(text):
        return split_breaks(htmllib.unescape(text))
    root = lxml_html.fragment_fromstring(text, create_parent="div")
    chunks: list[str] = []
    _walk_fragment(root, chunks)
    return split_breaks("".join(chunks))

def _walk_fragment(element: lxml_html.HtmlElement, out: list[str]) -> None:
    """Take an element and append its text to out, with blank lines around block elements."""
    tag = element.tag if isinstance(element.tag, str) else ""
    if tag in _DROP_TAGS or not isinstance(element.tag, str):
        if element.tail:
            out.append(element.tail)
        return
    block = tag in _BLOCK_TAGS
    if block:
        out.append("\n\n")
    if tag == "br":
        out.append("\n")
    if element.text:
        out.append(element.text)
    for child in element:
        _walk_fragment(child, out)
    if block:
        out.append("\n\n")
    elif tag in ("td", "th"):
        out.append(" ")
    if element.tail:
        out.append(element.tail)

def split_breaks(text: str) -> list[str]:
    """Take text with newlines and return paragraphs: blank lines split, single breaks stay."""
    paragraphs = []
    for chunk in _BLANK_LINES.split(text):
        lines = [normalize_space(line) for line in chunk.split("\n")]
        paragraph = "\n".join(line for line in lines if line)
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

def is_full_text(text: str) -> bool:
    """Take cleaned feed-carried text and return whether it looks like the whole article."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    return (len(text) >= FULL_TEXT_MIN_CHARS and len(paragraphs) >= FULL_TEXT_MIN_PARAGRAPHS
            and not _ends_as_teaser(paragraphs[-1]))

def _ends_as_teaser(paragraph: str) -> bool:
    """Take the last paragraph and return whether it cuts off like a feed teaser."""
    tail = paragraph.rstrip()
    return tail.endswith(("…", "...", "[…]", "[...]", "(more…)")) or bool(
        re.search(r"\b(continue reading|read (the )?(full|more|rest))\b", tail[-80:], re.I))

@dataclass(frozen=True, slots=True)
class PageSignals:
    """What the page's HTML tells about block texts that trafilatura's output no longer shows."""

    link_shares: dict[str, float]  # normalised block text -> share of it that is link text
    captions: frozenset[str]  # normalised texts of figure captions, credits and bylines

def read_page_signals(tree: lxml_html.HtmlElement) -> PageSignals:
    """Take a parsed page and return its link shares and caption texts."""
    shares: dict[str, float] = {}
    for element in tree.iter(*_LINK_SHARE_TAGS):
        text = normalize_space(element.text_content())
        if not text or len(text) > 600:
            continue
        linked = sum(len(normalize_space(a.text_content())) for a in element.iter("a")
                     if not (a.get("href") or "#").startswith("#"))
        key = _key(text)
        share = min(1.0, linked / len(text))
        # the same words unlinked elsewhere (a title also in the breadcrumbs) are not a link
        shares[key] = min(shares.get(key, share), share)
    captions = {_key(e.text_content()) for e in _CAPTIONS(tree)}
    return PageSignals(shares, frozenset(c for c in captions if c))

def _key(text: str) -> str:
    """Take a paragraph and return the form used to look it up in the link-share map."""
    return " ".join(text.split()).lower()
