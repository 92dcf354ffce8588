"""Benchmark of same-story clustering on BASIL and AllSides (a benchmark, not a test).

Usage: python bench/clustering.py [DATA_DIR] [--dataset basil|allsides|all] [--split all|dev|test]
       [--scale N] [--dense HOURS]

--dense re-dates the stories so that one starts every HOURS hours (keeping each article's offset
from its story's first article): many unrelated and same-topic stories then share the window,
which tests precision far harder than the real dates do.

Articles are built as `records.Article` and fed to `StoryIndex` in chronological order exactly
as the pipeline does (assign, else a new story id; then add), with `prune` at each new day.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digestbot.cluster import StoryIndex
from digestbot.records import Article

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata"
REFERENCE_F1 = {"basil": 0.934, "allsides": 0.756}
TARGET_F1 = {"basil": 0.95, "allsides": 0.85}
# Dev/test split by date, so a setting tuned on the dev half is judged on unseen later events.
SPLIT_DATE = {"basil": datetime(2015, 1, 1, tzinfo=UTC),
              "allsides": datetime(2021, 7, 15, tzinfo=UTC)}
BCUBED = ("B-cubed: for each article, precision = |its predicted cluster ∩ its gold cluster| / "
          "|predicted cluster| and recall = ... / |gold cluster|; P and R are averaged over "
          "articles and F1 = 2PR/(P+R).")


@dataclass(frozen=True, slots=True)
class Labelled:
    """An article and its gold story label."""

    article: Article
    label: str


def load_basil(root: Path) -> list[Labelled]:
    """Take the evaldata folder and return BASIL articles sorted by (date, uuid)."""
    items: list[tuple[datetime, str, Labelled]] = []
    for path in sorted((root / "clustering" / "basil" / "articles").glob("*/*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        when = datetime.fromisoformat(raw["date"]).replace(tzinfo=UTC)
        paragraphs = [" ".join(s.strip() for s in p) for p in raw["body-paragraphs"]]
        source = str(raw["source"]).lower()
        article = Article(
            url=raw["url"], link=raw["url"], guid=raw["uuid"], feed_url=f"bench://basil/{source}",
            source=source, title=raw["title"], text="\n\n".join(p for p in paragraphs if p),
            published=when, first_seen=when)
        items.append((when, raw["uuid"], Labelled(article, raw["triplet-uuid"])))
    return [lab for _, _, lab in sorted(items, key=lambda x: (x[0], x[1]))]


def load_allsides(root: Path) -> list[Labelled]:
    """Take the evaldata folder and return AllSides articles sorted by (date, story, side)."""
    path = root / "clustering" / "allsides_neus" / "allsides_crawled_2021-10-19.jsonl"
    items: list[tuple[datetime, int, int, Labelled]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        when = datetime.fromisoformat(raw["date"]).astimezone(UTC)
        for side_no, side in enumerate(("left", "center", "right")):
            news = raw["news"].get(side)
            if not news:
                continue
            source = news["newsSource"]
            article = Article(
                url=news["newsLink"], link=news["newsLink"], guid=None,
                feed_url=f"bench://allsides/{source}", source=source, title=news["newsTitle"],
                text="\n\n".join(p.strip() for p in news["newBody"] if p.strip()),
                published=when, first_seen=when)
            items.append((when, int(raw["id"]), side_no, Labelled(article, str(raw["id"]))))
    return [lab for *_, lab in sorted(items, key=lambda x: (x[0], x[1], x[2]))]


def replicate(items: list[Labelled], copies: int) -> list[Labelled]:
    """Take labelled articles and return `copies` replicas, each shifted past the last."""
    span = items[-1].article.when - items[0].article.when + timedelta(days=30)
    out: list[Labelled] = []
    for k in range(copies):
        shift = span * k
        for lab in items:
            a = lab.article
            out.append(Labelled(replace(
                a, url=f"{a.url}#r{k}", link=f"{a.link}#r{k}",
                published=a.when + shift, first_seen=a.first_seen + shift), f"{lab.label}#r{k}"))
    return out


def densify(items: list[Labelled], hours: float) -> list[Labelled]:
    """Take labelled articles and return them re-dated so a story starts every `hours` hours."""
    first: dict[str, datetime] = {}
    for lab in items:
        first.setdefault(lab.label, lab.article.when)
    base = items[0].article.when
    start = {label: base + timedelta(hours=hours * k) for k, label in enumerate(first)}
    out = []
    for lab in items:
        when = start[lab.label] + (lab.article.when - first[lab.label])
        out.append(Labelled(replace(lab.article, published=when, first_seen=when), lab.label))
    return sorted(out, key=lambda lab: lab.article.when)


def cluster_articles(items: list[Labelled]) -> list[int]:
    """Take articles in arrival order and return each one's story id, as the pipeline would."""
    index = StoryIndex()
    next_id = 1
    day: datetime | None = None
    out: list[int] = []
    for lab in items:
        a = lab.article
        today = a.when.replace(hour=0, minute=0, second=0, microsecond=0)
        if day != today:
            day = today
            index.prune(a.when)
        sid = index.assign(a)
        if sid is None:
            sid, next_id = next_id, next_id + 1
        index.add(sid, a)
        out.append(sid)
    return out


