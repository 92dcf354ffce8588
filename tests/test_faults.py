"""Faults around a poll: the process killed mid-poll, the database locked, the disk full.

Each runs the real CLI (`python -m digestbot.cli`) as a subprocess against the local feed server
and a real SQLite file, then checks the database with SQLite itself.
"""

from __future__ import annotations

import random
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from conftest import LocalServer, Response
from hostile.harness import rss_items, write_config

REPO = Path(__file__).resolve().parent.parent
FEEDS = 16
SEED = 20260407


def feed_items(feed: int, count: int) -> list[tuple[str, str, str]]:
    """Take a feed number and item count; return its items (every third one also syndicated
    in the next feed, so the same article arrives twice)."""
    items = [(f"Varrow harbour bulletin {feed}-{n}",
              f"https://varrow-wire.example/feed-{feed}/item-{n}",
              f"Harbour bulletin {n} from desk {feed}: the quay at Varrow reopened. " * 20)
             for n in range(count)]
    shared = feed - 1 if feed else FEEDS - 1
    items += [(f"Varrow harbour bulletin {shared}-{n}",
               f"https://varrow-wire.example/feed-{shared}/item-{n}",
               "Syndicated copy.") for n in range(0, count, 3)]
    return items


def serve_feeds(server: LocalServer, count: int, rng: random.Random) -> set[str]:
    """Serve FEEDS slow feeds of `count` items each; return every article URL served."""
    urls: set[str] = set()
    for feed in range(FEEDS):
        items = feed_items(feed, count)
        urls.update(link for _, link, _ in items)
        delay = rng.uniform(0.05, 0.25)

        def slow(handler: BaseHTTPRequestHandler, body: str = rss_items(items),
                 delay: float = delay) -> Response:
            time.sleep(delay)
            return Response(body)
        server.routes[f"/wire-{feed}.rss"] = Response(dynamic=slow)
    return urls


def cli(config: Path, *args: str, fsize_limit: int | None = None) -> list[str]:
    """Take a config and CLI arguments; return the argv that runs digestbot in a subprocess
    (with a file size limit and SIGXFSZ ignored when given, so writes fail with EFBIG)."""
    argv = ["--config", str(config), *args]
    if fsize_limit is None:
        return [sys.executable, "-m", "digestbot.cli", *argv]
    code = ("import resource, runpy, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize_limit}, {fsize_limit}))\n"
            f"sys.argv = ['digestbot'] + {argv!r}\n"
            "runpy.run_module('digestbot.cli', run_name='__main__')\n")
    return [sys.executable, "-c", code]


def run_cli(argv: list[str], timeout: float = 40) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          check=False)


def database(tmp_path: Path) -> Path:
    return tmp_path / "state" / "digestbot.db"


def check_database(path: Path) -> dict[str, int]:
    """Take a SQLite file; assert it is intact and every article is in one story; return counts."""
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        counts = {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("articles", "matches", "stories", "feeds")}
        assert db.execute("SELECT url FROM articles GROUP BY url HAVING count(*) > 1"
                          ).fetchall() == []
        counts["unplaced"] = db.execute(
            "SELECT count(*) FROM articles WHERE story_id IS NULL").fetchone()[0]
        counts["empty_stories"] = db.execute(
            "SELECT count(*) FROM stories WHERE id NOT IN "
            "(SELECT story_id FROM articles WHERE story_id IS NOT NULL)").fetchone()[0]
    return counts


def stored_urls(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as db:
        return [row[0] for row in db.execute("SELECT url FROM articles")]


def test_poll_killed_at_random_points_loses_and_duplicates_nothing(server: LocalServer,
                                                                  tmp_path: Path) -> None:
    rng = random.Random(SEED)
    config = write_config(tmp_path, [(server.url(f"/wire-{n}.rss"), f"Wire {n}")
                                     for n in range(FEEDS)], concurrency=4)
    served: set[str] = set()
    killed = 0
    started = time.monotonic()
    for round_ in range(4):
        # Each round serves more items, so every restart has new work to be killed in.
        served |= serve_feeds(server, 3 + 2 * round_, rng)
        seen = len(server.paths_requested())
        proc = subprocess.Popen(cli(config, "poll"), cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        # Kill once a random number of feeds were requested, plus a random moment more.
        wanted = seen + rng.randint(1, FEEDS - 2)
        deadline = time.monotonic() + 10
        while len(server.paths_requested()) < wanted and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))
        if proc.poll() is None:
            proc.kill()  # SIGKILL: no cleanup, no rollback handlers
            killed += 1
        proc.wait(timeout=10)
        if database(tmp_path).exists():  # a kill before the store was opened leaves no file
            check_database(database(tmp_path))
    assert killed >= 3, "the kills must land inside polls to test anything"
    finished = run_cli(cli(config, "poll"))
    assert finished.returncode == 0, finished.stderr
    assert "0 failed" in finished.stdout
    counts = check_database(database(tmp_path))
    urls = stored_urls(database(tmp_path))
    assert sorted(urls) == sorted(served)
    assert counts["unplaced"] == 0 and counts["empty_stories"] == 0
    assert counts["feeds"] == FEEDS
    # Every article matched the watchlist's topic exactly once.
    assert counts["matches"] == len(served)
    assert time.monotonic() - started < 40


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold SQLite's write lock on the file from another connection."""
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            db.execute("ROLLBACK")


