"""End-to-end benchmark harness: serve articles as RSS feeds, run the real CLI, read its JSON.

`serve_and_digest(articles, workdir=...)` starts an HTTP server on 127.0.0.1 (in a thread) with
one RSS 2.0 feed per source (chunks of at most 400 items; each item carries its full text as
`content:encoded` with one escaped `<p>` per paragraph, and a pubDate) and one HTML page per
article, writes a config and watchlists into `workdir` (SQLite there), then runs
`python -m digestbot.cli --config CFG poll` and `... digest <watchlist> --dry-run --format json`
as subprocesses, exactly as an operator would, and returns the parsed digests with timings.

Not a test and not part of the product: the bench scripts `bench/e2e_*.py` use it.
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from digestbot.urls import canonicalize_url  # noqa: E402

FEED_CHUNK = 400
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_SLUG = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True, slots=True)
class BenchArticle:
    """One article to serve: its benchmark id, outlet, and text with blank-line paragraphs."""

    id: str
    source: str
    title: str
    text: str
    published: datetime
    url_path: str  # e.g. "/basil/17.html"; served at this path, used as the item's link


class Timings(TypedDict):
    serve_s: float
    poll_s: float
    digest_s: float
    total_s: float


class DigestRun(TypedDict):
    """What `serve_and_digest` returns (a plain dict at run time)."""

    digest: dict[str, Any]  # the JSON digest of the first summary_sentences value
    digests: dict[int, dict[str, Any]]  # summary_sentences -> JSON digest
    stories: list[list[str]]  # article ids of each story of `digest`, in digest order
    url_to_id: dict[str, str]  # canonical article URL -> BenchArticle.id
    unmapped_urls: list[str]  # JSON article URLs that name no BenchArticle (should be empty)
    poll_output: str
    window_days: int
    timings: Timings


def serve_and_digest(articles: Sequence[BenchArticle], *, workdir: Path,
                     topics: Sequence[tuple[str, str]] = (("All", "*"),),
                     full_content: bool = True, max_stories: int = 100000,
                     summary_sentences: int | Sequence[int] = 3,
                     summary_words: int | None = None,
                     window_days: int | None = None) -> DigestRun:
    """Take articles and a work folder; serve, poll and digest them; return the JSON digests."""
    if not articles:
        raise ValueError("bench harness failed: no articles to serve")
    started = time.perf_counter()
    sentences = [summary_sentences] if isinstance(summary_sentences, int) \
        else list(summary_sentences)
    workdir.mkdir(parents=True, exist_ok=True)
    first = min(a.published for a in articles)
    last = max(a.published for a in articles)
    # The product clusters only articles published within `clustering.window_days` of the
    # wall clock; archived data is years old, so the window must reach back to its start.
    window = window_days or max(7, math.ceil((datetime.now(UTC) - first).days) + 8)
    with serve_articles(articles, full_content=full_content) as (base, feed_paths):
        config = write_config(workdir, base=base, feed_paths=feed_paths, topics=topics,
                              full_content=full_content, max_stories=max_stories,
                              sentences=sentences, window_days=window,
                              summary_words=summary_words)
        served = time.perf_counter()
        poll_output = run_cli(config, ["poll"])
        polled = time.perf_counter()
        since = (first - timedelta(days=1)).isoformat()
        until = (last + timedelta(days=1)).isoformat()
        digests: dict[int, dict[str, Any]] = {}
        for n in sentences:
            out = run_cli(config, ["digest", f"bench-s{n}", "--dry-run", "--format", "json",
                                   "--since", since, "--until", until])
            digests[n] = json.loads(out)
        done = time.perf_counter()
        url_to_id = map_urls(articles, base)
    digest = digests[sentences[0]]
    stories, unmapped = story_ids(digest, url_to_id)
    return DigestRun(digest=digest, digests=digests, stories=stories, url_to_id=url_to_id,
                     unmapped_urls=unmapped, poll_output=poll_output.strip(), window_days=window,
                     timings=Timings(serve_s=served - started, poll_s=polled - served,
                                     digest_s=done - polled, total_s=done - started))


def map_urls(articles: Sequence[BenchArticle], base: str) -> dict[str, str]:
    """Take the served articles and the server's base URL; return canonical URL -> article id."""
    out: dict[str, str] = {}
    for a in articles:
        link = base + a.url_path
        out[canonicalize_url(link)] = a.id
        out.setdefault(link, a.id)
    return out


def story_ids(digest: Mapping[str, Any],
              url_to_id: Mapping[str, str]) -> tuple[list[list[str]], list[str]]:
    """Take a JSON digest and the URL map; return each story's article ids and unknown URLs."""
    stories: list[list[str]] = []
    unmapped: list[str] = []
    for topic in digest["topics"]:
        for story in topic["stories"]:
            ids = []
            for article in story["articles"]:
                found = url_to_id.get(article["url"])
                if found is None:
                    unmapped.append(article["url"])
                else:
                    ids.append(found)
            stories.append(ids)
    return stories, unmapped


