"""The fast feed-text path gives byte-identical output to the original rules (tests/reference_*).

Corpora: the HTML under tests/, the demo site's pages and feed items, bench feed items, seeded
random fragments and paragraphs built from boilerplate phrases, prose, tags, entities and
awkward characters, and, when ../shared/evaldata is there, a sample of the extraction eval pages.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trafilatura
from lxml import etree
from lxml import html as lxml_html

from bench.feedserver import build_feed
from digestbot import extract, extract_rules
from digestbot.demo import build_site
from digestbot.feeds import parse_feed
from tests import reference_extract as ref
from tests import reference_extract_rules as ref_rules

TESTS = Path(__file__).parent
EVAL = TESTS.parent.parent / "shared" / "evaldata" / "extraction"

PHRASES = [
    "Click here", "sign up for our", "Sign up to get", "subscribe to our", "Subscribe now",
    "Subscribe to the Daily newsletter", "subscribe to Lowmere’s morning newsletters",
    "sign up for free weekly alerts", "Newsletter sign-up", "get our weekly newsletter",
    "support independent local journalism", "make a one-off donation", "donate today",
    "become a member", "thank you for subscribing", "keep an eye on your inbox",
    "delivered to your inbox", "error processing your subscription",
    "we may earn a small commission", "might receive compensation",
    "contains affiliate links", "This page contains references to products", "affiliate link",
    "We may earn", "Like this story?", "share it with a friend", "Follow Ida Rusk on Twitter",
    "Source: Brackenford Courier", "Via Eastholm", "With Piet",
    "Additional reporting by Nadia Cordwell",
    "(Reporting by Tomas Brell; Editing by Greta Hallowell)", "newsletter", "Newsletters",
    "We use cookies", "this site uses cookies", "cookie policy", "Accept all cookies",
    "By continuing to use this site", "by using our website", "All rights reserved",
    "may not be published, broadcast", "May not be republished, broadcast", "Follow us on",
    "Like us on Facebook", "make a monthly contribution", "Thanks for signing up",
    "This story is for members", "Harbour at dusk via iStock", "The quay at night. Alamy",
    "Reporting by Tomas Brell in Lowmere and Ida Rusk in Brackenford, with Piet Vandermolen",
    "Writing by Luca Penhaligon; editing by Sunniva Kjell and the Tarrow Bay news desk team",
    "Editing by Greta Hallowell, who also checked the figures from the Fennick Guild report",
    "Compiled by the Fennick Guild press office from reports filed overnight on the coast",
    "follow the author on X", "(opens in a new window)",
    "The post Quay Works appeared first on Varnley Times.", "download the free app",
    "Enable JavaScript", "Your browser does not support", "unlimited digital access",
    "Already a subscriber", "This article is only available to subscribers",
    "Story continues below", "share this article", "Share on WhatsApp", "send us a tip",
    "Have a news tip", "get in touch with us", "Advertisement", "Read more", "Related stories",
    "More on this story", "5 min read", "Image 3 of 12", "Photo: Oakhaven Council",
    "Picture caption", "file photo", "(Photo: Sunniva Kjell/Getty Images)",
    "[Credit: Quillport Herald]", "Getty Images", "Shutterstock", "iStockphoto",
    "REUTERS/Luca Penhaligon", "| AFP", "/ AP", "By Ida Rusk", "By Ida Rusk and Tomas Brell, Staff",
    "Published 12 March 2031", "Updated: Mon, March 3, 2031 at 10:45 a.m. EST", "2031-03-01",
    "3/4/31", "Copyright 2031", "© Lowmere Post", "(c) 2031", "Tags:", "Filed under",
    "Read also:", "— Reuters", "(AP)", "Most read", "Top stories", "Editor's picks",
    "Continue reading", "Share", "Tweet", "Email", "12 comments", "Menu", "OK", "I agree",
    "Story continues after this advertisement", "Listen to this article", "Photos",
    "Related", "More from Varnley", "You might also like", "Latest headlines",
    "What to read next", "Around the web", "Skip to main content", "Sponsored content",
]
PROSE = [
    "The ferry service in Tarrow Bay resumed on Monday after storm damage.",
    "Council leader Emeka Thornbury said the budget would be balanced by June.",
    "\"We will not wait,\" said Rafael Ostrander, who chairs the Fennick Guild.",
    "Engineers found 14 faults in the flood barrier (the second inspection this year).",
    "Shops along the quay reported fewer visitors; the market / tram line was closed.",
    "The commission said members of the public may get a share of the refund.",
    "Residents can follow the works online | the council said updates would follow.",
    "A survey found 62 per cent backed the plan [see table].",
    "İstanbul-born engineer Sunniva Kjell ſaid the ıncident was minor.",
    "Prices rose by 3.5% in March…", "Read the full report on the council website.",
    "He said: “Subscribe to nothing and trust no one,” before leaving.",
    "Whether the depot reopens is unclear", "Lowmere Harbour Works Begin",
    "Quillport Council Votes To Sell Depot", "The Kelvin scale (K) was mentioned.",
    "Sign up", "Subscribe", "Follow", "With thanks",
]
# IGNORECASE matches İ ı ſ K to ASCII letters; the rest are invisible, control or spacing.
ODD = ["\u0130", "\u0131", "\u017f", "\u212a", "\u200b", "\u00ad", "\ufeff", "\u00a0", "\u2028",
       "\x1c", "\x0b", "\x00", "\x07", "\r", "\t", "\u3000", "’", "“", "…", "—", "•", "»", "é"]
ENTITIES = ["&amp;", "&nbsp;", "&#8217;", "&#x2F;", "&lt;", "&quot;", "&foo;", "&", "&amp",
            "&#0;", "&#xD800;", "&copy", "&hellip;"]
BLOCKS = ["p", "div", "li", "td", "th", "h2", "blockquote", "section", "tr", "pre", "table", "ul"]
INLINES = ["span", 'a href="/x"', "b", "em", "strong", "font", "sup", "code"]
DROPPED = ["script", "style", "noscript", "iframe", "button", "form", "svg", "template"]


def vary(rng: random.Random, text: str) -> str:
    """Take a phrase and return it with random case, odd characters, entities and punctuation."""
    roll = rng.random()
    text = text.upper() if roll < 0.15 else text.lower() if roll < 0.25 else (
        text.title() if roll < 0.32 else text)
    for extras, chance in ((ODD, 0.2), (ENTITIES, 0.1)):
        if rng.random() < chance:
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(extras) + text[at:]
    if rng.random() < 0.15:
        text = rng.choice(["", "  ", "\n", " - ", " | ", ": ", "• ", "(", "[", "— "]) + text
    if rng.random() < 0.25:
        text += rng.choice([".", " ...", ":", " »", " |", ")", "]", " .", "!", "\n", " (AP)",
                            " / Reuters", " …"])
    return text


def make_piece(rng: random.Random, depth: int = 0) -> str:
    """Take a random source and return a random bit of feed HTML."""
    roll = rng.random()
    if roll < 0.35:
        return vary(rng, rng.choice(PHRASES))
    if roll < 0.6:
        return vary(rng, " ".join(rng.choice(PROSE) for _ in range(rng.randint(1, 4))))
    if roll < 0.65:
        return rng.choice(["<br>", "<br/>", "<hr>"])
    if roll < 0.7:
        return f"<!-- {rng.choice(PHRASES)} -->"
    if depth > 3:
        return rng.choice(PROSE)
    inner = "".join(make_piece(rng, depth + 1) for _ in range(rng.randint(1, 3)))
    tag = rng.choice(BLOCKS if roll < 0.85 else INLINES if roll < 0.95 else DROPPED)
    close = "" if rng.random() < 0.08 else f"</{tag.split()[0]}>"
    return f"<{tag}>{inner}{close}"


def make_fragments(count: int, seed: int) -> list[str]:
    """Take a size and seed; return random feed fragments, a fifth of them plain text."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        if rng.random() < 0.2:
            out.append("\n\n".join(vary(rng, rng.choice(PHRASES + PROSE))
                                   for _ in range(rng.randint(1, 6))))
        else:
            out.append("".join(make_piece(rng) for _ in range(rng.randint(1, 8))))
    return out


