"""The /healthz and /metrics endpoint on a real socket, and the metrics it exposes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from conftest import LocalServer, Response

from digestbot.health import assess_health, start_health_server
from digestbot.metrics import Metrics, render_prometheus, track_fetches
from digestbot.pipeline import FeedReport, PollReport
from digestbot.records import Article, Match, Receipt
from digestbot.store import Store

NOW = datetime(2031, 3, 14, 9, 30, tzinfo=UTC)
HOUR = timedelta(hours=1)


def make_article(slug: str, title: str) -> Article:
    url = f"https://harbourtimes.example/{slug}"
    return Article(url=url, link=url, guid=slug, feed_url="https://harbourtimes.example/rss",
                   source="Harbour Times", title=title,
                   text="The Lowmere ferry resumed service on Tuesday.\n\nCaptain Ida Rusk said "
                        "the crossing was calm.", published=NOW - HOUR, first_seen=NOW)


def make_report() -> PollReport:
    articles = (make_article("ferry-resumes", "Lowmere ferry resumes service"),
                make_article("pier-repairs", "Pier repairs finish early in Lowmere"))
    return PollReport(
        feeds=(FeedReport("https://harbourtimes.example/rss", "ok", new_articles=2),
               FeedReport("https://valleypost.example/feed", "not_modified"),
               FeedReport("https://broken.example/atom", "failed", error="HTTP 502")),
        articles=articles,
        matches=(Match(articles[0].url, "coast-desk", "Ferries", ("ferry",)),
                 Match(articles[1].url, "coast-desk", "Ferries", ("lowmere",)),
                 Match(articles[1].url, "works-desk", "Repairs", ("repairs",))),
        new_stories=(7,))


def sample(text: str, line_start: str) -> float:
    """Return the value of the one exposition line that starts with line_start."""
    found = [ln for ln in text.splitlines() if ln.startswith(line_start + " ")]
    assert len(found) == 1, (line_start, found)
    return float(found[0].rsplit(" ", 1)[1])


Handler = Callable[[str], Awaitable[None]]


def run_with_server(health: Callable[[], dict[str, Any]], metrics: Callable[[], str],
                    body: Handler, *, read_timeout: float = 5.0) -> None:
    """Start the endpoint on 127.0.0.1 port 0, run body(base_url), then close it."""

    async def main() -> None:
        server = await start_health_server("127.0.0.1", 0, health=health, metrics=metrics,
                                           read_timeout=read_timeout)
        port = server.sockets[0].getsockname()[1]
        try:
            await body(f"http://127.0.0.1:{port}")
        finally:
            server.close()
            await server.wait_closed()

    asyncio.run(main())


async def raw_exchange(base: str, payload: bytes) -> bytes:
    """Send raw bytes to the endpoint and return everything it answers before closing."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(payload)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer


def test_healthz_reports_ok_degraded_and_down(sqlite_url: str) -> None:
    state: dict[str, Any] = {"running": True, "last_poll": NOW - timedelta(minutes=10)}
    with Store.open(sqlite_url) as store:
        store.feeds.record_success("https://harbourtimes.example/rss", now=NOW, etag=None,
                                  last_modified=None, content_hash="x", title="Harbour Times")

        def health() -> dict[str, Any]:
            return assess_health(scheduler_running=state["running"], started_at=NOW - HOUR,
                                 last_poll_finished=state["last_poll"],
                                 poll_interval=timedelta(minutes=30),
                                 feed_states=store.feeds.states(), now=NOW)

        async def body(base: str) -> None:
            async with httpx.AsyncClient(base_url=base) as client:
                ok = await client.get("/healthz")
                assert ok.status_code == 200
                assert ok.headers["content-type"] == "application/json"
                assert ok.json()["status"] == "ok"
                assert ok.json()["scheduler_running"] is True
                assert ok.json()["last_poll_finished"] == "2031-03-14T09:20:00+00:00"
                assert ok.json()["failing_feeds"] == []

                store.feeds.record_failure("https://broken.example/atom", "HTTP 502",
                                          now=NOW - timedelta(minutes=5))
                store.feeds.record_failure("https://broken.example/atom", "timed out", now=NOW)
                degraded = await client.get("/healthz?verbose=1")
                assert degraded.status_code == 200
                assert degraded.json()["status"] == "degraded"
                assert degraded.json()["failing_feeds"] == [
                    {"url": "https://broken.example/atom", "since": "2031-03-14T09:25:00+00:00",
                     "errors": 2, "last_error": "timed out"}]

                state["running"] = False
                down = await client.get("/healthz")
                assert down.status_code == 503
                assert down.json()["status"] == "down"
                assert down.json()["scheduler_running"] is False

        run_with_server(health, lambda: "", body)


