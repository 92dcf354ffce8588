"""Feed parsing: RSS 2.0, RSS 1.0, Atom, JSON Feed and the documents we refuse."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digestbot.errors import FeedError
from digestbot.extract import html_to_text
from digestbot.feeds import MAX_ENTRIES, MAX_HTML, parse_feed

FEED_URL = "https://gazette.example/feeds/main.xml"

RSS2 = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"
     xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel>
  <title>Harbourtown &amp; District Gazette</title>
  <link>https://gazette.example/</link>
  <ttl>45</ttl>
  <item>
    <title>Council   &lt;b&gt;approves&lt;/b&gt;
      ferry plan</title>
    <link>/2031/05/ferry-plan</link>
    <guid isPermaLink="false">gazette-1001</guid>
    <description>Short &lt;i&gt;summary&lt;/i&gt; of the vote.</description>
    <content:encoded><![CDATA[<p>Councillor Mira Oduya said the <a href="/tags/ferry">ferry</a>
      would run hourly.</p><script>steal()</script>]]></content:encoded>
    <pubDate>Tue, 06 May 2031 09:30:00 +0200</pubDate>
    <dc:creator>Tomas Rell</dc:creator>
  </item>
  <item>
    <title>Lighthouse keeper retires</title>
    <link>https://gazette.example/2031/05/lighthouse</link>
    <description>After forty years.</description>
  </item>
  <item>
    <title>Market day moved</title>
    <link>https://gazette.example/2031/05/market</link>
    <pubDate>the thirty-second of Maytember</pubDate>
  </item>
</channel>
</rss>
"""

ATOM = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title type="html">Valley &lt;em&gt;Courier&lt;/em&gt;</title>
  <id>urn:uuid:7b1f0c6e-valley-courier</id>
  <updated>2031-03-02T10:00:00Z</updated>
  <entry>
    <title>Bridge reopens after repairs</title>
    <link rel="alternate" href="stories/bridge-reopens"/>
    <id>urn:uuid:bridge-0001</id>
    <updated>2031-03-02T08:15:00-05:00</updated>
    <author><name>Anika Storrow</name></author>
    <summary>The Kell Street bridge is open again.</summary>
    <content type="html">&lt;p&gt;Engineer Dov Pellam said the bridge was safe.&lt;/p&gt;</content>
  </entry>
  <entry>
    <title>Ferry timetable</title>
    <id>https://courier.example/ferry-timetable</id>
    <published>2031-03-01T12:00:00Z</published>
    <updated>2031-03-02T12:00:00Z</updated>
    <content type="xhtml">
      <div xmlns="http://www.w3.org/1999/xhtml"><p>New times.</p></div>
    </content>
  </entry>
</feed>
"""

RDF = """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"
         xmlns="http://purl.org/rss/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="https://bulletin.example/">
    <title>Upland Bulletin</title>
    <link>https://bulletin.example/</link>
    <items><rdf:Seq><rdf:li resource="https://bulletin.example/a"/></rdf:Seq></items>
  </channel>
  <item rdf:about="https://bulletin.example/a">
    <title>Orchard harvest doubles</title>
    <link>https://bulletin.example/a</link>
    <description>Growers in Fenmoor report a record year.</description>
    <dc:date>2031-09-14T07:00:00+00:00</dc:date>
    <dc:creator>Jory Vance</dc:creator>
  </item>