def score_bcubed(gold: list[str], pred: list[int]) -> tuple[float, float, float]:
    """Take gold labels and predicted ids and return B-cubed precision, recall and F1."""
    pair = Counter(zip(gold, pred, strict=True))
    gsize, psize = Counter(gold), Counter(pred)
    p = sum(pair[(g, c)] / psize[c] for g, c in zip(gold, pred, strict=True)) / len(gold)
    r = sum(pair[(g, c)] / gsize[g] for g, c in zip(gold, pred, strict=True)) / len(gold)
    return p, r, 2 * p * r / (p + r)


def score_ari(gold: list[str], pred: list[int]) -> float:
    """Take gold labels and predicted ids and return the adjusted Rand index."""
    def pairs(n: int) -> float:
        return n * (n - 1) / 2
    index = sum(pairs(n) for n in Counter(zip(gold, pred, strict=True)).values())
    a = sum(pairs(n) for n in Counter(gold).values())
    b = sum(pairs(n) for n in Counter(pred).values())
    expected = a * b / pairs(len(gold))
    top = (a + b) / 2 - expected
    return 1.0 if top == 0 else (index - expected) / top


def split_items(items: list[Labelled], name: str, split: str) -> list[Labelled]:
    """Take articles and return the dev (before the split date), test or all of them."""
    if split == "all":
        return items
    cut = SPLIT_DATE[name]
    first: dict[str, datetime] = {}
    for lab in items:
        first.setdefault(lab.label, lab.article.when)
    return [lab for lab in items if (first[lab.label] < cut) == (split == "dev")]


def run_dataset(name: str, items: list[Labelled], scale: int) -> None:
    """Take one dataset's articles and print its scores, speed and 1x vs Nx timing."""
    gold = [lab.label for lab in items]
    start, cpu = time.perf_counter(), time.process_time()
    pred = cluster_articles(items)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    p, r, f1 = score_bcubed(gold, pred)
    stories = len(set(pred))
    print(f"{name}: {len(items)} articles, {len(set(gold))} gold stories, {stories} predicted")
    print(f"  B-cubed P={p:.3f} R={r:.3f} F1={f1:.3f}  ARI={score_ari(gold, pred):.3f}"
          f"   (reference TF-IDF+avg-link, tuned threshold: {REFERENCE_F1[name]:.3f};"
          f" target >= {TARGET_F1[name]:.2f})")
    print(f"  {len(items) / cpu:.0f} articles/s of CPU time "
          f"({cpu:.2f} s CPU, {elapsed:.2f} s wall)")
    if scale > 1:
        big = replicate(items, scale)
        start, big_cpu = time.perf_counter(), time.process_time()
        big_pred = cluster_articles(big)
        big_elapsed, big_cpu = time.perf_counter() - start, time.process_time() - big_cpu
        bf1 = score_bcubed([lab.label for lab in big], big_pred)[2]
        print(f"  {scale}x ({len(big)} articles): {big_cpu:.2f} s CPU ({big_elapsed:.2f} s wall), "
              f"CPU ratio {big_cpu / cpu:.1f} (linear = {scale}), F1={bf1:.3f}")


def main(argv: list[str] | None = None) -> int:
    """Take command-line arguments, run the benchmark and return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--dataset", choices=("basil", "allsides", "all"), default="all")
    parser.add_argument("--split", choices=("all", "dev", "test"), default="all")
    parser.add_argument("--scale", type=int, default=10, help="replicas for the timing check")
    parser.add_argument("--dense", type=float, default=0.0,
                        help="re-date stories to start every HOURS hours (stress test)")
    args = parser.parse_args(argv)
    loaders: dict[str, Callable[[Path], list[Labelled]]] = {
        "basil": load_basil, "allsides": load_allsides}
    print(BCUBED)
    names = ["basil", "allsides"] if args.dataset == "all" else [args.dataset]
    for name in names:
        items = split_items(loaders[name](args.data), name, args.split)
        if args.dense > 0:
            items = densify(items, args.dense)
            print(f"(dense: one story every {args.dense:g} h)")
        run_dataset(name, items, args.scale)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
