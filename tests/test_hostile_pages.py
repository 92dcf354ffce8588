"""Hostile article pages through the real poll: the page fetch is refused or cut short, the
article is still stored with the text its feed carried, and the feed itself polls fine."""

from __future__ import annotations

import gzip
import logging
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import LocalServer, Response
from hostile.harness import (
    Outcome,
    PublicHostTransport,
    assert_control_ok,
    control_feed,
    endless,
    rss_items,
    run_poll,
    trickle,
    write_config,
)

from digestbot.store import Store

TEASER = "Storm damage closes the Ostrel harbour road for a week."
PUBLIC_IP = "1.2.3.4"  # never contacted: PublicHostTransport serves it from the local server
ARTICLE = "".join(
    f"<p>Paragraph {n} of the Ostrel harbour report: engineers from the regional council "
    f"inspected the sea wall on Tuesday and said repairs would take several weeks.</p>"
    for n in range(1, 8))
REAL_PAGE = f"<html><head><title>Ostrel harbour</title></head><body><article>{ARTICLE}" \
            "</article></body></html>"


def poll_pages(server: LocalServer, tmp_path: Path, links: list[str], *,
               client: httpx.AsyncClient | None = None, **settings: Any) -> Outcome:
    """Serve a feed linking to `links` (teaser text only) plus the control feed; poll once."""
    server.routes["/control.rss"] = Response(control_feed())
    server.routes["/pages.rss"] = Response(rss_items(
        [(f"Ostrel harbour item {n}", link, TEASER) for n, link in enumerate(links)]))
    settings.setdefault("full_text", True)
    config = write_config(tmp_path, [(server.url("/pages.rss"), "Ostrel Pages"),
                                     (server.url("/control.rss"), "Varrow Post")], **settings)
    outcome = run_poll(config, client=client)
    assert_control_ok(outcome, server.url("/control.rss"))
    report = outcome.feed(server.url("/pages.rss"))
    assert (report.status, report.error, report.new_articles) == ("ok", None, len(links))
    return outcome


def stored_text(outcome: Outcome, link: str) -> str:
    """Take an article link; return the stored article's text."""
    with Store.open(outcome.config.database) as store:
        from digestbot.urls import canonicalize_url
        article = store.get_article(canonicalize_url(link))
    assert article is not None, link
    return article.text


def page_failures(caplog: pytest.LogCaptureFixture) -> dict[str, str]:
    """Return url -> reason of every 'page not fetched' log record."""
    return {getattr(r, "url", ""): getattr(r, "reason", "") for r in caplog.records
            if r.getMessage() == "page not fetched"}


PAGE_FAULTS = [
    ("not-found", Response(b"missing", status=404, content_type="text/plain"), r"^HTTP 404$"),
    ("server-error", Response(b"boom", status=503, content_type="text/plain"), r"^HTTP 503$"),
    ("over-size-cap", Response(b"<p>" + b"x" * 1_100_000, content_type="text/html"),
     r"^response exceeds 1000000 bytes$"),
    ("gzip-bomb", Response(gzip.compress(b"<p>" + b"\0" * 100_000_000, compresslevel=9),
                           headers={"Content-Encoding": "gzip"}, content_type="text/html"),
     r"^response exceeds 1000000 bytes$"),
]


@pytest.mark.parametrize(("route", "reason"), [c[1:] for c in PAGE_FAULTS],
                         ids=[c[0] for c in PAGE_FAULTS])
def test_refused_page_keeps_the_feed_text(server: LocalServer, tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture, route: Response,
                                          reason: str) -> None:
    caplog.set_level(logging.INFO, logger="digestbot")
    server.routes["/page"] = route
    server.routes["/good"] = Response(REAL_PAGE, content_type="text/html")
    outcome = poll_pages(server, tmp_path, [server.url("/page"), server.url("/good")])
    assert stored_text(outcome, server.url("/page")) == TEASER
    assert re.search(reason, page_failures(caplog)[server.url("/page")])
    assert "Paragraph 7 of the Ostrel harbour report" in stored_text(outcome, server.url("/good"))
    assert outcome.elapsed < 5


def test_page_redirect_loop_and_long_chain_keep_the_feed_text(
        server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="digestbot")
    server.routes["/loop"] = Response(status=302, headers={"Location": "/loop2"}, content_type="")
    server.routes["/loop2"] = Response(status=302, headers={"Location": "/loop"}, content_type="")
    for hop in range(10):
        server.routes[f"/chain/{hop}"] = Response(status=301, content_type="",
                                                  headers={"Location": f"/chain/{hop + 1}"})
    outcome = poll_pages(server, tmp_path, [server.url("/loop"), server.url("/chain/0")],
                         max_redirects=3)
    failures = page_failures(caplog)
    assert failures[server.url("/loop")].startswith("redirect loop at ")
    assert failures[server.url("/chain/0")] == "too many redirects (more than 3)"
    assert stored_text(outcome, server.url("/loop")) == TEASER
    assert stored_text(outcome, server.url("/chain/0")) == TEASER