</rdf:RDF>
"""


def rss_with_items(items: str, *, encoding: str = "utf-8") -> str:
    """Wrap item XML in a minimal RSS 2.0 document."""
    return (f'<?xml version="1.0" encoding="{encoding}"?>\n<rss version="2.0"><channel>'
            f"<title>Test Desk</title>{items}</channel></rss>")


def test_rss2_with_content_encoded() -> None:
    feed = parse_feed(RSS2.encode(), url=FEED_URL, content_type="application/rss+xml")
    assert feed.title == "Harbourtown & District Gazette"
    assert feed.ttl_minutes == 45
    assert len(feed.entries) == 3
    first = feed.entries[0]
    assert first.feed_url == FEED_URL
    assert first.link == "https://gazette.example/2031/05/ferry-plan"
    assert first.guid == "gazette-1001"
    assert first.title == "Council approves ferry plan"
    assert first.summary_html == "Short <i>summary</i> of the vote."
    assert first.content_html is not None
    assert "Mira Oduya" in first.content_html
    # Content HTML is handed on as published (no sanitising pass: it only ever becomes plain
    # text), so a script is still there for html_to_text to drop.
    assert 'href="/tags/ferry"' in first.content_html
    assert "steal()" in first.content_html
    text = html_to_text(first.content_html)
    assert "ferry would run hourly" in " ".join(text.split())
    assert "steal" not in text and "<" not in text
    assert first.published == datetime(2031, 5, 6, 7, 30, tzinfo=UTC)
    assert first.author == "Tomas Rell"


def test_rss2_missing_and_bad_dates_give_none() -> None:
    feed = parse_feed(RSS2.encode(), url=FEED_URL)
    missing, bad = feed.entries[1], feed.entries[2]
    assert missing.published is None
    assert bad.published is None
    assert missing.content_html is None
    assert missing.guid is None


def test_atom_with_content_and_updated_date() -> None:
    feed = parse_feed(ATOM.encode(), url="https://courier.example/atom.xml",
                      content_type="application/atom+xml")
    assert feed.title == "Valley Courier"
    assert feed.ttl_minutes is None
    bridge, ferry = feed.entries
    assert bridge.link == "https://courier.example/stories/bridge-reopens"
    assert bridge.guid == "urn:uuid:bridge-0001"
    assert bridge.content_html == "<p>Engineer Dov Pellam said the bridge was safe.</p>"
    assert bridge.summary_html == "The Kell Street bridge is open again."
    assert bridge.published == datetime(2031, 3, 2, 13, 15, tzinfo=UTC)
    assert bridge.author == "Anika Storrow"
    # No <link>: the id is a URL, so it becomes the link; published wins over updated.
    assert ferry.link == "https://courier.example/ferry-timetable"
    assert ferry.published == datetime(2031, 3, 1, 12, 0, tzinfo=UTC)
    assert ferry.content_html is not None and "New times." in ferry.content_html


def test_rss1_rdf() -> None:
    feed = parse_feed(RDF.encode(), url="https://bulletin.example/index.rdf")
    assert feed.title == "Upland Bulletin"
    (entry,) = feed.entries
    assert entry.link == "https://bulletin.example/a"
    assert entry.title == "Orchard harvest doubles"
    assert entry.published == datetime(2031, 9, 14, 7, 0, tzinfo=UTC)
    assert entry.author == "Jory Vance"


def test_relative_links_and_entries_without_link_or_title() -> None:
    items = """
      <item><title>Relative</title><link>../stories/7</link></item>
      <item><title>Scheme-relative</title><link>//mirror.example/s/8</link></item>
      <item><title>Script link</title><link>javascript:alert(1)</link></item>
      <item><guid>https://gazette.example/by-guid/9</guid><description>no title</description></item>
      <item><description>neither link nor title</description></item>
    """
    feed = parse_feed(rss_with_items(items).encode(), url=FEED_URL)
    links = [(e.title, e.link) for e in feed.entries]
    assert links == [
        ("Relative", "https://gazette.example/stories/7"),
        ("Scheme-relative", "https://mirror.example/s/8"),
        ("Script link", None),
        ("", "https://gazette.example/by-guid/9"),
    ]


def test_duplicate_guids_keep_the_first() -> None:
    items = """
      <item><title>First telling</title><link>https://g.example/1</link><guid>dup</guid></item>
      <item><title>Second telling</title><link>https://g.example/2</link><guid>dup</guid></item>
      <item><title>Other</title><link>https://g.example/3</link><guid>other</guid></item>
    """
    feed = parse_feed(rss_with_items(items).encode(), url=FEED_URL)
    assert [e.title for e in feed.entries] == ["First telling", "Other"]


def test_entry_count_and_field_sizes_are_capped() -> None:
    big = "x" * (MAX_HTML + 5000)
    items = f"<item><title>{'long title ' * 100}</title><link>https://g.example/big</link>" \
            f"<description>{big}</description></item>"
    items += "".join(f"<item><title>n{i}</title><link>https://g.example/{i}</link></item>"
                     for i in range(MAX_ENTRIES + 100))
    feed = parse_feed(rss_with_items(items).encode(), url=FEED_URL)
    assert len(feed.entries) == MAX_ENTRIES
    assert len(feed.entries[0].summary_html) == MAX_HTML
    assert len(feed.entries[0].title) == 500
    assert feed.entries[-1].title == f"n{MAX_ENTRIES - 2}"


@pytest.mark.parametrize("body", [b"", b"   \n\t ", b"\xef\xbb\xbf"])
def test_empty_body_is_refused(body: bytes) -> None:
    with pytest.raises(FeedError, match="empty response"):
        parse_feed(body, url=FEED_URL)


@pytest.mark.parametrize(("body", "content_type"), [
    (b"<!DOCTYPE html>\n<html><head><title>Gazette</title></head><body>Hi</body></html>", None),
    (b"<html lang='en'><body><p>Subscribe!</p></body></html>", "text/html"),
    (b"\xef\xbb\xbf  <!-- generated -->\n<!doctype HTML><html><body>x</body></html>", None),
    (b"<div>just a fragment</div>", "text/html; charset=utf-8"),
])
def test_html_page_is_refused(body: bytes, content_type: str | None) -> None:
    with pytest.raises(FeedError, match="not a feed: got an HTML page"):
        parse_feed(body, url=FEED_URL, content_type=content_type)


@pytest.mark.parametrize("body", [b'{"status": "ok"}', b"[1, 2, 3]", b"{not json at all"])
def test_json_that_is_not_a_json_feed_is_refused(body: bytes) -> None:
    with pytest.raises(FeedError, match="not a feed: got JSON"):
        parse_feed(body, url=FEED_URL, content_type="application/json")


def test_json_feed_1_1_is_parsed() -> None:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": "Coastline Weekly",
        "items": [
            {"id": "cw-1", "url": "/2031/storm-wall", "title": "Storm wall finished",
             "content_text": "The wall is done.\n\nResidents cheered.",
             "summary": "Done <at last>", "date_published": "2031-11-02T09:00:00+01:00",
             "authors": [{"name": "Pell Amari"}]},
            {"id": "cw-1", "url": "/dup", "title": "Duplicate id"},
            {"id": 2, "external_url": "https://elsewhere.example/x", "title": "External",
             "content_html": "<p>Linked</p>", "date_modified": "2031-11-03T00:00:00"},
            {"id": "cw-3", "content_text": "no link, no title"},
        ],
    }
    feed = parse_feed(json.dumps(doc).encode(), url="https://coast.example/feed.json",
                      content_type="application/feed+json")
    assert feed.title == "Coastline Weekly"
    first, second = feed.entries
    assert first.link == "https://coast.example/2031/storm-wall"
    assert first.content_html == "<p>The wall is done.</p><p>Residents cheered.</p>"
    assert first.summary_html == "Done &lt;at last&gt;"
    assert first.published == datetime(2031, 11, 2, 8, 0, tzinfo=UTC)
    assert first.author == "Pell Amari"
    assert second.guid == "2"
    assert second.link == "https://elsewhere.example/x"
    assert second.published == datetime(2031, 11, 3, tzinfo=UTC)


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rss [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><link>https://g.example/1</link></item></channel></rss>
"""


