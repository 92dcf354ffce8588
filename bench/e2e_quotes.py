"""End-to-end direct-quote extraction and attribution on PolNeAR through the product's own CLI.

Usage: python bench/e2e_quotes.py [DATA_DIR] [--split test|dev] [--workdir DIR]

The split's articles are served as RSS feeds (one per publisher, full text in content:encoded;
the raw file's first line is the item title, the rest its body), polled with `digestbot poll`
and digested with `digestbot digest --format json`. Every JSON quote counts as a prediction in
each article its `urls` name; its parts (split at " … " and blank lines) are located in that
article's raw text (verbatim, else with whitespace runs and no-break spaces collapsed) and scored
with bench/quotes.py's scorer, whose definitions are printed. A quote that cannot be located in
an article (the story merged a longer version from another article) is a false positive there.
The side path (bench/quotes.py: extract_quotes on the raw text) is printed beside it. Not a test.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.harness import BenchArticle, serve_and_digest
from bench.quotes import (
    DEFINITIONS,
    REFERENCE,
    TARGET,
    Gold,
    Pred,
    Span,
    char_overlap,
    gold_overlap,
    gold_person,
    jaccard,
    load_gold,
    locate,
    match,
    prf,
    speaker_correct,
)
from digestbot.quotes import PARAGRAPH_SEPARATOR, PART_SEPARATOR, extract_quotes
from digestbot.records import Quote

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata"
_SPACE = re.compile(r"\s+")
_DATE = re.compile(r"_(\d{4}-\d{2}-\d{2})_")


@dataclass
class Tally:
    """Counts over all articles for one system."""

    n_pred: int = 0
    n_gold: int = 0
    tp: int = 0
    jac_tp: int = 0
    ggt_tp: int = 0
    named: int = 0
    named_ok: int = 0
    with_speaker: int = 0
    unlocated: int = 0


def to_bench(names: Sequence[str], texts: Mapping[str, str]) -> list[BenchArticle]:
    """Take article names and raw texts; return BenchArticles (title = the first line)."""
    out = []
    for i, name in enumerate(names):
        head, _, body = texts[name].partition("\n\n")
        found = _DATE.search(name)
        day = datetime.fromisoformat(found.group(1)) if found else datetime(2016, 10, 1)
        out.append(BenchArticle(
            id=name, source=name.split("_")[0], title=" ".join(head.split()), text=body,
            published=day.replace(hour=12, tzinfo=UTC) + timedelta(minutes=i),
            url_path=f"/polnear/{i}.html"))
    return out


def squeeze(text: str) -> tuple[str, list[int]]:
    """Take text; return it with whitespace runs as one space and each char's raw offset."""
    out: list[str] = []
    where: list[int] = []
    for m in re.finditer(r"\s+|\S+", text):
        if m.group().isspace():
            out.append(" ")
            where.append(m.start())
        else:
            out.append(m.group())
            where.extend(range(m.start(), m.end()))
    return "".join(out), [*where, len(text)]


def locate_parts(text: str, quote_text: str) -> list[Span] | None:
    """Take raw text and a JSON quote's text; return the raw spans of its parts, or None."""
    squeezed, where = squeeze(text)
    spans: list[Span] = []
    pos = 0  # in squeezed text
    for chunk in quote_text.split(PARAGRAPH_SEPARATOR):
        for part in chunk.split(PART_SEPARATOR):
            part = _SPACE.sub(" ", part).strip()
            if not part:
                continue
            found = squeezed.find(part, pos)
            if found < 0:
                return None
            spans.append((where[found], where[found + len(part) - 1] + 1))
            pos = found + len(part)
    return spans or None


def score_article(tally: Tally, text: str, preds: list[Pred], golds: list[Gold]) -> None:
    """Take one article's raw text, predictions and gold quotes; add its counts to tally."""
    direct = [g for g in golds if not g.mixed]
    tally.n_pred += len(preds)
    tally.n_gold += len(direct)
    pairs = match(preds, direct, text, gold_overlap, lambda v: v >= 0.5)
    tally.tp += len(pairs)
    tally.jac_tp += len(match(preds, direct, text, jaccard, lambda v: v >= 0.5))
    tally.ggt_tp += len(match(preds, direct, text, char_overlap, lambda v: v > 0.3))
    for p, g in pairs:
        tally.with_speaker += p.quote.speaker is not None
        name = gold_person(g.source)
        if name:
            tally.named += 1
            tally.named_ok += speaker_correct(name, p.quote.speaker)


