"""The store: articles, matches and stories (what a poll writes) in one database.

SQLite (default, WAL) or PostgreSQL through SQLAlchemy Core. Every public write is one short
transaction; unique keys decide what is new, so re-running any pipeline step is safe. Feed
polling state lives in the same database behind `store.feeds` (digestbot.feedlog); digests,
deliveries and alerts behind `store.outbox` (digestbot.outbox).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.dml import Insert

from digestbot.errors import StoreError
from digestbot.feedlog import FeedLog
from digestbot.outbox import DELIVERY_STATUSES, Outbox
from digestbot.records import Article, Match
from digestbot.schema import (
    MIGRATIONS,
    Migration,
    alerts,
    apply_migrations,
    articles,
    deliveries,
    describe_error,
    digests,
    feeds,
    make_engine,
    matches,
    read_schema_version,
    stories,
)

_CHUNK = 500  # keys per IN (...) list, well under every backend's bound-parameter limit

# Built once: a poll runs these for every feed, and building a statement costs more than
# looking up its compiled form.
_KNOWN_KEYS = select(articles.c.url, articles.c.guid).where(or_(
    articles.c.url.in_(bindparam("urls", expanding=True)),
    articles.c.guid.in_(bindparam("guids", expanding=True))))


@dataclass(frozen=True, slots=True)
class FeedWrite:
    """What one successful poll of a feed stores: its articles and the feed's validators."""

    url: str
    articles: Sequence[Article]
    polled: datetime
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    title: str | None = None


class Placement(NamedTuple):
    """What `Store.place_articles` stored."""

    renamed: dict[int, int]  # each negative (provisional) id -> its real story id
    created: list[int]  # the ids of the stories started, in order
    placed: dict[str, int]  # article url -> story id, for the articles this call placed