def quadratic_blowup() -> str:
    """One large entity referenced many times: no nesting, still huge once expanded."""
    entity = "A" * 100_000
    refs = "&big;" * 20_000
    return (f'<?xml version="1.0"?>\n<!DOCTYPE rss [<!ENTITY big "{entity}">]>\n'
            f'<rss version="2.0"><channel><title>t</title><item><title>x</title>'
            f"<description>{refs}</description><link>https://g.example/1</link></item>"
            f"</channel></rss>")


@pytest.mark.parametrize("doc", [
    BILLION_LAUGHS.encode(),
    quadratic_blowup().encode(),
    # The declaration hidden from a naive byte scan by a UTF-16 encoding.
    BILLION_LAUGHS.replace('version="1.0"', 'version="1.0" encoding="utf-16"').encode("utf-16"),
    # A "<!--" inside a processing instruction does not start a comment for an XML parser.
    b'<?xml version="1.0"?><?note <!-- ?><!DOCTYPE rss [<!ENTITY e "boom">]>'
    b'<rss version="2.0"><channel><title>&e;</title></channel></rss><!-- -->',
    # Lower-case keywords are not XML, but we refuse them rather than trust a parser's leniency.
    b'<?xml version="1.0"?><!doctype rss [<!entity e "x">]><rss version="2.0"/>',
])
def test_entity_declarations_are_refused(doc: bytes) -> None:
    started = time.monotonic()
    with pytest.raises(FeedError, match="feed declares XML entities"):
        parse_feed(doc, url=FEED_URL, content_type="application/rss+xml")
    assert time.monotonic() - started < 2.0


def test_entity_text_inside_cdata_without_doctype_is_accepted() -> None:
    items = ("<item><title>Writing DTDs</title><link>https://g.example/dtd</link>"
             "<description><![CDATA[Declare one with <!ENTITY name \"value\">.]]></description>"
             "</item>")
    feed = parse_feed(rss_with_items(items).encode(), url=FEED_URL)
    assert feed.entries[0].title == "Writing DTDs"