def run_cli(config: Path, command: Sequence[str]) -> str:
    """Take a config file and a CLI command; run `python -m digestbot.cli`, return its stdout."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    proc = subprocess.run(
        [sys.executable, "-m", "digestbot.cli", "--config", str(config), *command],
        cwd=config.parent, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"bench harness failed: digestbot {' '.join(command)} exited "
                           f"{proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout


def write_config(workdir: Path, *, base: str, feed_paths: Sequence[str],
                 topics: Sequence[tuple[str, str]], full_content: bool, max_stories: int,
                 sentences: Sequence[int], window_days: int,
                 summary_words: int | None = None) -> Path:
    """Take the served feeds and settings; write digestbot.yaml and watchlists, return the path."""
    lists = workdir / "watchlists"
    lists.mkdir(exist_ok=True)
    for old in lists.glob("*.yaml"):
        old.unlink()
    db = workdir / "bench.db"
    for path in (db, db.with_name("bench.db-wal"), db.with_name("bench.db-shm")):
        path.unlink(missing_ok=True)
    feeds = "".join(f"  - url: {json.dumps(base + p)}\n" for p in feed_paths)
    config = workdir / "digestbot.yaml"
    config.write_text(
        "database: sqlite:///bench.db\n"
        "fetch:\n"
        f"  full_text: {'false' if full_content else 'true'}\n"
        "  allow_private: true\n"
        "  max_bytes: 500000000\n"
        "  timeout: 300\n"
        "  deadline: 600\n"
        f"clustering:\n  window_days: {window_days}\n"
        f"feeds:\n{feeds}"
        "watchlists_dir: watchlists\n", encoding="utf-8")
    topic_yaml = "".join(f"  - name: {json.dumps(name)}\n    query: {json.dumps(query)}\n"
                         for name, query in topics)
    for n in sentences:
        (lists / f"bench-s{n}.yaml").write_text(
            f"name: bench-s{n}\n"
            f"digest:\n  max_stories: {max_stories}\n  summary_sentences: {n}\n"
            + (f"  summary_words: {summary_words}\n" if summary_words else "") +
            "deliver:\n  - console: {}\n"
            f"topics:\n{topic_yaml}", encoding="utf-8")
    return config


def build_routes(articles: Sequence[BenchArticle], *,
                 full_content: bool) -> tuple[dict[str, tuple[bytes, str]], list[str]]:
    """Take articles; return path -> (body, content type) for feeds and pages, and feed paths."""
    base = "{BASE}"  # replaced once the server's port is known
    routes: dict[str, tuple[bytes, str]] = {}
    by_source: dict[str, list[BenchArticle]] = {}
    for a in articles:
        by_source.setdefault(a.source, []).append(a)
        routes[a.url_path] = (render_page(a).encode("utf-8"), "text/html; charset=utf-8")
    feed_paths: list[str] = []
    for number, (source, items) in enumerate(by_source.items()):
        slug = _SLUG.sub("-", source.lower()).strip("-") or "source"
        newest_first = sorted(items, key=lambda a: a.published, reverse=True)
        for k in range(0, len(newest_first), FEED_CHUNK):
            path = f"/feeds/{number}-{quote(slug)}-{k // FEED_CHUNK}.xml"
            body = render_feed(source, newest_first[k:k + FEED_CHUNK], base=base,
                               full_content=full_content)
            routes[path] = (body.encode("utf-8"), "application/rss+xml; charset=utf-8")
            feed_paths.append(path)
    return routes, feed_paths


def xml_text(text: str) -> str:
    """Take text; return it XML-escaped without characters XML forbids."""
    return escape(_XML_ILLEGAL.sub("", text), quote=False)


def paragraphs_html(text: str) -> str:
    """Take blank-line separated text; return one escaped <p> per paragraph."""
    return "".join(f"<p>{xml_text(p.strip())}</p>"
                   for p in text.split("\n\n") if p.strip())


def render_feed(source: str, items: Sequence[BenchArticle], *, base: str,
                full_content: bool) -> str:
    """Take one source's items; return an RSS 2.0 document (full text in content:encoded)."""
    parts = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0" '
             'xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>',
             f"<title>{xml_text(source)}</title><link>{base}/</link>"
             f"<description>{xml_text(source)}</description>"]
    for a in items:
        paragraphs = [p for p in a.text.split("\n\n") if p.strip()]
        teaser = " ".join(paragraphs[0].split()[:30]) + " …" if paragraphs else ""
        parts.append(
            f"<item><title>{xml_text(a.title)}</title><link>{base}{a.url_path}</link>"
            f'<guid isPermaLink="false">{xml_text(a.id)}</guid>'
            f"<pubDate>{format_datetime(a.published.astimezone(UTC), usegmt=True)}</pubDate>"
            f"<description>{xml_text(teaser)}</description>")
        if full_content:
            # paragraphs_html escapes '>' so "]]>" cannot occur inside the CDATA section.
            parts.append(f"<content:encoded><![CDATA[{paragraphs_html(a.text)}]]>"
                         "</content:encoded>")
        parts.append("</item>")
    parts.append("</channel></rss>\n")
    return "".join(parts)


def render_page(a: BenchArticle) -> str:
    """Take an article; return a plain HTML article page for the pipeline to fetch."""
    title = xml_text(a.title)
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head>'
            f"<body><article><h1>{title}</h1>{paragraphs_html(a.text)}</article></body></html>")


@contextmanager
def serve_articles(articles: Sequence[BenchArticle], *,
                   full_content: bool) -> Iterator[tuple[str, list[str]]]:
    """Take articles; serve them on 127.0.0.1 in a thread, yield (base URL, feed paths)."""
    templates, feed_paths = build_routes(articles, full_content=full_content)
    routes: dict[str, tuple[bytes, str]] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            found = routes.get(self.path.split("?")[0])
            body, kind = found or (b"not found", "text/plain")
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_HEAD = do_GET

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    marker = b"{BASE}"
    routes.update({path: (body.replace(marker, base.encode()), kind)
                   for path, (body, kind) in templates.items()})
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield base, feed_paths
    finally:
        httpd.shutdown()
        httpd.server_close()
