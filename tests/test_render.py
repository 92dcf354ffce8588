"""Rendering: templates, escaping, Slack limits, JSON round trip, the email message."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from digestbot.errors import DigestbotError
from digestbot.records import Digest, DigestArticle, DigestStory, DigestTopic, StoryQuote
from digestbot.render import (
    build_email,
    digest_from_dict,
    digest_to_dict,
    find_default_templates,
    make_message_id,
    render_digest,
    render_json,
    slack_escape,
    slack_link,
    slack_messages,
)
from digestbot.slack_blocks import MAX_BLOCKS, MAX_HEADER, MAX_SECTION

UNTIL = datetime(2026, 11, 21, 7, 30, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=1)
EVIL_TITLE = "<!channel> & <http://evil|click> {{ 7*7 }} <script>alert(1)</script>"


def make_story(story_id: int, headline: str, *, sources: int = 2, quotes: int = 2,
               summary: str | None = None, is_update: bool = False,
               url: str | None = None) -> DigestStory:
    """Return a fictional story with `sources` articles and `quotes` attributed quotes."""
    outlets = ("Castrena Herald", "Velmora Post", "Northgate Wire", "Isle of Brenn Times")
    articles = tuple(
        DigestArticle(title=f"{headline} ({outlets[i % 4]} report {i + 1})",
                      url=f"https://news{i % 4}.example.org/{story_id}/{i}?ref=rss&lang=en",
                      source=outlets[i % 4], published=SINCE + timedelta(hours=i + 1))
        for i in range(sources))
    speakers = ("Mira Olenko", "Tomas Verhaal", None, "Ilse Brandvik")
    story_quotes = tuple(
        StoryQuote(text=f"We will keep the crossings open for as long as it takes, number {i + 1}",
                   speaker=speakers[i % 4], urls=(articles[0].url,), score=1.0 - i / 10)
        for i in range(quotes))
    return DigestStory(
        id=story_id, headline=headline, url=url or articles[0].url,
        summary=summary or ("Officials in the fictional republic of Castrena reopened three "
                            "border crossings on Friday after overnight talks with Velmora. "
                            "Queues of lorries stretched for kilometres.\n\nThe interim "
                            "agreement runs for thirty days and will be reviewed next month."),
        summary_sentences=("Officials reopened three crossings.", "The agreement runs 30 days."),
        articles=articles, quotes=story_quotes, terms=("Castrena", "border"),
        first_seen=SINCE - timedelta(days=2) if is_update else SINCE + timedelta(hours=1),
        is_update=is_update)


def sample_digest(stories: int = 3, *, watchlist: str = "castrena-desk",
                  timezone: str = "Europe/London", max_quotes: int = 2) -> Digest:
    """Return a fictional digest with two topics (also used by the other tests and bench)."""
    made = [make_story(i + 1, headline, is_update=(i == 1))
            for i, headline in enumerate(
                ["Border crossings at Velmora reopen after overnight talks",
                 "Castrena parliament delays vote on grain corridor",
                 "Northgate port strike ends with a wage deal",
                 *[f"Regional council story number {n}" for n in range(4, stories + 1)]])][:stories]
    half = max(1, len(made) // 2)
    topics = (DigestTopic("Border and crossings", tuple(made[:half])),
              DigestTopic("Trade and ports", tuple(made[half:])))
    return Digest(watchlist=watchlist, since=SINCE, until=UNTIL, generated_at=UNTIL,
                  topics=tuple(t for t in topics if t.stories), timezone=timezone,
                  max_quotes=max_quotes)


def evil_digest() -> Digest:
    """Return a digest whose feed text tries mentions, forged links, markup and Jinja."""
    story = make_story(9, EVIL_TITLE, sources=1, quotes=1,
                       summary="Plain & simple <b>bold</b> {{ 7*7 }} <@U123> text.",
                       url="javascript:alert(1)")
    return Digest(watchlist="castrena-desk", since=SINCE, until=UNTIL, generated_at=UNTIL,
                  topics=(DigestTopic("Border", (story,)),))


def all_slack_texts(messages: list[dict[str, object]]) -> list[str]:
    """Return every mrkdwn/plain text string of every block of the messages."""
    texts: list[str] = []
    for message in messages:
        texts.append(str(message["text"]))
        for block in message["blocks"]:  # type: ignore[attr-defined]
            if "text" in block:
                texts.append(block["text"]["text"])
            for element in block.get("elements", []):
                texts.append(element["text"])
    return texts


# ---- text and markdown ---------------------------------------------------------------------

def test_text_rendering_shows_period_in_timezone_quotes_sources_and_terms() -> None:
    digest = sample_digest(3, timezone="Europe/Kyiv")
    text = render_digest(digest, "text")
    assert text.startswith("castrena-desk digest\n")
    assert "20 Nov 2026 09:30 – 21 Nov 2026 09:30 (Europe/Kyiv)" in text  # UTC+2 in November
    assert "3 stories from 6 articles" in text
    assert "== Border and crossings ==" in text and "== Trade and ports ==" in text
    assert "Update to a story first reported on 18 Nov 2026." in text
    assert "“We will keep the crossings open for as long as it takes, number 1” — Mira Olenko" \
        in text.replace("\n     ", " ")
    assert "— Tomas Verhaal" in text
    assert "number 3" not in text  # max_quotes=2
    assert text.count("https://news0.example.org/1/0?ref=rss&lang=en") == 1
    assert "Matched: Castrena, border" in text
    assert max(len(line) for line in text.splitlines()) <= 88


def test_text_wrapping_never_splits_the_attribution() -> None:
    for pad in range(40):
        quote = StoryQuote(text="We will hold the line " + "x" * pad + " whatever happens next",
                           speaker="Mira Olenko", urls=(), score=1.0)
        story = replace(make_story(1, "Velmora standoff", quotes=0), quotes=(quote,))
        digest = Digest(watchlist="w", since=SINCE, until=UNTIL, generated_at=UNTIL,
                        topics=(DigestTopic("T", (story,)),))
        text = render_digest(digest, "text")
        assert "— Mira Olenko\n" in text, pad
        assert "\u00a0" not in text


def test_text_rendering_marks_unattributed_quotes() -> None:
    story = make_story(1, "Velmora mayor resigns", quotes=3)
    digest = sample_digest(1, max_quotes=3)
    digest = Digest(watchlist=digest.watchlist, since=SINCE, until=UNTIL, generated_at=UNTIL,
                    topics=(DigestTopic("Politics", (story,)),), max_quotes=3)
    assert "— unattributed" in render_digest(digest, "text")


def test_each_article_is_listed_once_in_every_rendering() -> None:
    story = make_story(1, "Velmora mayor resigns", sources=2)
    doubled = replace(story, articles=story.articles + story.articles[:1])
    digest = Digest(watchlist="w", since=SINCE, until=UNTIL, generated_at=UNTIL,
                    topics=(DigestTopic("Politics", (doubled,)),))
    url = story.articles[0].url
    escaped = url.replace("&", "&amp;")
    assert render_digest(digest, "text").count(url) == 1
    # The headline links to the first article too: once there, once under sources.
    assert render_digest(digest, "markdown").count(url) == 2
    assert "\n".join(all_slack_texts(slack_messages(digest))).count(escaped) == 2
    assert render_digest(digest, "html").count(escaped) == 2


def test_markdown_escapes_feed_text_and_drops_non_http_links() -> None:
    md = render_digest(evil_digest(), "markdown")
    assert "javascript:" not in md
    assert "<script>" not in md and "\\<script\\>" in md
    assert "{{ 7*7 }}" not in md and "49" not in md
    assert "\\{\\{ 7\\*7 \\}\\}" in md


def test_jinja_in_feed_text_stays_literal_everywhere() -> None:
    digest = evil_digest()
    assert "{{ 7*7 }}" in render_digest(digest, "text")
    assert "{{ 7*7 }}" in render_digest(digest, "html")
    assert any("{{ 7*7 }}" in t for t in all_slack_texts(slack_messages(digest)))
    for fmt in ("text", "html"):
        assert "49" not in render_digest(digest, fmt)


def test_empty_digest_renders_in_every_format() -> None:
    empty = Digest(watchlist="quiet-desk", since=SINCE, until=UNTIL, generated_at=UNTIL, topics=())
    assert "No new stories in this period." in render_digest(empty, "text")
    assert "No new stories" in render_digest(empty, "html")
    messages = slack_messages(empty)
    assert len(messages) == 1 and messages[0]["blocks"][0]["type"] == "header"
    msg = build_email(empty, sender="bot@example.org", to=["a@example.org"], now=UNTIL)
    assert msg["Subject"] == "quiet-desk digest, 21 Nov 2026: no new stories"


# ---- templates and overrides ---------------------------------------------------------------

def test_operator_template_overrides_default(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text(
        "OVERRIDE {{ digest.watchlist }} {{ digest.until|localdate }} {{ max_quotes }}\n")
    out = render_digest(sample_digest(), "text", templates_dir=tmp_path)
    assert out == "OVERRIDE castrena-desk 21 Nov 2026 2\n"
    # Templates not overridden still come from the defaults.
    assert "<html" in render_digest(sample_digest(), "html", templates_dir=tmp_path)


def test_undefined_variable_in_template_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("{{ digest.no_such_field }}\n")
    with pytest.raises(DigestbotError, match=r"render: template digest\.txt\.j2"):
        render_digest(sample_digest(), "text", templates_dir=tmp_path)


def test_unknown_format_is_an_error() -> None:
    with pytest.raises(DigestbotError, match="render: unknown format 'pdf'"):
        render_digest(sample_digest(), "pdf")


def test_default_templates_and_readme_exist() -> None:
    folder = find_default_templates()
    for name in ("digest.txt.j2", "digest.md.j2", "email.html.j2", "email.txt.j2", "slack.j2",
                 "alert.txt.j2", "alert.html.j2", "alert.slack.j2", "README.md"):
        assert (folder / name).is_file(), name


# ---- JSON ----------------------------------------------------------------------------------

def test_json_round_trip_is_exact_and_has_the_documented_shape() -> None:
    digest = sample_digest(4)
    data = json.loads(render_json(digest))
    assert digest_from_dict(data) == digest
    assert digest_from_dict(digest_to_dict(digest)) == digest
    assert set(data) >= {"watchlist", "since", "until", "generated_at", "topics"}
    story = data["topics"][0]["stories"][0]
    assert set(story) >= {"id", "headline", "url", "summary", "first_seen", "is_update", "terms",
                          "articles", "quotes"}
    assert set(story["articles"][0]) == {"title", "url", "source", "published"}
    assert set(story["quotes"][0]) == {"text", "speaker", "urls", "score"}
    assert data["since"] == "2026-11-20T07:30:00+00:00"


def test_json_lists_every_quote_while_renderings_show_max_quotes() -> None:
    story = make_story(1, "Velmora mayor resigns", quotes=4)
    digest = Digest(watchlist="w", since=SINCE, until=UNTIL, generated_at=UNTIL,
                    topics=(DigestTopic("Politics", (story,)),), max_quotes=1)
    data = json.loads(render_digest(digest, "json"))
    assert len(data["topics"][0]["stories"][0]["quotes"]) == 4
    assert render_digest(digest, "html").count('class="quote"') == 1


def test_malformed_payload_is_a_clear_error() -> None:
    with pytest.raises(DigestbotError, match="digest payload: malformed"):
        digest_from_dict({"watchlist": "w", "since": "2026-11-20T07:30:00"})


# ---- Slack ---------------------------------------------------------------------------------

def test_slack_message_structure() -> None:
    messages = slack_messages(sample_digest(3))
    assert len(messages) == 1
    blocks = messages[0]["blocks"]
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text",
                                                    "text": "castrena-desk digest · 21 Nov 2026",
                                                    "emoji": True}}
    assert blocks[1]["type"] == "context"
    assert "3 stories from 6 articles" in blocks[1]["elements"][0]["text"]
    story_sections = [b for b in blocks
                      if b["type"] == "section" and b["text"]["text"].startswith("*<")]
    assert len(story_sections) == 3
    first = story_sections[0]["text"]["text"]
    assert first.startswith("*<https://news0.example.org/1/0?ref=rss&amp;lang=en|Border crossings")
    assert ">“We will keep the crossings open for as long as it takes, number 1” — *Mira Olenko*" \
        in first
    assert "number 3" not in first
    assert "— Velmora Post" in first
    assert messages[0]["text"] == "castrena-desk digest, 21 Nov 2026: 3 stories"


def test_slack_escapes_mentions_forged_links_and_ampersands() -> None:
    texts = all_slack_texts(slack_messages(evil_digest()))
    joined = "\n".join(texts)
    assert "<!channel>" not in joined and "<@U123>" not in joined
    assert "<http://evil|click>" not in joined
    assert "&lt;!channel&gt; &amp; &lt;http://evil|click&gt;" in joined
    assert "&lt;@U123&gt;" in joined
    assert "javascript:" not in joined  # non-http story URL is not linked


def test_slack_escape_and_link_helpers() -> None:
    assert slack_escape("a & b < c > d") == "a &amp; b &lt; c &gt; d"
    assert slack_link("https://x.example.org/p?a=1&b=2|<x>", "T|<t>") == \
        "<https://x.example.org/p?a=1&amp;b=2%7C%3Cx%3E|T|&lt;t&gt;>"
    assert slack_link("ftp://x.example.org/f", "file") == "file"
    assert slack_link("javascript:alert(1)", "<b>") == "&lt;b&gt;"


def test_large_digest_spans_messages_within_slack_limits() -> None:
    digest = sample_digest(60)
    messages = slack_messages(digest)
    assert len(messages) >= 2
    for message in messages:
        assert len(message["blocks"]) <= MAX_BLOCKS
        for block in message["blocks"]:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= MAX_SECTION
            if block["type"] == "header":
                assert len(block["text"]["text"]) <= MAX_HEADER
    assert "continued (2/" in messages[1]["blocks"][0]["elements"][0]["text"]
    texts = "\n".join(all_slack_texts(messages))
    # Nothing dropped: every story headline arrives exactly once.
    for topic in digest.topics:
        for story in topic.stories:
            assert texts.count(f"|{story.headline}>*") == 1, story.headline


def test_story_longer_than_a_section_is_split_not_truncated() -> None:
    words = [f"word{i}" for i in range(1500)]
    story = make_story(1, "A very long story", summary=" ".join(words))
    digest = Digest(watchlist="w", since=SINCE, until=UNTIL, generated_at=UNTIL,
                    topics=(DigestTopic("Long", (story,)),))
    blocks = [b for m in slack_messages(digest) for b in m["blocks"] if b["type"] == "section"]
    assert all(len(b["text"]["text"]) <= MAX_SECTION for b in blocks)
    body = " ".join(b["text"]["text"] for b in blocks)
    assert all(f"{w} " in body or body.endswith(w) or f"{w}\n" in body for w in words)
    assert len([b for b in blocks if "word" in b["text"]["text"]]) >= 3


def test_long_header_is_capped_visibly() -> None:
    digest = sample_digest(1, watchlist="w" * 200)
    head = slack_messages(digest)[0]["blocks"][0]["text"]["text"]
    assert len(head) == MAX_HEADER and head.endswith("…")


# ---- email ---------------------------------------------------------------------------------

def _parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def test_email_is_multipart_with_subject_and_headers() -> None:
    digest = sample_digest(3)
    msg = build_email(digest, sender="Digest Bot <digest@example.org>",
                      to=["desk@example.org", "Ana <ana@example.org>"], now=UNTIL)
    assert msg.get_content_type() == "multipart/alternative"
    assert msg["Subject"] == ("castrena-desk digest, 21 Nov 2026: "
                              "Border crossings at Velmora reopen after overnight talks")
    assert msg["To"] == "desk@example.org, ana@example.org"
    assert msg["List-Unsubscribe"] == "<mailto:digest@example.org?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None  # RFC 8058 one-click needs an HTTPS URI
    assert msg["Date"] == "Sat, 21 Nov 2026 07:30:00 +0000"
    text, html = _parts(msg)
    assert "Border crossings at Velmora reopen" in text and "unsubscribe" in text
    assert "<table" in html and "max-width: 640px" in html
    assert 'style="' in html  # CSS inlined
    assert "@media" in html  # phone rules kept


def test_message_id_is_stable_across_retries_and_differs_per_digest() -> None:
    a = build_email(sample_digest(), sender="digest@example.org", to=["x@example.org"], now=UNTIL)
    b = build_email(sample_digest(), sender="digest@example.org", to=["x@example.org"],
                    now=UNTIL + timedelta(minutes=5))
    other = sample_digest(watchlist="other-desk")
    c = build_email(other, sender="digest@example.org", to=["x@example.org"], now=UNTIL)
    assert a["Message-ID"] == b["Message-ID"] == make_message_id(sample_digest().key,
                                                                 "digest@example.org")
    assert a["Message-ID"] != c["Message-ID"]
    assert a["Message-ID"].endswith("@example.org>")


def test_html_is_autoescaped_and_unsafe_links_dropped() -> None:
    html = render_digest(evil_digest(), "html")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "javascript:" not in html
    assert "<b>bold</b>" not in html
    assert "&lt;!channel&gt; &amp;" in html


def test_subject_prefix_and_long_headline_truncated_visibly() -> None:
    story = make_story(1, "Castrena " * 40)
    digest = Digest(watchlist="w", since=SINCE, until=UNTIL, generated_at=UNTIL,
                    topics=(DigestTopic("T", (story,)),))
    msg = build_email(digest, sender="d@example.org", to=["x@example.org"], now=UNTIL,
                      subject_prefix="[desk]")
    subject = str(msg["Subject"])
    assert subject.startswith("[desk] w digest, 21 Nov 2026: Castrena")
    assert subject.endswith("…") and len(subject) < 160