def make_paragraphs(count: int, seed: int) -> list[str]:
    """Take a size and seed; return random paragraphs of one to three phrases or sentences."""
    rng = random.Random(seed)
    return [rng.choice([" ", "  ", "\n", ", ", ". ", " | ", " / ", ""]).join(
        vary(rng, rng.choice(PHRASES + PROSE)) for _ in range(rng.randint(1, 3)))
        for _ in range(count)]


def read_repo_fragments() -> list[str]:
    """Return the test pages, hostile inputs, demo site and demo and hostile feed items."""
    out = [p.read_bytes().decode("utf-8", "replace")
           for d in ("pages", "hostile") for p in sorted((TESTS / d).iterdir()) if p.is_file()]
    routes = build_site("http://127.0.0.1:1", datetime(2031, 3, 1, tzinfo=UTC))
    feeds = [(path, body) for path, (_, body) in routes.items() if path.endswith(".xml")]
    feeds += [(p.name, p.read_bytes()) for p in sorted((TESTS / "hostile").glob("*.xml"))]
    out += [body.decode("utf-8", "replace") for _, body in routes.values()]
    for name, body in feeds:
        try:
            parsed = parse_feed(body, url=f"http://127.0.0.1:1/{name}", content_type=None)
        except Exception:
            continue  # a hostile feed that does not parse carries no items
        out += [t for e in parsed.entries for t in (e.content_html, e.summary_html) if t]
    return out


