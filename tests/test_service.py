"""The running service with real parts: a local feed server, SQLite files, file destinations,
and `digestbot run` as a subprocess (SIGHUP, SIGTERM, SIGKILL and restart)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from conftest import LocalServer, Response
from fake_slack import FakeSlackServer

from digestbot.config import Config, load_config
from digestbot.fetch import make_client
from digestbot.pipeline import make_digest, poll
from digestbot.render import digest_to_dict
from digestbot.schedule import PollPolicy
from digestbot.service import Service
from digestbot.store import Store

REPO = Path(__file__).resolve().parent.parent
MIN = timedelta(minutes=1)
DAY_BEFORE = datetime(2026, 6, 9, 6, 30, tzinfo=UTC)  # 07:30 BST on 9 June
SLOT = datetime(2026, 6, 10, 6, 30, tzinfo=UTC)  # 07:30 BST on 10 June


class Clock:
    """A settable clock for the service."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def rss(items: list[tuple[str, str, datetime]], base: str = "http://news.invalid") -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>{base}/{i}</link><guid>g-{i}-{title}</guid>"
        f"<pubDate>{format_datetime(when)}</pubDate><description>{text}</description></item>"
        for i, (title, text, when) in enumerate(items))
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Tollan Courier</title><link>{base}</link>{entries}</channel></rss>")


FERRY = ("Ferry to Brisk suspended after storm",
         "The ferry between Tollan and Brisk was suspended after waves broke the harbour wall. "
         "\"We will not sail until the wall is safe,\" said harbour master Edith Grune.")


def write_config(folder: Path, feeds: list[str], *, schedule: str = "07:30",
                 timezone: str = "Europe/London", poll_every: int = 10,
                 health_port: int | None = None) -> Config:
    (folder / "watchlists").mkdir(exist_ok=True)
    health = f"health: {{host: 127.0.0.1, port: {health_port}}}\n" if health_port else ""
    (folder / "digestbot.yaml").write_text(
        f"timezone: {timezone}\ndatabase: sqlite:///{folder / 'digestbot.db'}\n"
        f"watchlists_dir: {folder / 'watchlists'}\npoll_every: {poll_every}\n"
        "fetch: {full_text: false, timeout: 5, deadline: 10}\n" + health + "feeds:\n"
        + "".join(f"  - {{url: '{url}'}}\n" for url in feeds), encoding="utf-8")
    write_watchlist(folder, schedule)
    return load_config(folder / "digestbot.yaml")


def write_watchlist(folder: Path, schedule: str, text: str | None = None) -> None:
    path = folder / "watchlists" / "desk.yaml"
    path.write_text(text or (
        f"digest: {{schedule: '{schedule}'}}\n"
        f"deliver:\n  - file: {{path: '{folder / 'out'}', format: text}}\n"
        "topics:\n  - {name: Ferries, query: 'ferry OR harbour'}\n"), encoding="utf-8")
    bump_mtime(path)


def bump_mtime(path: Path) -> None:
    """Move the file's mtime forward so a change is seen even on coarse file systems."""
    stamp = time.time_ns() + 1_000_000_000
    os.utime(path, ns=(stamp, stamp))


