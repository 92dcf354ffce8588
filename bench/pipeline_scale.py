"""Throughput of extraction, matching and clustering at 1x and Nx the articles (not a test).

Usage: python bench/pipeline_scale.py [DATA_DIR] [--scale 10]

Reads BASIL (DATA_DIR/clustering/basil/articles/**.json, default ../shared/evaldata from the repo
root): 300 full articles. Each article's paragraphs are wrapped in a plain news page, which
`extract_article_text` cleans; the text is matched against a few topic queries; articles go
through `StoryIndex` in date order as the pipeline feeds them. The Nx run replicates the articles
with new URLs and dates shifted past the previous copy. Prints seconds and articles/s per stage
and the Nx/1x time ratio (linear growth = N).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html import escape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digestbot.cluster import StoryIndex
from digestbot.extract import extract_article_text
from digestbot.match import match_document, parse_query, tokenize_document
from digestbot.records import Article

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata"
QUERIES = ('(Trump OR Obama) AND (tax* OR budget OR "health care")',
           'immigra* OR border OR asylum', '"Supreme Court" OR justice* NOT basketball',
           'Russia* OR Ukraine OR Putin', '*')


def load_pages(root: Path) -> list[tuple[Article, str]]:
    """Take the data folder; return BASIL articles (text empty) with a page of their paragraphs."""
    out: list[tuple[Article, str]] = []
    for path in sorted((root / "clustering" / "basil" / "articles").glob("**/*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        paragraphs = [" ".join(p) for p in raw["body-paragraphs"] if p]
        when = datetime.fromisoformat(raw["date"]).replace(tzinfo=UTC)
        url = raw.get("url") or f"https://basil.example/{raw['uuid']}"
        title = raw.get("title") or ""
        page = (f"<!doctype html><html><head><title>{escape(title)}</title></head><body>"
                "<nav><a href='/'>Home</a> <a href='/politics'>Politics</a></nav><article>"
                f"<h1>{escape(title)}</h1>" + "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
                + "</article><footer>Copyright notice. Subscribe to our newsletter.</footer>"
                "</body></html>")
        article = Article(url=url, link=url, guid=raw.get("uuid"), feed_url="bench:basil",
                          source=str(raw.get("source", "")).lower(), title=title, text="",
                          published=when, first_seen=when)
        out.append((article, page))
    out.sort(key=lambda pair: pair[0].when)
    return out


def replicate(items: list[tuple[Article, str]], copies: int) -> list[tuple[Article, str]]:
    """Take dated articles; return `copies` replicas with new URLs, each dated after the last."""
    span = items[-1][0].when - items[0][0].when + timedelta(days=30)
    out: list[tuple[Article, str]] = []
    for k in range(copies):
        for article, page in items:
            url = f"{article.url}#copy{k}"
            out.append((replace(article, url=url, link=url, guid=f"{article.guid}-{k}",
                                published=article.when + span * k,
                                first_seen=article.first_seen + span * k), page))
    return out


def run_stages(items: list[tuple[Article, str]]) -> dict[str, float]:
    """Take articles with pages; run extraction, matching and clustering; return CPU s per stage."""
    seconds: dict[str, float] = {}
    t0 = time.process_time()
    articles = [replace(a, text=extract_article_text(page, a.url)) for a, page in items]
    seconds["extract"] = time.process_time() - t0

    queries = [parse_query(q) for q in QUERIES]
    t0 = time.process_time()
    hits = 0
    for a in articles:
        doc = tokenize_document(a.title, a.text)
        hits += sum(match_document(q, doc) is not None for q in queries)
    seconds["match"] = time.process_time() - t0

    t0 = time.process_time()
    index = StoryIndex()
    next_id, day = 1, None
    for a in articles:
        today = a.when.date()
        if today != day:
            day = today
            index.prune(a.when)
        story = index.assign(a)
        if story is None:
            story, next_id = next_id, next_id + 1
        index.add(story, a)
    seconds["cluster"] = time.process_time() - t0
    seconds["stories"] = next_id - 1
    seconds["matches"] = hits
    return seconds


def main() -> int:
    """Parse arguments, time both sizes, print the table; return an exit code."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    p.add_argument("--scale", type=int, default=10)
    args = p.parse_args()
    items = load_pages(args.data)
    if not items:
        raise SystemExit(f"no BASIL articles under {args.data}/clustering/basil/articles")
    small = run_stages(items)
    big = run_stages(replicate(items, args.scale))
    n, m = len(items), len(items) * args.scale
    print(f"BASIL: {n} articles at 1x, {m} at {args.scale}x; CPU seconds (process_time)")
    print(f"{'stage':8} {'1x s':>8} {'1x art/s':>9} {f'{args.scale}x s':>8} "
          f"{f'{args.scale}x art/s':>10} {'ratio':>6}  (linear = {args.scale})")
    for stage in ("extract", "match", "cluster"):
        a, b = small[stage], big[stage]
        print(f"{stage:8} {a:8.2f} {n / a:9.0f} {b:8.2f} {m / b:10.0f} {b / a:6.1f}")
    total_a = sum(small[s] for s in ("extract", "match", "cluster"))
    total_b = sum(big[s] for s in ("extract", "match", "cluster"))
    print(f"{'total':8} {total_a:8.2f} {n / total_a:9.0f} {total_b:8.2f} {m / total_b:10.0f} "
          f"{total_b / total_a:6.1f}")
    print(f"stories: {small['stories']:.0f} at 1x, {big['stories']:.0f} at {args.scale}x; "
          f"topic matches: {small['matches']:.0f}, {big['matches']:.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
