"""Store tests on real SQLite files and, when DIGESTBOT_TEST_POSTGRES_URL is set, PostgreSQL."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import make_url

from digestbot.errors import StoreError
from digestbot.records import Article, Match
from digestbot.schema import MIGRATIONS
from digestbot.store import FeedWrite, Store

NOW = datetime(2031, 5, 14, 9, 30, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A database URL: a SQLite file, or a fresh PostgreSQL schema dropped afterwards."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    base = make_url(request.getfixturevalue("postgres_url"))
    if base.drivername == "postgresql":
        base = base.set(drivername="postgresql+psycopg")
    schema = f"test_store_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        url = base.update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store on `store_url`, closed afterwards."""
    with Store.open(store_url) as opened:
        yield opened


def make_article(n: int, *, url: str | None = None, guid: str | None = "",
                 published: datetime | None = None, first_seen: datetime = NOW,
                 text_body: str | None = None) -> Article:
    """Take a number and overrides and return a fictional article about the Velmora harbour."""
    return Article(
        url=url or f"https://velmora-herald.example/harbour/{n}",
        link=f"https://velmora-herald.example/harbour/{n}?utm_source=feed",
        guid=f"velmora-{n}" if guid == "" else guid,
        feed_url="https://velmora-herald.example/feed.xml",
        source="Velmora Herald",
        title=f"Velmora council debates tidal barrier, part {n}",
        text=text_body or (f"Councillor Ilse Varnholt said part {n} of the plan was ready.\n\n"
                           "\"We will not let the tide decide,\" she said."),
        published=published,
        first_seen=first_seen,
        author="Tomas Brel",
    )


