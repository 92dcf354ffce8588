"""Tests for the digest stage's story ranking, on fictional news."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from digestbot.digest import DigestInput, build_digest
from digestbot.records import Article, Match

T0 = datetime(2031, 5, 2, 9, 0, tzinfo=UTC)

FULL_REPORT = [
    "The Vellmoor town council voted on Thursday to close the Saltgate pier for a year after "
    "divers found rot in most of its oak pilings.",
    "Harbourmaster Odile Fenwick said the pier would reopen once the pilings were replaced, "
    "at a cost the council put at 2.1 million crowns.",
    "Fishing boats will moor at the north breakwater in the meantime, and the summer ferry "
    "to Kestle Island will leave from the old lifeboat slip.",
] * 8  # about 300 words: a full report


def make_article(slug: str, source: str, paragraphs: list[str], minutes: int) -> Article:
    """Take a fictional article's parts; return an untitled Article record."""
    url = f"https://{source}.example/{slug}"
    return Article(url=url, link=url, guid=None, feed_url=f"https://{source}.example/feed",
                   source=source, title="", text="\n\n".join(paragraphs),
                   published=T0 + timedelta(minutes=minutes), first_seen=T0)


def rank_stories(articles: list[tuple[Article, int]]) -> list[str]:
    """Take (article, story id) pairs; return the digest's story URLs, best first."""
    rows = [(a, Match(a.url, "desk", "All", ()), sid) for a, sid in articles]
    data = DigestInput(rows=rows, story_articles={sid: [a] for a, sid in articles},
                       story_first_seen={sid: a.first_seen for a, sid in articles})
    digest = build_digest("desk", ["All"], data, since=T0 - timedelta(days=1),
                          until=T0 + timedelta(days=1), now=T0 + timedelta(days=1))
    return [s.url for topic in digest.topics for s in topic.stories]


def test_a_full_report_ranks_above_a_slightly_fresher_stub() -> None:
    report = make_article("pier", "coastline-courier", FULL_REPORT, minutes=0)
    stub = make_article("video", "harbour-tv", ["Saltgate pier closed for a year", "Play Video"],
                        minutes=30)
    assert rank_stories([(report, 1), (stub, 2)]) == [report.url, stub.url]


def test_freshness_still_orders_stories_of_equal_fullness() -> None:
    older = make_article("pier", "coastline-courier", FULL_REPORT, minutes=0)
    newer = make_article("pier-2", "vellmoor-post", FULL_REPORT, minutes=180)
    assert rank_stories([(older, 1), (newer, 2)]) == [newer.url, older.url]
