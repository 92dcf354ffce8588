"""`digestbot demo`: the whole pipeline on a bundled fictional news site served on loopback."""

from __future__ import annotations

import asyncio
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jinja2
import yaml
from markupsafe import escape

SITE = Path(__file__).parent / "demo_site"

DEMO_WATCHLIST = """\
name: demo-desk
digest:
  schedule: "07:30"
  max_stories: 10
  max_quotes: 2
deliver:
  - console: {}
topics:
  - name: Castavia-Velmar troop movements
    query: 'Castavia* AND (troop* OR brigade* OR border OR withdrawal)'
    alert: true
  - name: Dresna river talks
    query: '(Dresna OR "Port Anselm") AND (talks OR negotiat* OR delegation*)'
  - name: Rates and inflation
    query: '"central bank" OR inflation OR "interest rates"'
  - name: Tennis
    query: 'tennis OR Lindqvist'
"""


def build_site(base: str, now: datetime) -> dict[str, tuple[str, bytes]]:
    """Take the server's base URL and the time; return every path's content type and body."""
    news = yaml.safe_load((SITE / "news.yaml").read_text(encoding="utf-8"))
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(SITE), autoescape=True)
    routes: dict[str, tuple[str, bytes]] = {}
    items: dict[str, list[dict[str, Any]]] = {key: [] for key in news["outlets"]}
    for art in news["articles"]:
        outlet = news["outlets"][art["outlet"]] | {"key": art["outlet"]}
        when = (now - timedelta(hours=art["hours_ago"])).replace(microsecond=0)
        path = f"/{art['outlet']}/{when:%Y/%m/%d}/{art['slug']}"
        url = base + path
        page = env.get_template("page.html.j2").render(
            article=art, outlet=outlet, url=url, published_iso=when.isoformat(),
            published_human=f"{when:%d %B %Y, %H:%M} UTC")
        routes[path] = ("text/html; charset=utf-8", page.encode("utf-8"))
        content = None
        if outlet["carries"] == "content":
            content = "".join(f"<p>{escape(p)}</p>" for p in art["paragraphs"])
        items[art["outlet"]].append({
            "title": art["title"], "slug": art["slug"], "url": url, "summary": art["summary"],
            "content": content, "rfc822": format_datetime(when), "iso": when.isoformat()})
    for key, outlet in news["outlets"].items():
        fmt = outlet["format"]
        body = env.get_template(f"{fmt}.xml.j2").render(
            outlet=outlet | {"key": key}, base=base, items=items[key], updated=now.isoformat())
        kind = "application/atom+xml" if fmt == "atom" else "application/rss+xml"
        routes[f"/{key}/feed.xml"] = (f"{kind}; charset=utf-8", body.encode("utf-8"))
    return routes


@contextmanager
def serve_routes(routes: dict[str, tuple[str, bytes]]) -> Iterator[str]:
    """Serve path -> (content type, body) on 127.0.0.1; yield the base URL.

    `routes` is read on every request, so callers may fill it once they know the base URL.
    """

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            kind, body = routes.get(self.path.split("?")[0], ("text/plain", b""))
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@contextmanager
def serve_site(now: datetime) -> Iterator[str]:
    """Serve the demo site on 127.0.0.1; yield its base URL."""
    routes: dict[str, tuple[str, bytes]] = {}
    with serve_routes(routes) as base:
        routes.update(build_site(base, now))
        yield base


def write_demo_config(folder: Path, base: str) -> Path:
    """Write a config and a watchlist for the demo site into `folder`; return the config path."""
    news = yaml.safe_load((SITE / "news.yaml").read_text(encoding="utf-8"))
    feeds = [{"url": f"{base}/{key}/feed.xml", "name": o["name"]}
             for key, o in news["outlets"].items()]
    config = {"timezone": "Europe/London", "database": "sqlite:///demo.db",
              # The demo's article pages live on 127.0.0.1, so private addresses are allowed.
              "fetch": {"full_text": True, "allow_private": True},
              "feeds": feeds, "watchlists_dir": "watchlists"}
    (folder / "watchlists").mkdir(parents=True, exist_ok=True)
    (folder / "watchlists" / "demo-desk.yaml").write_text(DEMO_WATCHLIST, encoding="utf-8")
    path = folder / "digestbot.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def run_demo(*, html_path: Path) -> int:
    """Serve the sample, poll it into a temporary store, print the digest, write its HTML."""
    from digestbot.config import load_config
    from digestbot.pipeline import make_digest, poll
    from digestbot.render import render_digest
    from digestbot.store import Store

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="digestbot-demo-") as tmp, serve_site(now) as base:
        config = load_config(write_demo_config(Path(tmp), base), env={})
        with Store.open(config.database) as store:
            report = asyncio.run(poll(config, store))
            print(f"demo: served {len(config.feeds)} fictional feeds on {base}; polled "
                  f"{len(report.articles)} articles into {len(report.new_stories)} stories, "
                  f"{len(report.matches)} topic matches\n", file=sys.stderr)
            watchlist = config.watchlist("demo-desk")
            digest = make_digest(config, store, watchlist, now=datetime.now(UTC),
                                 since=now - timedelta(days=2))
        print(render_digest(digest, "text", templates_dir=None))
        html_path.write_text(render_digest(digest, "html", templates_dir=None), encoding="utf-8")
    print(f"\nHTML digest written to {html_path.resolve()}", file=sys.stderr)
    return 0
