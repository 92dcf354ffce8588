"""Broken and malicious feeds through the real poll: each gets a clear outcome, nothing else breaks.

Every test serves the hostile feed next to a well-behaved control feed from the local server,
runs `pipeline.poll` against a real SQLite file and checks the hostile feed's report, its stored
state, that the control feed's articles were stored, and that the poll stayed within its bound.
"""

from __future__ import annotations

import gzip
import json
import re
import socket
import struct
import threading
import tracemalloc
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from conftest import LocalServer, Response
from hostile.harness import (
    NOW,
    Outcome,
    assert_control_ok,
    control_feed,
    endless,
    read_corpus,
    rss_items,
    run_poll,
    trickle,
    write_config,
)

from digestbot.cli import main
from digestbot.config import load_config
from digestbot.pipeline import make_digest
from digestbot.render import render_digest, slack_messages
from digestbot.store import Store

RSS_TYPE = "application/rss+xml; charset=utf-8"
MAX_REASON = 200


def poll_hostile(server: LocalServer, tmp_path: Path, url: str, *,
                 route: Response | None = None, **settings: Any) -> Outcome:
    """Serve the control feed (and the hostile route at `url` if given), poll both once."""
    server.routes["/control.rss"] = Response(control_feed())
    if route is not None:
        server.routes[url] = route
        url = server.url(url)
    config = write_config(tmp_path, [(url, "Hostile Herald"),
                                     (server.url("/control.rss"), "Varrow Post")], **settings)
    outcome = run_poll(config)
    assert_control_ok(outcome, server.url("/control.rss"))
    return outcome


def assert_failed(outcome: Outcome, url: str, reason: str, *, within: float = 5.0) -> str:
    """Assert the feed failed with a short reason matching `reason`, stored as its last error."""
    report = outcome.feed(url)
    assert report.status == "failed" and report.new_articles == 0
    assert report.error is not None and re.search(reason, report.error), report.error
    assert len(report.error) <= MAX_REASON and "\n" not in report.error
    state = outcome.states[url]
    assert (state.last_error, state.error_count) == (report.error, 1)
    assert not any(u.startswith("https://ostrel-news.example/") for u in outcome.stored_urls)
    assert outcome.elapsed < within
    return report.error


BAD_BODIES = [
    ("malformed-xml", read_corpus("malformed.xml"), RSS_TYPE,
     r"^not a feed: .+ at line \d+$"),
    ("html-page-labelled-html", read_corpus("not_a_feed.html"), "text/html; charset=utf-8",
     r"^not a feed: got an HTML page$"),
    ("html-page-labelled-rss", read_corpus("not_a_feed.html"), RSS_TYPE,
     r"^not a feed: got an HTML page$"),
    ("empty-body", b"", RSS_TYPE, r"^empty response$"),
    ("whitespace-body", b" \r\n\t\n", RSS_TYPE, r"^empty response$"),
    ("bom-only-body", b"\xef\xbb\xbf", RSS_TYPE, r"^empty response$"),
    ("json-body", read_corpus("json_body.json"), "application/json", r"^not a feed: got JSON$"),
    ("plain-text-body", b"Service temporarily unavailable", "text/plain",
     r"^not a feed: syntax error at line \d+$"),
    ("binary-body", bytes(range(256)) * 4, "application/octet-stream", r"^not a feed: "),
    ("billion-laughs", read_corpus("billion_laughs.xml"), RSS_TYPE,
     r"^feed declares XML entities$"),
    ("large-entity-repeated", read_corpus("entity_repeat.xml"), RSS_TYPE,
     r"^feed declares XML entities$"),
]


@pytest.mark.parametrize(("body", "content_type", "reason"),
                         [c[1:] for c in BAD_BODIES], ids=[c[0] for c in BAD_BODIES])
def test_unusable_feed_body_fails_with_its_reason(server: LocalServer, tmp_path: Path,
                                                  body: bytes, content_type: str,
                                                  reason: str) -> None:
    outcome = poll_hostile(server, tmp_path, "/hostile.rss",
                           route=Response(body, content_type=content_type))
    assert_failed(outcome, server.url("/hostile.rss"), reason)