def test_endless_and_trickling_pages_are_cut_short(server: LocalServer, tmp_path: Path,
                                                   raw_server: Any,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="digestbot")
    endless_url = raw_server(endless).url("/endless")
    slow_url = raw_server(trickle).url("/slow")
    outcome = poll_pages(server, tmp_path, [endless_url, slow_url], deadline=2.0)
    failures = page_failures(caplog)
    assert failures[endless_url] == "response exceeds 1000000 bytes"
    assert failures[slow_url] == "deadline of 2s exceeded"
    assert stored_text(outcome, endless_url) == stored_text(outcome, slow_url) == TEASER
    assert 1.9 <= outcome.elapsed < 5


def test_binary_and_empty_pages_keep_the_feed_text(server: LocalServer, tmp_path: Path) -> None:
    server.routes["/binary"] = Response(bytes(range(256)) * 400, content_type="image/png")
    server.routes["/empty"] = Response(b"", content_type="text/html")
    server.routes["/script"] = Response(
        "<html><body><script>document.write('page-script')</script><p onclick='x()'>Hi</p>"
        "</body></html>", content_type="text/html")
    outcome = poll_pages(server, tmp_path, [server.url(p) for p in ("/binary", "/empty",
                                                                    "/script")])
    for path in ("/binary", "/empty", "/script"):
        assert stored_text(outcome, server.url(path)) == TEASER


def test_page_markup_and_bidi_controls_do_not_reach_the_text(server: LocalServer,
                                                             tmp_path: Path) -> None:
    hostile = REAL_PAGE.replace(
        "<article>", "<article><script>alert('page-script')</script>"
        "<p>Harbour master \u202eEdith Grune\u202c said <img src=x onerror=alert(1)> the "
        "wall was safe {{ 7*7 }} for now and the road would reopen on Friday morning.</p>")
    server.routes["/hostile"] = Response(hostile, content_type="text/html; charset=utf-8")
    outcome = poll_pages(server, tmp_path, [server.url("/hostile")])
    text = stored_text(outcome, server.url("/hostile"))
    assert "Harbour master Edith Grune said" in text and "{{ 7*7 }}" in text
    assert not re.search(r"alert|onerror|<script|page-script|\u202e|\u202c", text)


PRIVATE_LINKS = [
    "http://127.0.0.1:{port}/secret",
    "http://localhost:{port}/secret",
    "http://[::ffff:127.0.0.1]:{port}/secret",
    "http://2130706433:{port}/secret",  # 127.0.0.1 as one decimal number
    "http://10.20.30.40/secret",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00::1]/secret",
]


def test_article_links_to_private_addresses_are_never_fetched(
        server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="digestbot")
    server.routes["/secret"] = Response("<p>internal admin page</p>" * 100,
                                        content_type="text/html")
    links = [link.format(port=server.port) for link in PRIVATE_LINKS]
    outcome = poll_pages(server, tmp_path, links, allow_private=False)
    assert "/secret" not in server.paths_requested()
    failures = page_failures(caplog)
    for link in links:
        assert stored_text(outcome, link) == TEASER
        assert re.search(r"is not public|DNS lookup", failures[link]), (link, failures[link])
    assert outcome.elapsed < 5


def test_public_page_redirecting_to_a_private_address_is_refused(
        server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="digestbot")
    server.routes["/secret"] = Response("<p>internal admin page</p>" * 100,
                                        content_type="text/html")
    server.routes["/to-loopback"] = Response(
        status=302, content_type="", headers={"Location": server.url("/secret")})
    server.routes["/to-metadata"] = Response(
        status=307, content_type="",
        headers={"Location": "http://169.254.169.254/latest/meta-data/iam/"})
    server.routes["/fine"] = Response(REAL_PAGE, content_type="text/html")
    transport = PublicHostTransport(PUBLIC_IP, server.port)
    links = [f"http://{PUBLIC_IP}/to-loopback", f"http://{PUBLIC_IP}/to-metadata",
             f"http://{PUBLIC_IP}/fine"]
    client = httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False,
                               timeout=httpx.Timeout(2.0))
    outcome = poll_pages(server, tmp_path, links, client=client, allow_private=False)
    # The public hops were fetched; the private targets never were.
    assert set(transport.public_requests) == set(links)
    assert "/secret" not in server.paths_requested()
    failures = page_failures(caplog)
    assert failures[links[0]] == "address 127.0.0.1 is not public"
    assert failures[links[1]] == "address 169.254.169.254 is not public"
    assert stored_text(outcome, links[0]) == stored_text(outcome, links[1]) == TEASER
    assert "Paragraph 7 of the Ostrel harbour report" in stored_text(outcome, links[2])