def test_locked_database_gives_one_line_store_error_and_no_partial_state(
        server: LocalServer, tmp_path: Path) -> None:
    serve_feeds(server, 2, random.Random(SEED))
    config = write_config(tmp_path, [(server.url("/wire-0.rss"), "Wire 0")])
    # Create the schema first, so the lock meets the poll's writes and not the migration.
    assert run_cli(cli(config, "status")).returncode == 0
    before = check_database(database(tmp_path))
    started = time.monotonic()
    with exclusive_lock(database(tmp_path)):
        locked = run_cli(cli(config, "poll"))
    elapsed = time.monotonic() - started
    assert locked.returncode == 1
    assert "Traceback" not in locked.stderr
    assert re.fullmatch(r"error: store: .+ failed: database is locked \(sqlite:///\S+\)\n",
                        locked.stderr), locked.stderr
    assert elapsed < 15  # the store's 5 s busy timeout, then the error
    assert check_database(database(tmp_path)) == before
    # Once the lock is gone the same poll completes.
    again = run_cli(cli(config, "poll"))
    assert again.returncode == 0, again.stderr
    assert set(stored_urls(database(tmp_path))) == {link for _, link, _ in feed_items(0, 2)}


def assert_feed_state_matches_articles(path: Path, server: LocalServer,
                                       served_by_feed: dict[int, set[str]]) -> None:
    """Assert no feed is recorded as polled (content hash saved) without all its articles."""
    with closing(sqlite3.connect(path)) as db:
        done = {row[0] for row in db.execute(
            "SELECT url FROM feeds WHERE content_hash IS NOT NULL")}
    stored = set(stored_urls(path))
    for feed, urls in served_by_feed.items():
        if server.url(f"/wire-{feed}.rss") in done:
            assert urls <= stored, f"feed {feed} marked polled with articles missing"


def disk_full_poll(server: LocalServer, tmp_path: Path) -> tuple[Path, dict[int, set[str]],
                                                                 subprocess.CompletedProcess[str]]:
    """Poll 4 feeds with writes past the database's current size failing; return the result."""
    serve_feeds(server, 6, random.Random(SEED))
    served_by_feed = {n: {link for _, link, _ in feed_items(n, 6)} for n in range(4)}
    config = write_config(tmp_path, [(server.url(f"/wire-{n}.rss"), f"Wire {n}")
                                     for n in range(4)])
    assert run_cli(cli(config, "status")).returncode == 0
    full = run_cli(cli(config, "poll", fsize_limit=database(tmp_path).stat().st_size))
    return config, served_by_feed, full


def test_disk_full_gives_one_line_store_error_and_a_consistent_store(
        server: LocalServer, tmp_path: Path) -> None:
    config, served_by_feed, full = disk_full_poll(server, tmp_path)
    assert full.returncode == 1, (full.stdout, full.stderr)
    errors = [line for line in full.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, full.stderr
    assert re.match(r"^error: store: .+ failed: (database or disk is full|disk I/O error) "
                    r"\(sqlite:///", errors[0]), full.stderr
    # Each write is one transaction: what committed before the failure is whole and consistent.
    check_database(database(tmp_path))
    assert_feed_state_matches_articles(database(tmp_path), server, served_by_feed)
    again = run_cli(cli(config, "poll"))
    assert again.returncode == 0, again.stderr
    assert sorted(stored_urls(database(tmp_path))) == sorted(set().union(*served_by_feed.values()))
    counts = check_database(database(tmp_path))
    assert counts["unplaced"] == 0 and counts["empty_stories"] == 0


def test_store_failure_prints_no_traceback(server: LocalServer, tmp_path: Path) -> None:
    _, _, full = disk_full_poll(server, tmp_path)
    assert full.returncode == 1
    assert full.stderr.strip().count("\n") == 0, full.stderr
    assert "Traceback" not in full.stderr and "never retrieved" not in full.stderr


def descendants(root: int) -> set[int]:
    """Take a pid; return the pids of all its live descendants (read from /proc)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found: set[int] = set()
    frontier = [root]
    while frontier:
        pid = frontier.pop()
        children = {c for c, p in parents.items() if p == pid} - found
        found |= children
        frontier += children
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_poll_killed_with_sigkill_leaves_no_worker_processes(server: LocalServer,
                                                             tmp_path: Path) -> None:
    serve_feeds(server, 12, random.Random(SEED))

    def stalled(handler: BaseHTTPRequestHandler) -> Response:
        time.sleep(8)  # keeps the poll running after the other feeds are parsed
        return Response(rss_items([]))

    server.routes["/stalled.rss"] = Response(dynamic=stalled)
    feeds = [(server.url(f"/wire-{n}.rss"), f"Wire {n}") for n in range(FEEDS)]
    config = write_config(tmp_path, [*feeds, (server.url("/stalled.rss"), "Stalled")],
                          concurrency=32, deadline=20)
    config.write_text(config.read_text().replace("  concurrency: 32\n",
                                                 "  concurrency: 32\n  workers: 2\n"))
    proc = subprocess.Popen(cli(config, "poll"), cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 3:  # fork server and 2 workers
            time.sleep(0.1)
            workers = {p for p in descendants(proc.pid) if is_running(p)}
        assert len(workers) >= 3, "the poll must have started its workers"
    finally:
        proc.kill()
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(is_running(p) for p in workers):
        time.sleep(0.1)
    assert not [p for p in workers if is_running(p)], "workers outlived their killed owner"