def read_bench_items(feeds: int) -> list[str]:
    """Take a number of bench feeds and return their items' content as the feed parser gives it."""
    now = datetime(2031, 3, 1, tzinfo=UTC)
    out = []
    for i in range(feeds):
        doc, _ = build_feed(i, 40, base="http://127.0.0.1:1", pages=False, newest=now)
        parsed = parse_feed(doc, url=f"http://127.0.0.1:1/feed/{i}.xml", content_type=None)
        out += [e.content_html or e.summary_html for e in parsed.entries]
    return out


def read_eval_pages(step: int) -> list[str]:
    """Take a sampling step and return every step-th extraction eval page (none when absent)."""
    files = sorted((EVAL / "scrapinghub_aeb" / "html").glob("*.html.gz"))
    files += sorted((EVAL / "trafilatura_eval" / "html").glob("*.html.gz"))
    return [gzip.decompress(f.read_bytes()).decode("utf-8", "replace") for f in files[::step]]


def cut_fragments(pages: list[str], per_page: int) -> Iterator[str]:
    """Take pages and yield the HTML of up to per_page of their block elements each."""
    for page in pages:
        tree = lxml_html.document_fromstring(page)
        for element in list(tree.iter("p", "li", "div", "td", "blockquote", "h2", "span",
                                      "figcaption", "section"))[:per_page]:
            yield etree.tostring(element, encoding=str, method="html", with_tail=False)


def assert_same(new: Callable[[str], object], old: Callable[[str], object],
                inputs: list[str]) -> None:
    """Take two functions and inputs; fail on the first input where their results differ."""
    for text in inputs:
        expected, got = old(text), new(text)
        assert got == expected, f"differs on {text[:300]!r}"


def paragraphs_of(fragments: list[str]) -> list[str]:
    """Take fragments and return their paragraphs and the lines of those paragraphs."""
    paras = [p for f in fragments for p in ref.fragment_paragraphs(f)]
    return paras + [line for p in paras if "\n" in p for line in p.split("\n")]


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    """Return the corpora by name, random ones seeded."""
    return {"repo": read_repo_fragments(), "bench": read_bench_items(4),
            "random": make_fragments(1500, seed=7)}


@pytest.mark.parametrize("name", ["repo", "bench", "random"])
def test_html_to_text_is_unchanged(corpus: dict[str, list[str]], name: str) -> None:
    texts = [ref.html_to_text(f) for f in corpus[name]]
    for fragment, text in zip(corpus[name], texts, strict=True):
        assert extract.html_to_text(fragment) == text, f"differs on {fragment[:300]!r}"
    assert_same(extract.is_full_text, ref.is_full_text, texts)
    assert any(texts) and any(map(ref.is_full_text, texts))


@pytest.mark.parametrize("name", ["repo", "bench", "random"])
def test_paragraph_rules_are_unchanged(corpus: dict[str, list[str]], name: str) -> None:
    paras = paragraphs_of(corpus[name])
    assert paras
    assert_same(extract_rules.is_boilerplate, ref_rules.is_boilerplate, paras)
    assert_same(extract.fragment_paragraphs, ref.fragment_paragraphs, corpus[name])


