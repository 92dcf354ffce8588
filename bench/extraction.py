"""Benchmark article-text extraction: plain trafilatura against digestbot's extract_article_text.

Usage: python bench/extraction.py [DATA_DIR]   (default: ../shared/evaldata from the repo root)

1. Scrapinghub/Zyte Article Extraction Benchmark (extraction/scrapinghub_aeb): 4-gram shingle
   F1/P/R as upstream evaluate.py computes it; the scorer is first checked on the bundled
   baseline outputs against the published figures.
2. trafilatura's own evaluation subset (extraction/trafilatura_eval): share of "with" segments
   found and "without" segments absent, micro-averaged P/R/accuracy/F1 as upstream eval_common.py.
This is a benchmark, not a test: it prints figures and asserts nothing about them.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import trafilatura

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digestbot.extract import extract_article_text

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata"
PUBLISHED = {  # F1 / P / R from the AEB README (upstream README, latest run)
    "trafilatura": (0.958, 0.938, 0.978),
    "readability": (0.922, 0.913, 0.931),
    "newspaper": (0.949, 0.964, 0.934),
    "html-text": (0.665, 0.500, 0.994),
}
_TOKEN = re.compile(r"\w+")

Extractor = Callable[[bytes], str]


def make_shingles(text: str, n: int = 4) -> Counter[tuple[str, ...]]:
    """Take a text and return the multiset of its n-token shingles (one short one if fewer)."""
    tokens = _TOKEN.findall(text or "")
    return Counter(tuple(tokens[i:i + n]) for i in range(max(1, len(tokens) - n + 1))
                   if tokens[i:i + n])


def count_shingles(true: str, pred: str) -> tuple[float, float, float]:
    """Take reference and prediction and return TP/FP/FN over shingles, normalised to sum 1."""
    ref, out = make_shingles(true), make_shingles(pred)
    tp = sum((ref & out).values())
    fp = sum((out - ref).values())
    fn = sum((ref - out).values())
    total = tp + fp + fn
    return (tp / total, fp / total, fn / total) if total else (0.0, 0.0, 0.0)


def score_precision(tp: float, fp: float, fn: float) -> float:
    """Take one document's counts and return its precision with the upstream special cases."""
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == 0 else tp / (tp + fp)


def score_recall(tp: float, fp: float, fn: float) -> float:
    """Take one document's counts and return its recall with the upstream special cases."""
    if fp == fn == 0:
        return 1.0
    return 0.0 if tp == 0 else tp / (tp + fn)


def score_aeb(truth: dict[str, str], predicted: dict[str, str]) -> tuple[float, float, float]:
    """Take reference and predicted bodies by item id and return (F1, precision, recall)."""
    counts = [count_shingles(truth[k], predicted.get(k, "")) for k in truth]
    precision = statistics.mean(score_precision(*c) for c in counts if c[0] + c[1] > 0)
    recall = statistics.mean(score_recall(*c) for c in counts if c[0] + c[2] > 0)
    return 2 * precision * recall / (precision + recall), precision, recall


def load_baseline(path: Path) -> dict[str, str]:
    """Take a bundled baseline output file and return article bodies by item id."""
    data = json.loads(gzip.decompress(path.read_bytes()))
    if "output" in data and "version" in data:
        data = data["output"]
    return {k: (v or {}).get("articleBody") or "" for k, v in data.items()}


def run_extractor(extract: Extractor, pages: dict[str, bytes]) -> tuple[dict[str, str], float]:
    """Take an extractor and pages and return its outputs (crash = "") and pages per second."""
    out: dict[str, str] = {}
    start = time.perf_counter()
    for key, page in pages.items():
        try:
            out[key] = extract(page) or ""
        except Exception:  # a crash scores as a miss, as upstream does
            out[key] = ""
    return out, len(pages) / (time.perf_counter() - start)


def normalize_ws(text: str) -> str:
    """Take text and return it whitespace-normalised as upstream eval_common.norm does."""
    return re.sub(r"\s+", " ", text).strip()