def test_assess_health_is_down_when_polls_stop() -> None:
    def status(last_poll: datetime | None, started: datetime) -> str:
        doc = assess_health(scheduler_running=True, started_at=started,
                            last_poll_finished=last_poll, poll_interval=timedelta(minutes=15),
                            feed_states=[], now=NOW)
        return str(doc["status"])

    assert status(NOW - timedelta(minutes=44), NOW - 5 * HOUR) == "ok"
    assert status(NOW - timedelta(minutes=46), NOW - 5 * HOUR) == "down"
    # No poll yet: counted from start, so a fresh service is not down.
    assert status(None, NOW - timedelta(minutes=5)) == "ok"
    assert status(None, NOW - HOUR) == "down"
    no_feeds = assess_health(scheduler_running=True, started_at=NOW - 9 * HOUR,
                             last_poll_finished=None, poll_interval=None, feed_states=[], now=NOW)
    assert no_feeds["status"] == "ok"


def test_metrics_change_after_a_poll_report() -> None:
    metrics = Metrics()
    stats = {"articles": 0, "feeds_failing": 0}
    seen: dict[str, str] = {}

    async def body(base: str) -> None:
        async with httpx.AsyncClient(base_url=base) as client:
            before = await client.get("/metrics")
            assert before.status_code == 200
            assert before.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert sample(before.text, "digestbot_polls_total") == 0
            assert sample(before.text, "digestbot_articles_total") == 0
            assert "digestbot_last_poll_timestamp_seconds" not in before.text

            metrics.observe_poll(make_report(), 1.7, finished=NOW)
            stats.update(articles=2, feeds_failing=1)
            seen["after"] = (await client.get("/metrics")).text

    run_with_server(lambda: {"status": "ok"},
                    lambda: render_prometheus(metrics, store_stats=stats), body)
    text = seen["after"]
    assert sample(text, "digestbot_polls_total") == 1
    assert sample(text, "digestbot_articles_total") == 2
    assert sample(text, "digestbot_stories_total") == 1
    assert sample(text, 'digestbot_matches_total{watchlist="coast-desk",topic="Ferries"}') == 2
    assert sample(text, 'digestbot_matches_total{watchlist="works-desk",topic="Repairs"}') == 1
    assert sample(text, 'digestbot_feed_errors_total{feed="https://broken.example/atom"}') == 1
    assert sample(text, 'digestbot_feed_polls_total{feed="https://valleypost.example/feed",'
                        'status="not_modified"}') == 1
    assert sample(text, 'digestbot_poll_duration_seconds_bucket{le="1"}') == 0
    assert sample(text, 'digestbot_poll_duration_seconds_bucket{le="2.5"}') == 1
    assert sample(text, 'digestbot_poll_duration_seconds_bucket{le="+Inf"}') == 1
    assert sample(text, "digestbot_poll_duration_seconds_sum") == 1.7
    assert sample(text, "digestbot_poll_duration_seconds_count") == 1
    assert sample(text, "digestbot_last_poll_timestamp_seconds") == NOW.timestamp()
    assert sample(text, 'digestbot_store_rows{kind="feeds_failing"}') == 1
    assert "# TYPE digestbot_poll_duration_seconds histogram" in text
    assert "# TYPE digestbot_store_rows gauge" in text


def test_every_sample_has_help_and_type_and_labels_are_escaped() -> None:
    metrics = Metrics()
    odd = 'https://odd.example/feed?q="storm"\\surge\nnext'
    metrics.observe_poll(PollReport((FeedReport(odd, "failed", error="bad"),), (), (), ()), 0.2)
    text = render_prometheus(metrics, store_stats=None)
    assert ('digestbot_feed_errors_total{feed="https://odd.example/feed?q=\\"storm\\"'
            '\\\\surge\\nnext"} 1') in text
    assert "digestbot_store_rows" not in text
    families = [ln.split()[2] for ln in text.splitlines() if ln.startswith("# TYPE ")]
    helped = {ln.split()[2] for ln in text.splitlines() if ln.startswith("# HELP ")}
    assert set(families) == helped and len(families) == len(set(families))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        assert any(name == f or name.startswith(f + "_") for f in families), line
        float(line.rsplit(" ", 1)[1].replace("+Inf", "inf"))
    assert text.endswith("\n")