def test_random_paragraph_rules_are_unchanged() -> None:
    paras = make_paragraphs(6000, seed=11)
    assert_same(extract_rules.is_boilerplate, ref_rules.is_boilerplate, paras)
    assert_same(extract_rules.normalize_space, ref_rules.normalize_space, paras)
    assert_same(extract.split_breaks, ref.split_breaks, paras)
    verdicts = [ref_rules.is_boilerplate(p) for p in paras]
    assert 0.2 < sum(verdicts) / len(verdicts) < 0.8  # both answers well represented


def test_random_paragraphs_reach_every_promo_phrase_alone() -> None:
    # each guarded phrase must be the only one matching some paragraph, or a wrong guard on it
    # could hide behind another phrase that also matches
    paras = [t for t in map(ref_rules.normalize_space, make_paragraphs(6000, seed=11))
             if t and len(t) <= ref_rules.MAX_PROMO_CHARS]
    phrases = [re.compile(p, re.IGNORECASE) for _, p in extract_rules._PROMO_PHRASES]
    for phrase in phrases:
        hits = [t for t in paras if phrase.search(t)]
        assert any(not any(o.search(t) for o in phrases if o is not phrase) for t in hits), (
            phrase.pattern)


def test_promo_table_joins_to_the_original_pattern() -> None:
    assert extract_rules._PROMO_PHRASE.pattern == ref_rules._PROMO_PHRASE.pattern
    assert extract_rules._PROMO_PHRASE.flags == ref_rules._PROMO_PHRASE.flags


@pytest.mark.parametrize("text", [
    "Clİck here", "SUBſCRIBE NOW", "We uſe cookies", "Sıgn up for our", "Follow uſ on",
    "Harbour at dusk (Photo: Ida Rusk/Gettı Images)", "Quay works, ſhutterstock",
    "Sign up for our newsletter", "We use cookies to improve this site",
    "Subscribe to nothing, he said, and trust no one at the ferry terminal in Lowmere.",
    "Sign up for our newsletter \ud800", "Harbour at dusk (Photo: Ida Rusk) \udcff",
])
def test_odd_characters_get_the_reference_answer(text: str) -> None:
    assert extract_rules.is_boilerplate(text) is ref_rules.is_boilerplate(text)


def test_odd_case_letters_are_still_boilerplate() -> None:
    # IGNORECASE matches ı to i and ſ to s, which str.lower() leaves alone
    assert extract_rules.is_boilerplate("Clıck here to read the Lowmere budget")
    assert extract_rules.is_boilerplate("Subſcribe now")
    assert not extract_rules.is_boilerplate(
        "The Lowmere council voted on Tuesday to keep the ferry running through the winter.")


def assert_same_signals(pages: list[str]) -> None:
    """Take pages and fail on the first whose link shares or captions differ from the oracle."""
    for page in pages:
        tree = trafilatura.load_html(page)
        if tree is None:
            continue
        new, old = extract.read_page_signals(tree), ref.read_page_signals(tree)
        assert (new.link_shares, new.captions) == (old.link_shares, old.captions), page[:300]


def test_page_signals_are_unchanged() -> None:
    pages = [p.read_bytes().decode("utf-8", "replace")
             for p in sorted((TESTS / "pages").glob("*.html"))]
    assert_same_signals(pages)
    shares = extract.read_page_signals(trafilatura.load_html(pages[0])).link_shares
    assert any(0 < share < 1 for share in shares.values()) and 1.0 in shares.values()


@pytest.mark.skipif(not EVAL.is_dir(), reason="../shared/evaldata not present")
def test_eval_pages_are_unchanged() -> None:
    pages = read_eval_pages(step=18)
    assert len(pages) >= 15
    assert_same_signals(pages)
    assert_same(extract.html_to_text, ref.html_to_text, pages)
    fragments = list(cut_fragments(pages, per_page=40))
    assert_same(extract.html_to_text, ref.html_to_text, fragments)
    bodies = json.loads((EVAL / "scrapinghub_aeb" / "ground-truth.json").read_text("utf-8"))
    texts = [b["articleBody"] for b in bodies.values()][::4]
    assert_same(extract.html_to_text, ref.html_to_text, texts)
    assert_same(extract_rules.is_boilerplate, ref_rules.is_boilerplate,
                [p for t in texts for p in t.split("\n")])
