"""Digest stage: matched articles of one watchlist and period -> a ranked Digest record (pure)."""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from digestbot.quotes import extract_quotes, merge_quotes
from digestbot.records import (
    Article,
    Digest,
    DigestArticle,
    DigestStory,
    DigestTopic,
    Match,
    StoryQuote,
)
from digestbot.summarize import summarize_story

FULL_ARTICLE_WORDS = 100  # a story whose longest article has this many words is full
FULLNESS_WEIGHT = 0.5  # at most half a fresh story's edge: recency still leads


@dataclass(frozen=True, slots=True)
class DigestInput:
    """What the store knows about one watchlist's period, gathered at the edge."""

    rows: Sequence[tuple[Article, Match, int | None]]
    story_articles: Mapping[int, Sequence[Article]]
    story_first_seen: Mapping[int, datetime]


def build_digest(
    watchlist: str,
    topics: Sequence[str],
    data: DigestInput,
    *,
    since: datetime,
    until: datetime,
    now: datetime,
    max_stories: int = 10,
    max_quotes: int = 3,
    summary_sentences: int = 3,
    summary_words: int | None = None,
    timezone: str = "UTC",
) -> Digest:
    """Take the period's matched articles and return the digest: one entry per story, best first."""
    candidates = _collect_stories(topics, data, until=until)
    ranked = sorted(candidates, key=lambda c: _rank_key(c, until), reverse=True)[:max_stories]
    chosen = {id(c) for c in ranked}
    sections: list[DigestTopic] = []
    for topic in topics:
        stories = [
            _make_story(c, data, since=since, summary_sentences=summary_sentences,
                        summary_words=summary_words)
            for c in sorted(
                (c for c in candidates if c.topic == topic and id(c) in chosen),
                key=lambda c: _rank_key(c, until), reverse=True)
        ]
        if stories:
            sections.append(DigestTopic(name=topic, stories=tuple(stories)))
    return Digest(watchlist=watchlist, since=since, until=until, generated_at=now,
                  topics=tuple(sections), timezone=timezone, max_quotes=max_quotes)


@dataclass(slots=True)
class _Candidate:
    story_id: int
    topic: str
    matched: list[Article]
    terms: list[str]
    articles: list[Article]


def _collect_stories(topics: Sequence[str], data: DigestInput, *,
                     until: datetime) -> list[_Candidate]:
    """Group matched rows into stories; a story matching several topics goes under the first."""
    order = {name: i for i, name in enumerate(topics)}
    by_story: dict[int, _Candidate] = {}
    for article, match, story_id in data.rows:
        if match.topic not in order:
            continue
        # An article the clusterer has not placed yet stands alone under a negative id.
        sid = story_id if story_id is not None else -zlib.crc32(article.url.encode()) - 1
        current = by_story.get(sid)
        if current is None or order[match.topic] < order[current.topic]:
            members = [a for a in data.story_articles.get(sid, [article]) if a.when < until]
            current = _Candidate(sid, match.topic, [], [], members or [article])
            by_story[sid] = current
        if match.topic == current.topic:
            if all(a.url != article.url for a in current.matched):
                current.matched.append(article)
            current.terms.extend(t for t in match.terms if t not in current.terms)
    return list(by_story.values())


def _rank_key(c: _Candidate, until: datetime) -> tuple[float, str]:
    """Bigger, fresher and fuller stories first; ties broken by story id for a stable order."""
    sources = len({a.source for a in c.articles})
    newest = max(a.when for a in c.articles)
    age_hours = max(0.0, (until - newest) / timedelta(hours=1))
    # A stub (a video embed, a login wall, a one-line teaser) says less than a full report:
    # among stories as widely reported, it comes after one with an article's worth of text.
    fullness = min(1.0, max(len(a.text.split()) for a in c.articles) / FULL_ARTICLE_WORDS)
    return (2.0 * sources + len(c.matched) + 1.0 / (1.0 + age_hours / 12.0)
            + FULLNESS_WEIGHT * fullness, f"{c.story_id:012d}")


def _make_story(c: _Candidate, data: DigestInput, *, since: datetime,
                summary_sentences: int, summary_words: int | None) -> DigestStory:
    """Summarise one story and gather its quotes across every article of it."""
    articles = sorted(_unique(c.articles), key=lambda a: (a.when, a.url))
    summary = summarize_story(articles, sentences=summary_sentences, max_words=summary_words,
                              terms=c.terms)
    quotes = _story_quotes(articles, c.terms)
    first_seen = data.story_first_seen.get(c.story_id, min(a.first_seen for a in articles))
    return DigestStory(
        id=c.story_id,
        headline=summary.headline or _fallback_headline(articles, summary.sentences),
        url=summary.headline_url or articles[0].url,
        summary=summary.text,
        summary_sentences=summary.sentences,
        articles=tuple(DigestArticle(title=a.title, url=a.url, source=a.source,
                                     published=a.published) for a in articles),
        quotes=tuple(quotes),
        terms=tuple(c.terms),
        first_seen=first_seen,
        is_update=first_seen < since,
    )


def _story_quotes(articles: Sequence[Article], terms: Sequence[str]) -> list[StoryQuote]:
    per_article = [(a.url, extract_quotes(a.text, title=a.title)) for a in articles]
    story_text = "\n\n".join(a.title + "\n\n" + a.text for a in articles)
    return merge_quotes(per_article, terms=terms, story_text=story_text)


def _fallback_headline(articles: Sequence[Article], sentences: Sequence[str]) -> str:
    """Untitled articles still need a line to stand for them: their first sentence or source."""
    text = sentences[0] if sentences else articles[0].text.strip()
    words = text.split()
    return " ".join(words[:14]) + (" …" if len(words) > 14 else "") if words else articles[0].source


def _unique(articles: Sequence[Article]) -> list[Article]:
    seen: dict[str, Article] = {}
    for a in articles:
        seen.setdefault(a.url, a)
    return list(seen.values())
