"""The pipeline, top to bottom: poll feeds into the store, then build and send digests.

Read this module first. A poll runs, for every feed at once (bounded concurrency):
fetch the feed (conditional GET) -> parse entries -> ask the store which are new ->
get each new article's text (from the feed, or by fetching and extracting its page) ->
store the articles -> match them against every watchlist topic -> place them in stories.
A digest reads one watchlist's matches for a period back from the store, builds the
Digest record (summaries, quotes, ranking) and hands it to rendering and delivery.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

import httpx

from digestbot.config import Config, FeedConfig, Watchlist
from digestbot.errors import BlockedAddressError, FeedError, FetchError
from digestbot.feedlog import FeedState
from digestbot.fetch import content_hash, decode_html, fetch_url, make_client
from digestbot.match import match_document, tokenize_document
from digestbot.records import Article, Digest, FeedEntry, Match, ParsedFeed
from digestbot.store import FeedWrite, Store
from digestbot.urls import canonicalize_url, host_of
from digestbot.workers import Offload, WorkerError, pickle_by_fields
from digestbot.writes import FeedWrites

# Parsing, clustering and digest building are imported where they are first needed: a poll of
# unchanged feeds (and `digestbot check`) never loads them, which keeps CLI start-up quick.
if TYPE_CHECKING:
    from digestbot.cluster import StoryIndex
    from digestbot.features import ArticleFeatures

log = logging.getLogger("digestbot.pipeline")

# What a poll sends to and gets from its worker processes, in bulk.
pickle_by_fields(ParsedFeed)
pickle_by_fields(FeedEntry)

Clock = Callable[[], datetime]
TopicHit = tuple[str, str, tuple[str, ...]]  # watchlist, topic, the query terms that matched
_NO_TIME = datetime.min.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class FeedReport:
    """How one feed's poll went: ok, not_modified, unchanged or failed."""

    url: str
    status: str
    new_articles: int = 0
    error: str | None = None
    retry_after: float | None = None  # seconds, from Retry-After on a 429/503
    cache_control: str | None = None  # the feed's Cache-Control header
    ttl_minutes: int | None = None  # the feed's RSS <ttl>


@dataclass(frozen=True, slots=True, repr=False)
class PollReport:
    """What one poll of every feed did."""

    feeds: tuple[FeedReport, ...]
    articles: tuple[Article, ...]
    matches: tuple[Match, ...]
    new_stories: tuple[int, ...]
    # (story id, article url): articles that joined a story placed before this poll.
    joined: tuple[tuple[int, str], ...] = ()

    @property
    def failed(self) -> tuple[FeedReport, ...]:
        return tuple(f for f in self.feeds if f.status == "failed")

    def __repr__(self) -> str:
        # Counts only: on Python 3.11 asyncio.run formats its finished task, result included,
        # and a first poll's report holds every article's text (a quarter second of CPU).
        return (f"PollReport({len(self.feeds)} feeds, {len(self.articles)} articles, "
                f"{len(self.matches)} matches, {len(self.new_stories)} new stories)")


@dataclass
class _Limits:
    """Global and per-host concurrency, shared by feed and page fetches."""

    total: asyncio.Semaphore
    per_host_limit: int
    per_host: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    def host(self, url: str) -> asyncio.Semaphore:
        key = host_of(url)
        if key not in self.per_host:
            self.per_host[key] = asyncio.Semaphore(self.per_host_limit)
        return self.per_host[key]


