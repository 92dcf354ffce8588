"""The lxml fast path (feedxml) reads every feed exactly as feedparser does, or steps aside."""

from __future__ import annotations

import importlib.util
import random
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from urllib.parse import urljoin

import pytest
from feedparser.datetimes import _parse_date
from feedparser.encodings import RE_XML_PI_ENCODING, convert_to_utf8
from hostile.harness import control_feed, rss_items
from test_feeds import ATOM, RDF, RSS2, rss_with_items
from test_hostile_feeds import breakout_feed

from digestbot.demo import build_site
from digestbot.errors import FeedError
from digestbot.feeds import parse_feed, repair_encoding
from digestbot.feedxml import read_feed_fast, to_utf8, xml_pi_encoding
from digestbot.feedxml_read import is_plain_url, parse_date
from digestbot.records import ParsedFeed
from digestbot.urls import resolve_link

ROOT = Path(__file__).resolve().parent.parent
HOSTILE = Path(__file__).parent / "hostile"
FEED_URL = "https://ostrel-news.example/feeds/main.xml"
RSS_TYPE = "application/rss+xml; charset=utf-8"
NS = ('xmlns:content="http://purl.org/rss/1.0/modules/content/" '
      'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom" '
      'xmlns:media="http://search.yahoo.com/mrss/"')

Outcome = ParsedFeed | tuple[str, str]


def outcome(body: bytes, url: str, content_type: str | None, *, fast: bool) -> Outcome:
    """Parse one way; return the ParsedFeed or the FeedError's message."""
    try:
        return parse_feed(body, url=url, content_type=content_type, fast=fast)
    except FeedError as exc:
        return ("error", str(exc))


def takes_fast_path(body: bytes, url: str, content_type: str | None) -> bool:
    """Say whether parse_feed would answer from the fast path for this body."""
    content, kind = repair_encoding(body, content_type)
    return read_feed_fast(content, url=url, content_type=kind) is not None


def same_both_ways(body: bytes | str, url: str = FEED_URL,
                   content_type: str | None = RSS_TYPE) -> Outcome:
    """Assert the fast and the feedparser reading agree; return the reading."""
    data = body.encode("utf-8") if isinstance(body, str) else body
    fast = outcome(data, url, content_type, fast=True)
    assert fast == outcome(data, url, content_type, fast=False)
    return fast


def rss(items: str, channel: str = "<title>Ostrel News</title>") -> str:
    """Wrap item XML in an RSS 2.0 document declaring the usual module namespaces."""
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" {NS}><channel>{channel}' \
           f"{items}</channel></rss>"


