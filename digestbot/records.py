"""Frozen records that flow between the pipeline stages.

FeedEntry (feeds) -> Article (extract) -> Match (match) -> story id (cluster, store)
-> DigestStory in a Digest (digest) -> Receipt (deliver). Every datetime is timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class FetchResult:
    """One HTTP answer, already size-capped and decompressed."""

    url: str
    final_url: str
    status: int
    content: bytes
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    elapsed: float = 0.0

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True, slots=True)
class FeedEntry:
    """One item of a parsed RSS/Atom feed, normalised the same way for every format.

    `summary_html` and `content_html` are the feed's HTML as published, unsanitised: turn them
    into text (`extract.html_to_text`) or sanitise them (nh3) before showing them anywhere.
    """

    feed_url: str
    link: str | None
    guid: str | None
    title: str
    summary_html: str
    content_html: str | None
    published: datetime | None
    author: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed's own title and its entries."""

    url: str
    title: str | None
    entries: tuple[FeedEntry, ...]
    ttl_minutes: int | None = None


@dataclass(frozen=True, slots=True)
class Article:
    """A news article with its cleaned text; `url` is canonical and identifies it."""

    url: str
    link: str
    guid: str | None
    feed_url: str
    source: str
    title: str
    text: str  # cleaned plain text, paragraphs separated by a blank line
    published: datetime | None
    first_seen: datetime
    author: str | None = None

    @property
    def when(self) -> datetime:
        """Published time, or first-seen time where the feed gave none."""
        return self.published or self.first_seen

    @property
    def paragraphs(self) -> list[str]:
        return split_paragraphs(self.text)


@dataclass(frozen=True, slots=True)
class Match:
    """An article kept for a watchlist topic, with the query terms that matched."""

    article_url: str
    watchlist: str
    topic: str
    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Quote:
    """A verbatim direct quote found in one article's text."""

    text: str
    speaker: str | None
    paragraph: int = 0
    start: int = 0  # character offset of the quote text inside its paragraph


@dataclass(frozen=True, slots=True)
class StoryQuote:
    """A quote merged across a story's articles, with every article it appears in."""

    text: str
    speaker: str | None
    urls: tuple[str, ...]
    score: float = 0.0


@dataclass(frozen=True, slots=True)
class DigestArticle:
    title: str
    url: str
    source: str
    published: datetime | None


@dataclass(frozen=True, slots=True)
class DigestStory:
    """A story as a digest shows it."""

    id: int
    headline: str
    url: str
    summary: str
    summary_sentences: tuple[str, ...]
    articles: tuple[DigestArticle, ...]
    quotes: tuple[StoryQuote, ...]
    terms: tuple[str, ...]
    first_seen: datetime
    is_update: bool = False  # the story was first reported before this digest's period

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.source for a in self.articles))


@dataclass(frozen=True, slots=True)
class DigestTopic:
    name: str
    stories: tuple[DigestStory, ...]


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything one watchlist's digest shows for one period."""

    watchlist: str
    since: datetime
    until: datetime
    generated_at: datetime
    topics: tuple[DigestTopic, ...]
    timezone: str = "UTC"
    max_quotes: int = 3

    @property
    def key(self) -> str:
        """Identity of the digest: watchlist and period."""
        return f"{self.watchlist}:{self.since.isoformat()}:{self.until.isoformat()}"

    @property
    def story_count(self) -> int:
        return sum(len(t.stories) for t in self.topics)

    @property
    def article_count(self) -> int:
        return sum(len(s.articles) for t in self.topics for s in t.stories)


@dataclass(frozen=True, slots=True)
class Receipt:
    """What happened when one destination of one digest was sent."""

    digest_key: str
    destination: str
    status: str  # "sent", "failed", "skipped"
    detail: str = ""
    sent_at: datetime | None = None


def split_paragraphs(text: str) -> list[str]:
    """Take article text and return its non-blank paragraphs (separated by a blank line)."""
    return [p for p in text.split("\n\n") if p.strip()]
