"""The outbox: saved digests, their deliveries to each destination, and alerts sent.

Composed into `Store` as `store.outbox`; it borrows the store's transactions, so every public
write is one short transaction and unique keys decide what is new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, Row, Table, func, select, update
from sqlalchemy.sql.dml import Insert

from digestbot.errors import StoreError
from digestbot.schema import alerts, deliveries, digests

DELIVERY_STATUSES = ("pending", "sending", "sent", "failed")


@dataclass(frozen=True, slots=True)
class DeliveryState:
    """One outbox row: a digest's delivery to one destination."""

    digest_key: str
    destination: str
    status: str  # "pending", "sending", "sent", "failed"
    attempts: int
    detail: str
    remote_ref: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DigestRow:
    """A saved digest: its key, period and JSON payload."""

    key: str
    watchlist: str
    since: datetime
    until: datetime
    created_at: datetime
    payload: str


class Transact(Protocol):
    """The store's transaction helper: a description and write flag in, a connection out."""

    def __call__(self, what: str, *, write: bool) -> AbstractContextManager[Connection]: ...


class Outbox:
    """Digests, deliveries and alerts in the store's database; reached as `store.outbox`."""

    def __init__(self, transaction: Transact, insert_new: Callable[[Table], Insert]) -> None:
        """Take the store's transaction helper and its skip-duplicates INSERT builder."""
        self._transaction = transaction
        self._insert_new = insert_new

    # digests

    def last_digest_until(self, watchlist: str) -> datetime | None:
        """Take a watchlist and return the end of its latest saved digest, or None."""
        with self._transaction("read last digest", write=False) as conn:
            found: datetime | None = conn.execute(
                select(func.max(digests.c.until)).where(digests.c.watchlist == watchlist)
            ).scalar_one_or_none()
        return found

    def save_digest(self, key: str, watchlist: str, since: datetime, until: datetime,
                    payload: str, *, now: datetime) -> bool:
        """Take a digest's key, period and JSON payload; store it if absent; True if new."""
        with self._transaction("save digest", write=True) as conn:
            added = conn.execute(self._insert_new(digests).values(
                key=key, watchlist=watchlist, since=since, until=until, created_at=now,
                payload=payload).returning(digests.c.key)).first()
        return added is not None

    def get_digest(self, key: str) -> DigestRow | None:
        """Take a digest key and return the saved digest, or None."""
        with self._transaction("read digest", write=False) as conn:
            row = conn.execute(select(digests).where(digests.c.key == key)).first()
        if row is None:
            return None
        return DigestRow(key=row.key, watchlist=row.watchlist, since=row.since, until=row.until,
                         created_at=row.created_at, payload=row.payload)

    # deliveries

    def claim_delivery(self, digest_key: str, destination: str, *,
                       now: datetime) -> DeliveryState:
        """Take a digest and destination, record a pending delivery if absent, return its
        state."""
        with self._transaction("claim delivery", write=True) as conn:
            conn.execute(self._insert_new(deliveries).values(
                digest_key=digest_key, destination=destination, status="pending", attempts=0,
                detail="", updated_at=now))
            return _read_delivery(conn, digest_key, destination)

    def mark_delivery(self, digest_key: str, destination: str, status: str, *, now: datetime,
                      detail: str = "", remote_ref: str | None = None) -> None:
        """Take a delivery's new status and record it; 'sending' counts one more attempt."""
        if status not in DELIVERY_STATUSES:
            raise StoreError(f"store: mark delivery failed: unknown status {status!r}")
        values: dict[str, Any] = {"status": status, "detail": detail, "updated_at": now}
        if status == "sending":
            values["attempts"] = deliveries.c.attempts + 1
        if remote_ref is not None:
            values["remote_ref"] = remote_ref
        with self._transaction("mark delivery", write=True) as conn:
            conn.execute(self._insert_new(deliveries).values(
                digest_key=digest_key, destination=destination, status="pending", attempts=0,
                detail="", updated_at=now))
            conn.execute(update(deliveries).where(
                deliveries.c.digest_key == digest_key,
                deliveries.c.destination == destination).values(values))

    def unfinished_deliveries(self) -> list[DeliveryState]:
        """Return deliveries still pending or sending, oldest first."""
        with self._transaction("read unfinished deliveries", write=False) as conn:
            rows = conn.execute(
                select(deliveries).where(deliveries.c.status.in_(("pending", "sending")))
                .order_by(deliveries.c.updated_at, deliveries.c.digest_key,
                          deliveries.c.destination)).all()
        return [_delivery_from_row(row) for row in rows]

    def reset_delivery(self, digest_key: str, destination: str, *, now: datetime) -> None:
        """Take a delivery and put it back to pending (attempts kept); absent ones stay
        absent."""
        with self._transaction("reset delivery", write=True) as conn:
            conn.execute(update(deliveries).where(
                deliveries.c.digest_key == digest_key, deliveries.c.destination == destination
            ).values(status="pending", detail="reset", updated_at=now))

    def deliveries(self, digest_key: str) -> list[DeliveryState]:
        """Take a digest key and return its deliveries by destination."""
        with self._transaction("read deliveries", write=False) as conn:
            rows = conn.execute(select(deliveries).where(deliveries.c.digest_key == digest_key)
                                .order_by(deliveries.c.destination)).all()
        return [_delivery_from_row(row) for row in rows]

    # alerts

    def record_alert(self, watchlist: str, story_id: int, *, now: datetime) -> bool:
        """Take a watchlist and story; return True if the story had no alert there yet."""
        with self._transaction("record alert", write=True) as conn:
            added = conn.execute(self._insert_new(alerts).values(
                watchlist=watchlist, story_id=story_id, created_at=now
            ).returning(alerts.c.story_id)).first()
        return added is not None

    def alerted_stories(self, watchlist: str, story_ids: Iterable[int], *,
                        since: datetime) -> set[int]:
        """Take a watchlist, story ids and a time; return those stories alerted there since."""
        wanted = sorted(set(story_ids))
        found: set[int] = set()
        with self._transaction("read alerts", write=False) as conn:
            for start in range(0, len(wanted), 500):
                found.update(conn.execute(select(alerts.c.story_id).where(
                    alerts.c.watchlist == watchlist, alerts.c.created_at >= since,
                    alerts.c.story_id.in_(wanted[start:start + 500]))).scalars())
        return found

    def count_alerts(self, watchlist: str, since: datetime) -> int:
        """Take a watchlist and time and return how many alerts it got since then."""
        with self._transaction("count alerts", write=False) as conn:
            return int(conn.execute(select(func.count()).select_from(alerts).where(
                alerts.c.watchlist == watchlist, alerts.c.created_at >= since)).scalar_one())


def _delivery_from_row(row: Row[Any]) -> DeliveryState:
    """Take a deliveries row and return its DeliveryState."""
    return DeliveryState(digest_key=row.digest_key, destination=row.destination,
                         status=row.status, attempts=int(row.attempts), detail=row.detail,
                         remote_ref=row.remote_ref, updated_at=row.updated_at)


def _read_delivery(conn: Connection, digest_key: str, destination: str) -> DeliveryState:
    """Take a connection and a delivery's key and return its current state."""
    row = conn.execute(select(deliveries).where(
        deliveries.c.digest_key == digest_key,
        deliveries.c.destination == destination)).one()
    return _delivery_from_row(row)