def read_versions(url: str) -> list[tuple[int, datetime]]:
    """Take a database URL and return the rows of its schema_version table."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT version, applied_at FROM schema_version ORDER BY version")).all()
        return [(int(v), a) for v, a in rows]
    finally:
        engine.dispose()


def table_names(url: str) -> set[str]:
    """Take a database URL and return its table names."""
    engine = create_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


# schema and migrations


def test_open_applies_migrations_once_and_reopen_is_a_no_op(store_url: str) -> None:
    with Store.open(store_url) as first:
        assert first.schema_version() == len(MIGRATIONS)
        assert first.add_article(make_article(1))
    versions = read_versions(store_url)
    assert [v for v, _ in versions] == list(range(1, len(MIGRATIONS) + 1))
    assert {"feeds", "articles", "matches", "stories", "digests", "deliveries",
            "alerts"} <= table_names(store_url)

    with Store.open(store_url) as second:
        assert second.schema_version() == len(MIGRATIONS)
        assert second.get_article(make_article(1).url) == make_article(1)
    assert read_versions(store_url) == versions


def test_open_applies_only_missing_migrations_and_rolls_back_a_failing_one(
        store_url: str) -> None:
    def add_notes(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE editor_notes (id INTEGER PRIMARY KEY, body TEXT)"))

    def break_halfway(conn: Connection) -> None:
        conn.execute(text("CREATE TABLE half_done (id INTEGER PRIMARY KEY)"))
        raise RuntimeError("migration 3 of the Velmora test broke")

    Store.open(store_url).close()
    with Store.open(store_url, migrations=(*MIGRATIONS, add_notes)) as grown:
        assert grown.schema_version() == len(MIGRATIONS) + 1
    assert "editor_notes" in table_names(store_url)

    with pytest.raises(RuntimeError, match="migration 3"):
        Store.open(store_url, migrations=(*MIGRATIONS, add_notes, break_halfway))
    assert "half_done" not in table_names(store_url)
    assert [v for v, _ in read_versions(store_url)] == [1, 2]


def test_sqlite_open_creates_parent_folder_and_sets_wal_and_foreign_keys(
        tmp_path: Path) -> None:
    path = tmp_path / "state" / "nested" / "digestbot.db"
    with Store.open(f"sqlite:///{path}") as opened:
        assert opened.schema_version() == len(MIGRATIONS)
    assert path.is_file()
    raw = sqlite3.connect(path)
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        raw.close()
    with Store.open(f"sqlite:///{path}") as opened, pytest.raises(StoreError, match="FOREIGN KEY"):
        opened.add_matches([Match("https://nowhere.example/x", "harbour", "barrier", ())])


# articles


def test_article_identity_by_canonical_url_and_by_guid(store: Store) -> None:
    original = make_article(1)
    assert store.add_article(original) is True
    assert store.add_article(original) is False
    same_url_new_guid = make_article(1, guid="velmora-other")
    assert store.add_article(same_url_new_guid) is False
    same_guid_new_url = make_article(2, guid=original.guid)
    assert store.add_article(same_guid_new_url) is False
    assert store.get_article(same_guid_new_url.url) is None
    assert store.get_article(original.url) == original  # not updated by the repeats

    # Articles without a guid are told apart by url only.
    assert store.add_article(make_article(3, guid=None)) is True
    assert store.add_article(make_article(4, guid="")) is True
    assert store.get_article(make_article(4).url) is not None
    assert store.stats()["articles"] == 3


def test_add_articles_batch_reports_new_per_article_and_known_keys(store: Store) -> None:
    assert store.add_articles([make_article(1), make_article(2)]) == [True, True]
    batch = [make_article(2), make_article(3), make_article(3, guid="velmora-3b"),
             make_article(5, guid="velmora-4"), make_article(4), make_article(6, guid=None)]
    assert store.add_articles(batch) == [False, True, False, True, False, True]
    assert store.add_articles([]) == []

    urls, guids = store.known_article_keys(
        [make_article(n).url for n in (1, 4, 5, 9)], ["velmora-1", "velmora-4", "velmora-9", ""])
    assert urls == {make_article(1).url, make_article(5).url}
    assert guids == {"velmora-1", "velmora-4"}


def test_large_batch_and_full_text_are_kept(store: Store) -> None:
    long_text = "\n\n".join(f"Paragraph {i} about the Velmora tidal barrier vote." * 20
                            for i in range(400))
    batch = [make_article(n) for n in range(700)] + [make_article(9999, text_body=long_text)]
    assert all(store.add_articles(batch))
    stored = store.get_article(make_article(9999).url)
    assert stored is not None
    assert stored.text == long_text
    assert store.stats()["articles"] == 701


def test_datetimes_come_back_aware_utc_and_equal(store: Store) -> None:
    kolkata = timezone(timedelta(hours=5, minutes=30))
    published = datetime(2031, 5, 14, 12, 15, 30, 123456, tzinfo=kolkata)
    article = make_article(1, published=published)
    store.add_article(article)
    stored = store.get_article(article.url)
    assert stored is not None and stored.published is not None
    assert stored.published == published
    assert stored.published.utcoffset() == timedelta(0)
    assert stored.first_seen == NOW and stored.first_seen.tzinfo is not None

    state = store.feeds.record_failure("https://lowmarsh.example/rss", "timeout",
                                      now=published, next_poll=published + timedelta(hours=1))
    assert state.failing_since == published and state.failing_since.utcoffset() == timedelta(0)
    assert state.next_poll == published + timedelta(hours=1)


def test_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(StoreError, match=r"^store: .*naive datetime"):
        store.add_article(make_article(1, first_seen=datetime(2031, 5, 14, 9, 30)))
    with pytest.raises(StoreError, match="naive datetime"):
        store.matched_articles("harbour", datetime(2031, 5, 1), NOW)
    assert store.stats()["articles"] == 0


# matches


def test_add_matches_dedupes_and_keeps_terms(store: Store) -> None:
    store.add_articles([make_article(1), make_article(2)])
    first = Match(make_article(1).url, "harbour", "barrier", ("tidal barrier", "Varnholt"))
    again = Match(make_article(1).url, "harbour", "barrier", ("other",))
    other_topic = Match(make_article(1).url, "harbour", "council", ("council",))
    other_list = Match(make_article(1).url, "coast", "barrier", ())
    assert store.add_matches([first, again, other_topic]) == [first, other_topic]
    assert store.add_matches([again, other_list, first]) == [other_list]
    assert store.add_matches([]) == []
    rows = store.matched_articles("harbour", NOW - timedelta(days=1), NOW + timedelta(days=1))
    assert [(m.topic, m.terms) for _, m, _ in rows] == [
        ("barrier", ("tidal barrier", "Varnholt")), ("council", ("council",))]


def test_failed_batch_leaves_no_partial_state(store: Store) -> None:
    store.add_article(make_article(1))
    good = Match(make_article(1).url, "harbour", "barrier", ())
    orphan = Match("https://velmora-herald.example/missing", "harbour", "barrier", ())
    with pytest.raises(StoreError, match=r"^store: add 2 matches failed: "):
        store.add_matches([good, orphan])
    assert store.stats()["matches"] == 0
    assert store.add_matches([good]) == [good]


# stories


def test_stories_create_assign_and_read(store: Store) -> None:
    early = make_article(1, published=NOW - timedelta(hours=3),
                         first_seen=NOW - timedelta(minutes=30))
    late = make_article(2, published=NOW - timedelta(hours=1))
    unmatched = make_article(3, published=None, first_seen=NOW - timedelta(hours=2))
    store.add_articles([late, early, unmatched])
    assert store.story_id_of(late.url) is None

    story = store.create_story(late.url, now=NOW)
    assert store.create_story(late.url, now=NOW + timedelta(hours=1)) == story
    store.assign_story(early.url, story)
    store.assign_story(unmatched.url, story)
    # Already in a story: create_story returns that story instead of splitting the article off.
    assert store.create_story(early.url, now=NOW) == story

    assert store.story_id_of(early.url) == story
    assert store.story_id_of("https://velmora-herald.example/unknown") is None
    assert store.story_articles([story, 424242]) == {story: [early, unmatched, late],
                                                     424242: []}
    assert store.story_first_seen([story, 424242]) == {story: NOW}
    since = store.placed_articles_since(NOW - timedelta(days=1))
    assert [(a.url, sid) for a, sid in since] == [(unmatched.url, story), (early.url, story),
                                                  (late.url, story)]
    assert store.placed_articles_since(NOW + timedelta(seconds=1)) == []
    assert store.unplaced_urls(NOW - timedelta(days=1)) == []

    with pytest.raises(StoreError, match="unknown story 424242"):
        store.assign_story(early.url, 424242)
    with pytest.raises(StoreError, match="unknown article"):
        store.assign_story("https://velmora-herald.example/unknown", story)
    with pytest.raises(StoreError, match="unknown article"):
        store.create_story("https://velmora-herald.example/unknown", now=NOW)
    assert store.stats()["stories"] == 1


# digests


def test_matched_articles_window_by_published_then_first_seen(store: Store) -> None:
    since, until = NOW - timedelta(days=1), NOW
    inside = make_article(1, published=since)  # since is inclusive
    at_until = make_article(2, published=until)  # until is exclusive
    old_but_new_to_us = make_article(3, published=since - timedelta(hours=1), first_seen=NOW
                                     - timedelta(hours=2))
    undated_inside = make_article(4, published=None, first_seen=until - timedelta(minutes=1))
    undated_outside = make_article(5, published=None, first_seen=since - timedelta(minutes=1))
    other_list = make_article(6, published=NOW - timedelta(hours=5))
    everything = [inside, at_until, old_but_new_to_us, undated_inside, undated_outside,
                  other_list]
    store.add_articles(everything)
    store.add_matches([Match(a.url, "harbour", "barrier", ("barrier",)) for a in everything[:5]]
                      + [Match(other_list.url, "coast", "erosion", ())])
    story = store.create_story(undated_inside.url, now=NOW)

    rows = store.matched_articles("harbour", since, until)
    assert [a.url for a, _, _ in rows] == [inside.url, undated_inside.url]
    assert [sid for _, _, sid in rows] == [None, story]
    assert rows[0][0] == inside
    assert rows[1][1] == Match(undated_inside.url, "harbour", "barrier", ("barrier",))


def test_save_digest_once_and_last_until(store: Store) -> None:
    assert store.outbox.last_digest_until("harbour") is None
    day1 = (NOW - timedelta(days=2), NOW - timedelta(days=1))
    day2 = (NOW - timedelta(days=1), NOW)
    payload = json.dumps({"stories": [{"headline": "Velmora votes on barrier"}]})
    assert store.outbox.save_digest("harbour:d2", "harbour", *day2, payload, now=NOW) is True
    assert store.outbox.save_digest("harbour:d1", "harbour", *day1, "{}", now=NOW) is True
    assert store.outbox.save_digest("harbour:d2", "harbour", *day2, "{\"changed\": 1}",
                                    now=NOW) is False
    row = store.outbox.get_digest("harbour:d2")
    assert row is not None
    assert (row.watchlist, row.since, row.until, row.created_at, row.payload) == (
        "harbour", day2[0], day2[1], NOW, payload)
    assert store.outbox.get_digest("harbour:none") is None
    assert store.outbox.last_digest_until("harbour") == NOW
    assert store.outbox.last_digest_until("coast") is None


# outbox


def test_outbox_claim_mark_unfinished_reset(store: Store) -> None:
    key = "harbour:2031-05-13:2031-05-14"
    claimed = store.outbox.claim_delivery(key, "slack:#harbour", now=NOW)
    assert (claimed.status, claimed.attempts, claimed.detail, claimed.remote_ref) == (
        "pending", 0, "", None)
    store.outbox.claim_delivery(key, "email:ops@velmora.example", now=NOW + timedelta(seconds=1))

    store.outbox.mark_delivery(key, "slack:#harbour", "sending", now=NOW + timedelta(seconds=2))
    again = store.outbox.claim_delivery(key, "slack:#harbour", now=NOW + timedelta(seconds=3))
    assert (again.status, again.attempts, again.updated_at) == (
        "sending", 1, NOW + timedelta(seconds=2))
    assert [(d.destination, d.status) for d in store.outbox.unfinished_deliveries()] == [
        ("email:ops@velmora.example", "pending"), ("slack:#harbour", "sending")]

    store.outbox.mark_delivery(key, "slack:#harbour", "sent", now=NOW + timedelta(seconds=4),
                               detail="ok", remote_ref="1747215000.000100")
    store.outbox.mark_delivery(key, "email:ops@velmora.example", "sending", now=NOW)
    store.outbox.mark_delivery(key, "email:ops@velmora.example", "failed", now=NOW,
                               detail="550 mailbox unavailable")
    assert store.outbox.unfinished_deliveries() == []
    done = {d.destination: d for d in store.outbox.deliveries(key)}
    assert list(done) == ["email:ops@velmora.example", "slack:#harbour"]
    assert (done["slack:#harbour"].status, done["slack:#harbour"].remote_ref) == (
        "sent", "1747215000.000100")
    assert (done["email:ops@velmora.example"].status,
            done["email:ops@velmora.example"].detail) == ("failed", "550 mailbox unavailable")

    store.outbox.reset_delivery(key, "slack:#harbour", now=NOW + timedelta(minutes=1))
    reset = store.outbox.claim_delivery(key, "slack:#harbour", now=NOW + timedelta(minutes=2))
    assert (reset.status, reset.attempts, reset.updated_at) == (
        "pending", 1, NOW + timedelta(minutes=1))
    store.outbox.reset_delivery(key, "webhook:none", now=NOW)
    assert [d.destination for d in store.outbox.deliveries(key)] == [
        "email:ops@velmora.example", "slack:#harbour"]
    with pytest.raises(StoreError, match="unknown status 'done'"):
        store.outbox.mark_delivery(key, "slack:#harbour", "done", now=NOW)
    stats = store.stats()
    assert (stats["deliveries_pending"], stats["deliveries_failed"], stats["deliveries_sent"]) == (
        1, 1, 0)


# alerts and feeds


def test_alert_once_per_story_and_watchlist(store: Store) -> None:
    store.add_articles([make_article(1), make_article(2)])
    first = store.create_story(make_article(1).url, now=NOW)
    second = store.create_story(make_article(2).url, now=NOW)
    assert store.outbox.record_alert("harbour", first, now=NOW) is True
    assert store.outbox.record_alert("harbour", first, now=NOW + timedelta(hours=1)) is False
    assert store.outbox.record_alert("coast", first, now=NOW) is True
    assert store.outbox.record_alert("harbour", second, now=NOW + timedelta(hours=2)) is True
    assert store.outbox.count_alerts("harbour", NOW) == 2
    assert store.outbox.count_alerts("harbour", NOW + timedelta(minutes=1)) == 1
    assert store.outbox.count_alerts("inland", NOW - timedelta(days=1)) == 0
    assert store.outbox.alerted_stories("harbour", [second, first, 999], since=NOW) == {
        first, second}
    assert store.outbox.alerted_stories("harbour", [first, second],
                                        since=NOW + timedelta(minutes=1)) == {second}
    assert store.outbox.alerted_stories("coast", [second], since=NOW) == set()
    assert store.outbox.alerted_stories("harbour", [], since=NOW) == set()


def test_feeds_articles_are_stored_in_the_feeds_order_with_their_polls(store: Store) -> None:
    harbour = "https://velmora-herald.example/feed.xml"
    gazette = "https://lowmarsh-gazette.example/rss"
    quiet = "https://quiet.example/feed"
    store.feeds.record_failure(gazette, "fetch failed: timeout", now=NOW)
    store.feeds.record_success(quiet, now=NOW, etag=None, last_modified=None, content_hash="0",
                              title="Quiet Times")
    later = NOW + timedelta(hours=1)
    added = store.add_feeds_articles([
        FeedWrite(harbour, [make_article(1), make_article(2), make_article(1)], polled=later,
                  etag='"h1"', last_modified=None, content_hash="h", title="Velmora Herald"),
        # Stories the first feed brought: known by their guid, then by their url.
        FeedWrite(gazette, [make_article(2, url="https://lowmarsh-gazette.example/2"),
                            make_article(3), make_article(1, guid="lowmarsh-1")],
                  polled=later, etag=None, last_modified="Wed, 14 May 2031",
                  content_hash="g"),
        FeedWrite(quiet, [], polled=later, etag='"q"', last_modified=None, content_hash="q"),
    ])
    assert added == [[True, True, False], [False, True, False], []]
    assert store.add_feeds_articles([]) == []
    assert store.add_feeds_articles([FeedWrite(gazette, [make_article(3)], polled=later,
                                               etag=None, last_modified="Thu, 15 May 2031",
                                               content_hash="g")]) == [[False]]
    assert store.stats()["articles"] == 3
    states = {state.url: state for state in store.feeds.states()}
    assert (states[harbour].title, states[harbour].etag, states[harbour].last_success) == (
        "Velmora Herald", '"h1"', later)
    assert (states[gazette].error_count, states[gazette].failing_since,
            states[gazette].last_modified) == (0, None, "Thu, 15 May 2031")
    assert (states[quiet].title, states[quiet].etag) == ("Quiet Times", '"q"')


def test_feed_state_failure_success_and_not_modified(store: Store) -> None:
    url = "https://lowmarsh-gazette.example/rss"
    assert store.feeds.state(url) is None
    first = store.feeds.record_failure(url, "fetch failed: timeout", now=NOW)
    second = store.feeds.record_failure(url, "fetch failed: 503", now=NOW + timedelta(hours=1),
                                       next_poll=NOW + timedelta(hours=3))
    assert (first.error_count, second.error_count) == (1, 2)
    assert second.failing_since == NOW and second.last_error == "fetch failed: 503"
    assert second.last_success is None and second.next_poll == NOW + timedelta(hours=3)
    assert store.stats()["feeds_failing"] == 1

    later = NOW + timedelta(hours=4)
    store.feeds.record_success(url, now=later, etag='"v1"', last_modified="Wed, 14 May 2031",
                              content_hash="abc123", title="Lowmarsh Gazette")
    store.feeds.record_success(url, now=later, etag='"v2"', last_modified=None,
                              content_hash="def456")
    state = store.feeds.state(url)
    assert state is not None
    assert (state.error_count, state.failing_since, state.last_error) == (0, None, None)
    assert (state.title, state.etag, state.content_hash) == ("Lowmarsh Gazette", '"v2"', "def456")

    store.feeds.record_failure(url, "fetch failed: reset", now=later)
    store.feeds.record_next_poll(url, later + timedelta(hours=2))
    store.feeds.record_not_modified([url, "https://quiet.example/feed"],
                                    now=later + timedelta(hours=1))
    store.feeds.record_not_modified([], now=later + timedelta(hours=9))
    state = store.feeds.state(url)
    assert state is not None
    assert (state.etag, state.last_polled, state.next_poll) == (
        '"v2"', later + timedelta(hours=1), later + timedelta(hours=2))
    assert (state.error_count, state.failing_since, state.last_error) == (0, None, None)
    quiet = store.feeds.state("https://quiet.example/feed")
    assert quiet is not None and quiet.last_success == later + timedelta(hours=1)
    assert [s.url for s in store.feeds.states()] == ["https://lowmarsh-gazette.example/rss",
                                                    "https://quiet.example/feed"]
    assert store.stats()["feeds"] == 2 and store.stats()["feeds_failing"] == 0


# sharing, threads, failures


def test_second_store_and_second_process_see_committed_data(sqlite_url: str) -> None:
    with Store.open(sqlite_url) as writer, Store.open(sqlite_url) as reader:
        writer.add_article(make_article(7))
        assert reader.get_article(make_article(7).url) == make_article(7)
        script = ("import sys; from digestbot.store import Store\n"
                  "s = Store.open(sys.argv[1]); a = s.get_article(sys.argv[2])\n"
                  "print(a.title if a else 'missing'); s.close()")
        done = subprocess.run([sys.executable, "-c", script, sqlite_url, make_article(7).url],
                              cwd=REPO, capture_output=True, text=True, timeout=60, check=True)
        assert done.stdout.strip() == make_article(7).title


def test_threads_share_one_store(store: Store) -> None:
    errors: list[BaseException] = []
    results: list[list[bool]] = []
    lock = threading.Lock()

    def work(worker: int) -> None:
        try:
            # Every worker also adds the same 20 shared articles: only one may win each.
            batch = [make_article(n) for n in range(20)]
            batch += [make_article(1000 * (worker + 1) + n) for n in range(30)]
            added = store.add_articles(batch)
            with lock:
                results.append(added)
        except BaseException as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(sum(r[:20]) for r in results) == 20
    assert all(all(r[20:]) for r in results)
    assert store.stats()["articles"] == 20 + 8 * 30


def test_locked_database_gives_store_error(sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    with Store.open(sqlite_url, busy_timeout=0.2) as opened:
        opened.add_article(make_article(1))
        blocker = sqlite3.connect(path, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            started = time.monotonic()
            with pytest.raises(StoreError) as caught:
                opened.add_article(make_article(2))
            assert time.monotonic() - started < 3
            message = str(caught.value)
            assert message.startswith("store: add 1 articles failed: database is locked")
            assert "\n" not in message
            # WAL readers are not blocked by the writer.
            assert opened.get_article(make_article(1).url) is not None
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert opened.add_article(make_article(2)) is True


def test_open_of_exclusively_locked_file_gives_store_error(tmp_path: Path) -> None:
    path = tmp_path / "held.db"
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("CREATE TABLE held (id INTEGER)")
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreError, match=r"^store: .*database is locked"):
            Store.open(f"sqlite:///{path}", busy_timeout=0.2)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_unwritable_paths_give_clear_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a plain file where a folder should be\n")
    with pytest.raises(StoreError, match=r"^store: open failed: cannot create folder .*"
                                         r"not-a-folder"):
        Store.open(f"sqlite:///{blocker / 'sub' / 'digestbot.db'}")

    folder_as_file = tmp_path / "a-folder.db"
    folder_as_file.mkdir()
    with pytest.raises(StoreError, match=r"^store: open database failed: unable to open "
                                         r"database file \(sqlite:///"):
        Store.open(f"sqlite:///{folder_as_file}")


def test_bad_urls_and_closed_store_give_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="unsupported database 'mysql'"):
        Store.open("mysql://velmora@127.0.0.1/news")
    with pytest.raises(StoreError, match="bad database url"):
        Store.open("not a url")
    with pytest.raises(StoreError, match=r"^store: open database failed: .*127\.0\.0\.1"):
        Store.open("postgresql://velmora@127.0.0.1:1/news?connect_timeout=2")
    opened = Store.open(f"sqlite:///{tmp_path / 'closed.db'}")
    opened.close()
    with pytest.raises(StoreError, match="store is closed"):
        opened.stats()


def test_reopen_needs_no_write_lock_and_newer_schema_is_refused(sqlite_url: str) -> None:
    path = sqlite_url.removeprefix("sqlite:///")
    Store.open(sqlite_url).close()
    blocker = sqlite3.connect(path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")  # a writer mid-transaction, e.g. the scheduler
        with Store.open(sqlite_url, busy_timeout=0.2) as reader:
            assert reader.stats()["articles"] == 0
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with pytest.raises(StoreError, match="schema version 1 is newer than this digestbot's 0"):
        Store.open(sqlite_url, migrations=())


def test_in_memory_sqlite_works_across_threads() -> None:
    with Store.open("sqlite://") as memory:
        worker = threading.Thread(target=memory.add_article, args=(make_article(1),))
        worker.start()
        worker.join()
        assert memory.get_article(make_article(1).url) == make_article(1)


def test_place_articles_starts_and_joins_stories_in_one_go(store: Store) -> None:
    held, first, second, third = (make_article(n) for n in (1, 2, 3, 4))
    store.add_articles([held, first, second, third])
    existing = store.create_story(held.url, now=NOW)
    renamed, created, placed = store.place_articles(
        [(first.url, -1), (second.url, existing), (third.url, -1), (held.url, -2)],
        now=NOW + timedelta(hours=1))
    # -2's first article already has a story, so -2 becomes that story and nothing is split.
    assert renamed == {-1: created[0], -2: existing}
    assert len(created) == 1 and created[0] != existing
    assert store.story_id_of(first.url) == store.story_id_of(third.url) == created[0]
    assert store.story_id_of(second.url) == store.story_id_of(held.url) == existing
    assert store.story_first_seen(created) == {created[0]: NOW + timedelta(hours=1)}
    # held kept the story it had; the others are reported where they went, in order.
    assert placed == {first.url: created[0], second.url: existing, third.url: created[0]}
    assert store.place_articles([], now=NOW) == ({}, [], {})
    # Placed articles keep their story when placed again, and are not reported as placed.
    assert store.place_articles([(first.url, existing)], now=NOW) == ({}, [], {})
    assert store.story_id_of(first.url) == created[0]


def test_place_articles_rejects_unknowns_and_writes_nothing(store: Store) -> None:
    article = make_article(1)
    store.add_articles([article])
    with pytest.raises(StoreError, match="unknown story 424242"):
        store.place_articles([(article.url, -1), (article.url, 424242)], now=NOW)
    with pytest.raises(StoreError, match="unknown article"):
        store.place_articles([(article.url, -1), ("https://nowhere.example/x", -1)], now=NOW)
    assert store.story_id_of(article.url) is None
    assert store.stats()["stories"] == 0


def test_unplaced_urls_and_articles_by_url(store: Store) -> None:
    old = make_article(1, first_seen=NOW - timedelta(days=3))
    first, second = make_article(2), make_article(3, first_seen=NOW + timedelta(minutes=5))
    store.add_articles([old, first, second])
    story = store.create_story(first.url, now=NOW)
    assert store.unplaced_urls(NOW - timedelta(days=1)) == [second.url]
    assert store.unplaced_urls(NOW - timedelta(days=5)) == [old.url, second.url]
    assert [(a.url, sid) for a, sid in store.placed_articles_since(NOW)] == [(first.url, story)]
    unknown = "https://velmora-herald.example/never-stored"
    assert store.articles_by_url([second.url, unknown, old.url, second.url]) == [second, old]
