"""CPU time of same-story clustering on the poll bench's articles (a benchmark, not a test).

Usage: python bench/cluster_speed.py [--feeds 300] [--items 40] [--repeat 3] [--profile N]

Builds the articles a first `bench/poll.py` poll stores: `feedserver.build_feed` generates each
feed, `feeds.parse_feed` parses it and `extract.html_to_text` turns each item's
`content:encoded` into text, as the poll does (`full_text: false`). The articles are then placed
as `pipeline.place_articles` does on an empty store: sorted by (published, url), each one
`StoryIndex.assign`ed and `add`ed to its story or a new one, with features described beforehand
(the poll's workers describe each article as they read its feed). Only that loop is timed.
Prints CPU seconds (best of --repeat), articles/s, the number of stories and a fingerprint of
the partition (the same fingerprint means the same articles grouped the same way). --profile N
prints the N most expensive functions of one more run (cProfile, cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from feedserver import build_feed, host_address

from digestbot.cluster import StoryIndex
from digestbot.extract import html_to_text
from digestbot.features import ArticleFeatures, describe_article
from digestbot.feeds import parse_feed
from digestbot.records import Article
from digestbot.urls import canonicalize_url

# A fixed poll time: the articles, their order and so the fingerprint do not depend on the clock.
POLLED = datetime(2031, 5, 6, 12, 0, tzinfo=UTC)


def make_articles(feeds: int, items: int) -> list[Article]:
    """Take the bench sizes; return the first poll's articles in the order they are placed."""
    newest = POLLED - timedelta(minutes=1)
    articles: list[Article] = []
    for i in range(feeds):
        url = f"http://{host_address(i, 30)}:8080/feed/{i}.xml"
        doc, _ = build_feed(i, items, base=url.rsplit("/feed/", 1)[0], pages=False, newest=newest)
        parsed = parse_feed(doc, url=url, content_type="application/rss+xml; charset=utf-8")
        for entry in parsed.entries:
            link = entry.link or ""
            published = entry.published if entry.published is None else min(entry.published,
                                                                             POLLED)
            articles.append(Article(
                url=canonicalize_url(link), link=link, guid=entry.guid, feed_url=url,
                source=parsed.title or url, title=entry.title,
                text=html_to_text(entry.content_html or entry.summary_html),
                published=published, first_seen=POLLED))
    return sorted(articles, key=lambda a: (a.when, a.url))


def place_all(articles: list[Article], described: list[ArticleFeatures]) -> list[int]:
    """Take articles in order and their features; assign and add each as the pipeline does;
    return story ids."""
    index = StoryIndex(now=POLLED, window=timedelta(days=7))
    provisional = 0
    out: list[int] = []
    for article, features in zip(articles, described, strict=True):
        story_id = index.assign(article, features)
        if story_id is None:
            provisional -= 1
            story_id = provisional
        index.add(story_id, article, features)
        out.append(story_id)
    return out


def fingerprint_partition(articles: list[Article], story_ids: list[int]) -> str:
    """Take articles and their story ids; return a short hash of the grouping, ids ignored."""
    first: dict[int, str] = {}
    lines = [f"{a.url} {first.setdefault(sid, a.url)}"
             for a, sid in zip(articles, story_ids, strict=True)]
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


def main() -> int:
    """Parse arguments, time the clustering and print the figures; return an exit code."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--feeds", type=int, default=300)
    p.add_argument("--items", type=int, default=40)
    p.add_argument("--repeat", type=int, default=3, help="timed runs; the best is reported")
    p.add_argument("--profile", type=int, default=0, help="print the N costliest functions")
    args = p.parse_args()
    articles = make_articles(args.feeds, args.items)
    times: list[float] = []
    ids: list[int] = []
    # The poll's workers describe each article while reading its feed; only placing is timed.
    described = [describe_article(a) for a in articles]
    for _ in range(args.repeat):
        start = time.process_time()
        ids = place_all(articles, described)
        times.append(time.process_time() - start)
    best = min(times)
    mark = fingerprint_partition(articles, ids)
    print(f"{len(articles)} articles -> {len(set(ids))} stories; partition {mark}")
    print(f"assign+add CPU s: best {best:.2f} of {', '.join(f'{t:.2f}' for t in times)}; "
          f"{len(articles) / best:.0f} articles/s")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(place_all, articles, described)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.profile)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