async def poll(config: Config, store: Store, *, client: httpx.AsyncClient | None = None,
               index: StoryIndex | None = None, now: Clock = utcnow,
               feeds: tuple[FeedConfig, ...] | None = None,
               progress: Callable[[int, int], None] | None = None,
               offload: Offload | None = None) -> PollReport:
    """Poll every feed (or the given ones) once; return what was new. Parsing and text
    extraction run in `offload` (a worker pool), else in threads."""
    started = now()
    feeds = config.feeds if feeds is None else feeds
    limits = _Limits(asyncio.Semaphore(config.fetch.concurrency), config.fetch.per_host)
    own_client = client is None
    http = client or make_client(user_agent=config.fetch.user_agent, timeout=config.fetch.timeout,
                                 max_connections=config.fetch.concurrency)
    articles: list[Article] = []
    matches: list[Match] = []
    placed = Placed([], [])
    reports: list[FeedReport] = []
    # One read and one write for the feeds' bookkeeping instead of one per feed: a repeat poll
    # of unchanged feeds is then mostly waiting on the network.
    states = {s.url: s for s in store.feeds.states()}
    unchanged: list[str] = []
    # Topics and features a worker read along with the text, for the articles that kept it.
    readings: dict[str, EntryReading] = {}
    offload = offload or Offload()
    writes = FeedWrites(store, len(feeds))
    try:
        jobs = [asyncio.create_task(_poll_feed(f, config, store, http, limits, now,
                                               states.get(f.url), unchanged, offload, writes))
                for f in feeds]
        try:
            for done, job in enumerate(asyncio.as_completed(jobs), start=1):
                report, new = await job
                writes.finish()
                reports.append(report)
                for article, reading in new:
                    articles.append(article)
                    if reading is not None:
                        readings[article.url] = reading
                if progress is not None:
                    progress(done, len(jobs))
        finally:
            # A store error ends the poll: the other feeds stop here, and awaiting them keeps
            # their own errors from surfacing later as "Task exception was never retrieved".
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            writes.cancel()
        store.feeds.record_not_modified(unchanged, now=now())
        # One pass in published order once every feed is in: stories grow in the order events
        # happened, whichever feed answered first. Articles stored but not placed by a poll
        # that died (or by one still fetching) go first; with no await from here on, no other
        # poll of this process places an article twice.
        todo = _articles_to_place(articles, config, store, now=started)
        if todo:
            # Built only now: a poll that brings nothing new never reads the recent articles.
            if index is None:
                index = load_story_index(config, store, now=started)
            matches = store.add_matches([
                m for a in todo
                for m in ([Match(a.url, *hit) for hit in readings[a.url].hits]
                          if a.url in readings else match_article(a, config.watchlists))])
            described = {a.url: _features_at(readings[a.url].features, a.when)
                         for a in todo if a.url in readings}
            placed = place_articles(todo, store, index, now=now(), described=described)
    finally:
        if own_client:
            await http.aclose()
    if index is not None:
        index.prune(now())
    return PollReport(tuple(reports), tuple(articles), tuple(matches), tuple(placed.created),
                      tuple(placed.joined))