def atom(entries: str) -> str:
    """Wrap entry XML in an Atom 1.0 document."""
    return ('<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Ostrel Atom</title><id>urn:ostrel</id>{entries}</feed>")


def load_bench(name: str) -> ModuleType:
    """Import bench/<name>.py, which is not a package."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def suite_feeds() -> list[tuple[str, bytes, str, str | None]]:
    """Return (id, body, url, content type) for every feed the test suite and benches serve."""
    now = datetime(2031, 5, 6, 9, 30, tzinfo=UTC)
    feeds: list[tuple[str, bytes, str, str | None]] = [
        ("rss2", RSS2.encode(), FEED_URL, RSS_TYPE),
        ("rss2-untyped", RSS2.encode(), FEED_URL, None),
        ("atom", ATOM.encode(), FEED_URL, "application/atom+xml"),
        ("rdf", RDF.encode(), FEED_URL, None),
        ("minimal", rss_with_items("<item><title>One</title></item>").encode(), FEED_URL, None),
        ("control", control_feed().encode(), FEED_URL, RSS_TYPE),
        ("items", rss_items([("Quay &amp; wall", "/quay", "<b>Teaser</b>")]).encode(), FEED_URL,
         "text/xml"),
        ("breakout", breakout_feed().encode(), FEED_URL, RSS_TYPE)]
    for path in sorted(HOSTILE.glob("*.xml")):
        for kind in (RSS_TYPE, None, "text/xml"):
            feeds.append((f"hostile-{path.stem}-{kind}", path.read_bytes(), FEED_URL, kind))
    for route, (kind, body) in build_site("http://127.0.0.1:8765", now).items():
        if "xml" in kind:
            feeds.append((f"demo{route}", body, "http://127.0.0.1:8765" + route, kind))
    server = load_bench("feedserver")
    for pages in (False, True):
        doc, _ = server.build_feed(7, 12, base="http://127.0.0.2:8080", pages=pages, newest=now)
        feeds.append((f"feedserver-pages-{pages}", doc, "http://127.0.0.2:8080/feed/7.xml",
                      "application/rss+xml; charset=utf-8"))
    harness = load_bench("harness")
    articles = [harness.BenchArticle(id=f"fen-{n}", source="Fenmoor Ledger",
                                     title=f"Fenmoor reservoir report {n} — “draft”",
                                     text="Ada Quell said the dam held.\n\nRepairs <soon> & more.",
                                     published=now - timedelta(hours=n), url_path=f"/fen/{n}.html")
                for n in range(3)]
    for full in (False, True):
        body = harness.render_feed("Fenmoor Ledger", articles, base="http://127.0.0.3:9000",
                                   full_content=full).encode("utf-8")
        feeds.append((f"bench-harness-full-{full}", body, "http://127.0.0.3:9000/feeds/0.xml",
                      "application/rss+xml; charset=utf-8"))
    return feeds


SUITE_FEEDS = suite_feeds()


@pytest.mark.parametrize(("body", "url", "content_type"), [f[1:] for f in SUITE_FEEDS],
                         ids=[f[0] for f in SUITE_FEEDS])
def test_every_suite_feed_reads_the_same_both_ways(body: bytes, url: str,
                                                   content_type: str | None) -> None:
    same_both_ways(body, url, content_type)


def test_the_generated_feeds_take_the_fast_path() -> None:
    fast = {name for name, body, url, kind in SUITE_FEEDS if takes_fast_path(body, url, kind)}
    assert {"rss2", "rdf", "control", "breakout", "feedserver-pages-False",
            "feedserver-pages-True", "bench-harness-full-True", "demo/meridian/feed.xml",
            "hostile-relative_links-application/rss+xml; charset=utf-8"} <= fast
    # Atom with XHTML content, malformed and entity-declaring documents are feedparser's.
    assert not {"atom", "hostile-malformed-None", "hostile-truncated-None",
                "hostile-billion_laughs-None"} & fast


FAST_CASES = {
    "cdata-and-namespaces": rss(
        "<item><title><![CDATA[Quay <b>wall</b> fixed]]></title>"
        "<link>https://ostrel-news.example/quay?a=1&amp;b=2</link>"
        '<guid isPermaLink="false">ostrel-1</guid><dc:creator>Ida Rusk</dc:creator>'
        "<dc:date>2031-05-06T09:30:00+02:00</dc:date>"
        "<description><![CDATA[<p>Short</p>]]></description>"
        "<content:encoded><![CDATA[<p>Long <a href='/x'>text</a></p>]]></content:encoded>"
        "</item>"),
    "atom-link-in-rss": rss(
        '<item><title>Ferry</title><atom:link rel="alternate" href="/ferry"/>'
        "<pubDate>Tue, 06 May 2031 09:30:00 -0500</pubDate></item>"),
    "relative-and-permalink": rss(
        "<item><title>Rel</title><link>story/rel</link></item>"
        "<item><title>By guid</title><guid>/by-guid</guid></item>"
        "<item><title>No link at all</title><description>Only words.</description></item>"
        "<item><description>Neither title nor link: dropped.</description></item>"),
    "repairs": rss(
        "<item><title>Caf\u00c3\u00a9 opens</title><link>/cafe</link>"
        "<author>ida@ostrel-news.example (Ida Rusk)</author></item>"
        "<item><title>&#x93;Open&#x94; day</title><link>/open</link></item>"),
    "second-description-is-content": rss(
        "<item><title>Two</title><link>/two</link><description>First</description>"
        "<description>Second and longer</description></item>"),
    "atom-types": atom(
        '<entry><title type="html">Harbour &lt;em&gt;news&lt;/em&gt;</title>'
        '<link href="stories/1"/><link rel="enclosure" href="/a.mp3"/><id>urn:ostrel:1</id>'
        "<updated>2031-03-02T08:15:00-05:00</updated><published>2031-03-01T12:00:00Z</published>"
        "<author><name>Anika Storrow</name><email>anika@ostrel-news.example</email></author>"
        '<summary type="text">Plain &lt;not markup&gt;</summary>'
        '<content type="html">&lt;p&gt;Body&lt;/p&gt;</content></entry>'
        "<entry><title>Id only</title><id>https://ostrel-news.example/id-only</id>"
        '<content type="text">Text body</content></entry>'),
    "rdf-about": RDF.replace("<link>https://bulletin.example/a</link>", ""),
    "ttl-image-and-late-title": rss(
        "<item><title>T</title><link>/t</link></item><title>Late title</title>",
        "<title>Early</title><ttl>45</ttl><image><url>/i.png</url><title>Logo</title>"
        "<link>/</link></image>"),
}


@pytest.mark.parametrize("doc", list(FAST_CASES.values()), ids=list(FAST_CASES))
def test_targeted_documents_take_the_fast_path_and_agree(doc: str) -> None:
    assert takes_fast_path(doc.encode(), FEED_URL, RSS_TYPE)
    same_both_ways(doc)


def test_fast_path_values_are_the_ones_feedparser_gives() -> None:
    feed = same_both_ways(FAST_CASES["cdata-and-namespaces"])
    assert isinstance(feed, ParsedFeed)
    (entry,) = feed.entries
    assert (entry.title, entry.link, entry.guid, entry.author) == (
        "Quay wall fixed", "https://ostrel-news.example/quay?a=1&b=2", "ostrel-1", "Ida Rusk")
    assert entry.published == datetime(2031, 5, 6, 7, 30, tzinfo=UTC)
    assert (entry.summary_html, entry.content_html) == (
        "<p>Short</p>", "<p>Long <a href='/x'>text</a></p>")
    rel = same_both_ways(FAST_CASES["relative-and-permalink"])
    assert isinstance(rel, ParsedFeed)
    assert [(e.title, e.link) for e in rel.entries] == [
        ("Rel", "https://ostrel-news.example/feeds/story/rel"),
        ("By guid", "https://ostrel-news.example/by-guid"), ("No link at all", None)]
    fixed = same_both_ways(FAST_CASES["repairs"])
    assert isinstance(fixed, ParsedFeed)
    # UTF-8 read as Latin-1, and C1 controls meant as windows-1252, are repaired.
    assert [(e.title, e.author) for e in fixed.entries] == [
        ("Café opens", "ida@ostrel-news.example (Ida Rusk)"), ("“Open” day", None)]
    atom_feed = same_both_ways(FAST_CASES["atom-types"], content_type="application/atom+xml")
    assert isinstance(atom_feed, ParsedFeed)
    first, second = atom_feed.entries
    assert (first.title, first.link, first.author) == (
        "Harbour news", "https://ostrel-news.example/feeds/stories/1",
        "Anika Storrow (anika@ostrel-news.example)")
    assert first.published == datetime(2031, 3, 1, 12, tzinfo=UTC)
    assert (first.summary_html, first.content_html) == ("Plain <not markup>", "<p>Body</p>")
    assert (second.link, second.content_html) == (
        "https://ostrel-news.example/id-only", "Text body")
    late = same_both_ways(FAST_CASES["ttl-image-and-late-title"])
    assert isinstance(late, ParsedFeed)
    assert (late.title, late.ttl_minutes) == ("Late title", 45)


FALLBACK_CASES = {
    "malformed": rss("<item><title>Open <b>bold</title></item>"),
    "doctype": '<?xml version="1.0"?><!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS '
               '0.91//EN" "http://my.netscape.com/publish/formats/rss-0.91.dtd">'
               + rss("<item><title>Old</title><link>/old</link></item>").split("?>", 1)[1],
    "xml-base": rss('<item xml:base="https://elsewhere.example/"><title>B</title>'
                    "<link>rel</link></item>"),
    "atom-xhtml": atom('<entry><title>X</title><id>urn:x</id><content type="xhtml">'
                       '<div xmlns="http://www.w3.org/1999/xhtml"><p>Hi<br/>there</p></div>'
                       "</content></entry>"),
    "unknown-namespace": rss('<item xmlns:ost="urn:ostrel"><title>U</title><link>/u</link>'
                             "<ost:note>n</ost:note></item>"),
    "markup-in-description": rss("<item><title>M</title><link>/m</link>"
                                 "<description><p>Unescaped</p></description></item>"),
    "media-title": rss("<item><link>/mt</link><media:title>Media title</media:title></item>"),
    "undeclared-prefix": rss("<item><title>P</title><ost:x>1</ost:x></item>"),
    "no-items": rss(""),
}


@pytest.mark.parametrize("doc", list(FALLBACK_CASES.values()), ids=list(FALLBACK_CASES))
def test_documents_it_cannot_mirror_fall_back_and_parse_as_before(doc: str) -> None:
    assert not takes_fast_path(doc.encode(), FEED_URL, RSS_TYPE)
    same_both_ways(doc)


def test_fallback_results_are_feedparsers() -> None:
    xhtml = same_both_ways(FALLBACK_CASES["atom-xhtml"], content_type="application/atom+xml")
    assert isinstance(xhtml, ParsedFeed) and xhtml.entries[0].content_html == (
        "<p>Hi<br></br>there</p>")
    based = same_both_ways(FALLBACK_CASES["xml-base"])
    assert isinstance(based, ParsedFeed) and based.entries[0].link == (
        "https://elsewhere.example/rel")
    assert same_both_ways(FALLBACK_CASES["no-items"]) == ParsedFeed(FEED_URL, "Ostrel News", ())


def test_entity_declarations_are_refused_before_any_xml_parser_runs() -> None:
    doc = ('<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY leak SYSTEM "file:///etc/hostname">]>'
           "<rss><channel><title>&leak;</title><item><title>&leak;</title></item></channel></rss>")
    assert same_both_ways(doc) == (
        "error", f"feed failed for {FEED_URL}: feed declares XML entities")


# Random documents built from the pieces feeds are made of: both readings must agree on each.
TEXTS = ("Harbour vote", "  spaced \t out  ", "", "Caf\u00e9", "Caf\u00c3\u00a9", "&#x93;q&#x94;",
         "\u201ccurly\u201d", "a &amp; b", "&lt;b&gt;bold&lt;/b&gt;", "<![CDATA[<p>para</p>]]>",
         "x<!-- c -->y", "line\r\nbreak", "\u202eevil", " \u2003em ")
LINKS = ("https://ostrel-news.example/a", "/rel/path", "story/x?y=1&amp;z=2", "../up",
         "//other.example/s", "", " https://ostrel-news.example/sp ", "HTTP://Ostrel.Example/C",
         "https://ostrel-news.example/q?", "mailto:ida@ostrel-news.example", "javascript:x()",
         "https://ostrel-news.example/a#f", "https://ostrel-news.example:99999/p",
         "https://ostrel-news.example/caf\u00e9", "https://ostrel-news.example/a;p?q")
DATES = ("Tue, 06 May 2031 09:30:00 +0200", "Tue, 06 May 2031 09:30:00 GMT",
         "06 May 2031 09:30 EST", "2031-03-02T08:15:00-05:00", "2031-03-02T08:15:00Z",
         "2031-03-02", "the 32nd of Maytember", "", "Thu, 01 Jan 1970 00:00:00 GMT",
         "2031-03-02T08:15:00.123+05:30")
PEOPLE = ("Ida Rusk", "ida@ostrel-news.example (Ida Rusk)", "Tomas <tb@ostrel-news.example>", "")
RSS_PARTS = (
    "<title>{t}</title>", "<title>{t}</title>", "<Title>{t}</Title>", "<link>{l}</link>",
    '<guid isPermaLink="{b}">{l}</guid>', "<guid>{l}</guid>", "<description>{t}</description>",
    "<description>{t}</description>", "<content:encoded>{t}</content:encoded>",
    "<pubDate>{d}</pubDate>", "<dc:date>{d}</dc:date>", "<author>{p}</author>",
    "<dc:creator>{p}</dc:creator>", '<atom:link rel="{r}" href="{l}"/>',
    "<category>{t}</category>", '<enclosure url="{l}" type="audio/mpeg"/>',
    '<media:content url="{l}"/>', "<comments>{l}</comments>", "<source url='{l}'>{t}</source>",
    "<dc:title>{t}</dc:title>", "<summary>{t}</summary>", "<!-- note -->",
    "<atom:author><atom:name>{p}</atom:name><atom:email>e@x.example</atom:email></atom:author>")
ATOM_PARTS = (
    "<title{y}>{t}</title>", '<link href="{l}"/>', '<link rel="{r}" href="{l}"/>',
    '<link href="{l}" type="{k}"/>', "<id>{l}</id>", "<published>{d}</published>",
    "<updated>{d}</updated>", "<summary{y}>{t}</summary>", "<content{y}>{t}</content>",
    "<author><name>{p}</name></author>", "<author><name>{p}</name><uri>{l}</uri></author>",
    "<author><email>only@x.example</email></author>", '<category term="x"/>',
    "<contributor><name>{p}</name></contributor>", "<rights{y}>{t}</rights>")
CHANNEL_EXTRAS = ("", "<ttl>30</ttl>", "<ttl> 45 </ttl>", '<ttl unit="m">5</ttl>',
                  "<title></title>",
                  "<image><url>/i.png</url><title>Logo</title><link>/</link></image>",
                  "<textInput><title>S</title><name>q</name><link>/s</link></textInput>",
                  '<atom:link rel="self" href="/feed"/>', "<managingEditor>{p}</managingEditor>",
                  "<skipHours><hour>1</hour></skipHours>", "<dc:title>{t}</dc:title>")


def random_feed(rng: random.Random) -> str:
    """Take a random source; return a random RSS 2.0, Atom or RSS 1.0 document."""
    def fill(part: str) -> str:
        return part.format(
            t=rng.choice(TEXTS), l=rng.choice(LINKS), d=rng.choice(DATES), p=rng.choice(PEOPLE),
            b=rng.choice(("true", "false", "True")), y=rng.choice(("", ' type="html"',
                                                                   ' type="TEXT"')),
            r=rng.choice(("alternate", "self", "enclosure", "ALTERNATE")),
            k=rng.choice(("text/html", "application/atom+xml", "html")))
    kind = rng.randrange(3)
    parts = ATOM_PARTS if kind == 1 else RSS_PARTS
    items = ["".join(fill(rng.choice(parts)) for _ in range(rng.randint(0, 7)))
             for _ in range(rng.randint(0, 4))]
    head = fill(rng.choice(("<title>{t}</title>", "")) + rng.choice(CHANNEL_EXTRAS))
    tail = rng.choice(("", "", fill("<title>Late {t}</title>")))
    if kind == 1:
        body = "".join(f"<entry>{i}</entry>" for i in items)
        return (f'<feed xmlns="http://www.w3.org/2005/Atom">{fill("<title{y}>{t}</title>")}'
                f"{body}{tail}</feed>")
    if kind == 2:
        body = "".join(f'<item rdf:about="{rng.choice(LINKS)}">{i}</item>' for i in items)
        return ('<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" '
                f'xmlns="http://purl.org/rss/1.0/" {NS}><channel rdf:about="/">{head}</channel>'
                f"{body}</rdf:RDF>")
    body = "".join(f"<item>{i}</item>" for i in items)
    return f'<rss version="2.0" {NS}><channel>{head}{body}{tail}</channel></rss>'


@pytest.mark.parametrize("seed", range(4))
def test_random_documents_read_the_same_both_ways(seed: int) -> None:
    rng = random.Random(seed)
    fast = 0
    for _ in range(150):
        decl = rng.choice(('<?xml version="1.0" encoding="utf-8"?>\n', "",
                           '<?xml version="1.0" encoding="iso-8859-1"?>'))
        doc = decl + random_feed(rng)
        try:
            body = doc.encode("latin-1" if "8859" in decl else "utf-8")
        except UnicodeEncodeError:
            body = doc.encode("utf-8")
        kind = rng.choice((RSS_TYPE, None, "text/xml", "application/xml", "text/html",
                           "application/rss+xml; charset=iso-8859-1"))
        url = rng.choice((FEED_URL, "http://127.0.0.1:8080/feed/1.xml", "https://ostrel.example"))
        fast += takes_fast_path(body, url, kind)
        same_both_ways(body, url, kind)
    assert fast >= 40, f"only {fast} of 150 documents took the fast path"


@pytest.mark.parametrize("charset", ["iso-8859-1", "windows-1252", "gb2312", "utf-16", "ascii",
                                     "idna", "unicode_escape", "no-such-codec"])
@pytest.mark.parametrize("where", ["header", "declaration"])
def test_declared_charsets_read_the_same_both_ways(charset: str, where: str) -> None:
    doc = rss("<item><title>Caf\u00e9 at \u00a3 3</title><link>/c</link></item>")
    if where == "declaration":
        doc = doc.replace('encoding="utf-8"', f'encoding="{charset}"')
    body = doc.encode("latin-1")
    kind = f"application/rss+xml; charset={charset}" if where == "header" else "text/xml"
    results = []
    for fast in (True, False):
        try:
            results.append(parse_feed(body, url=FEED_URL, content_type=kind, fast=fast))
        except Exception as exc:  # odd codecs make feedparser raise; both paths must agree
            results.append((type(exc).__name__, str(exc)))
    assert results[0] == results[1]


def test_encoding_sniffing_matches_feedparser() -> None:
    rng = random.Random(9)
    pieces = (b"<?", b"?>", b"encoding=", b"'", b'"', b"x", b"\n", b" ", b"utf-8", b"<")
    for _ in range(20_000):
        data = b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 12)))
        data = b"<?" + data if rng.random() < 0.7 else data
        m = RE_XML_PI_ENCODING.match(data)
        assert xml_pi_encoding(data) == (m.group(1) if m else None), data
    for _, body, url, kind in SUITE_FEEDS:
        body, kind = repair_encoding(body, kind)
        headers = {"content-location": url} | ({"content-type": kind} if kind else {})
        result: dict[str, object] = {}
        expected = convert_to_utf8(headers, body, result)
        assert to_utf8(headers, body) in (None, expected if result["encoding"] else None)


def test_url_and_date_shortcuts_match_the_full_functions() -> None:
    base = "https://ostrel-news.example/feeds/main.xml"
    urls = ["https://ostrel-news.example/a/b?c=d&e=f", "http://127.0.0.1:8080/page/1/2.html",
            "https://ostrel-news.example:65535/x", "https://ostrel-news.example:65536/x",
            "https://ostrel-news.example/a?", "HTTPS://ostrel-news.example/", "/relative",
            "https://ostrel-news.example/a;b", "https://ostrel-news.example/a#b",
            "https://ostrel-news.example", "https://ostrel-news.example/%7Eida/"]
    for url in urls:
        if is_plain_url(url):
            assert urljoin(base, url) == url == resolve_link(base, url)
    assert [is_plain_url(u) for u in urls[:4]] == [True, True, True, False]
    rng = random.Random(3)
    days, months = ("Mon", "Tue", "Sun"), ("Jan", "May", "Oct", "Dec")
    for _ in range(3000):
        text = (f"{rng.choice(days)}, {rng.randint(0, 40)} {rng.choice(months)} "
                f"{rng.choice((1, 1969, 2031, 9999))} {rng.randint(0, 25):02d}:"
                f"{rng.randint(0, 61):02d}:00 {rng.choice(('GMT', 'Z', '-0530', '+2400'))}")
        assert parse_date(text) == _parse_date(text), text
