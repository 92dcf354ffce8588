"""End-to-end story summaries on NeuS and Multi-News through the product's own CLI, with ROUGE.

Usage: python bench/e2e_summaries.py [DATA_DIR] [--dataset neus|multinews|all] [--spacing HOURS]
       [--workdir DIR]

Each gold cluster's articles are served as RSS feed items, one source per article position
(outlet-0, outlet-1, ...), full text in content:encoded. The data has no dates, so cluster k is
published at a fixed epoch + k * HOURS (default 8 h, about AllSides' real rate of 2.8 stories a
day) and its j-th article 30 minutes after the (j-1)-th. `digestbot poll` then clusters them on
its own and `digestbot digest --format json` summarises. Each gold cluster is scored against the
JSON story holding most of its articles (ties: the story with fewer other articles, then the
first listed); a cluster is "exact" when that story holds its articles and no others.
NeuS outputs are headline + summary, as bench/summarization.py scores them (the NeuS reference is
a title plus 1-3 sentences); Multi-News (no titles) scores the summary alone. ROUGE settings are
bench/summarization.py's (`score_outputs`). Not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import BenchArticle, serve_and_digest
from bench.summarization import (
    MULTINEWS_UPSTREAM,
    NEUS_PUBLISHED,
    headline_text,
    load_multinews,
    load_neus,
    load_tsv_outputs,
    print_header,
    print_row,
    score_outputs,
    words,
)
from digestbot.records import Article
from digestbot.summarize import summarize_story

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata"
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def to_bench(name: str, clusters: Sequence[Sequence[Article]],
             spacing: timedelta) -> tuple[list[BenchArticle], list[list[str]]]:
    """Take gold clusters; return their articles as BenchArticles and each cluster's ids."""
    out: list[BenchArticle] = []
    ids: list[list[str]] = []
    for k, cluster in enumerate(clusters):
        ids.append([])
        for j, a in enumerate(cluster):
            article_id = f"{k}.{j}"
            ids[-1].append(article_id)
            out.append(BenchArticle(
                id=article_id, source=f"outlet-{j}", title=a.title, text=a.text,
                published=EPOCH + spacing * k + timedelta(minutes=30 * j),
                url_path=f"/{name}/{k}/{j}.html"))
    return out, ids


def pick_stories(digest: Mapping[str, Any], url_to_id: Mapping[str, str],
                 gold: Sequence[Sequence[str]]) -> tuple[list[dict[str, Any] | None], int]:
    """Take a JSON digest and gold clusters; return each cluster's best story and exact count."""
    stories = [s for t in digest["topics"] for s in t["stories"]]
    holder: dict[str, int] = {}
    for n, story in enumerate(stories):
        for article in story["articles"]:
            holder[url_to_id[article["url"]]] = n
    picked: list[dict[str, Any] | None] = []
    exact = 0
    for ids in gold:
        votes = Counter(holder[i] for i in ids if i in holder)
        if not votes:
            picked.append(None)
            continue
        best = min(votes, key=lambda n: (-votes[n], len(stories[n]["articles"]), n))
        picked.append(stories[best])
        exact += votes[best] == len(ids) == len(stories[best]["articles"])
    return picked, exact


def story_text(story: Mapping[str, Any] | None, *, headline: bool) -> str:
    """Take a JSON story (or None); return its summary, after its headline when asked."""
    if story is None:
        return ""
    head = str(story["headline"]).rstrip()
    if headline and head and head[-1] not in ".!?":
        head += "."
    return " ".join(p for p in ((head if headline else ""), str(story["summary"])) if p)


def run_neus(root: Path, workdir: Path, spacing: timedelta) -> None:
    """Take the NeuS folder; print e2e, side-path and published-system ROUGE side by side."""
    clusters, refs = load_neus(root)
    articles, gold = to_bench("neus", clusters, spacing)
    run = serve_and_digest(articles, workdir=workdir / "neus", summary_sentences=(2, 3))
    print_header(f"NeuS/AllSides test, {len(refs)} clusters, {len(articles)} articles "
                 f"(reference = title + 1-3 sentences)")
    lexrank = (root / "system_outputs" / "lexrank.txt").read_text("utf-8").splitlines()[:len(refs)]
    r1, r2, rl = NEUS_PUBLISHED["lexrank"]
    print_row("lexrank (published output)", score_outputs(lexrank, refs), words(lexrank),
              f"README: {r1} / {r2} / RLsum {rl}")
    for n in (2, 3):
        side = [headline_text(summarize_story(c, sentences=n)) for c in clusters]
        print_row(f"side path headline + {n} sentences", score_outputs(side, refs), words(side))
        picked, _ = pick_stories(run["digests"][n], run["url_to_id"], gold)
        for headline in (True, False):
            outs = [story_text(s, headline=headline) for s in picked]
            label = f"e2e {'headline + ' if headline else ''}{n} sentences"
            print_row(label + ("" if headline else " (no headline)"),
                      score_outputs(outs, refs), words(outs))
    print_purity(run["digests"][2], run["url_to_id"], gold, run["poll_output"],
                 run["timings"]["poll_s"], run["timings"]["digest_s"])