def score_segments(items: dict[str, dict[str, list[str]]],
                   predicted: dict[str, str]) -> dict[str, float]:
    """Take with/without annotations and outputs and return micro-averaged segment scores."""
    tp = fp = fn = tn = 0
    for key, item in items.items():
        text = normalize_ws(predicted.get(key, ""))
        found = sum(1 for w in item["with"] if normalize_ws(w) in text)
        leaked = sum(1 for w in item["without"] if normalize_ws(w) in text)
        tp, fn = tp + found, fn + len(item["with"]) - found
        fp, tn = fp + leaked, tn + len(item["without"]) - leaked
    return {
        "with": tp / (tp + fn), "without": tn / (tn + fp),
        "P": tp / (tp + fp) if tp + fp else 0.0, "R": tp / (tp + fn),
        "Acc": (tp + tn) / (tp + tn + fp + fn), "F1": 2 * tp / (2 * tp + fp + fn),
    }


def bench_aeb(root: Path, extractors: dict[str, Extractor]) -> None:
    """Take the AEB folder and extractors and print the scorer check and the score table."""
    truth = {k: v.get("articleBody") or "" for k, v in
             json.loads((root / "ground-truth.json").read_text("utf-8")).items()}
    print(f"== Article Extraction Benchmark ({len(truth)} pages)")
    print("scorer check on bundled outputs:   F1     P      R    (published F1 / P / R)")
    for name, published in PUBLISHED.items():
        path = root / "baseline_outputs" / f"{name}.json.gz"
        if path.exists():
            f1, p, r = score_aeb(truth, load_baseline(path))
            ok = "ok" if (round(f1, 3), round(p, 3), round(r, 3)) == published else "MISMATCH"
            print(f"  {name:<30} {f1:.3f}  {p:.3f}  {r:.3f}  ({published[0]:.3f} / "
                  f"{published[1]:.3f} / {published[2]:.3f}) {ok}")
    pages = {k: gzip.decompress((root / "html" / f"{k}.html.gz").read_bytes()) for k in truth}
    results: dict[str, tuple[float, float, float]] = {}
    print(f"\n  {'system':<30} {'F1':>6} {'P':>6} {'R':>6} {'pages/s':>8}")
    for name, extract in extractors.items():
        outputs, speed = run_extractor(extract, pages)
        results[name] = score_aeb(truth, outputs)
        f1, p, r = results[name]
        print(f"  {name:<30} {f1:.4f} {p:.4f} {r:.4f} {speed:8.1f}")
    names = list(results)
    base, ours = results[names[0]], results[names[-1]]
    print(f"  {'delta (digestbot - plain)':<30} {ours[0] - base[0]:+.4f} {ours[1] - base[1]:+.4f} "
          f"{ours[2] - base[2]:+.4f}")


def bench_trafilatura_eval(root: Path, extractors: dict[str, Extractor]) -> None:
    """Take the trafilatura_eval folder and extractors and print with/without scores."""
    items = json.loads((root / "evaldata_en_subset.json").read_text("utf-8"))
    pages = {url: gzip.decompress((root / item["file"]).read_bytes())
             for url, item in items.items()}
    print(f"\n== trafilatura evaluation, English subset ({len(items)} pages)")
    print(f"  {'system':<30} {'with':>6} {'without':>8} {'P':>6} {'R':>6} {'Acc':>6} {'F1':>6}"
          f" {'pages/s':>8}")
    for name, extract in extractors.items():
        outputs, speed = run_extractor(extract, pages)
        s = score_segments(items, outputs)
        print(f"  {name:<30} {s['with']:.4f} {s['without']:8.4f} {s['P']:.4f} {s['R']:.4f} "
              f"{s['Acc']:.4f} {s['F1']:.4f} {speed:8.1f}")


def extract_plain(page: bytes) -> str:
    """Take a page and return trafilatura.extract with its default options."""
    return trafilatura.extract(page) or ""


def extract_eval_settings(page: bytes) -> str:
    """Take a page and return trafilatura.extract with upstream's evaluation settings."""
    return trafilatura.extract(page, include_comments=False, include_tables=True) or ""


def main() -> None:
    """Parse the command line and run both benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", nargs="?", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # trafilatura logs every page it discards
    base = args.data_dir / "extraction"
    print(f"trafilatura {trafilatura.__version__}; data: {base}")
    extractors: dict[str, Extractor] = {
        f"trafilatura {trafilatura.__version__} (defaults)": extract_plain,
        "trafilatura (no comments, tables)": extract_eval_settings,
        "digestbot extract_article_text": extract_article_text,
    }
    bench_aeb(base / "scrapinghub_aeb", extractors)
    bench_trafilatura_eval(base / "trafilatura_eval", extractors)


if __name__ == "__main__":
    main()
