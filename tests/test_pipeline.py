"""End to end through the real pipeline: a local feed server, a real SQLite file, the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import pytest
from conftest import LocalServer, Response
from fake_slack import FakeSlackServer

from digestbot.cli import main
from digestbot.cluster import StoryIndex
from digestbot.config import Config, load_config
from digestbot.errors import StoreError
from digestbot.pipeline import make_digest, place_articles, poll
from digestbot.records import Article, FeedEntry, ParsedFeed
from digestbot.store import Store
from digestbot.workers import Offload, WorkerError, pickle_by_fields, worker_pool

NOW = datetime.now(UTC).replace(microsecond=0)

PARAGRAPHS = {
    "ferry": [
        "The ferry service between Tollan and the island of Brisk was suspended on Monday after "
        "a storm damaged the harbour wall at Tollan, the port authority said.",
        "Harbour master Edith Grune said repairs would take at least a week. \"We will not put "
        "passengers on the water until the wall is safe,\" Ms Grune said.",
        "About 2,000 islanders rely on the ferry for supplies. The regional council said it would "
        "fly in food and medicine by helicopter from Wednesday.",
    ],
    "ferry2": [
        "Islanders on Brisk faced a week without ferries after storm waves broke part of the "
        "harbour wall at Tollan, halting the only regular service to the island.",
        "\"We will not put passengers on the water until the wall is safe,\" said Edith Grune, the "
        "harbour master, adding that engineers were inspecting the damage.",
        "The regional council promised helicopter deliveries of food and medicine to the 2,000 "
        "people who live on the island.",
    ],
    "orchard": [
        "Apple growers in the Selm valley expect their best harvest in a decade after a warm "
        "spring and a dry late summer, the growers' cooperative said on Tuesday.",
        "Cooperative chair Oskar Tamm said prices would stay stable. \"There is plenty of fruit "
        "and plenty of demand, which is the best place to be,\" Mr Tamm said.",
        "Pickers from neighbouring towns have been hired for an extra two weeks.",
    ],
}

BOILERPLATE = "Sign up for our newsletter and get the day's top stories in your inbox."


def page(title: str, paragraphs: list[str]) -> str:
    half = len(paragraphs) // 2 + 1
    first = "".join(f"<p>{p}</p>" for p in paragraphs[:half])
    rest = "".join(f"<p>{p}</p>" for p in paragraphs[half:])
    return (
        "<html><head><title>" + title + "</title></head><body>"
        "<div class='cookie-banner'><p>We use cookies to improve your experience.</p></div>"
        "<nav><a href='/'>Home</a><a href='/news'>News</a><a href='/sport'>Sport</a></nav>"
        f"<article><h1>{title}</h1>{first}"
        "<p><strong>Read more:</strong> <a href='/x'>Earlier: what we know about Tollan</a></p>"
        f"{rest}</article>"
        f"<aside class='newsletter'><p>{BOILERPLATE}</p></aside>"
        "<footer><p>© 2026 Example Gazette. All rights reserved.</p></footer></body></html>"
    )


def rss(server: LocalServer, items: list[tuple[str, str, str, timedelta]]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>{server.url(path)}</link>"
        f"<guid isPermaLink='false'>{guid}</guid>"
        f"<pubDate>{format_datetime(NOW - age)}</pubDate>"
        f"<description>Short teaser.</description></item>"
        for title, path, guid, age in items)
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Feed</title><link>{server.base}</link>{entries}</channel></rss>")


def conditional(body: str, etag: str) -> Response:
    """A feed that answers 304 when the client sends back its ETag."""

    def answer(handler: BaseHTTPRequestHandler) -> Response:
        if handler.headers.get("If-None-Match") == etag:
            return Response(b"", status=304, headers={"ETag": etag})
        return Response(body, headers={"ETag": etag})

    return Response(dynamic=answer)


@pytest.fixture
def site(server: LocalServer) -> LocalServer:
    server.routes["/gazette/ferry"] = Response(
        page("Storm halts Tollan ferry to Brisk", PARAGRAPHS["ferry"]), content_type="text/html")
    server.routes["/courier/brisk"] = Response(
        page("Brisk islanders cut off as storm wrecks harbour wall", PARAGRAPHS["ferry2"]),
        content_type="text/html")
    server.routes["/gazette/orchard"] = Response(
        page("Selm valley expects record apple harvest", PARAGRAPHS["orchard"]),
        content_type="text/html")
    server.routes["/gazette.rss"] = conditional(rss(server, [
        ("Storm halts Tollan ferry to Brisk", "/gazette/ferry", "g-1", timedelta(hours=3)),
        ("Selm valley expects record apple harvest", "/gazette/orchard", "g-2",
         timedelta(hours=5)),
    ]), etag='"gazette-v1"')
    server.routes["/courier.rss"] = Response(rss(server, [
        ("Brisk islanders cut off as storm wrecks harbour wall", "/courier/brisk", "c-1",
         timedelta(hours=2)),
        # The same gazette article syndicated in a second feed, with other tracking params.
        ("Storm halts Tollan ferry to Brisk", "/gazette/ferry?utm_campaign=x#top", "c-2",
         timedelta(hours=3)),
    ]))
    server.routes["/broken.rss"] = Response(b"oops", status=500, content_type="text/plain")
    server.routes["/html.rss"] = Response("<html><body>Not a feed</body></html>",
                                          content_type="text/html")
    return server


def write_config(tmp_path: Path, server: LocalServer) -> Path:
    (tmp_path / "watchlists").mkdir()
    (tmp_path / "watchlists" / "islands.yaml").write_text(
        "name: islands\n"
        "deliver:\n  - console: {}\n"
        "topics:\n"
        "  - name: Ferries\n    query: 'ferry OR ferries OR harbour'\n"
        "  - name: Farming\n    query: 'harvest AND (apple* OR orchard*)'\n"
        "  - name: Nothing\n    query: 'volcano'\n", encoding="utf-8")
    path = tmp_path / "digestbot.yaml"
    path.write_text(
        "timezone: Europe/London\n"
        "database: sqlite:///state/digestbot.db\n"
        "fetch:\n  full_text: true\n  allow_private: true\n  deadline: 10\n"
        "feeds:\n"
        f"  - {{url: '{server.url('/gazette.rss')}', name: Example Gazette}}\n"
        f"  - {{url: '{server.url('/courier.rss')}', name: Island Courier}}\n"
        f"  - {{url: '{server.url('/broken.rss')}', name: Broken}}\n"
        f"  - {{url: '{server.url('/html.rss')}', name: Not A Feed}}\n"
        "watchlists_dir: watchlists\n", encoding="utf-8")
    return path


def run_poll(config: Config, store: Store):  # type: ignore[no-untyped-def]
    return asyncio.run(poll(config, store))


def test_poll_stores_each_article_once_and_survives_bad_feeds(site: LocalServer,
                                                              tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, site), env={})
    with Store.open(config.database) as store:
        first = run_poll(config, store)
        statuses = {r.url.rsplit("/", 1)[1]: r.status for r in first.feeds}
        assert statuses == {"gazette.rss": "ok", "courier.rss": "ok", "broken.rss": "failed",
                            "html.rss": "failed"}
        # The syndicated copy in the courier feed is the same article as the gazette's.
        assert sorted(a.url.rsplit("/", 1)[1] for a in first.articles) == [
            "brisk", "ferry", "orchard"]
        ferry = store.get_article(site.url("/gazette/ferry"))
        assert ferry is not None and ferry.source in ("Example Gazette", "Island Courier")
        assert "Ms Grune said" in ferry.text
        assert BOILERPLATE not in ferry.text and "cookies" not in ferry.text
        assert "Read more" not in ferry.text

        second = run_poll(config, store)
        assert second.articles == ()
        by_name = {r.url.rsplit("/", 1)[1]: r.status for r in second.feeds}
        assert by_name["gazette.rss"] == "not_modified"
        assert by_name["courier.rss"] == "unchanged"
        states = {s.url.rsplit("/", 1)[1]: s for s in store.feeds.states()}
        assert states["broken.rss"].error_count == 2
        assert "500" in (states["broken.rss"].last_error or "")
        assert store.stats()["articles"] == 3
    gazette_requests = [r for r in site.requests if r.path == "/gazette.rss"]
    assert gazette_requests[1].headers.get("If-None-Match") == '"gazette-v1"'


def test_digest_groups_matches_into_linked_stories(site: LocalServer, tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, site), env={})
    with Store.open(config.database) as store:
        run_poll(config, store)
        digest = make_digest(config, store, config.watchlist("islands"),
                             now=NOW + timedelta(minutes=1), since=NOW - timedelta(days=1))
    names = [t.name for t in digest.topics]
    assert names == ["Ferries", "Farming"]
    ferries = digest.topics[0].stories
    urls = [a.url for s in ferries for a in s.articles]
    assert len(urls) == len(set(urls)), "every article linked once"
    assert {u.rsplit("/", 1)[1] for u in urls} == {"ferry", "brisk"}
    for story in ferries:
        assert story.summary and BOILERPLATE not in story.summary
        assert set(story.terms) <= {"ferry", "ferries", "harbour"}
        for sentence in story.summary_sentences:
            assert any(sentence in " ".join(PARAGRAPHS[k]) for k in ("ferry", "ferry2"))
    quotes = [q for s in ferries for q in s.quotes]
    assert any(q.speaker == "Edith Grune" and "wall is safe" in q.text for q in quotes)


def test_cli_digest_json_dry_run(site: LocalServer, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, site)
    assert main(["--config", str(path), "poll"]) == 0
    out = capsys.readouterr().out
    assert "3 new articles" in out and "2 failed" in out
    since = (NOW - timedelta(days=1)).isoformat()
    assert main(["--config", str(path), "digest", "islands", "--dry-run", "--format", "json",
                 "--since", since]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["watchlist"] == "islands"
    topics = {t["name"]: t for t in data["topics"]}
    assert set(topics) == {"Ferries", "Farming"}
    story = topics["Farming"]["stories"][0]
    assert story["articles"][0]["url"].endswith("/gazette/orchard")
    assert story["articles"][0]["source"] == "Example Gazette"
    assert any(q["speaker"] == "Oskar Tamm" for q in story["quotes"])
    # A dry run records nothing: the next digest still starts from the same place.
    with Store.open(load_config(path, env={}).database) as store:
        assert store.outbox.last_digest_until("islands") is None


def test_cli_check_reports_bad_watchlist_in_one_line(tmp_path: Path, site: LocalServer,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, site)
    assert main(["--config", str(path), "check"]) == 0
    assert "islands" in capsys.readouterr().out
    bad = tmp_path / "watchlists" / "islands.yaml"
    bad.write_text(bad.read_text().replace("'volcano'", "'(volcano'"), encoding="utf-8")
    assert main(["--config", str(path), "check"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "islands.yaml:" in err and "query" in err and "Traceback" not in err


def test_cli_poll_alerts_each_new_story_of_an_alert_topic_once(
        site: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, site)
    wl = tmp_path / "watchlists" / "islands.yaml"
    wl.write_text(wl.read_text().replace("'ferry OR ferries OR harbour'\n",
                                         "'ferry OR ferries OR harbour'\n    alert: true\n"),
                  encoding="utf-8")
    assert main(["--config", str(path), "poll"]) == 0
    out = capsys.readouterr().out
    assert "alert console: sent" in out
    assert "Storm halts Tollan ferry to Brisk" in out or "Brisk islanders" in out
    assert "apple harvest" not in out.split("new stories")[1]  # not an alert topic
    assert main(["--config", str(path), "poll"]) == 0
    assert "alert" not in capsys.readouterr().out


def test_cli_poll_posts_later_reports_in_the_alert_thread_once(
        site: LocalServer, tmp_path: Path, slack: FakeSlackServer,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, site)
    path.write_text(path.read_text() + f"slack:\n  token: xoxb-test-token\n"
                    f"  base_url: {slack.fake.base_url}\n", encoding="utf-8")
    wl = tmp_path / "watchlists" / "islands.yaml"
    wl.write_text(wl.read_text().replace("  - console: {}\n", "  - slack: {channel: '#desk'}\n")
                  .replace("'ferry OR ferries OR harbour'\n",
                           "'ferry OR ferries OR harbour'\n    alert: true\n"), encoding="utf-8")
    courier = site.routes["/courier.rss"]
    site.routes["/courier.rss"] = Response(rss(site, []))  # the courier has not reported yet
    assert main(["--config", str(path), "poll"]) == 0
    [alert] = slack.fake.all_messages()
    assert "Storm halts Tollan ferry to Brisk" in alert["text"]
    site.routes["/courier.rss"] = courier
    assert main(["--config", str(path), "poll"]) == 0
    assert "alert slack:#desk: sent" in capsys.readouterr().out
    [_, reply] = slack.fake.all_messages()
    assert reply["thread_ts"] == alert["ts"]
    assert reply["text"] == "islands: more on Storm halts Tollan ferry to Brisk"
    [body] = [b["text"]["text"] for b in reply["blocks"] if b["type"] == "section"]
    assert body.startswith(":heavy_plus_sign: *1 more report* on this story:")
    assert f"<{site.url('/courier/brisk')}|Brisk islanders cut off as storm wrecks harbour wall>" \
           " — Island Courier" in body
    assert "gazette/ferry" not in body  # the syndicated copy is the alerted article itself
    assert main(["--config", str(path), "poll"]) == 0  # nothing new: nothing posted
    assert len(slack.fake.all_messages()) == 2


def article(n: int, title: str, paragraphs: list[str]) -> Article:
    """Take a number, title and paragraphs; return a stored-ready Tollan Post article."""
    url = f"https://tollan.example.org/{n}"
    return Article(url=url, link=url, guid=None, feed_url="https://tollan.example.org/rss",
                   source="Tollan Post", title=title, text="\n\n".join(paragraphs),
                   published=NOW + timedelta(minutes=n), first_seen=NOW)


def test_joined_reports_what_the_store_kept_when_another_poll_placed_first(
        tmp_path: Path) -> None:
    first = article(1, "Storm halts Tollan ferry to Brisk", PARAGRAPHS["ferry"])
    copy = article(2, "Storm halts Tollan ferry to Brisk", PARAGRAPHS["ferry"][:2])
    later = article(3, "Brisk islanders cut off as storm wrecks harbour wall", PARAGRAPHS["ferry2"])
    with Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}") as store:
        store.add_articles([first, copy, later])
        story = store.create_story(first.url, now=NOW)
        index = StoryIndex(now=NOW + timedelta(hours=1))
        index.add(story, first)
        other = store.create_story(copy.url, now=NOW)  # another process got there first
        placed = place_articles([copy, later], store, index, now=NOW + timedelta(hours=1))
        assert placed.created == []
        assert placed.joined == [(story, later.url)]  # not the copy: it stays in `other`
        assert store.story_id_of(copy.url) == other


def test_a_placement_the_store_refuses_leaves_the_index_as_it_was(tmp_path: Path) -> None:
    first = article(1, "Storm halts Tollan ferry to Brisk", PARAGRAPHS["ferry"])
    later = article(2, "Brisk islanders cut off as storm wrecks harbour wall", PARAGRAPHS["ferry2"])
    other = article(3, "Selm valley expects record apple harvest", PARAGRAPHS["orchard"])
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.add_articles([first, later, other])
    story = store.create_story(first.url, now=NOW)
    index = StoryIndex(now=NOW + timedelta(hours=1))
    index.add(story, first)
    store.close()  # every write now fails
    for _ in range(3):  # as a service retrying poll after poll
        with pytest.raises(StoreError):
            place_articles([later, other], store, index, now=NOW + timedelta(hours=1))
    # Neither the joined article nor the new story stayed behind, nor counts in the IDF.
    assert index.size(story) == 1 and len(index) == 1
    fresh = StoryIndex(now=NOW + timedelta(hours=1))
    fresh.add(story, first)
    assert index._df.tolist()[:len(fresh._df)] == fresh._df.tolist()[:len(index._df)]
    assert index._docs == fresh._docs == 1


def _exit_worker() -> None:
    os._exit(3)  # what a parser crash or the OOM killer looks like from the pool


def test_poll_in_worker_processes_stores_what_threads_store(site: LocalServer,
                                                            tmp_path: Path) -> None:
    stored = []
    for name, workers in (("threads", 0), ("processes", 2)):
        (tmp_path / name).mkdir()
        config = load_config(write_config(tmp_path / name, site), env={})
        with Store.open(config.database) as store, worker_pool(workers) as offload:
            report = asyncio.run(poll(config, store, offload=offload))
            assert (offload.pool is None) == (workers == 0)
            texts = {a.url: (a.title, a.text) for a in report.articles}
            failures = {r.url: r.error for r in report.feeds if r.status == "failed"}
        stored.append((texts, failures))
    (thread_texts, thread_failures), (process_texts, process_failures) = stored
    assert len(thread_texts) == 3 and process_texts == thread_texts
    # A FeedError raised in a worker comes back whole, reason included.
    assert process_failures == thread_failures
    assert "not" in (process_failures[site.url("/html.rss")] or "")


def test_offload_falls_back_to_threads_after_a_worker_dies() -> None:
    async def run(offload: Offload) -> None:
        assert await offload.run(os.getpid) != os.getpid()
        with pytest.raises(WorkerError, match="worker: process died"):
            await offload.run(_exit_worker)
        assert offload.broken
        assert await offload.run(os.getpid) == os.getpid()

    with worker_pool(2) as offload:
        asyncio.run(run(offload))


def test_one_pool_serves_one_event_loop_after_another() -> None:
    # The workers are started from a thread on first use, waited for on that first loop.
    with worker_pool(2) as offload:
        first = asyncio.run(offload.run(os.getpid))
        assert first != os.getpid()
        # The next CLI poll runs a new event loop over the same pool.
        assert asyncio.run(offload.run(os.getpid)) != os.getpid()


_CHECKED: list[int] = []


@dataclass(frozen=True, slots=True)
class _Checked:
    value: int

    def __post_init__(self) -> None:
        _CHECKED.append(self.value)


def test_records_cross_processes_whole_and_checked_dataclasses_are_not_rebuilt() -> None:
    entries = (FeedEntry("https://news.example/rss", "https://news.example/a", "g-1", "Title",
                         "<p>Teaser</p>", None, NOW, author="Edith Grune"),
               FeedEntry("https://news.example/rss", None, None, "", "", "<p>Body</p>", None))
    parsed = ParsedFeed("https://news.example/rss", None, entries, ttl_minutes=30)
    assert pickle.loads(ForkingPickler.dumps(parsed)) == parsed
    # Rebuilding through __init__ would run a __post_init__ again; such classes keep pickle's way.
    pickle_by_fields(_Checked)
    assert pickle.loads(ForkingPickler.dumps(_Checked(7))) == _Checked(7)
    assert _CHECKED == [7, 7]


def test_topics_match_the_page_text_when_the_feed_carries_a_teaser(
        server: LocalServer, tmp_path: Path) -> None:
    paragraphs = ["Ash from the Selm volcano closed the airport at Tollan on Friday, officials "
                  "said, and ferries to Brisk were held in port until the cloud had passed.",
                  *PARAGRAPHS["orchard"]]
    server.routes["/gazette/ash"] = Response(page("Tollan airport shut", paragraphs),
                                             content_type="text/html")
    server.routes["/gazette.rss"] = Response(rss(server, [
        ("Tollan airport shut", "/gazette/ash", "g-ash", timedelta(hours=1))]))
    for route in ("/courier.rss", "/broken.rss", "/html.rss"):
        server.routes[route] = Response(rss(server, []))
    config = load_config(write_config(tmp_path, server), env={})
    with Store.open(config.database) as store, worker_pool(2) as offload:
        report = asyncio.run(poll(config, store, offload=offload))
    # Neither the title nor the teaser says "volcano" or "harvest"; the fetched page does.
    assert sorted(m.topic for m in report.matches) == ["Farming", "Ferries", "Nothing"]


def test_cli_digest_with_no_stories_is_not_sent_unless_forced(
        server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for route in ("/gazette.rss", "/courier.rss", "/broken.rss", "/html.rss"):
        server.routes[route] = Response(rss(server, []))
    path = write_config(tmp_path, server)
    assert main(["--config", str(path), "poll"]) == 0
    capsys.readouterr()
    assert main(["--config", str(path), "digest", "islands"]) == 0
    out = capsys.readouterr().out
    assert "islands: no new stories since" in out and "nothing sent" in out
    assert "console:" not in out
    assert main(["--config", str(path), "digest", "islands", "--force"]) == 0
    assert "console: sent" in capsys.readouterr().out