async def _poll_feed(feed: FeedConfig, config: Config, store: Store, client: httpx.AsyncClient,
                     limits: _Limits, now: Clock, state: FeedState | None,
                     unchanged: list[str], offload: Offload, writes: FeedWrites,
                     ) -> tuple[FeedReport, list[tuple[Article, EntryReading | None]]]:
    """Fetch, parse and store one feed; any failure is recorded and never escapes.
    A feed with nothing new is added to `unchanged`, for the caller to record."""
    try:
        async with limits.total, limits.host(feed.url):
            result = await fetch_url(
                client, feed.url,
                etag=state.etag if state else None,
                last_modified=state.last_modified if state else None,
                max_bytes=config.fetch.max_bytes, deadline=config.fetch.deadline,
                max_redirects=config.fetch.max_redirects,
                allow_private=True)  # the operator chose this URL
        cache_control = result.headers.get("cache-control")
        if result.not_modified:
            unchanged.append(feed.url)
            return FeedReport(feed.url, "not_modified", cache_control=cache_control), []
        digest = content_hash(result.content)
        if state is not None and state.content_hash == digest:
            unchanged.append(feed.url)
            return FeedReport(feed.url, "unchanged", cache_control=cache_control), []
        content_type = result.headers.get("content-type")
        if state is None:
            # A feed never polled brings mostly new entries: one job parses and reads them all.
            parsed, readings = await offload.run(read_feed, result.content, result.final_url,
                                                 content_type, feed.url, config.watchlists)
        else:
            from digestbot.feeds import parse_feed

            parsed = await offload.run(partial(parse_feed, result.content, url=result.final_url,
                                               content_type=content_type))
            readings = None
        fresh = _new_entries(parsed.entries, store)
        entries = [parsed.entries[i] for i, _ in fresh]
        if readings is not None:
            carried = [readings[i] for i, _ in fresh]
        else:
            carried = (await offload.run(read_entries, entries, feed.url, config.watchlists)
                       if fresh else [])
        texts = await _article_texts(entries, [r.text for r in carried], feed, config, client,
                                     limits, offload)
        stamp = now()
        articles = [_make_article(entry, url, feed, parsed.title, text, stamp)
                    for entry, (_, url), text in zip(entries, fresh, texts, strict=True)]
        added = await writes.add(FeedWrite(feed.url, articles, polled=now(), etag=result.etag,
                                           last_modified=result.last_modified,
                                           content_hash=digest, title=parsed.title))
    except (FetchError, FeedError, WorkerError) as err:
        reason = str(err) if isinstance(err, WorkerError) else err.reason
        store.feeds.record_failure(feed.url, reason, now=now())
        log.warning("feed failed", extra={"feed": feed.url, "reason": reason})
        retry_after = err.retry_after if isinstance(err, FetchError) else None
        return FeedReport(feed.url, "failed", error=reason, retry_after=retry_after), []
    # The topics matched in the worker hold for the text it read, not for a page fetched since.
    new = [(a, reading if text == reading.text else None)
           for a, is_new, text, reading in zip(articles, added, texts, carried, strict=True)
           if is_new]
    log.info("feed polled", extra={"feed": feed.url, "entries": len(parsed.entries),
                                   "new": len(new)})
    return FeedReport(feed.url, "ok", new_articles=len(new), cache_control=cache_control,
                      ttl_minutes=parsed.ttl_minutes), new


def _new_entries(entries: tuple[FeedEntry, ...], store: Store) -> list[tuple[int, str]]:
    """Find the entries the store has not seen, by canonical URL or guid, once each; return
    each one's position with its canonical URL."""
    keyed = [(e, canonicalize_url(e.link) if e.link else None) for e in entries]
    known_urls, known_guids = store.known_article_keys(
        [u for _, u in keyed if u], [e.guid for e, _ in keyed if e.guid])
    fresh: list[tuple[int, str]] = []
    seen: set[str] = set()
    for position, (entry, url) in enumerate(keyed):
        if url is None or url in known_urls or (entry.guid and entry.guid in known_guids):
            continue
        if url in seen or (entry.guid and entry.guid in seen):
            continue
        seen.update(k for k in (url, entry.guid) if k)
        fresh.append((position, url))
    return fresh


class EntryReading(NamedTuple):
    """What a worker reads from one feed entry: the plain text it carries (content, else
    summary), the watchlist topics its title and that text match, and its clustering features
    (their time a placeholder until the article's is known)."""

    text: str
    hits: list[TopicHit]
    features: ArticleFeatures


def _features_at(features: ArticleFeatures, when: datetime) -> ArticleFeatures:
    """Take features read before the article's time was known; return them at that time."""
    # Most entries carry a publication date, which is the article's time: no copy then.
    return features if features.when == when else replace(features, when=when)


def read_feed(content: bytes, url: str, content_type: str | None, feed_url: str,
              watchlists: tuple[Watchlist, ...]) -> tuple[ParsedFeed, list[EntryReading]]:
    """Take a fetched feed (its final URL and Content-Type); return it parsed, with what each
    of its entries says (see read_entries)."""
    from digestbot.feeds import parse_feed

    parsed = parse_feed(content, url=url, content_type=content_type)
    return parsed, read_entries(list(parsed.entries), feed_url, watchlists)


