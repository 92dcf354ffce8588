"""The feed log: what the store remembers about polling each feed (validators, errors, when
to poll next). Composed into `Store` as `store.feeds`, borrowing its transactions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Table, bindparam, func, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.sql.base import ReadOnlyColumnCollection
from sqlalchemy.sql.dml import Insert
from sqlalchemy.sql.elements import ColumnElement, KeyedColumnElement

from digestbot.outbox import Transact
from digestbot.schema import feeds


@dataclass(frozen=True, slots=True)
class FeedState:
    """What the store remembers about polling one feed."""

    url: str
    title: str | None
    etag: str | None
    last_modified: str | None
    content_hash: str | None
    last_polled: datetime | None
    last_success: datetime | None
    error_count: int
    last_error: str | None
    failing_since: datetime | None
    next_poll: datetime | None


class FeedLog:
    """Every feed's polling state in the store's database; reached as `store.feeds`."""

    def __init__(self, transaction: Transact, insert_new: Callable[[Table], Insert],
                 dialect: str) -> None:
        """Take the store's transaction helper, its skip-duplicates INSERT builder and the
        database dialect's name."""
        self._transaction = transaction
        self._insert_new = insert_new
        self._record_success = _feed_success_upsert(dialect)

    def state(self, url: str) -> FeedState | None:
        """Take a feed url and return its polling state, or None if never polled."""
        with self._transaction("read feed state", write=False) as conn:
            row = conn.execute(select(feeds).where(feeds.c.url == url)).first()
        return None if row is None else _feed_from_row(row)

    def states(self) -> list[FeedState]:
        """Return the polling state of every known feed, by url."""
        with self._transaction("read feed states", write=False) as conn:
            rows = conn.execute(select(feeds).order_by(feeds.c.url)).all()
        return [_feed_from_row(row) for row in rows]

    def record_success(self, url: str, *, now: datetime, etag: str | None,
                       last_modified: str | None, content_hash: str | None,
                       title: str | None = None, next_poll: datetime | None = None) -> None:
        """Take a fetched feed's validators and record a successful poll (errors reset)."""
        with self._transaction("record feed success", write=True) as conn:
            self.write_success(conn, url, now=now, etag=etag, last_modified=last_modified,
                               content_hash=content_hash, title=title, next_poll=next_poll)

    def record_not_modified(self, urls: Sequence[str], *, now: datetime) -> None:
        """Take feeds that answered 304 (or sent what we had) and record one successful poll
        for all of them in one transaction, keeping their validators."""
        if not urls:
            return
        urls = sorted(urls)  # feed rows locked in url order, as Store.add_feeds_articles does
        with self._transaction(f"record {len(urls)} feeds not modified", write=True) as conn:
            conn.execute(self._insert_new(feeds), [{"url": u, "error_count": 0} for u in urls])
            conn.execute(update(feeds).where(feeds.c.url == bindparam("feed_url")).values(
                last_polled=now, last_success=now, error_count=0, last_error=None,
                failing_since=None), [{"feed_url": u} for u in urls])

    def record_failure(self, url: str, reason: str, *, now: datetime,
                       next_poll: datetime | None = None) -> FeedState:
        """Take a failed poll's reason, count it, and return the feed's new state."""
        with self._transaction("record feed failure", write=True) as conn:
            conn.execute(self._insert_new(feeds).values(url=url, error_count=0))
            row = conn.execute(
                select(feeds).where(feeds.c.url == url).with_for_update()).one()
            conn.execute(update(feeds).where(feeds.c.url == url).values(
                last_polled=now, error_count=row.error_count + 1, last_error=reason,
                failing_since=row.failing_since or now, next_poll=next_poll))
            row = conn.execute(select(feeds).where(feeds.c.url == url)).one()
        return _feed_from_row(row)

    def record_next_poll(self, url: str, next_poll: datetime | None) -> None:
        """Take a feed and when to poll it next; record it (a feed never seen is added)."""
        with self._transaction("record next poll", write=True) as conn:
            conn.execute(self._insert_new(feeds).values(url=url, error_count=0))
            conn.execute(update(feeds).where(feeds.c.url == url).values(next_poll=next_poll))

    def write_success(self, conn: Connection, url: str, *, now: datetime, etag: str | None,
                      last_modified: str | None, content_hash: str | None, title: str | None,
                      next_poll: datetime | None) -> None:
        """Take an open write transaction and a fetched feed's validators; record a successful
        poll in it (the store writes a feed's articles and its poll together)."""
        conn.execute(self._record_success, _success_values(
            url, now=now, etag=etag, last_modified=last_modified, content_hash=content_hash,
            title=title, next_poll=next_poll))


def _feed_success_upsert(dialect: str) -> Insert:
    """Take a dialect name; return the INSERT that records a feed's successful poll (values
    from _success_values), adding the feed when it is new and keeping its title when none
    came."""
    if dialect == "sqlite":
        stmt = sqlite_insert(feeds)
        return stmt.on_conflict_do_update(index_elements=[feeds.c.url],
                                          set_=_success_updates(stmt.excluded))
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    pg_stmt = pg_insert(feeds)
    return pg_stmt.on_conflict_do_update(index_elements=[feeds.c.url],
                                         set_=_success_updates(pg_stmt.excluded))


def _success_updates(excluded: ReadOnlyColumnCollection[str, KeyedColumnElement[Any]],
                     ) -> dict[str, ColumnElement[Any]]:
    """Take an upsert's proposed row; return what a successful poll sets on a known feed."""
    updates: dict[str, ColumnElement[Any]] = {
        name: excluded[name] for name in ("etag", "last_modified", "content_hash",
                                          "last_polled", "last_success", "error_count",
                                          "last_error", "failing_since", "next_poll")}
    updates["title"] = func.coalesce(excluded.title, feeds.c.title)
    return updates


def _success_values(url: str, *, now: datetime, etag: str | None, last_modified: str | None,
                    content_hash: str | None, title: str | None,
                    next_poll: datetime | None) -> dict[str, Any]:
    """Take a successful poll's validators; return the feeds row values that record it."""
    return {"url": url, "title": title, "etag": etag, "last_modified": last_modified,
            "content_hash": content_hash, "last_polled": now, "last_success": now,
            "error_count": 0, "last_error": None, "failing_since": None, "next_poll": next_poll}


def _feed_from_row(row: Row[Any]) -> FeedState:
    """Take a feeds row and return its FeedState."""
    return FeedState(url=row.url, title=row.title, etag=row.etag,
                     last_modified=row.last_modified, content_hash=row.content_hash,
                     last_polled=row.last_polled, last_success=row.last_success,
                     error_count=int(row.error_count), last_error=row.last_error,
                     failing_since=row.failing_since, next_poll=row.next_poll)