class Store:
    """One database of digestbot state; safe to share between threads (one Engine, short txns)."""

    def __init__(self, engine: Engine) -> None:
        """Take an engine whose schema is migrated; use `Store.open` instead."""
        self._engine = engine
        self._where = engine.url.render_as_string(hide_password=True)
        self._closed = False
        self.outbox = Outbox(self._transaction, self._insert_new)
        self.feeds = FeedLog(self._transaction, self._insert_new, engine.dialect.name)
        self._add_articles = self._insert_new(articles).returning(articles.c.url)
        self._add_matches = self._insert_new(matches).returning(
            matches.c.watchlist, matches.c.article_url, matches.c.topic)

    @classmethod
    def open(cls, url: str, *, busy_timeout: float = 5.0,
             migrations: Sequence[Migration] = MIGRATIONS) -> Store:
        """Take a SQLAlchemy URL, create and migrate the schema, return the open store."""
        engine = make_engine(url, busy_timeout)
        store = cls(engine)
        try:
            # Read first: an up-to-date database is opened without taking the write lock.
            with store._transaction("open database", write=False) as conn:
                current = read_schema_version(conn)
            if current > len(migrations):
                raise StoreError(f"store: open failed: database schema version {current} is "
                                 f"newer than this digestbot's {len(migrations)}")
            if current < len(migrations):
                with store._transaction("migrate schema", write=True) as conn:
                    apply_migrations(conn, now=datetime.now(UTC), migrations=migrations)
        except BaseException:
            engine.dispose()
            raise
        return store

    def close(self) -> None:
        """Release every pooled connection; later calls raise StoreError."""
        self._closed = True
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def _transaction(self, what: str, *, write: bool) -> Iterator[Connection]:
        """Take a description, yield a connection in one transaction, turn DB errors into
        StoreError."""
        if self._closed:
            raise StoreError(f"store: {what} failed: store is closed ({self._where})")
        try:
            with self._engine.connect() as conn:
                if write:
                    conn.execution_options(digestbot_write=True)
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            reason = describe_error(exc)
            raise StoreError(f"store: {what} failed: {reason} ({self._where})") from exc

    def _insert_new(self, table: Table) -> Insert:
        """Take a table and return an INSERT that skips rows hitting any unique key."""
        if self._engine.dialect.name == "sqlite":
            return sqlite_insert(table).on_conflict_do_nothing()
        # Imported here: loading the PostgreSQL dialect costs SQLite users start-up time.
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table).on_conflict_do_nothing()

    def _insert_articles(self, conn: Connection, rows: list[dict[str, Any]]) -> list[bool]:
        """Take a connection in a transaction and article rows; insert the new ones and return
        new-or-not per row (a repeat inside the rows counts as known)."""
        seen_urls: set[str] = set()
        seen_guids: set[str] = set()
        candidates: list[int] = []
        for index, row in enumerate(rows):
            if row["url"] in seen_urls or (row["guid"] and row["guid"] in seen_guids):
                continue
            candidates.append(index)
            seen_urls.add(row["url"])
            if row["guid"]:
                seen_guids.add(row["guid"])
        # No lookup first: RETURNING names only the rows really inserted, so a url or guid
        # already stored (by us or by another process a moment ago) reads as known.
        # Sorted so concurrent PostgreSQL writers take unique-key locks in one order.
        ordered = sorted((rows[i] for i in candidates), key=lambda r: str(r["url"]))
        inserted = set(conn.execute(self._add_articles, ordered).scalars())
        chosen = set(candidates)
        return [i in chosen and rows[i]["url"] in inserted for i in range(len(rows))]

    def schema_version(self) -> int:
        """Return the number of the last migration applied to this database."""
        with self._transaction("read schema version", write=False) as conn:
            return read_schema_version(conn)

    # feeds' articles

    def add_feeds_articles(self, writes: Sequence[FeedWrite]) -> list[list[bool]]:
        """Take successful feed polls, in order; insert their new articles and record each
        poll (errors reset) in one transaction, and return new-or-not per article of each
        (an article a feed earlier in the list also brought counts as known)."""
        rows = [[_article_values(article) for article in write.articles] for write in writes]
        flat = [row for feed_rows in rows for row in feed_rows]
        with self._transaction(f"add {len(flat)} articles of {len(writes)} feeds",
                               write=True) as conn:
            # One sorted INSERT and feed rows in url order: concurrent PostgreSQL writers
            # then take their locks in one order whatever feeds each one batched.
            added = self._insert_articles(conn, flat) if flat else []
            for write in sorted(writes, key=lambda w: w.url):
                self.feeds.write_success(
                    conn, write.url, now=write.polled, etag=write.etag,
                    last_modified=write.last_modified, content_hash=write.content_hash,
                    title=write.title, next_poll=None)
        flags = iter(added)
        return [list(itertools.islice(flags, len(feed_rows))) for feed_rows in rows]

    # articles

    def known_article_keys(self, urls: Iterable[str],
                           guids: Iterable[str]) -> tuple[set[str], set[str]]:
        """Take candidate urls and guids and return those already stored (urls, guids)."""
        wanted_urls = list(dict.fromkeys(u for u in urls if u))
        wanted_guids = list(dict.fromkeys(g for g in guids if g))
        known_urls: set[str] = set()
        known_guids: set[str] = set()
        # One query for both keys: a feed's entries are looked up in one round trip.
        with self._transaction("look up known articles", write=False) as conn:
            for start in range(0, max(len(wanted_urls), len(wanted_guids)), _CHUNK):
                params = {"urls": wanted_urls[start:start + _CHUNK],
                          "guids": wanted_guids[start:start + _CHUNK]}
                for url, guid in conn.execute(_KNOWN_KEYS, params):
                    known_urls.add(url)
                    if guid is not None:
                        known_guids.add(guid)
        return known_urls.intersection(wanted_urls), known_guids.intersection(wanted_guids)

    def add_article(self, article: Article) -> bool:
        """Take an article and return True if it was new; a known url or guid is left as is."""
        return self.add_articles([article])[0]

    def add_articles(self, batch: Iterable[Article]) -> list[bool]:
        """Take articles and insert the new ones in one transaction; return new-or-not per
        article (a repeat inside the batch counts as known)."""
        rows = [_article_values(article) for article in batch]
        if not rows:
            return []
        with self._transaction(f"add {len(rows)} articles", write=True) as conn:
            return self._insert_articles(conn, rows)

    def get_article(self, url: str) -> Article | None:
        """Take a canonical url and return its stored article, or None."""
        with self._transaction("read article", write=False) as conn:
            row = conn.execute(select(articles).where(articles.c.url == url)).first()
        return None if row is None else _article_from_row(row)

    def placed_articles_since(self, since: datetime) -> list[tuple[Article, int]]:
        """Take a time and return (article, story id) of those first seen at or after it that
        a story holds, oldest first."""
        with self._transaction("read recent stories' articles", write=False) as conn:
            rows = conn.execute(
                select(articles).where(articles.c.first_seen >= since,
                                       articles.c.story_id.is_not(None))
                .order_by(articles.c.first_seen, articles.c.id)).all()
        return [(_article_from_row(row), int(row.story_id)) for row in rows]

    def unplaced_urls(self, since: datetime) -> list[str]:
        """Take a time; return the urls of articles first seen since then that no story holds
        yet, oldest first."""
        with self._transaction("read unplaced articles", write=False) as conn:
            return list(conn.execute(
                select(articles.c.url).where(articles.c.first_seen >= since,
                                             articles.c.story_id.is_(None))
                .order_by(articles.c.first_seen, articles.c.id)).scalars())

    def articles_by_url(self, urls: Sequence[str]) -> list[Article]:
        """Take canonical urls; return the stored articles among them, in the order given."""
        found: dict[str, Article] = {}
        with self._transaction("read articles", write=False) as conn:
            for chunk in _chunks(list(dict.fromkeys(urls))):
                for row in conn.execute(select(articles).where(articles.c.url.in_(chunk))):
                    found[row.url] = _article_from_row(row)
        return [found[u] for u in dict.fromkeys(urls) if u in found]

    # matches

    def add_matches(self, batch: Iterable[Match]) -> list[Match]:
        """Take matches of stored articles and return those not stored before, in order."""
        keyed: dict[tuple[str, str, str], Match] = {}
        for match in batch:
            keyed.setdefault((match.watchlist, match.article_url, match.topic), match)
        if not keyed:
            return []
        encoded: dict[tuple[str, ...], str] = {}  # a poll's matches share a few term lists
        values: list[dict[str, str]] = []
        for key in sorted(keyed):
            terms = keyed[key].terms
            if terms not in encoded:
                encoded[terms] = json.dumps(list(terms), ensure_ascii=False)
            values.append({"watchlist": key[0], "article_url": key[1], "topic": key[2],
                           "terms": encoded[terms]})
        with self._transaction(f"add {len(values)} matches", write=True) as conn:
            added = {tuple(row) for row in conn.execute(self._add_matches, values)}
        return [match for key, match in keyed.items() if key in added]

    def matched_articles(self, watchlist: str, since: datetime,
                         until: datetime) -> list[tuple[Article, Match, int | None]]:
        """Take a watchlist and period and return (article, match, story id) with
        since <= when < until, by `when`."""
        query = (select(articles, matches.c.topic.label("match_topic"),
                        matches.c.terms.label("match_terms"))
                 .join(matches, matches.c.article_url == articles.c.url)
                 .where(matches.c.watchlist == watchlist, articles.c.when >= since,
                        articles.c.when < until)
                 .order_by(articles.c.when, articles.c.id, matches.c.topic))
        with self._transaction("read matched articles", write=False) as conn:
            rows = conn.execute(query).all()
        return [(_article_from_row(row),
                 Match(article_url=row.url, watchlist=watchlist, topic=row.match_topic,
                       terms=tuple(json.loads(row.match_terms))),
                 None if row.story_id is None else int(row.story_id)) for row in rows]

    # stories

    def create_story(self, article_url: str, *, now: datetime) -> int:
        """Take a stored article, start a story with it, return the story id (the existing
        one if the article already has a story)."""
        with self._transaction("create story", write=True) as conn:
            row = conn.execute(select(articles.c.id, articles.c.story_id)
                               .where(articles.c.url == article_url).with_for_update()).first()
            if row is None:
                raise StoreError(f"store: create story failed: unknown article {article_url}")
            if row.story_id is not None:
                return int(row.story_id)
            story_id = int(conn.execute(
                insert(stories).values(first_seen=now).returning(stories.c.id)).scalar_one())
            conn.execute(update(articles).where(articles.c.id == row.id)
                         .values(story_id=story_id))
        return story_id

    def assign_story(self, article_url: str, story_id: int) -> None:
        """Take a stored article and an existing story id and put the article in that story."""
        with self._transaction("assign story", write=True) as conn:
            if conn.execute(select(stories.c.id).where(stories.c.id == story_id)).first() is None:
                raise StoreError(f"store: assign story failed: unknown story {story_id}")
            done = conn.execute(update(articles).where(articles.c.url == article_url)
                                .values(story_id=story_id))
            if done.rowcount == 0:
                raise StoreError(f"store: assign story failed: unknown article {article_url}")

    def place_articles(self, placements: Sequence[tuple[str, int]], *,
                       now: datetime) -> Placement:
        """Take (article url, story id) pairs, a negative id standing for a story to start
        (with its first article), and store them all in one transaction; return what was
        stored (see Placement). An article already in a story keeps it, and a story to start
        whose first article already has one becomes that story."""
        if not placements:
            return Placement({}, [], {})
        with self._transaction(f"place {len(placements)} articles", write=True) as conn:
            rows = _placement_rows(conn, [url for url, _ in placements])
            wanted = sorted({sid for _, sid in placements if sid >= 0})
            found: set[int] = set()
            for chunk in _chunks(wanted):
                found.update(conn.execute(select(stories.c.id)
                                          .where(stories.c.id.in_(chunk))).scalars())
            if missing := [sid for sid in wanted if sid not in found]:
                raise StoreError(f"store: place articles failed: unknown story {missing[0]}")
            renamed: dict[int, int] = {}
            to_start: list[int] = []
            for url, sid in placements:
                if sid < 0 and sid not in renamed:
                    held = rows[url][1]
                    renamed[sid] = held if held is not None else 0
                    if held is None:
                        to_start.append(sid)
            created: list[int] = []
            if to_start:
                # The new rows are all alike, so any of their ids may stand for any of them:
                # unordered RETURNING lets SQLite insert them in batches, not one at a time.
                started = conn.execute(insert(stories).returning(stories.c.id),
                                       [{"first_seen": now} for _ in to_start]).scalars().all()
                created = sorted(int(sid) for sid in started)
                renamed.update(zip(to_start, created, strict=True))
            updates: dict[int, int] = {}
            for url, sid in placements:
                article_id, held = rows[url]
                if held is None and article_id not in updates:
                    updates[article_id] = renamed[sid] if sid < 0 else sid
            if updates:
                conn.execute(update(articles).where(articles.c.id == bindparam("article_id"))
                             .values(story_id=bindparam("story_id")),
                             [{"article_id": a, "story_id": s} for a, s in updates.items()])
        # Another process may have placed some of these first: report what this call stored.
        ids = {url: article_id for url, (article_id, _) in rows.items()}
        placed = {url: updates[ids[url]] for url, _ in placements if ids[url] in updates}
        return Placement(renamed, created, placed)

    def story_id_of(self, article_url: str) -> int | None:
        """Take an article url and return its story id, or None if unknown or unassigned."""
        with self._transaction("read story id", write=False) as conn:
            found = conn.execute(select(articles.c.story_id)
                                 .where(articles.c.url == article_url)).scalar_one_or_none()
        return None if found is None else int(found)

    def story_articles(self, story_ids: Iterable[int]) -> dict[int, list[Article]]:
        """Take story ids and return every article of each story by `when` ([] if none)."""
        wanted = list(dict.fromkeys(story_ids))
        found: dict[int, list[Article]] = {story_id: [] for story_id in wanted}
        with self._transaction("read story articles", write=False) as conn:
            for chunk in _chunks(wanted):
                rows = conn.execute(
                    select(articles).where(articles.c.story_id.in_(chunk))
                    .order_by(articles.c.when, articles.c.id)).all()
                for row in rows:
                    found[int(row.story_id)].append(_article_from_row(row))
        return found

    def story_first_seen(self, story_ids: Iterable[int]) -> dict[int, datetime]:
        """Take story ids and return when each existing story was created."""
        wanted = list(dict.fromkeys(story_ids))
        found: dict[int, datetime] = {}
        with self._transaction("read story times", write=False) as conn:
            for chunk in _chunks(wanted):
                rows = conn.execute(select(stories.c.id, stories.c.first_seen)
                                    .where(stories.c.id.in_(chunk))).all()
                found.update((int(row.id), row.first_seen) for row in rows)
        return found

    # ops

    def stats(self) -> dict[str, int]:
        """Return row counts: feeds, failing feeds, articles, matches, stories, digests, alerts,
        and deliveries per status."""
        counted = {"feeds": feeds, "articles": articles, "matches": matches, "stories": stories,
                   "digests": digests, "alerts": alerts}
        with self._transaction("read stats", write=False) as conn:
            found = {name: int(conn.execute(select(func.count()).select_from(table))
                               .scalar_one()) for name, table in counted.items()}
            found["feeds_failing"] = int(conn.execute(
                select(func.count()).select_from(feeds).where(feeds.c.error_count > 0)
            ).scalar_one())
            for status in DELIVERY_STATUSES:
                found[f"deliveries_{status}"] = 0
            for status, count in conn.execute(select(deliveries.c.status, func.count())
                                              .group_by(deliveries.c.status)).all():
                found[f"deliveries_{status}"] = int(count)
        return found


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    """Take a sequence and yield slices short enough for one IN (...) list."""
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def _placement_rows(conn: Connection, urls: list[str]) -> dict[str, tuple[int, int | None]]:
    """Take article urls; return each one's (row id, story id), raising StoreError if unknown."""
    rows: dict[str, tuple[int, int | None]] = {}
    for chunk in _chunks(list(dict.fromkeys(urls))):
        for row in conn.execute(select(articles.c.id, articles.c.url, articles.c.story_id)
                                .where(articles.c.url.in_(chunk)).with_for_update()):
            rows[row.url] = (int(row.id), None if row.story_id is None else int(row.story_id))
    if missing := [url for url in urls if url not in rows]:
        raise StoreError(f"store: place articles failed: unknown article {missing[0]}")
    return rows


def _article_values(article: Article) -> dict[str, Any]:
    """Take an article and return its row values (empty guid stored as NULL)."""
    if not article.url:
        raise StoreError(f"store: add articles failed: article {article.title!r} has no url")
    return {"url": article.url, "link": article.link, "guid": article.guid or None,
            "feed_url": article.feed_url, "source": article.source, "title": article.title,
            "text": article.text, "author": article.author, "published": article.published,
            "first_seen": article.first_seen, "when": article.when}


def _article_from_row(row: Row[Any]) -> Article:
    """Take an articles row and return the Article."""
    return Article(url=row.url, link=row.link, guid=row.guid, feed_url=row.feed_url,
                   source=row.source, title=row.title, text=row.text, published=row.published,
                   first_seen=row.first_seen, author=row.author)