def test_deliveries_alerts_and_fetches_are_counted(server: LocalServer) -> None:
    metrics = Metrics()
    key = "coast-desk:2031-03-13T09:00:00+00:00:2031-03-14T09:00:00+00:00"
    metrics.count_digest("coast-desk")
    metrics.count_delivery(Receipt(key, "slack:#coast-desk", "sent", sent_at=NOW))
    metrics.count_delivery(Receipt(key, "email:desk@harbourtimes.example", "failed",
                                   detail="SMTP 550"))
    metrics.count_delivery(Receipt(key, "email:night@harbourtimes.example", "failed"))
    metrics.count_alert("coast-desk")
    server.routes["/rss"] = Response("<rss/>")

    async def fetch_twice() -> None:
        async with httpx.AsyncClient() as client:
            track_fetches(client, metrics)
            assert (await client.get(server.url("/rss"))).status_code == 200
            assert (await client.get(server.url("/missing"))).status_code == 404

    asyncio.run(fetch_twice())
    text = render_prometheus(metrics)
    assert sample(text, 'digestbot_digests_total{watchlist="coast-desk"}') == 1
    assert sample(text, 'digestbot_deliveries_total{destination="slack",status="sent"}') == 1
    assert sample(text, 'digestbot_deliveries_total{destination="email",status="failed"}') == 2
    assert sample(text, 'digestbot_delivery_failures_total{destination="email"}') == 2
    assert 'digestbot_delivery_failures_total{destination="slack"}' not in text
    assert sample(text, 'digestbot_alerts_total{watchlist="coast-desk"}') == 1
    assert sample(text, "digestbot_fetch_duration_seconds_count") == 2
    assert 0 < sample(text, "digestbot_fetch_duration_seconds_sum") < 5
    assert sample(text, 'digestbot_fetch_responses_total{code="200"}') == 1
    assert sample(text, 'digestbot_fetch_responses_total{code="404"}') == 1


@pytest.mark.parametrize(("payload", "code"), [
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),  # a TLS hello, say
    (b"GET\r\n\r\n", 400),
    (b"GET /healthz\r\n\r\n", 400),
    (b"GET http://elsewhere.example/ HTTP/1.1\r\n\r\n", 400),
    (b"GET /healthz SPDY/3\r\n\r\n", 400),
    (b"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n", 404),
    (b"POST /healthz HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 405),
    (b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n", 431),
])
def test_garbage_requests_get_an_error_and_the_server_keeps_serving(payload: bytes,
                                                                    code: int) -> None:
    async def body(base: str) -> None:
        answer = await raw_exchange(base, payload)
        assert answer.startswith(f"HTTP/1.1 {code} ".encode()), answer[:80]
        async with httpx.AsyncClient(base_url=base) as client:
            assert (await client.get("/healthz")).json() == {"status": "ok"}

    run_with_server(lambda: {"status": "ok"}, lambda: "", body)


def test_silent_and_vanishing_clients_are_dropped() -> None:
    async def body(base: str) -> None:
        host, port = base.removeprefix("http://").split(":")
        _, gone = await asyncio.open_connection(host, int(port))
        gone.write(b"GET /hea")
        gone.close()  # hangs up halfway through the request line
        answer = await raw_exchange(base, b"GET /healthz HTTP/1.1\r\n")  # never ends its head
        assert answer.startswith(b"HTTP/1.1 408 ")
        head = await raw_exchange(base, b"HEAD /healthz HTTP/1.1\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")

    run_with_server(lambda: {"status": "ok"}, lambda: "", body, read_timeout=0.3)


def test_failing_callables_answer_503_and_500() -> None:
    def health() -> dict[str, Any]:
        raise RuntimeError("database is locked")

    def metrics() -> str:
        raise RuntimeError("counter exploded")

    async def body(base: str) -> None:
        async with httpx.AsyncClient(base_url=base) as client:
            down = await client.get("/healthz")
            assert down.status_code == 503
            doc = json.loads(down.text)
            assert doc["status"] == "down" and "database is locked" in doc["error"]
            broken = await client.get("/metrics")
            assert broken.status_code == 500 and "counter exploded" in broken.text

    run_with_server(health, metrics, body)
