"""End-to-end same-story clustering on BASIL and AllSides through the product's own CLI.

Usage: python bench/e2e_clustering.py [DATA_DIR] [--dataset basil|allsides|all] [--workdir DIR]

Each dataset is served as RSS feeds (one per outlet, full text in content:encoded) by
bench/harness.py, polled with `digestbot poll` and digested with `digestbot digest --format json`;
each JSON story's articles are one predicted cluster (an article in no story is a singleton).
B-cubed P/R/F1 and ARI against the gold events are printed beside the side-path figure
(bench/clustering.py's code on the same articles) and the references. Not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.clustering import (
    BCUBED,
    REFERENCE_F1,
    TARGET_F1,
    Labelled,
    cluster_articles,
    load_allsides,
    load_basil,
    score_ari,
    score_bcubed,
)
from bench.harness import BenchArticle, serve_and_digest

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata"
ORDER_NOTE = ("note: a poll places all of its new articles in stories in published order, "
              "across feeds (pipeline.poll).")


def to_bench(name: str, items: list[Labelled]) -> list[BenchArticle]:
    """Take labelled articles; return them as BenchArticles keyed by their position."""
    return [BenchArticle(id=str(i), source=lab.article.source, title=lab.article.title,
                         text=lab.article.text, published=lab.article.when,
                         url_path=f"/{name}/{i}.html")
            for i, lab in enumerate(items)]


def predicted_labels(stories: list[list[str]], count: int) -> tuple[list[int], int]:
    """Take story article ids and the article count; return a cluster id per article, missing."""
    pred = [-1] * count
    for number, ids in enumerate(stories):
        for article_id in ids:
            pred[int(article_id)] = number
    missing = 0
    for i, value in enumerate(pred):
        if value == -1:  # in no story: a singleton of its own
            missing += 1
            pred[i] = len(stories) + i
    return pred, missing


def run_dataset(name: str, items: list[Labelled], workdir: Path) -> None:
    """Take one dataset; run it end to end and on the side path, print both scores."""
    gold = [lab.label for lab in items]
    run = serve_and_digest(to_bench(name, items), workdir=workdir / name)
    pred, missing = predicted_labels(run["stories"], len(items))
    p, r, f1 = score_bcubed(gold, pred)
    side = cluster_articles(items)
    sp, sr, sf1 = score_bcubed(gold, side)
    t = run["timings"]
    print(f"{name}: {len(items)} articles, {len(set(gold))} gold stories")
    print(f"  e2e (CLI poll + digest JSON): {len(set(pred))} predicted  B-cubed P={p:.3f} "
          f"R={r:.3f} F1={f1:.3f}  ARI={score_ari(gold, pred):.3f}")
    print(f"  side path (bench/clustering.py code): {len(set(side))} predicted  B-cubed "
          f"P={sp:.3f} R={sr:.3f} F1={sf1:.3f}  ARI={score_ari(gold, side):.3f}")
    print(f"  reference TF-IDF+avg-link, tuned threshold: {REFERENCE_F1[name]:.3f}; "
          f"target >= {TARGET_F1[name]:.2f}")
    print(f"  articles in no digest story: {missing}; unmapped URLs: {len(run['unmapped_urls'])}; "
          f"clustering.window_days={run['window_days']}")
    print(f"  {run['poll_output']}")
    print(f"  time: serve {t['serve_s']:.1f} s, poll {t['poll_s']:.1f} s, "
          f"digest {t['digest_s']:.1f} s (wall, subprocesses included)")


def main(argv: list[str] | None = None) -> int:
    """Take command-line arguments, run the benchmark and return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--dataset", choices=("basil", "allsides", "all"), default="all")
    parser.add_argument("--workdir", type=Path, help="keep config and database here")
    args = parser.parse_args(argv)
    loaders: dict[str, Callable[[Path], list[Labelled]]] = {
        "basil": load_basil, "allsides": load_allsides}
    print(BCUBED)
    print(ORDER_NOTE)
    names = ["basil", "allsides"] if args.dataset == "all" else [args.dataset]
    with tempfile.TemporaryDirectory(prefix="digestbot-e2e-") as tmp:
        workdir = args.workdir or Path(tmp)
        for name in names:
            run_dataset(name, loaders[name](args.data), workdir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
