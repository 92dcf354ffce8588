"""Benchmark digestbot's extractive story summaries against published systems with ROUGE.

Usage: python bench/summarization.py [DATA_DIR]   (default: ../shared/evaldata)

Reads the real-world data under DATA_DIR/summarization (see its README.md), turns each cluster
into `records.Article` objects, calls `summarize_story` as the pipeline does and scores every
system with the same rouge-score settings: ROUGE-1/2/L/Lsum F-measure, Porter stemming, and for
Lsum a sentence split on ". " applied identically to every output. Not a test: prints tables only.
"""

from __future__ import annotations

import csv
import json
import re
import statistics
import sys
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rouge_score import rouge_scorer  # type: ignore[import-untyped]

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digestbot.records import Article
from digestbot.summarize import Summary, summarize_story

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata"
METRICS = ("rouge1", "rouge2", "rougeL", "rougeLsum")
NEUS_PUBLISHED = {"lexrank": (42.24, 18.16, 37.26), "neus": (39.09, 18.93, 35.53),
                  "bart_large_cnn": (38.22, 15.74, 34.42), "pegasus_multi": (35.33, 13.27, 31.03)}
MULTINEWS_UPSTREAM = {"lexrank": (37.5, 14.1, 17.3), "textrank": (37.7, 13.8, 17.6)}
MULTINEWS_PAPER = {"lexrank": (38.27, 12.70), "textrank": (38.44, 13.10)}
EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def score_outputs(outputs: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Take system outputs and references; return mean ROUGE F-measures in percent."""
    scorer = rouge_scorer.RougeScorer(list(METRICS), use_stemmer=True)
    totals = dict.fromkeys(METRICS, 0.0)
    for out, ref in zip(outputs, references, strict=True):
        scores = scorer.score("\n".join(ref.split(". ")), "\n".join(out.split(". ")))
        for metric in METRICS:
            totals[metric] += scores[metric].fmeasure
    return {m: 100 * v / len(outputs) for m, v in totals.items()}


def make_article(cluster: str, index: int, title: str, text: str) -> Article:
    """Take one source document; return it as the pipeline's Article record."""
    url = f"https://bench.invalid/{cluster}/{index}"
    return Article(url=url, link=url, guid=None, feed_url=f"https://bench.invalid/feed/{index}",
                   source=f"outlet-{index}", title=title, text=text, published=None,
                   first_seen=EPOCH + timedelta(minutes=index))


def load_neus(root: Path) -> tuple[list[list[Article]], list[str]]:
    """Take the NeuS folder; return its 307 clusters as Articles and the references."""
    lines = (root / "neus_test.source").read_text(encoding="utf-8").splitlines()
    clusters: list[list[Article]] = []
    for number, line in enumerate(lines):
        articles = []
        for index, part in enumerate(line.split("[SEP]")):
            match = re.match(r"\s*TITLE=>\s*(.*?)\s*ARTICLE=>\s*(.*)$", part, re.DOTALL)
            if match is None:
                raise ValueError(f"neus load failed: line {number + 1} part {index}: {part[:60]}")
            title = match.group(1).strip().removesuffix(".")
            articles.append(make_article(f"neus{number}", index, title, match.group(2).strip()))
        clusters.append(articles)
    references = [json.loads((root / "test_data" / f"test_{i}.json").read_text("utf-8"))["target"]
                  for i in range(len(clusters))]
    return clusters, references


def load_multinews(root: Path) -> tuple[dict[str, list[Article]], dict[str, str]]:
    """Take the Multi-News folder; return clusters (no titles in the data) and references."""
    csv.field_size_limit(1 << 30)
    clusters: dict[str, list[Article]] = {}
    references: dict[str, str] = {}
    with (root / "sample_100_seed42.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            docs = [d for d in row["document"].split("|||||") if d.strip()]
            articles = []
            for index, doc in enumerate(docs):
                paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", doc)]
                text = "\n\n".join(p for p in paragraphs if p)
                articles.append(make_article(f"mn{row['row_id']}", index, "", text))
            clusters[row["row_id"]] = articles
            references[row["row_id"]] = row["summary"]
    return clusters, references


def load_tsv_outputs(path: Path) -> dict[str, str]:
    """Take an upstream system-output TSV; return row_id -> generated summary."""
    with path.open(encoding="utf-8", newline="") as handle:
        return {r["row_id"]: r["generated_summary"] for r in csv.DictReader(handle, delimiter="\t")}


def words(texts: Iterable[str]) -> float:
    """Take texts; return their mean whitespace word count."""
    return statistics.mean(len(t.split()) for t in texts)


def print_row(name: str, scores: dict[str, float], length: float, published: str = "") -> None:
    """Take a system's scores; print one table row."""
    cells = "  ".join(f"{scores[m]:6.2f}" for m in METRICS)
    print(f"  {name:<36} {cells}  {length:7.1f}  {published}")


def print_header(title: str) -> None:
    """Take a table title; print it and the column names."""
    print(f"\n{title}")
    columns = "  ".join(f"{name:>6}" for name in ("R1", "R2", "RL", "RLsum"))
    print(f"  {'system':<36} {columns}  {'words':>7}  published")


def run_neus(root: Path) -> None:
    """Take the NeuS folder; print digestbot and the published outputs side by side."""
    clusters, refs = load_neus(root)
    started = time.perf_counter()
    summaries = [summarize_story(c, sentences=2) for c in clusters]
    elapsed = time.perf_counter() - started
    print_header(f"NeuS/AllSides test, {len(refs)} clusters (reference = title + 1-3 sentences)")
    for name, (r1, r2, rl) in NEUS_PUBLISHED.items():
        lines = (root / "system_outputs" / f"{name}.txt").read_text("utf-8").splitlines()
        outs = lines[: len(refs)]
        print_row(name, score_outputs(outs, refs), words(outs),
                  f"README: {r1} / {r2} / RLsum {rl}")
    systems = {
        "digestbot headline + 2 sentences": [headline_text(s) for s in summaries],
        "digestbot 2 sentences (no headline)": [s.text for s in summaries],
    }
    three = [summarize_story(c, sentences=3) for c in clusters]
    systems["digestbot headline + 3 sentences"] = [headline_text(s) for s in three]
    systems["digestbot 3 sentences (no headline)"] = [s.text for s in three]
    for name, outs in systems.items():
        print_row(name, score_outputs(outs, refs), words(outs))
    print(f"  (digestbot: {1000 * elapsed / len(clusters):.1f} ms per cluster)")


def headline_text(summary: Summary) -> str:
    """Take a Summary; return headline and sentences as one text, the way a digest shows them."""
    head = summary.headline.rstrip()
    if head and head[-1] not in ".!?":
        head += "."
    return " ".join(p for p in (head, summary.text) if p)


def run_multinews(root: Path) -> None:
    """Take the Multi-News folder; print digestbot vs upstream LexRank/TextRank at equal budgets."""
    clusters, refs = load_multinews(root)
    for name in ("lexrank", "textrank"):
        outputs = load_tsv_outputs(root / "system_outputs" / f"{name}_sample.tsv")
        ids = [i for i in refs if i in outputs]
        budget = round(words(outputs[i] for i in ids))
        print_header(f"Multi-News sample vs upstream {name} ({len(ids)} clusters with its output; "
                     f"reference {words(refs[i] for i in ids):.0f} words)")
        theirs = [outputs[i] for i in ids]
        r1, r2, rl = MULTINEWS_UPSTREAM[name]
        p1, p2 = MULTINEWS_PAPER[name]
        print_row(f"{name} (upstream output)", score_outputs(theirs, [refs[i] for i in ids]),
                  words(theirs), f"upstream scorer {r1}/{r2}/{rl}; paper {p1}/{p2}")
        started = time.perf_counter()
        ours = [summarize_story(clusters[i], sentences=40, max_words=budget).text for i in ids]
        elapsed = time.perf_counter() - started
        print_row(f"digestbot max_words={budget}", score_outputs(ours, [refs[i] for i in ids]),
                  words(ours))
        eleven = [summarize_story(clusters[i], sentences=11).text for i in ids]
        print_row("digestbot sentences=11", score_outputs(eleven, [refs[i] for i in ids]),
                  words(eleven))
        print(f"  (digestbot: {1000 * elapsed / len(ids):.1f} ms per cluster)")


def main(argv: Sequence[str]) -> int:
    """Take command-line arguments; run both benchmarks and return the exit status."""
    data = Path(argv[1]) if len(argv) > 1 else DEFAULT_DATA
    root = data / "summarization"
    if not root.is_dir():
        print(f"summarization bench failed: no data folder at {root}", file=sys.stderr)
        return 2
    print("ROUGE F-measure (%), rouge-score with Porter stemming; same settings for every system.")
    run_neus(root / "neus_allsides")
    run_multinews(root / "multinews_sample")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