def run_multinews(root: Path, workdir: Path, spacing: timedelta) -> None:
    """Take the Multi-News folder; print e2e (11 sentences) beside the side path and LexRank."""
    by_id, ref_by_id = load_multinews(root)
    lexrank = load_tsv_outputs(root / "system_outputs" / "lexrank_sample.tsv")
    keys = [k for k in ref_by_id if k in lexrank]
    clusters = [by_id[k] for k in keys]
    refs = [ref_by_id[k] for k in keys]
    articles, gold = to_bench("multinews", clusters, spacing)
    run = serve_and_digest(articles, workdir=workdir / "multinews", summary_sentences=11)
    print_header(f"Multi-News sample, {len(keys)} clusters with upstream LexRank output, "
                 f"{len(articles)} articles (summary only: the data has no titles)")
    theirs = [lexrank[k] for k in keys]
    r1, r2, rl = MULTINEWS_UPSTREAM["lexrank"]
    print_row("lexrank (upstream output)", score_outputs(theirs, refs), words(theirs),
              f"upstream scorer {r1}/{r2}/{rl}")
    side = [summarize_story(c, sentences=11).text for c in clusters]
    print_row("side path sentences=11", score_outputs(side, refs), words(side))
    picked, _ = pick_stories(run["digest"], run["url_to_id"], gold)
    outs = [story_text(s, headline=False) for s in picked]
    print_row("e2e summary_sentences=11", score_outputs(outs, refs), words(outs))
    print_purity(run["digest"], run["url_to_id"], gold, run["poll_output"],
                 run["timings"]["poll_s"], run["timings"]["digest_s"])
    # Same word budget as each published system, through the watchlist's `summary_words`.
    for name, budget in (("lexrank", round(words(theirs))), ("textrank", None)):
        if budget is None:
            textrank = load_tsv_outputs(root / "system_outputs" / "textrank_sample.tsv")
            other = [textrank[k] for k in keys if k in textrank]
            if len(other) != len(keys):
                continue
            print_row("textrank (upstream output)", score_outputs(other, refs), words(other))
            budget = round(words(other))
        run = serve_and_digest(articles, workdir=workdir / f"multinews-{name}",
                               summary_sentences=40, summary_words=budget)
        picked, _ = pick_stories(run["digest"], run["url_to_id"], gold)
        outs = [story_text(s, headline=False) for s in picked]
        print_row(f"e2e summary_words={budget} (= {name})", score_outputs(outs, refs),
                  words(outs))


def print_purity(digest: Mapping[str, Any], url_to_id: Mapping[str, str],
                 gold: Sequence[Sequence[str]], poll_output: str, poll_s: float,
                 digest_s: float) -> None:
    """Take a digest and gold clusters; print how well the product's stories match them."""
    picked, exact = pick_stories(digest, url_to_id, gold)
    missing = sum(1 for s in picked if s is None)
    print(f"  e2e stories: {digest['story_count']} for {len(gold)} gold clusters; "
          f"{exact} clusters exactly one story; {missing} clusters in no story")
    print(f"  {poll_output}; poll {poll_s:.1f} s, digests {digest_s:.1f} s (wall)")


def main(argv: list[str] | None = None) -> int:
    """Take command-line arguments, run the benchmark and return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--dataset", choices=("neus", "multinews", "all"), default="all")
    parser.add_argument("--spacing", type=float, default=8.0,
                        help="hours between the publication of consecutive clusters")
    parser.add_argument("--workdir", type=Path, help="keep configs and databases here")
    args = parser.parse_args(argv)
    root = args.data / "summarization"
    spacing = timedelta(hours=args.spacing)
    print("ROUGE F-measure (%), rouge-score with Porter stemming; same settings for every system.")
    with tempfile.TemporaryDirectory(prefix="digestbot-e2e-") as tmp:
        workdir = args.workdir or Path(tmp)
        if args.dataset in ("neus", "all"):
            run_neus(root / "neus_allsides", workdir, spacing)
        if args.dataset in ("multinews", "all"):
            run_multinews(root / "multinews_sample", workdir, spacing)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
