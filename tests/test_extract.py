"""Tests for digestbot.extract: article text from fictional news pages and feed fragments."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from digestbot.extract import (
    MAX_OUTPUT_CHARS,
    clean_paragraphs,
    extract_article_text,
    html_to_text,
    is_full_text,
)
from tests.conftest import LocalServer, Response

PAGES = Path(__file__).parent / "pages"

BRIDGE_HEADLINE = "Velmont Harbor Bridge reopens after three months of storm repairs"
BRIDGE_PARAGRAPHS = [
    "The Velmont Harbor Bridge reopened to traffic on Friday morning, three months after a winter"
    " storm tore away part of its eastern railing and cracked two of its support piers.",
    "Crews from the regional transport authority worked around the clock through February to"
    " replace the damaged sections, according to project manager Odile Farrant, who said the"
    " repairs came in eleven days ahead of schedule.",
    '"We had engineers sleeping in the site office for most of January," Farrant said at a short'
    ' ceremony on the eastern approach. "Nobody wanted to be the team that kept this city cut in'
    ' half for longer than necessary."',
    "About 48,000 vehicles crossed the bridge each day before the storm. During the closure,"
    " commuters from the Lantern Point district faced detours of up to 40 minutes through the"
    " industrial quarter.",
    "Local business owners said the reopening could not come soon enough. Hesper Voll, who runs a"
    " bakery on the bridge's western end, said her weekday sales fell by almost a third while the"
    " crossing was closed.",
    "The Ledger's own subscribers in Lantern Point wrote in by the hundreds during the closure, and"
    " many of them said they had read every update on the repair schedule.",
    "The transport authority said a full inspection of the bridge's remaining piers will begin in"
    " June and is expected to require overnight lane closures, but no full shutdown.",
    "Mayor Corvin Ashdale thanked the crews and said the city would ask the regional government to"
    " fund a permanent storm barrier on the harbor side before next winter.",
]
BRIDGE_BOILERPLATE = [
    "cookies", "Accept all", "News", "Subscribe", "Marisol Quenby", "March 14, 2031",
    "Share on", "Tweet", "Email", "Photo:", "Tobiah Wren", "first cars cross",
    "Read more", "Storm damage bill", "pier inspection means", "JUST IN", "Ferry workers",
    "Morning Briefing", "newsletter", "Sign up", "Support our journalism", "donation", "Donate",
    "Related", "Ferry timetable", "parking fees", "school expansion", "stormy autumn",
    "About us", "Privacy", "Follow us", "©", "All rights reserved",
]

COUNCIL_HEADLINE = "Orrin Vale council votes to turn old tram depot into housing"
COUNCIL_PARAGRAPHS = [
    "The Orrin Vale town council voted 7 to 2 on Tuesday night to convert the disused tram depot on"
    " Quarry Lane into 140 affordable flats, ending a dispute that has run for almost six years.",
    "Council leader Brannagh Okoye called the decision “the most important housing vote this town"
    " has taken in a generation” and said construction could begin as early as next spring.",
    "Opponents, led by councillor Fennimore Drask, had argued that the site should be kept for a"
    " future light-rail line. Drask said after the vote that he would ask the regional planning"
    " board to review the decision.",
    "The project will be funded through a mix of regional housing grants and a loan from the town's"
    " pension fund, which trustees approved in April. Rents will be capped at 30 per cent of the"
    " median local wage.",
    "Residents who spoke during the public comment period were divided. Some said the town badly"
    " needs homes for young families; others worried about traffic on Quarry Lane, which already"
    " carries heavy lorries to the gravel works.",
    "A final design for the flats is due to be presented to the council in September, Okoye said.",
]
COUNCIL_BOILERPLATE = [
    "Tamsin Rell", "Updated", "6:45 pm", "Photo:", "file photo", "Advertisement", "Related:",
    "short history", "Click here", "agenda", "Bus depot sale", "Gravel works expansion",
    "Library opening hours", "School roof", "Follow us", "Copyright", "All rights reserved",
    "Sign in", "Most read", "Storm warning", "bakery opens",
]


def read_page(name: str) -> bytes:
    """Take a page name under tests/pages and return its bytes."""
    return (PAGES / name).read_bytes()


def body_paragraphs(text: str, headline: str) -> list[str]:
    """Take extracted text and return its paragraphs, less a leading copy of the headline."""
    paragraphs = text.split("\n\n")
    return paragraphs[1:] if paragraphs and paragraphs[0] == headline else paragraphs


@pytest.mark.parametrize(
    ("page", "headline", "expected", "boilerplate"),
    [
        ("harbor_bridge.html", BRIDGE_HEADLINE, BRIDGE_PARAGRAPHS, BRIDGE_BOILERPLATE),
        ("council_vote.html", COUNCIL_HEADLINE, COUNCIL_PARAGRAPHS, COUNCIL_BOILERPLATE),
    ],
)
def test_extract_keeps_every_article_paragraph_and_no_boilerplate(
        page: str, headline: str, expected: list[str], boilerplate: list[str]) -> None:
    text = extract_article_text(read_page(page), "https://news.example/story")
    assert body_paragraphs(text, headline) == expected
    for phrase in boilerplate:
        assert phrase not in text, phrase


def test_extract_decodes_declared_legacy_charset() -> None:
    # council_vote.html is windows-1252 encoded: curly quotes are single bytes there
    text = extract_article_text(read_page("council_vote.html"))
    assert "“the most important housing vote" in text
    assert "\ufffd" not in text


def test_extract_accepts_str_and_bytes_alike() -> None:
    page = read_page("harbor_bridge.html")
    assert extract_article_text(page.decode("utf-8")) == extract_article_text(page)


def test_extract_page_served_over_http(server: LocalServer) -> None:
    server.routes["/story"] = Response(read_page("harbor_bridge.html"),
                                       content_type="text/html; charset=utf-8")
    body = httpx.get(server.url("/story")).content
    text = extract_article_text(body, server.url("/story"))
    assert body_paragraphs(text, BRIDGE_HEADLINE) == BRIDGE_PARAGRAPHS
    # trafilatura must never fetch anything itself: the one request is ours
    assert server.paths_requested() == ["/story"]


def test_extract_is_repeatable_for_the_same_page() -> None:
    # trafilatura's global dedup cache would drop text on the third pass; we keep it per call
    page = read_page("harbor_bridge.html")
    first = extract_article_text(page)
    assert all(extract_article_text(page) == first for _ in range(4))


@pytest.mark.parametrize("garbage", [
    b"", "", b"\x00\x01\x02" * 500, os.urandom(20_000), bytes(range(256)) * 40,
    "just a plain sentence, no markup at all", '{"json": ["not", "html"]}',
    "<html><body></body></html>", "<<<>>><p", b"\xff\xfe<\x00h\x00t\x00m\x00l\x00>",
])
def test_extract_garbage_returns_empty_without_raising(garbage: str | bytes) -> None:
    assert extract_article_text(garbage) == ""


@pytest.mark.parametrize("paragraph", [
    "Read more: Storm damage bill for the coast tops 40 million crowns",
    "READ MORE: Ferry timetable changes for spring",
    "JUST IN: Ferry workers announce Sunday walkout",
    "Related: A short history of the Quarry Lane depot",
    "Also read: Five things to know about the harbor levy",
    "Watch: The moment the bridge reopened",
    "Sign up for our newsletter and get the top stories every morning.",
    "Subscribe",
    "Subscribe to our daily briefing for the latest news.",
    "Support our journalism. Make a donation to the Velmont Ledger today.",
    "We use cookies to improve your experience. By continuing to browse you accept them.",
    "Click here to read the full council agenda.",
    "Follow us on Facebook and Twitter",
    "Share this article",
    "Share on Facebook",
    "Advertisement",
    "ADVERTISEMENT",
    "Story continues below advertisement",
    "Photo: Tobiah Wren/Velmont Ledger",
    "(Reuters)",
    "Image caption The repaired eastern railing",
    "Crowds gather on the pier at dawn. (Photo by Ida Kestrel/Getty Images)",
    "The eastern approach in 2029. File photo",
    "File photo: the depot in happier days",
    "By Marisol Quenby",
    "By Tamsin Rell and Ewart Macklow",
    "Updated: June 2, 2032 at 6:45 pm",
    "March 14, 2031",
    "Copyright 2032 Northbank Courier",
    "© 2031 The Velmont Ledger. All rights reserved.",
    "The post Bridge reopens appeared first on Velmont Ledger.",
])
def test_clean_paragraphs_drops_boilerplate(paragraph: str) -> None:
    kept = "The harbor authority said the bridge would stay open through the summer."
    assert clean_paragraphs([kept, paragraph, kept + " It gave no date."]) == [
        kept, kept + " It gave no date."]


@pytest.mark.parametrize("paragraph", [
    "The Ledger's own subscribers in Lantern Point wrote in by the hundreds during the closure.",
    "Farrant said she had read every report on the storm before signing off the repair plan.",
    "Residents who subscribe to the council's alert service were told of the vote an hour early.",
    "Copyright lawyers for the tram company said the depot murals could not be painted over.",
    "Shares in Harbor Freight Ltd fell 4 per cent after the bridge closure, Ledger data showed.",
    "Click-and-collect orders at the bakery tripled while the crossing was shut, Voll said.",
    "Drask told the Courier: “We will read the planning board's ruling very carefully.”",
    "By the end of the week, 30,000 vehicles a day were using the bridge again.",
    "Related costs, including the temporary ferry service, reached 2 million crowns.",
    "Photographs taken by residents showed the railing hanging over the water.",
    "Watch crews will stay on the bridge overnight until the inspection ends in June.",
])
def test_clean_paragraphs_keeps_sentences_that_mention_promo_words(paragraph: str) -> None:
    assert clean_paragraphs([paragraph]) == [paragraph]


def test_clean_paragraphs_drops_trailing_related_headlines() -> None:
    article = [
        "The council voted 7 to 2 to convert the depot into flats.",
        "Construction could begin next spring, the council leader said.",
    ]
    headlines = [
        "Bus depot sale falls through at last minute",
        "Gravel works expansion faces new objections",
        "Library opening hours cut over summer",
        "School roof repairs delayed again",
    ]
    assert clean_paragraphs(article + headlines) == article


def test_clean_paragraphs_drops_related_headlines_between_paragraphs() -> None:
    first = "The council voted 7 to 2 to convert the depot into flats."
    last = "Construction could begin next spring, the council leader said."
    related = ["More from Orrin Vale", "Bus depot sale falls through at last minute",
               "Gravel works expansion faces new objections"]
    assert clean_paragraphs([first, *related, last]) == [first, last]


def test_clean_paragraphs_keeps_a_list_the_article_introduces() -> None:
    paragraphs = [
        "The plan sets out four conditions for the developer:",
        "Rents capped at 30 per cent of the median wage",
        "No lorry access before 7am",
        "A public courtyard open during the day",
        "Solar panels on every roof",
        "The council will review the conditions each year.",
    ]
    assert clean_paragraphs(paragraphs) == paragraphs


def test_clean_paragraphs_keeps_subheadings_between_paragraphs() -> None:
    paragraphs = [
        "The council voted 7 to 2 to convert the depot into flats.",
        "What happens next",
        "A final design is due in September, the council leader said.",
    ]
    assert clean_paragraphs(paragraphs) == paragraphs


def test_clean_paragraphs_normalises_whitespace_and_drops_empty() -> None:
    assert clean_paragraphs(["  The  bridge\u00a0reopened\u200b on Friday. ", "", "   ", "—"]) == [
        "The bridge reopened on Friday."]


def test_html_to_text_turns_feed_content_into_paragraphs() -> None:
    fragment = (
        '<div class="entry"><p>The <b>Velmont</b> Harbor Bridge reopened on <a href="/x">Friday'
        "</a> &amp; traffic returned&nbsp;quickly.</p>"
        "<figure><img src='/b.jpg'><figcaption>The repaired span. Photo: Tobiah Wren</figcaption>"
        "</figure><script>track('x')</script><style>p{color:red}</style>"
        "<h2>What comes next</h2>"
        "<p>Inspections begin in June.<br>Lane closures will be overnight.</p>"
        "<ul><li>Phase one: eastern piers.</li><li>Phase two: western piers.</li></ul>"
        "<p>Read more: <a href='/y'>Storm damage bill tops 40 million crowns</a></p>"
        "<p>The post <a href='/z'>Bridge reopens</a> appeared first on "
        "<a href='/'>Velmont Ledger</a>.</p></div>"
    )
    assert html_to_text(fragment) == (
        "The Velmont Harbor Bridge reopened on Friday & traffic returned quickly.\n\n"
        "What comes next\n\n"
        "Inspections begin in June.\nLane closures will be overnight.\n\n"
        "Phase one: eastern piers.\n\n"
        "Phase two: western piers."
    )


def test_html_to_text_splits_double_line_breaks_into_paragraphs() -> None:
    fragment = "First line of the notice.<br><br>Second paragraph here.<br/>Still second."
    assert html_to_text(fragment) == (
        "First line of the notice.\n\nSecond paragraph here.\nStill second.")


def test_html_to_text_splits_plain_text_on_blank_lines() -> None:
    text = "The ferry strike ends on Sunday.\n\n  Talks resume   on Monday &amp; Tuesday.\n\n\n"
    assert html_to_text(text) == (
        "The ferry strike ends on Sunday.\n\nTalks resume on Monday & Tuesday.")


def test_html_to_text_survives_broken_html() -> None:
    fragment = "<p>Unclosed <b>bold <i>italic</p><div>Stray text after<p></div></span>Tail words"
    assert html_to_text(fragment) == "Unclosed bold italic\n\nStray text after\n\nTail words"


@pytest.mark.parametrize("fragment", ["", "   ", "<p></p>", "<script>x()</script>", "\x00\x01"])
def test_html_to_text_empty_input_gives_empty_text(fragment: str) -> None:
    assert html_to_text(fragment) == ""


def test_html_to_text_caps_huge_input() -> None:
    paragraph = "<p>" + " ".join(f"word{i}" for i in range(400)) + ".</p>"
    text = html_to_text(paragraph * 2000)  # about 3.5 MB of HTML
    assert 0 < len(text) <= MAX_OUTPUT_CHARS
    assert text.startswith("word0 word1")


def test_is_full_text_tells_whole_article_from_teaser() -> None:
    whole = "\n\n".join(BRIDGE_PARAGRAPHS)
    assert is_full_text(whole)
    assert not is_full_text(BRIDGE_PARAGRAPHS[0])
    assert not is_full_text("\n\n".join(BRIDGE_PARAGRAPHS[:2]))
    teaser = "\n\n".join([*BRIDGE_PARAGRAPHS[:4], "Crews worked through February to […]"])
    assert not is_full_text(teaser)