def test_truncated_xml_that_still_has_entries_is_accepted() -> None:
    items = "".join(f"<item><title>Story {i}</title><link>https://g.example/{i}</link></item>"
                    for i in range(3))
    doc = rss_with_items(items)
    cut = doc[: doc.index("<item><title>Story 2") + len("<item><title>Sto")]
    feed = parse_feed(cut.encode(), url=FEED_URL, content_type="application/rss+xml")
    assert [e.title for e in feed.entries][:2] == ["Story 0", "Story 1"]


def test_broken_xml_without_entries_is_refused_with_the_reason() -> None:
    with pytest.raises(FeedError, match=r"not a feed: .*line"):
        parse_feed(b"<rss version='2.0'><channel><<<", url=FEED_URL,
                   content_type="application/rss+xml")


def test_xml_that_is_no_feed_is_refused() -> None:
    with pytest.raises(FeedError, match="not a feed"):
        parse_feed(b'<?xml version="1.0"?><invoice><total>12</total></invoice>', url=FEED_URL,
                   content_type="application/xml")


def test_latin1_bytes_declared_utf8_do_not_crash() -> None:
    items = "<item><title>Café reopens in Årdal</title><link>https://g.example/c</link></item>"
    doc = rss_with_items(items, encoding="utf-8").encode("latin-1")
    feed = parse_feed(doc, url=FEED_URL, content_type="application/rss+xml; charset=utf-8")
    (entry,) = feed.entries
    assert entry.title.startswith("Caf")
    assert entry.title.endswith("rdal")
    assert entry.link == "https://g.example/c"
    assert all(ch.isprintable() for ch in entry.title)


def test_utf8_bytes_declared_latin1_do_not_crash() -> None:
    items = "<item><title>Café reopens in Årdal</title><link>https://g.example/c</link></item>"
    doc = rss_with_items(items, encoding="iso-8859-1").encode("utf-8")
    feed = parse_feed(doc, url=FEED_URL, content_type="text/xml; charset=iso-8859-1")
    (entry,) = feed.entries
    assert entry.title.startswith("Caf")
    assert entry.title.endswith("rdal")
    assert all(ch.isprintable() for ch in entry.title)


def test_correct_latin1_declaration_decodes_exactly() -> None:
    items = "<item><title>Café reopens in Årdal</title><link>https://g.example/c</link></item>"
    doc = rss_with_items(items, encoding="iso-8859-1").encode("latin-1")
    feed = parse_feed(doc, url=FEED_URL)
    assert feed.entries[0].title == "Café reopens in Årdal"


@pytest.mark.parametrize(("doc", "content_type"), [
    (b"\xef\xbb\xbf" + RSS2.encode("utf-8"), "application/rss+xml"),
    (RSS2.replace('encoding="utf-8"', 'encoding="utf-16"').encode("utf-16"), None),
])
def test_byte_order_mark_is_honoured(doc: bytes, content_type: str | None) -> None:
    feed = parse_feed(doc, url=FEED_URL, content_type=content_type)
    assert feed.title == "Harbourtown & District Gazette"
    assert len(feed.entries) == 3


def test_body_that_names_a_local_file_is_never_opened(tmp_path: Path) -> None:
    # feedparser opens bytes that name an existing file; a server must not be able to do that.
    secret = tmp_path / "local.xml"
    secret.write_text(rss_with_items("<item><title>LOCAL SECRET</title>"
                                     "<link>https://g.example/s</link></item>"))
    with pytest.raises(FeedError):
        parse_feed(str(secret).encode(), url=FEED_URL, content_type="application/rss+xml")


def test_empty_but_valid_feed_is_accepted() -> None:
    feed = parse_feed(rss_with_items("").encode(), url=FEED_URL)
    assert feed.title == "Test Desk"
    assert feed.entries == ()


@pytest.mark.parametrize("charset", ["idna", "punycode", "unicode_escape", "utf-7", "rot13"])
def test_declared_codec_that_cannot_decode_is_a_feed_error(charset: str) -> None:
    body = ("<?xml version='1.0'?><rss version='2.0'><channel><title>Quillport \u00e9cho</title>"
            "<item><title>Quay reopens</title><link>https://quillport.example/quay</link>"
            "</item></channel></rss>").encode("utf-8")
    for fast in (True, False):
        try:
            parsed = parse_feed(body, url="https://quillport.example/rss",
                                content_type=f"application/rss+xml; charset={charset}", fast=fast)
        except FeedError as err:
            assert err.url == "https://quillport.example/rss"
        else:
            assert parsed.entries[0].title == "Quay reopens"