@pytest.fixture
def service_log() -> Iterator[list[logging.LogRecord]]:
    """Records logged by digestbot.service (whatever logging the CLI tests configured)."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("digestbot.service")
    handler = Keep(level=logging.INFO)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def messages(records: list[logging.LogRecord], text: str) -> int:
    return sum(1 for r in records if r.getMessage() == text)


def run_with_service(config: Config, clock: Clock,
                     body: Callable[[Service], object]) -> None:
    """Build a Service on a real store and client, run the async body with it, close all."""

    async def main() -> None:
        store = Store.open(config.database)
        client = make_client(user_agent="digestbot-test", timeout=5)
        try:
            service = Service(config.path, config, store, client=client, clock=clock,
                              policy=PollPolicy(jitter=0.0))
            result = body(service)
            if asyncio.iscoroutine(result):
                await result
        finally:
            await client.aclose()
            store.close()

    asyncio.run(main())


# --- polling ----------------------------------------------------------------------------------

def test_failing_feed_backs_off_then_recovers_by_itself(
        tmp_path: Path, server: LocalServer, service_log: list[logging.LogRecord]) -> None:
    answers = iter([500, 503, 500])
    good = rss([(*FERRY, datetime(2026, 5, 1, 11, tzinfo=UTC))])

    def flaky(_: BaseHTTPRequestHandler) -> Response:
        status = next(answers, 200)
        return Response(good) if status == 200 else Response("down", status=status)

    server.routes["/feed.xml"] = Response(dynamic=flaky)
    url = server.url("/feed.xml")
    config = write_config(tmp_path, [url], poll_every=10)
    clock = Clock(datetime(2026, 5, 1, 12, tzinfo=UTC))
    waits: list[timedelta] = []

    async def body(service: Service) -> None:
        for _ in range(5):
            await service.poll_feed(url)
            waits.append(service.next_polls[url] - clock())
            clock.now += waits[-1]
        state = service.store.feeds.state(url)
        assert state is not None and state.error_count == 0
        assert state.next_poll == service.next_polls[url]  # saved for restarts and `status`
        assert service.store.stats()["articles"] == 1

    run_with_service(config, clock, body)
    assert waits == [10 * MIN, 20 * MIN, 40 * MIN, 10 * MIN, 10 * MIN]
    assert messages(service_log, "feed recovered") == 1


def test_alert_then_a_later_report_in_its_thread_counted_as_one_alert(
        tmp_path: Path, server: LocalServer, slack: FakeSlackServer) -> None:
    first = datetime(2026, 5, 1, 11, tzinfo=UTC)
    later = ("Brisk cut off as storm breaks Tollan harbour wall",
             "Waves broke the harbour wall at Tollan and the ferry to Brisk was suspended. "
             "\"We will not sail until the wall is safe,\" said harbour master Edith Grune.")
    server.routes["/feed.xml"] = Response(rss([(*FERRY, first)]))
    url = server.url("/feed.xml")
    write_config(tmp_path, [url])
    with (tmp_path / "digestbot.yaml").open("a", encoding="utf-8") as out:
        out.write(f"slack: {{token: xoxb-test-token, base_url: '{slack.fake.base_url}'}}\n")
    write_watchlist(tmp_path, "07:30", "deliver:\n  - slack: {channel: '#desk'}\n"
                    "topics:\n  - {name: Ferries, query: 'ferry OR harbour', alert: true}\n")
    config = load_config(tmp_path / "digestbot.yaml")
    clock = Clock(first + timedelta(hours=1))

    async def body(service: Service) -> None:
        await service.poll_feed(url)
        server.routes["/feed.xml"] = Response(rss([(*FERRY, first),
                                                   (*later, first + timedelta(minutes=30))]))
        clock.now += timedelta(minutes=10)
        await service.poll_feed(url)
        assert 'digestbot_alerts_total{watchlist="desk"} 1' in service.metrics_text()

    run_with_service(config, clock, body)
    alert, reply = slack.fake.all_messages()
    assert alert["text"] == "desk alert: Ferry to Brisk suspended after storm"
    assert reply["thread_ts"] == alert["ts"]
    assert "|Brisk cut off as storm breaks Tollan harbour wall> — Tollan Courier" in (
        reply["blocks"][0]["text"]["text"])


def test_feed_failing_for_a_day_is_reported_once_a_day(
        tmp_path: Path, server: LocalServer, service_log: list[logging.LogRecord]) -> None:
    server.routes["/dead.xml"] = Response("gone wrong", status=500)
    url = server.url("/dead.xml")
    config = write_config(tmp_path, [url], poll_every=30)
    start = datetime(2026, 5, 1, 12, tzinfo=UTC)
    clock = Clock(start)
    reported: list[int] = []

    async def body(service: Service) -> None:
        for hours in (0, 6, 25, 26, 40, 50):
            clock.now = start + timedelta(hours=hours)
            await service.poll_feed(url)
            reported.append(messages(service_log, "feed failing for over a day"))
        doc = service.health()
        assert doc["failing_over_a_day"] == [url]
        assert [f["url"] for f in doc["failing_feeds"]] == [url]
        assert service.next_polls[url] == clock.now + timedelta(hours=6)  # capped backoff

    run_with_service(config, clock, body)
    assert reported == [0, 0, 1, 1, 1, 2]
    errors = [r for r in service_log if r.getMessage() == "feed failing for over a day"]
    assert all(r.levelno == logging.ERROR for r in errors)


# --- digests ----------------------------------------------------------------------------------

def seed_feed(server: LocalServer) -> str:
    server.routes["/feed.xml"] = Response(rss([
        (*FERRY, datetime(2026, 6, 10, 5, 0, tzinfo=UTC)),
        ("Harbour wall repairs begin in Tollan",
         "Engineers started work on the harbour wall at Tollan, where the ferry berths.",
         datetime(2026, 6, 10, 5, 20, tzinfo=UTC))]))
    return server.url("/feed.xml")


def seed_previous_digest(store: Store, until: datetime) -> None:
    store.outbox.save_digest(f"desk:{until - timedelta(days=1)}:{until}", "desk",
                             until - timedelta(days=1), until, "{}", now=until)


def test_digest_missed_while_down_is_sent_once_on_return(
        tmp_path: Path, server: LocalServer) -> None:
    config = write_config(tmp_path, [seed_feed(server)])
    clock = Clock(datetime(2026, 6, 10, 9, 0, tzinfo=UTC))  # 10:00 BST: 07:30 was missed
    with Store.open(config.database) as store:
        seed_previous_digest(store, DAY_BEFORE)
    sent: list[list[str]] = []

    async def first_run(service: Service) -> None:
        await service.poll_feed(config.feeds[0].url)
        sent.append([r.status for r in await service.catch_up()])
        sent.append([r.status for r in await service.catch_up()])

    async def second_run(service: Service) -> None:  # a restart later that morning
        clock.now += timedelta(hours=1)
        sent.append([r.status for r in await service.catch_up()])
        sent.append([r.status for r in await service.send_digest("desk", SLOT)])

    run_with_service(config, clock, first_run)
    run_with_service(config, clock, second_run)
    assert sent == [["sent"], [], [], []]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["desk-2026-06-10T0730.txt"]
    with Store.open(config.database) as store:
        assert store.outbox.last_digest_until("desk") == SLOT
        (delivery,) = store.outbox.deliveries(f"desk:{DAY_BEFORE.isoformat()}:{SLOT.isoformat()}")
        assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_late_scheduled_run_covers_its_slot_once(tmp_path: Path, server: LocalServer) -> None:
    config = write_config(tmp_path, [seed_feed(server)])
    clock = Clock(SLOT + timedelta(hours=2, minutes=15))  # within the misfire grace
    keys: list[list[str]] = []

    async def body(service: Service) -> None:
        seed_previous_digest(service.store, DAY_BEFORE)
        await service.poll_feed(config.feeds[0].url)
        await service.run_digest("desk")
        await service.run_digest("desk")  # coalesced duplicates or a retry send nothing new
        keys.append([s.digest_key for s in service.store.outbox.unfinished_deliveries()])
        keys.append([str(service.store.outbox.last_digest_until("desk"))])

    run_with_service(config, clock, body)
    assert keys == [[], [str(SLOT)]]
    assert len(list((tmp_path / "out").iterdir())) == 1


def test_delivery_cut_off_by_a_kill_is_finished_on_start_without_a_second_digest(
        tmp_path: Path, server: LocalServer) -> None:
    config = write_config(tmp_path, [seed_feed(server)])
    wl = config.watchlists[0]
    clock = Clock(SLOT + timedelta(minutes=1))
    with Store.open(config.database) as store:
        seed_previous_digest(store, DAY_BEFORE)
        asyncio.run(poll(config, store, now=clock))
        digest = make_digest(config, store, wl, now=clock(), until=SLOT)
        # What deliver_digest leaves behind when killed mid-send: payload saved, "sending".
        store.outbox.save_digest(digest.key, "desk", digest.since, digest.until,
                                 json.dumps({"kind": "digest", **digest_to_dict(digest)}),
                                 now=clock())
        store.outbox.mark_delivery(digest.key, wl.deliver[0].label, "sending", now=clock())
    statuses: list[list[str]] = []

    async def body(service: Service) -> None:
        statuses.append([r.status for r in await service.resume()])
        statuses.append([r.status for r in await service.catch_up()])

    run_with_service(config, clock, body)
    assert statuses == [["sent"], []]
    assert len(list((tmp_path / "out").iterdir())) == 1
    with Store.open(config.database) as store:
        (delivery,) = store.outbox.deliveries(digest.key)
        assert delivery.status == "sent"


# --- config reload ----------------------------------------------------------------------------

def test_bad_edit_keeps_the_last_good_config_and_a_fix_is_picked_up(
        tmp_path: Path, server: LocalServer, service_log: list[logging.LogRecord]) -> None:
    server.routes["/feed.xml"] = Response(rss([]))
    config = write_config(tmp_path, [server.url("/feed.xml")])
    clock = Clock(datetime(2026, 6, 10, 9, 0, tzinfo=UTC))

    async def body(service: Service) -> None:
        service.install_jobs()
        first_poll = service.next_polls[server.url("/feed.xml")]
        write_watchlist(tmp_path, "", text="digest: {schedule: '25:99'}\ntopics: [\n")
        await service.watch_config()
        await service.watch_config()  # the same bad files: logged once, not every 5 s
        assert service.config is config
        assert messages(service_log, "config reload failed; keeping the last good config") == 1
        assert service.digest_jobs["desk"] == "cron[30 7 * * * Europe/London]"

        cfg = tmp_path / "digestbot.yaml"
        cfg.write_text(cfg.read_text() + f"  - {{url: '{server.url('/second.xml')}'}}\n")
        bump_mtime(cfg)
        write_watchlist(tmp_path, "0 18 * * *")
        await service.watch_config()
        assert [f.url for f in service.config.feeds] == [server.url("/feed.xml"),
                                                         server.url("/second.xml")]
        assert service.scheduler.get_job(f"poll:{server.url('/second.xml')}") is not None
        assert service.next_polls[server.url("/feed.xml")] == first_poll  # cadence kept
        assert service.digest_jobs["desk"] == "cron[0 18 * * * Europe/London]"
        assert messages(service_log, "config reloaded") == 1

    run_with_service(config, clock, body)


# --- the real process -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_child(config: Config, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "digestbot.cli", "--config", str(config.path), "run"],
            stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=config.path.parent)


def wait_for(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {check.__doc__ or check}")


def test_run_polls_survives_a_bad_sighup_reload_and_stops_on_sigterm(
        tmp_path: Path, server: LocalServer) -> None:
    now = datetime.now(UTC)
    server.routes["/feed.xml"] = Response(rss([(*FERRY, now - 10 * MIN)], base=server.base))
    port = free_port()
    config = write_config(tmp_path, [server.url("/feed.xml")], poll_every=1, health_port=port)
    log = tmp_path / "child.log"
    child = start_child(config, log)
    try:
        wait_for(lambda: "/feed.xml" in server.paths_requested())
        with Store.open(config.database) as store:
            wait_for(lambda: store.stats()["articles"] == 1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            health = json.loads(answer.read())
        assert health["scheduler_running"] is True and health["last_poll_finished"]

        write_watchlist(tmp_path, "", text="topics: [\n")
        child.send_signal(signal.SIGHUP)
        wait_for(lambda: "config reload failed" in log.read_text())
        assert child.poll() is None  # still running on the last good config

        stop_began = time.monotonic()
        child.send_signal(signal.SIGTERM)
        assert child.wait(timeout=10) == 0
        assert time.monotonic() - stop_began < 5
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert "digestbot stopped" in log.read_text()


def test_restart_after_kill_sends_each_digest_exactly_once(
        tmp_path: Path, server: LocalServer) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    slot = now - 30 * MIN
    server.routes["/feed.xml"] = Response(rss([(*FERRY, now - 60 * MIN)], base=server.base))
    config = write_config(tmp_path, [server.url("/feed.xml")], timezone="UTC",
                          schedule=f"{slot:%H:%M}", poll_every=1)
    with Store.open(config.database) as store:
        seed_previous_digest(store, slot - timedelta(days=1))
        asyncio.run(poll(config, store))
    log = tmp_path / "child.log"
    out = tmp_path / "out"

    key = f"desk:{(slot - timedelta(days=1)).isoformat()}:{slot.isoformat()}"
    first = start_child(config, log)
    try:
        # Caught up on start, and recorded as sent: a kill between writing the file and
        # recording it would rightly be retried (the file is rewritten, not duplicated).
        with Store.open(config.database) as store:
            wait_for(lambda: [d.status for d in store.outbox.deliveries(key)] == ["sent"])
    finally:
        first.kill()  # SIGKILL: no chance to clean up
        first.wait()
    second_log = tmp_path / "second.log"
    second = start_child(config, second_log)
    try:
        wait_for(lambda: "digestbot running" in second_log.read_text())
        # Catching up happens before "running" is logged: a second send would be done by now.
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    assert len(list(out.iterdir())) == 1
    with Store.open(config.database) as store:
        assert store.outbox.last_digest_until("desk") == slot
        assert [(d.status, d.attempts) for d in store.outbox.deliveries(key)] == [("sent", 1)]
        assert store.stats()["digests"] == 2  # the seeded one and exactly one more


def test_feed_hints_slow_polling_and_retry_after_is_honoured(
        tmp_path: Path, server: LocalServer) -> None:
    when = datetime(2026, 5, 1, 11, tzinfo=UTC)
    answers = iter([
        Response("busy", status=503, headers={"Retry-After": "3600"}),
        Response(rss([(*FERRY, when)]), headers={"Cache-Control": "public, max-age=1800"}),
        Response(rss([(*FERRY, when), ("Tollan harbour reopens", "The harbour reopened.", when)])
                 .replace("<channel>", "<channel><ttl>45</ttl>"))])
    server.routes["/feed.xml"] = Response(dynamic=lambda _: next(answers))
    url = server.url("/feed.xml")
    config = write_config(tmp_path, [url], poll_every=10)
    clock = Clock(datetime(2026, 5, 1, 12, tzinfo=UTC))
    waits: list[timedelta] = []
    saved: list[datetime | None] = []

    async def body(service: Service) -> None:
        for _ in range(3):
            await service.poll_feed(url)
            waits.append(service.next_polls[url] - clock())
            state = service.store.feeds.state(url)
            saved.append(state.next_poll if state else None)
            clock.now += waits[-1]

    run_with_service(config, clock, body)
    assert waits == [60 * MIN, 30 * MIN, 45 * MIN]
    assert saved == [datetime(2026, 5, 1, 13, tzinfo=UTC), datetime(2026, 5, 1, 13, 30, tzinfo=UTC),
                     datetime(2026, 5, 1, 14, 15, tzinfo=UTC)]


def test_delivery_that_failed_transiently_is_retried_while_running(
        tmp_path: Path, server: LocalServer) -> None:
    config = write_config(tmp_path, [seed_feed(server)])
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the output folder should be")
    write_watchlist(tmp_path, "", text=(
        "digest: {schedule: '07:30'}\n"
        f"deliver:\n  - file: {{path: '{blocked / 'out'}', format: text}}\n"
        "topics:\n  - {name: Ferries, query: ferry}\n"))
    config = load_config(config.path)
    clock = Clock(SLOT + MIN)
    statuses: list[list[str]] = []

    async def body(service: Service) -> None:
        seed_previous_digest(service.store, DAY_BEFORE)
        await service.poll_feed(config.feeds[0].url)
        statuses.append([r.status for r in await service.send_digest("desk", SLOT)])
        await service.retry_deliveries()  # still blocked: stays pending
        blocked.unlink()
        await service.retry_deliveries()
        statuses.append([d.status for d in service.store.outbox.deliveries(
            f"desk:{DAY_BEFORE.isoformat()}:{SLOT.isoformat()}")])
        await service.retry_deliveries()  # nothing left: sends nothing again

    run_with_service(config, clock, body)
    assert statuses == [["failed"], ["sent"]]
    assert [p.name for p in (blocked / "out").iterdir()] == ["desk-2026-06-10T0730.txt"]
