"""Batched feed writes: a poll's successful feeds stored a few per transaction."""

from __future__ import annotations

import asyncio

from digestbot.store import FeedWrite, Store


class FeedWrites:
    """Successful feed polls waiting to be stored, a few feeds per transaction: commits are
    most of what storing a first poll's articles costs. A write waits until `most` feeds wait,
    every feed still running waits, or `delay` seconds have passed since the first one came.
    Meanwhile its articles are not yet known to other feeds' lookups; one found again in a
    later feed is read twice, and stored once."""

    def __init__(self, store: Store, feeds: int, *, delay: float = 0.1, most: int = 16) -> None:
        self._store = store
        self._running = feeds
        self._delay = delay
        self._most = most
        self._waiting: list[tuple[FeedWrite, asyncio.Future[list[bool]]]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def add(self, write: FeedWrite) -> list[bool]:
        """Take a feed's poll; store it with the others waiting and return new-or-not per
        article (see Store.add_feeds_articles)."""
        done: asyncio.Future[list[bool]] = asyncio.get_running_loop().create_future()
        self._waiting.append((write, done))
        self._flush_when_due()
        return await done

    def finish(self) -> None:
        """Count one feed as done: it has nothing more to write."""
        self._running -= 1
        self._flush_when_due()

    def cancel(self) -> None:
        """Drop the writes still waiting: their feeds were cancelled with the poll."""
        self._waiting = []
        self._stop_timer()

    def _flush_when_due(self) -> None:
        """Store the waiting writes now if no more can join them soon, else set the timer."""
        if not self._waiting:
            return
        if len(self._waiting) >= min(self._most, self._running):
            self._flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._delay, self._flush)

    def _stop_timer(self) -> None:
        """Cancel the pending flush, if any."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _flush(self) -> None:
        """Store every waiting write in one transaction and wake their feeds."""
        batch, self._waiting = self._waiting, []
        self._stop_timer()
        try:
            added = self._store.add_feeds_articles([write for write, _ in batch])
        except Exception as err:  # every feed of the batch fails with it, and so the poll
            for _, done in batch:
                if not done.done():
                    done.set_exception(err)
            return
        for (_, done), feed_added in zip(batch, added, strict=True):
            if not done.done():
                done.set_result(feed_added)
