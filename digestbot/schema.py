"""The store's database: engine setup (SQLite or PostgreSQL), tables and ordered migrations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from digestbot.errors import StoreError

Migration = Callable[[Connection], None]

# Any constant works; it only has to be the same for every process migrating one database.
_PG_MIGRATION_LOCK = 7_324_001


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in and out; SQLite keeps it as naive UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Take an aware datetime and return it in UTC (naive for SQLite)."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} (store needs aware UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        """Take a stored datetime and return it as an aware UTC datetime."""
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ValueError(f"stored value {value!r} is not a datetime")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata = MetaData()

schema_version = Table(
    "schema_version", metadata,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("applied_at", UTCDateTime, nullable=False),
)

feeds = Table(
    "feeds", metadata,
    Column("url", Text, primary_key=True),
    Column("title", Text),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("content_hash", Text),
    Column("last_polled", UTCDateTime),
    Column("last_success", UTCDateTime),
    Column("error_count", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("failing_since", UTCDateTime),
    Column("next_poll", UTCDateTime),
)

stories = Table(
    "stories", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("first_seen", UTCDateTime, nullable=False),
)

articles = Table(
    "articles", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("url", Text, nullable=False),
    Column("link", Text, nullable=False),
    Column("guid", Text),  # NULL when the feed gave none, so the unique index skips it
    Column("feed_url", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("author", Text),
    Column("published", UTCDateTime),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("when", UTCDateTime, nullable=False),  # coalesce(published, first_seen)
    Column("story_id", Integer, ForeignKey("stories.id", ondelete="SET NULL")),
    UniqueConstraint("url", name="uq_articles_url"),
    Index("uq_articles_guid", "guid", unique=True),
    Index("ix_articles_when", "when"),
    Index("ix_articles_first_seen", "first_seen"),
    Index("ix_articles_story_id", "story_id"),
)

matches = Table(
    "matches", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("watchlist", Text, nullable=False),
    Column("article_url", Text, ForeignKey("articles.url", ondelete="CASCADE"), nullable=False),
    Column("topic", Text, nullable=False),
    Column("terms", Text, nullable=False),  # JSON list of the matched query terms
    # Leading watchlist/article_url also serves the digest query's lookups.
    UniqueConstraint("watchlist", "article_url", "topic", name="uq_matches_key"),
)

digests = Table(
    "digests", metadata,
    Column("key", Text, primary_key=True),
    Column("watchlist", Text, nullable=False),
    Column("since", UTCDateTime, nullable=False),
    Column("until", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_digests_watchlist_until", "watchlist", "until"),
)

# No foreign key to digests: a delivery's intent is recorded by the deliver stage, which may
# run on a digest rendered elsewhere.
deliveries = Table(
    "deliveries", metadata,
    Column("digest_key", Text, nullable=False),
    Column("destination", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("detail", Text, nullable=False, server_default=text("''")),
    Column("remote_ref", Text),
    Column("updated_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("digest_key", "destination", name="pk_deliveries"),
    Index("ix_deliveries_status", "status"),
)

alerts = Table(
    "alerts", metadata,
    Column("watchlist", Text, nullable=False),
    Column("story_id", Integer, ForeignKey("stories.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    PrimaryKeyConstraint("watchlist", "story_id", name="pk_alerts"),
    Index("ix_alerts_watchlist_created", "watchlist", "created_at"),
)

_V1_TABLES = (feeds, stories, articles, matches, digests, deliveries, alerts)


def create_tables_v1(conn: Connection) -> None:
    """Take a connection in a transaction and create the first set of tables."""
    # Later schema changes go in new migration functions appended below; this one keeps
    # creating the version-1 tables so old databases and new ones end up the same.
    metadata.create_all(conn, tables=list(_V1_TABLES), checkfirst=False)


MIGRATIONS: tuple[Migration, ...] = (create_tables_v1,)


def read_schema_version(conn: Connection) -> int:
    """Take a connection and return the highest applied migration number (0 when none)."""
    if not conn.dialect.has_table(conn, schema_version.name):
        return 0
    found = conn.execute(select(func.max(schema_version.c.version))).scalar_one_or_none()
    return int(found or 0)


def apply_migrations(conn: Connection, *, now: datetime,
                     migrations: Sequence[Migration] = MIGRATIONS) -> list[int]:
    """Take a connection in a transaction, apply missing migrations, return their numbers."""
    if conn.dialect.name == "postgresql":
        # Serialise concurrent first opens; the lock ends with the transaction.
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
    schema_version.create(conn, checkfirst=True)
    current = read_schema_version(conn)
    applied: list[int] = []
    for number, migration in enumerate(migrations, start=1):
        if number <= current:
            continue
        migration(conn)
        conn.execute(schema_version.insert().values(version=number, applied_at=now))
        applied.append(number)
    return applied


def make_engine(url: str, busy_timeout: float) -> Engine:
    """Take a database URL and return an engine set up for SQLite or PostgreSQL."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"store: open failed: bad database url {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    try:
        if backend == "sqlite":
            return _make_sqlite_engine(parsed, busy_timeout)
        if backend == "postgresql":
            if parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            return create_engine(parsed, pool_pre_ping=True)
    except ArgumentError as exc:
        raise StoreError(f"store: open failed: {exc}") from exc
    raise StoreError(f"store: open failed: unsupported database {backend!r} "
                     "(use sqlite or postgresql)")


def _make_sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    """Take a SQLite URL and return an engine with WAL, foreign keys and a busy timeout."""
    database = url.database or ""
    memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    if not memory and not url.query.get("uri"):
        folder = Path(database).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store: open failed: cannot create folder {folder}: "
                             f"{exc.strerror or exc}") from exc
    connect_args: dict[str, Any] = {"timeout": busy_timeout}
    if memory:
        # One shared connection, or every checkout would see its own empty database.
        connect_args["check_same_thread"] = False
        engine = create_engine(url, connect_args=connect_args, poolclass=StaticPool)
    else:
        engine = create_engine(url, connect_args=connect_args)
    timeout_ms = max(0, int(busy_timeout * 1000))

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # The driver's own transaction handling skips DDL and never uses IMMEDIATE; we emit
        # BEGIN ourselves (on_begin) so migrations are atomic and writers queue on the lock.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()
                if mode is not None and str(mode[0]).lower() == "wal":
                    # Under WAL this never corrupts the database: a power cut may only lose the
                    # last commits (the next poll fetches them again). It saves fsyncs.
                    cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    def on_begin(conn: Connection) -> None:
        # A write transaction takes the write lock up front: upgrading a read transaction
        # later fails at once with "database is locked" instead of waiting busy_timeout.
        write = conn.get_execution_options().get("digestbot_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    event.listen(engine, "connect", on_connect)
    event.listen(engine, "begin", on_begin)
    return engine


def describe_error(exc: SQLAlchemyError) -> str:
    """Take a database error and return its driver message's first line."""
    orig = getattr(exc, "orig", None)
    message = str(orig if orig is not None else exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__