HTTP_FAULTS = [
    ("server-error", Response(b"boom", status=500, content_type="text/plain"), r"^HTTP 500$"),
    ("gone", Response(b"gone", status=410, content_type="text/plain"), r"^HTTP 410$"),
    ("over-size-cap", Response(b"<rss>" + b" " * 1_200_000), r"^response exceeds 1000000 bytes$"),
    ("corrupt-gzip", Response(b"\x1f\x8b\x08\x00not really gzip" * 50,
                              headers={"Content-Encoding": "gzip"}),
     r"^could not decode gzip body"),
    ("unknown-encoding", Response(b"<rss/>", headers={"Content-Encoding": "br"}),
     r"^unsupported Content-Encoding 'br'$"),
]


@pytest.mark.parametrize("route, reason", [c[1:] for c in HTTP_FAULTS],
                         ids=[c[0] for c in HTTP_FAULTS])
def test_bad_http_answer_fails_with_its_reason(server: LocalServer, tmp_path: Path,
                                               route: Response, reason: str) -> None:
    outcome = poll_hostile(server, tmp_path, "/hostile.rss", route=route)
    assert_failed(outcome, server.url("/hostile.rss"), reason)


def test_gzip_bomb_fails_at_the_cap_with_bounded_memory(server: LocalServer,
                                                        tmp_path: Path) -> None:
    bomb = gzip.compress(b"<rss>" + b"\0" * 300_000_000, compresslevel=9)
    server.routes["/bomb.rss"] = Response(bomb, headers={"Content-Encoding": "gzip"})
    tracemalloc.start()
    try:
        outcome = poll_hostile(server, tmp_path, server.url("/bomb.rss"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_failed(outcome, server.url("/bomb.rss"), r"^response exceeds 1000000 bytes$")
    assert peak < 40_000_000, f"peak traced memory {peak} bytes"


def test_endless_body_fails_at_the_cap(server: LocalServer, tmp_path: Path,
                                       raw_server: Any) -> None:
    srv = raw_server(endless)
    outcome = poll_hostile(server, tmp_path, srv.url("/endless.rss"))
    assert_failed(outcome, srv.url("/endless.rss"), r"^response exceeds 1000000 bytes$")


def test_trickling_server_fails_at_the_total_deadline(server: LocalServer, tmp_path: Path,
                                                      raw_server: Any) -> None:
    srv = raw_server(trickle)
    outcome = poll_hostile(server, tmp_path, srv.url("/slow.rss"), deadline=2.0)
    assert_failed(outcome, srv.url("/slow.rss"), r"^deadline of 2s exceeded$", within=5.0)
    assert outcome.elapsed >= 1.9


def test_silent_server_fails_at_the_total_deadline(server: LocalServer, tmp_path: Path,
                                                   raw_server: Any) -> None:
    srv = raw_server(lambda conn, stop: stop.wait(10))
    outcome = poll_hostile(server, tmp_path, srv.url("/silent.rss"), deadline=1.5)
    assert_failed(outcome, srv.url("/silent.rss"), r"^(deadline of 1.5s exceeded|timed out)$")


def test_refused_connection_fails_with_its_reason(server: LocalServer, tmp_path: Path) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{probe.getsockname()[1]}/feed.rss"
    probe.close()
    outcome = poll_hostile(server, tmp_path, url)
    assert_failed(outcome, url, r"^connection failed: ")


def reset(conn: socket.socket, stop: threading.Event) -> None:
    """Answer with a TCP reset: linger 0, then close."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def test_reset_connection_fails_with_a_named_reason(server: LocalServer, tmp_path: Path,
                                                    raw_server: Any) -> None:
    srv = raw_server(reset)
    outcome = poll_hostile(server, tmp_path, srv.url("/reset.rss"))
    # The driver's exception has no message; the reason still names what happened.
    assert_failed(outcome, srv.url("/reset.rss"), r"^connection failed: \S+")


def redirect(to: str) -> Response:
    return Response(b"", status=302, headers={"Location": to}, content_type="")


def test_redirect_loop_fails(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/loop-a.rss"] = redirect("/loop-b.rss")
    server.routes["/loop-b.rss"] = redirect("/loop-a.rss")
    outcome = poll_hostile(server, tmp_path, server.url("/loop-a.rss"))
    assert_failed(outcome, server.url("/loop-a.rss"), r"^redirect loop at http://.*/loop-a\.rss$")
    assert server.paths_requested().count("/loop-a.rss") == 1


def test_long_redirect_chain_fails_after_the_limit(server: LocalServer, tmp_path: Path) -> None:
    for hop in range(20):
        server.routes[f"/hop/{hop}"] = redirect(f"/hop/{hop + 1}")
    outcome = poll_hostile(server, tmp_path, server.url("/hop/0"), max_redirects=5)
    assert_failed(outcome, server.url("/hop/0"), r"^too many redirects \(more than 5\)$")
    assert "/hop/6" not in server.paths_requested()


def test_status_command_shows_the_failing_feed_and_reason(
        server: LocalServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    outcome = poll_hostile(server, tmp_path, "/laughs.rss",
                           route=Response(read_corpus("billion_laughs.xml")))
    assert main(["--config", str(outcome.config.path), "status"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"FAILING x1 since \S+  Hostile Herald: feed declares XML entities", out)
    assert re.search(r"ok \(\d+s ago\)  Varrow Post", out)


# Feeds that are odd but usable: stored, with a precise result.

def stored(outcome: Outcome, url: str) -> dict[str, Any]:
    """Take an article URL; return its stored row as a dict (fails if absent)."""
    with Store.open(outcome.config.database) as store:
        article = store.get_article(url)
    assert article is not None, f"{url} not stored; have {sorted(outcome.stored_urls)}"
    return {"title": article.title, "text": article.text, "published": article.published,
            "first_seen": article.first_seen, "when": article.when}


def poll_ok(server: LocalServer, tmp_path: Path, body: bytes | str,
            content_type: str = RSS_TYPE, path: str = "/odd.rss") -> Outcome:
    outcome = poll_hostile(server, tmp_path, path, route=Response(body, content_type=content_type))
    report = outcome.feed(server.url(path))
    assert (report.status, report.error) == ("ok", None)
    assert outcome.states[server.url(path)].last_error is None
    assert outcome.elapsed < 5
    return outcome


def ostrel(outcome: Outcome) -> set[str]:
    return {u.rsplit("/", 1)[1] for u in outcome.stored_urls if "ostrel-news" in u}


def test_truncated_feed_keeps_the_complete_items(server: LocalServer, tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, read_corpus("truncated.xml"))
    assert ostrel(outcome) == {"quay-wall"}
    assert stored(outcome, "https://ostrel-news.example/quay-wall")["title"] == (
        "Quay wall repaired at Ostrel")


def test_cp1252_bytes_declared_utf8_are_decoded_without_loss(server: LocalServer,
                                                             tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, read_corpus("latin1_declared_utf8.xml"))
    row = stored(outcome, "https://ostrel-news.example/cafe")
    assert row["title"] == "Café on the quay reopens"


def test_utf8_without_any_charset_label_is_read_as_utf8(server: LocalServer,
                                                        tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, read_corpus("no_charset_utf8.xml"), "text/xml")
    row = stored(outcome, "https://ostrel-news.example/stall")
    assert row["title"] == "Smørrebrød stall wins prize at Ostrel fair"


def test_mixed_encodings_keep_every_item(server: LocalServer, tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, read_corpus("mixed_encodings.xml"))
    assert ostrel(outcome) == {"skarn", "volunteers"}
    assert stored(outcome, "https://ostrel-news.example/skarn")["title"] == (
        "Ferry to Skarn runs again — crews cheer")
    # The stray byte cannot be both encodings at once; the title survives around it.
    title = stored(outcome, "https://ostrel-news.example/volunteers")["title"]
    assert title.startswith("Caf") and title.endswith(" owner thanks volunteers")


@pytest.mark.parametrize(("name", "content_type"), [
    ("bom_utf8.xml", RSS_TYPE), ("bom_utf16.xml", "application/rss+xml"),
    # The BOM wins over a header that names another charset.
    ("bom_utf16.xml", "application/rss+xml; charset=iso-8859-1")])
def test_byte_order_marks_are_honoured(server: LocalServer, tmp_path: Path, name: str,
                                       content_type: str) -> None:
    outcome = poll_ok(server, tmp_path, read_corpus(name), content_type)
    row = stored(outcome, "https://ostrel-news.example/bridge")
    assert row["title"] == "Bridge at Ostrel opens — early"


def test_huge_title_is_capped(server: LocalServer, tmp_path: Path) -> None:
    body = rss_items([("Harbour " * 100_000, "https://ostrel-news.example/huge", "Teaser.")])
    outcome = poll_ok(server, tmp_path, body)
    title = stored(outcome, "https://ostrel-news.example/huge")["title"]
    assert 400 <= len(title) <= 500 and title.startswith("Harbour Harbour")


def test_items_without_links_or_dates(server: LocalServer, tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, read_corpus("no_links_no_dates.xml"))
    # No link and no permalink guid: nothing can identify the article, so it is skipped.
    assert ostrel(outcome) == {"by-guid", "undated"}
    undated = stored(outcome, "https://ostrel-news.example/undated")
    assert undated["published"] is None and undated["when"] == undated["first_seen"]
    assert outcome.feed(server.url("/odd.rss")).new_articles == 2


def test_implausible_dates_become_unknown(server: LocalServer, tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, read_corpus("dates.xml"))
    assert ostrel(outcome) == {"future", "epoch", "year-one", "nonsense"}
    for name in ("epoch", "year-one", "nonsense"):
        row = stored(outcome, f"https://ostrel-news.example/{name}")
        assert row["published"] is None, name
        assert row["when"] == row["first_seen"]


def test_future_dates_are_clamped_to_first_seen(server: LocalServer, tmp_path: Path) -> None:
    soon = NOW + timedelta(hours=3)
    body = read_corpus("dates.xml").replace(
        b"</channel>", b"<item><title>A few hours ahead</title>"
        b"<link>https://ostrel-news.example/soon</link><description>A story.</description><pubDate>"
        + soon.strftime("%a, %d %b %Y %H:%M:%S GMT").encode() + b"</pubDate></item></channel>")
    outcome = poll_ok(server, tmp_path, body)
    for name in ("future", "soon"):
        row = stored(outcome, f"https://ostrel-news.example/{name}")
        assert row["published"] == row["first_seen"] == row["when"], name
    # So the next digest, which ends now, holds them.
    config = load_config(outcome.config.path, env={})
    with Store.open(config.database) as store:
        digest = make_digest(config, store, config.watchlist("watch"),
                             now=datetime.now(UTC) + timedelta(seconds=1),
                             since=NOW - timedelta(hours=1))
    urls = {a.url for t in digest.topics for s in t.stories for a in s.articles}
    assert {"https://ostrel-news.example/future", "https://ostrel-news.example/soon"} <= urls


def test_duplicate_guids_and_links_store_one_article(server: LocalServer,
                                                     tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, read_corpus("duplicate_guids.xml"))
    assert ostrel(outcome) == {"dup-1"}
    assert stored(outcome, "https://ostrel-news.example/dup-1")["title"] == (
        "First copy of the item")
    assert outcome.feed(server.url("/odd.rss")).new_articles == 1


def test_relative_links_resolve_against_the_feed_url(server: LocalServer,
                                                     tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, read_corpus("relative_links.xml"),
                      path="/feeds/rel.rss")
    ours = {u for u in outcome.stored_urls if "varrow-post" not in u}
    assert ours == {server.url("/news/root-relative"), server.url("/feeds/story/path-relative"),
                    server.url("/up/dot-dot"), "http://ostrel-news.example/scheme-relative"}


# Feed text that tries to break out of its place.

BREAKOUT_TITLE = ("Harbour &lt;!channel&gt; &lt;@U123ABC&gt; &lt;http://evil.example|Varrow "
                  "Council&gt; {{ 7*7 }} {% if true %}x{% endif %} \u202eevil\u202c news")
BREAKOUT_HTML = (
    "<p>Harbour story {{ 7*7 }} and {{ config }} &lt;!here&gt; &lt;!subteam^S1|@ops&gt; "
    "&lt;@U999&gt; &lt;https://phish.example|Click to verify&gt; "
    "and a reversed \u202egnp.exe\u202c file.</p>"
    "<script>alert('feed-script')</script>"
    "<p onclick=\"alert('feed-handler')\">Tap <a href=\"javascript:alert('feed-js')\">here</a>"
    "<img src=\"x\" onerror=\"alert('feed-img')\"></p>"
    "<p>" + "Varrowquay" * 2_000 + "</p>"
    "<style>body{display:none}</style><iframe src=\"https://evil.example/\"></iframe>")


def breakout_feed() -> str:
    items = "".join(
        f"<item><title>{BREAKOUT_TITLE} {n}</title>"
        f"<link>https://ostrel-news.example/breakout-{n}</link>"
        f"<pubDate>{(NOW - timedelta(hours=1)).strftime('%a, %d %b %Y %H:%M:%S GMT')}</pubDate>"
        f"<description><![CDATA[{BREAKOUT_HTML}]]></description></item>"
        for n in (1, 2))
    return ("<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
            f"<title>Breakout {{{{ 7*7 }}}}</title>{items}</channel></rss>")


def test_breakout_text_is_stored_inert(server: LocalServer, tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, breakout_feed())
    row = stored(outcome, "https://ostrel-news.example/breakout-1")
    for text in (row["title"], row["text"]):
        assert "{{ 7*7 }}" in text and "49" not in text
        assert "\u202e" not in text and "\u202c" not in text
        assert not re.search(r"alert\(|javascript:|onerror|onclick|display:none|<script", text)
    assert "gnp.exe" in row["text"]
    # Slack-looking sequences stay as the feed wrote them: rendering escapes them per format.
    assert "<!here>" in row["text"] and "<@U999>" in row["text"]


def test_breakout_text_stays_literal_in_every_rendering(server: LocalServer,
                                                       tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, breakout_feed())
    config = load_config(outcome.config.path, env={})
    with Store.open(config.database) as store:
        digest = make_digest(config, store, config.watchlist("watch"),
                             now=datetime.now(UTC) + timedelta(seconds=1),
                             since=NOW - timedelta(days=1))
    assert any("breakout" in a.url for t in digest.topics for s in t.stories for a in s.articles)
    text = render_digest(digest, "text")
    html = render_digest(digest, "html")
    data = json.loads(render_digest(digest, "json"))
    flat = json.dumps(data, ensure_ascii=False)
    for out in (text, html, flat):
        assert "{{ 7*7 }}" in out and "{{ config }}" in out
        # The digest window's clock times may contain 49; only evaluated template text matters.
        without_times = re.sub(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?"
                               r"(?:Z|[+-]\d{2}:\d{2})?|\d{1,2}:\d{2}", "", out)
        assert not re.search(r"\b49\b", without_times)
        assert "\u202e" not in out
    assert not re.search(r"<script|onerror=|onclick=|javascript:|<iframe|feed-", html, re.I)
    assert "<!here>" not in html and "&lt;!here&gt;" in html
    messages = slack_messages(digest)
    payload = json.dumps(messages, ensure_ascii=False)
    for forbidden in ("<!channel>", "<!here>", "<@U123ABC>", "<@U999>", "<!subteam",
                      "<http://evil.example|", "<https://phish.example|", "\u202e"):
        assert forbidden not in payload, forbidden
    assert "{{ 7*7 }}" in payload
    for message in messages:
        for block in message["blocks"]:
            text_obj = block.get("text")
            if isinstance(text_obj, dict):
                assert len(text_obj["text"]) <= 3000


def test_the_digest_survives_a_feed_title_with_markup(server: LocalServer,
                                                      tmp_path: Path) -> None:
    outcome = poll_ok(server, tmp_path, breakout_feed())
    with Store.open(outcome.config.database) as store:
        state = store.feeds.state(server.url("/odd.rss"))
    assert state is not None and state.title == "Breakout {{ 7*7 }}"


def test_slow_feed_does_not_hold_up_the_others_beyond_its_deadline(
        server: LocalServer, tmp_path: Path) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> Response:
        threading.Event().wait(10)
        return Response(control_feed())
    server.routes["/slow.rss"] = Response(dynamic=slow)
    outcome = poll_hostile(server, tmp_path, server.url("/slow.rss"), deadline=1.0)
    assert_failed(outcome, server.url("/slow.rss"), r"^(deadline of 1s exceeded|timed out)$",
                  within=4.0)