def read_entries(entries: list[FeedEntry], feed_url: str,
                 watchlists: tuple[Watchlist, ...]) -> list[EntryReading]:
    """Take new feed entries; return what each one's text says (see EntryReading)."""
    # Imported here: extraction pulls in trafilatura, which a poll of unchanged feeds never needs.
    from digestbot.extract import html_to_text
    from digestbot.features import ArticleFeatures, describe_text

    pickle_by_fields(ArticleFeatures)
    readings = []
    for entry in entries:
        text = html_to_text(entry.content_html or entry.summary_html)
        readings.append(EntryReading(
            text, match_topics(entry.title, text, feed_url, watchlists),
            describe_text(entry.title, text, when=entry.published or _NO_TIME)))
    return readings


async def _article_texts(entries: list[FeedEntry], carried: list[str], feed: FeedConfig,
                         config: Config, client: httpx.AsyncClient, limits: _Limits,
                         offload: Offload) -> list[str]:
    """Take new entries and the text each carries; return each one's full text: the feed's
    when it carries it, else the article page's, else the summary."""
    full_text = config.fetch.full_text if feed.full_text is None else feed.full_text
    if not full_text:
        return carried
    # Imported here: extraction pulls in trafilatura, which a poll of unchanged feeds never needs.
    from digestbot.extract import is_full_text

    short = [(i, entry.link) for i, entry in enumerate(entries)
             if entry.link and not is_full_text(carried[i])]
    fetched = await asyncio.gather(*(_page_text(link, carried[i], config, client, limits,
                                                offload) for i, link in short))
    texts = list(carried)
    for (i, _), text in zip(short, fetched, strict=True):
        texts[i] = text
    return texts


