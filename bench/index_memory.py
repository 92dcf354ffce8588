"""Memory of the same-story index over a long run (a benchmark, not a test).

Usage: python bench/index_memory.py [--days 120] [--per-day 300] [--every 20]

Feeds a `StoryIndex` (7-day window, as `digestbot run` keeps one for its whole life) with
`--per-day` fictional articles a day for `--days` simulated days, each day's events new (made
up by `feedserver.make_story`, a few outlets reporting each), plus one column that runs every
day and so forms a story that never ends. The index is pruned at the start of each day, as the
service prunes after every poll. Every `--every` days it prints the live stories and articles,
the vocabulary size, the process's resident memory and the CPU seconds of that stretch. A
bounded index keeps all of these flat once the first window is full.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from feedserver import make_story

from digestbot.cluster import StoryIndex
from digestbot.features import describe_article
from digestbot.records import Article

START = datetime(2031, 1, 5, 6, 0, tzinfo=UTC)
OUTLETS = ("Harbour Daily", "Northern Wire", "Meridian Post", "Coast Courier", "Valley Times")


def rss_mb() -> float:
    """Return this process's resident memory in MB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def make_day(day: int, per_day: int) -> list[Article]:
    """Take a day number and size; return that day's articles in published order."""
    rng = random.Random(day)
    out: list[Article] = []
    event = day * per_day
    while len(out) < per_day - 1:
        for outlet in rng.sample(OUTLETS, rng.choice((1, 1, 2, 3))):
            title, paragraphs = make_story(random.Random(f"{outlet}{event}"), event)
            when = START + timedelta(days=day, minutes=rng.randrange(24 * 60))
            url = f"https://{outlet.lower().replace(' ', '-')}.example/{day}/{event}"
            out.append(Article(url=url, link=url, guid=None, feed_url=url, source=outlet,
                               title=title, text="\n\n".join(paragraphs), published=when,
                               first_seen=when))
        event += 1
    out = out[:per_day - 1]
    column = START + timedelta(days=day, hours=7)
    out.append(Article(url=f"https://harbour-daily.example/tides/{day}", link="", guid=None,
                       feed_url="", source="Harbour Daily", title="Tides and harbour notices",
                       text="High water at Tollan quay, harbour notices and the ferry timetable "
                            "for the day, from the harbour master's office.",
                       published=column, first_seen=column))
    return sorted(out, key=lambda a: (a.when, a.url))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--days", type=int, default=120)
    p.add_argument("--per-day", type=int, default=300)
    p.add_argument("--every", type=int, default=20)
    args = p.parse_args()
    index = StoryIndex(window=timedelta(days=7))
    next_id = 1
    cpu = time.process_time()
    print(f"{'day':>4} {'stories':>8} {'articles':>9} {'terms':>8} {'RSS MB':>7} {'CPU s':>6}")
    for day in range(args.days):
        index.prune(START + timedelta(days=day))
        for article in make_day(day, args.per_day):
            features = describe_article(article)
            story = index.assign(article, features)
            if story is None:
                story, next_id = next_id, next_id + 1
            index.add(story, article, features)
        if (day + 1) % args.every == 0:
            # Private counts, so that this also runs against releases without `term_count`.
            stories = index._stories.values()
            members = sum(len(s.members) for s in stories)
            terms = len(index._vocab) - 2
            print(f"{day + 1:>4} {len(index):>8} {members:>9} {terms:>8} {rss_mb():>7.0f} "
                  f"{time.process_time() - cpu:>6.1f}")
            cpu = time.process_time()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