def e2e_predictions(digest: Mapping[str, Any], url_to_id: Mapping[str, str],
                    texts: Mapping[str, str], tally: Tally) -> dict[str, list[Pred]]:
    """Take the JSON digest; return each article's located quotes (unlocated ones are empty)."""
    preds: dict[str, list[Pred]] = {name: [] for name in texts}
    for topic in digest["topics"]:
        for story in topic["stories"]:
            for q in story["quotes"]:
                quote = Quote(text=q["text"], speaker=q["speaker"])
                for url in q["urls"]:
                    article = url_to_id[url]
                    spans = locate_parts(texts[article], q["text"])
                    if spans is None:
                        tally.unlocated += 1
                        spans = []  # counts as a prediction that matches nothing
                    preds[article].append(Pred(article, spans, quote))
    return preds


def print_tally(label: str, t: Tally) -> None:
    """Take a system's tally; print its quote and speaker figures."""
    p, r, f1 = prf(t.tp, t.n_pred, t.n_gold)
    jp, jr, jf = prf(t.jac_tp, t.n_pred, t.n_gold)
    gp, gr, gf = prf(t.ggt_tp, t.n_pred, t.n_gold)
    print(f"{label}: {t.n_gold} gold direct quotes, {t.n_pred} predicted")
    print(f"  direct quotes (token overlap vs gold >= 0.5): P {p:.3f}  R {r:.3f}  F1 {f1:.3f}")
    print(f"  check, token Jaccard >= 0.5: P {jp:.3f}  R {jr:.3f}  F1 {jf:.3f}")
    print(f"  check, GGT metric (char overlap vs gold > 0.3): P {gp:.3f}  R {gr:.3f}  F1 {gf:.3f}")
    print(f"  speaker accuracy where the gold source names a person: {t.named_ok}/{t.named} = "
          f"{t.named_ok / max(1, t.named):.3f}  (matched quotes with any speaker: "
          f"{t.with_speaker}/{t.tp})")


def main(argv: list[str] | None = None) -> int:
    """Take command-line arguments, run the benchmark and return the exit status."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", choices=("test", "dev"), default="test")
    parser.add_argument("--workdir", type=Path, help="keep config and database here")
    args = parser.parse_args(argv)
    gold = load_gold(args.data, args.split)
    text_dir = args.data / "quotes" / "polnear" / args.split / "text"
    names = sorted(gold)
    texts = {n: (text_dir / f"{n}.txt").read_text(encoding="utf-8") for n in names}
    with tempfile.TemporaryDirectory(prefix="digestbot-e2e-") as tmp:
        run = serve_and_digest(to_bench(names, texts), workdir=args.workdir or Path(tmp))
    e2e, side = Tally(), Tally()
    preds = e2e_predictions(run["digest"], run["url_to_id"], texts, e2e)
    for name in names:
        score_article(e2e, texts[name], preds[name], gold[name])
        side_preds = [Pred(name, locate(texts[name], q), q) for q in extract_quotes(texts[name])]
        score_article(side, texts[name], side_preds, gold[name])
    merged = sum(1 for ids in run["stories"] if len(ids) > 1)
    print(DEFINITIONS)
    print(f"\nPolNeAR {args.split}: {len(names)} articles served as "
          f"{len({n.split('_')[0] for n in names})} feeds; {len(run['stories'])} digest stories "
          f"({merged} hold more than one article); {run['poll_output']}")
    print_tally("e2e (CLI poll + digest JSON)", e2e)
    print(f"  JSON quote-article pairs not locatable in that article's raw text: {e2e.unlocated}")
    print_tally("side path (bench/quotes.py: extract_quotes on the raw file)", side)
    t = run["timings"]
    print(f"reference: {REFERENCE}; {TARGET}")
    print(f"time: poll {t['poll_s']:.1f} s, digest {t['digest_s']:.1f} s (wall)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