async def _page_text(link: str, carried: str, config: Config, client: httpx.AsyncClient,
                     limits: _Limits, offload: Offload) -> str:
    """Take an entry's link and the text its feed carries; return the page's text when it is
    longer, else the carried text."""
    from digestbot.extract import extract_article_text

    try:
        async with limits.total, limits.host(link):
            page = await fetch_url(client, link, max_bytes=config.fetch.max_bytes,
                                   deadline=config.fetch.deadline,
                                   max_redirects=config.fetch.max_redirects,
                                   allow_private=config.fetch.allow_private,
                                   accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5")
    except FetchError as err:
        level = logging.WARNING if isinstance(err, BlockedAddressError) else logging.INFO
        log.log(level, "page not fetched", extra={"url": link, "reason": err.reason})
        return carried
    try:
        text = await offload.run(extract_article_text, decode_html(page), page.final_url)
    except WorkerError as err:
        log.warning("page not extracted", extra={"url": link, "reason": str(err)})
        return carried
    return text if len(text) > len(carried) else carried


def _make_article(entry: FeedEntry, url: str, feed: FeedConfig, feed_title: str | None,
                  text: str, now: datetime) -> Article:
    """Take a new entry, its canonical URL, its feed and text; return the Article."""
    link = entry.link or ""
    # Nothing is published after we first saw it; a future date would hide the article from
    # every digest until that date comes.
    published = entry.published if entry.published is None else min(entry.published, now)
    return Article(url=url, link=link, guid=entry.guid, feed_url=feed.url,
                   source=feed.name or feed_title or host_of(feed.url), title=entry.title,
                   text=text, published=published, first_seen=now, author=entry.author)


def match_article(article: Article, watchlists: tuple[Watchlist, ...]) -> list[Match]:
    """Take an article and return its matches against every topic of every watchlist."""
    return [Match(article.url, *hit)
            for hit in match_topics(article.title, article.text, article.feed_url, watchlists)]


def match_topics(title: str, text: str, feed_url: str,
                 watchlists: tuple[Watchlist, ...]) -> list[TopicHit]:
    """Take an article's title, text and feed; return (watchlist, topic, matched terms) for
    every topic it matches."""
    doc = tokenize_document(title, text)
    hits: list[TopicHit] = []
    for wl in watchlists:
        if not wl.includes_feed(feed_url):
            continue
        for topic in wl.topics:
            terms = match_document(topic.parsed, doc)
            if terms is not None:
                hits.append((wl.name, topic.name, terms))
    return hits


def load_story_index(config: Config, store: Store, *, now: datetime) -> StoryIndex:
    """Rebuild the in-memory same-story index from the store's recent articles."""
    from digestbot.cluster import StoryIndex

    window = timedelta(days=config.clustering.window_days)
    index = StoryIndex(now=now, window=window)
    for article, story_id in store.placed_articles_since(now - window):
        index.add(story_id, article)
    return index


def _articles_to_place(new: list[Article], config: Config, store: Store, *,
                       now: datetime) -> list[Article]:
    """Take this poll's new articles; return every article still unplaced in the window,
    others first (by first seen), then this poll's by publication time."""
    window = timedelta(days=config.clustering.window_days)
    unplaced = dict.fromkeys(store.unplaced_urls(now - window))
    own = [a for a in sorted(new, key=lambda a: (a.when, a.url)) if a.url in unplaced]
    for article in own:
        del unplaced[article.url]
    # Only articles left unplaced by an earlier poll are read back; this poll's are in hand.
    return [*store.articles_by_url(list(unplaced)), *own]


class Placed(NamedTuple):
    """What placing a batch of articles did."""

    created: list[int]  # the ids of the stories started
    joined: list[tuple[int, str]]  # (story id, article url) for stories that existed before


def place_articles(batch: list[Article], store: Store, index: StoryIndex, *, now: datetime,
                   described: Mapping[str, ArticleFeatures] | None = None) -> Placed:
    """Take stored articles in order (and the features of those already described, by url);
    join each to its story or start one, store all that in one transaction, and return the
    stories started and the articles that joined older ones."""
    placements: list[tuple[str, int]] = []
    provisional = 0  # stories started here get negative ids until the store numbers them
    before: dict[int, int] = {}  # older stories' sizes, to undo what this batch added
    for article in batch:
        features = (described or {}).get(article.url)
        story_id = index.assign(article, features)
        if story_id is None:
            provisional -= 1
            story_id = provisional
        elif story_id > 0 and story_id not in before:
            before[story_id] = index.size(story_id)
        index.add(story_id, article, features)
        placements.append((article.url, story_id))
    try:
        stored = store.place_articles(placements, now=now)
    except BaseException:
        # What the store did not keep must not be joined later or counted twice: the articles
        # are placed again by the next poll.
        index.discard(list(range(provisional, 0)))
        index.truncate(before)
        raise
    index.relabel(stored.renamed)
    started = set(stored.created)
    return Placed(stored.created, [(story_id, url) for url, story_id in stored.placed.items()
                                   if story_id not in started])


def make_digest(config: Config, store: Store, watchlist: Watchlist, *, now: datetime,
                since: datetime | None = None, until: datetime | None = None) -> Digest:
    """Build one watchlist's digest; by default it covers the time since its last digest."""
    from digestbot.digest import DigestInput, build_digest

    until = until or now
    since = since or store.outbox.last_digest_until(watchlist.name) or until - timedelta(days=1)
    rows = store.matched_articles(watchlist.name, since, until)
    story_ids = {sid for _, _, sid in rows if sid is not None}
    data = DigestInput(rows=rows, story_articles=store.story_articles(story_ids),
                       story_first_seen=store.story_first_seen(story_ids))
    return build_digest(
        watchlist.name, [t.name for t in watchlist.topics], data, since=since, until=until,
        now=now, max_stories=watchlist.digest.max_stories,
        max_quotes=watchlist.digest.max_quotes,
        summary_sentences=watchlist.digest.summary_sentences,
        summary_words=watchlist.digest.summary_words,
        timezone=watchlist.timezone or config.timezone)
