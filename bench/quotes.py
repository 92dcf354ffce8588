"""Benchmark (not a test): direct-quote extraction and speaker attribution on PolNeAR.

Usage: python bench/quotes.py [DATA_DIR] [--split test|dev] [--errors N]

DATA_DIR defaults to ../shared/evaldata (relative to the repo root); the data is read in place and
never copied. Scoring (the same text is printed with the figures, see DEFINITIONS):
- Gold: PolNeAR rows with quote_type == "direct" in
  quotes/polnear/polnear_<split>_attributions.jsonl (the README's label: the content span starts
  and ends with a quote mark; one annotator per article, the alphabetically first). Rows
  labelled "mixed" (quoted words inside reported speech, or a quote whose span also holds
  unquoted words such as a leading "that") and "indirect" are not gold direct quotes.
  Every article of the split's text/ folder is scored, with or without gold.
- Text: the raw article goes to extract_quotes as it comes (digestbot paragraphs are blank-line
  separated, as in the raw files); every predicted part is located verbatim and mapped back to raw
  character offsets.
- Match: word tokens (\\w+) identified by position. The README defines no token metric for this
  task; its one overlap metric (GenderGapTracker) is measured relative to the gold span, so the
  headline figure uses overlap = |pred ∩ gold| / |gold| >= 0.5. Matching is one-to-one, best
  overlap first; every unmatched prediction is a false positive (strict). Two more readings are
  printed as checks, never as the headline: token Jaccard >= 0.5 (a long prediction cannot match
  a short gold quote), and the GGT metric (character overlap relative to gold > 0.3). A clearly
  labelled lenient precision also ignores unmatched predictions that overlap a gold "mixed" quote.
- Speaker accuracy: over matched quotes whose gold source span names a person (see gold_person:
  the last run of capitalised name words in the source's head, after dropping parentheses,
  quoted nicknames, titles, determiners, possessives, organisations and modifiers such as
  "Clinton" in "Clinton campaign spokesman Brian Fallon"; pronouns, roles and "X and Y" name no
  single person). Correct when the normalised surnames (lower-case, no accents, punctuation or
  Jr/II suffixes) are equal and the given names, where both sides have one, agree (equal, or
  one is the other's initial). The gold span is not coreference-resolved, so a bare "Clinton"
  accepts any Clinton.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from digestbot.quotes import extract_quotes, quote_parts
from digestbot.records import Quote

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "evaldata"
REFERENCE = "Gender Gap Tracker (own 98-article test set): quote F1 0.837, speaker accuracy 0.865"
TARGET = "targets: quote F1 0.90, speaker accuracy 0.90"
DEFINITIONS = """\
gold = README quote_type "direct" (content starts and ends with a quote mark); "mixed" and
  "indirect" rows are not gold direct quotes. Tokens = \\w+ by position.
match = one-to-one, best first, token overlap |pred & gold| / |gold| >= 0.5 (relative to the gold
  span, as in the README's GGT metric); unmatched predictions are false positives.
speaker = matched quotes whose gold source names a person; correct when surnames agree and given
  names (where both have one) agree; bare-surname gold spans are not coreference-resolved."""

Span = tuple[int, int]


def word_set(text: str) -> frozenset[str]:
    """Take whitespace-separated words and return them as a frozen set."""
    return frozenset(text.split())


_TOKEN = re.compile(r"\w+")
_HONORIFICS = word_set("mr mrs ms miss dr prof sir lord dame rev")
_SUFFIXES = word_set("jr sr ii iii iv")
_TITLE_WORDS = word_set("""president vice minister chancellor leader chairman chairwoman chair
senator sen representative rep secretary governor gov del delegate attorney general spokesman
spokeswoman commissioner chief judge mayor director coordinator majority minority speaker""")
_NOT_NAME_HEADS = word_set("the a an another this that these one his her their its my our some")
_PRONOUNS = word_set("he she they i we it you who one another")
_ORG_WORDS = word_set("""post times news journal sentinel tribune campaign committee party daily
newspaper network politifact hedge magazine press cnn fox msnbc nbc abc cbs bbc reuters ap afp
department ministry office agency house senate university institute center foundation group
council court commission board company union""")
_COMMON_PLURALS = word_set("""protesters officials critics supporters democrats republicans voters
aides analysts experts observers residents sources students""")
_LIMITS = re.compile(r"\s(?:of|at|for|from|who|whose|to|with|in|on)\s")


@dataclass
class Gold:
    """One gold direct or mixed quote: article, raw spans, text and the in-text source span."""

    article: str
    spans: list[Span]
    text: str
    source: str | None
    mixed: bool = False


@dataclass
class Pred:
    """One predicted quote located in the raw article text."""

    article: str
    spans: list[Span]
    quote: Quote


def load_gold(data: Path, split: str) -> dict[str, list[Gold]]:
    """Take the data folder and split; return direct and mixed gold quotes for every article."""
    folder = data / "quotes" / "polnear"
    out: dict[str, list[Gold]] = {p.stem: [] for p in (folder / split / "text").glob("*.txt")}
    path = folder / f"polnear_{split}_attributions.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["quote_type"] not in ("direct", "mixed"):
            continue
        source = (row.get("source") or {}).get("text")
        spans = [(int(a), int(b)) for a, b in row["content"]["spans"]]
        out.setdefault(row["article"], []).append(
            Gold(row["article"], spans, row["content"]["text"], source,
                 row["quote_type"] == "mixed"))
    return out


def paragraph_offsets(text: str) -> list[int]:
    """Take raw text and return each non-empty paragraph's offset, as extract_quotes splits it."""
    offsets = []
    pos = 0
    for para in text.split("\n\n"):
        if para.strip():
            offsets.append(pos)
        pos += len(para) + 2
    return offsets


def locate(text: str, quote: Quote) -> list[Span]:
    """Take raw text and a Quote; return the raw character spans of its verbatim parts."""
    bases = paragraph_offsets(text)
    pos = bases[quote.paragraph] + quote.start
    spans = []
    for part in quote_parts(quote):
        found = text.find(part, pos)
        if found < 0:
            raise SystemExit(f"bench failed: quote part is not verbatim: {part[:60]!r}")
        spans.append((found, found + len(part)))
        pos = found + len(part)
    return spans


def token_set(text: str, spans: list[Span]) -> set[int]:
    """Take text and spans; return the start offsets of the word tokens inside the spans."""
    return {m.start() for a, b in spans for m in _TOKEN.finditer(text, a, b)}


def gold_overlap(text: str, pred: list[Span], gold: list[Span]) -> float:
    """Take predicted and gold spans; return the shared tokens relative to the gold tokens."""
    gt = token_set(text, gold)
    return len(token_set(text, pred) & gt) / max(1, len(gt))


def jaccard(text: str, pred: list[Span], gold: list[Span]) -> float:
    """Take predicted and gold spans; return the token Jaccard index."""
    pt, gt = token_set(text, pred), token_set(text, gold)
    return len(pt & gt) / max(1, len(pt | gt))


def char_overlap(text: str, pred: list[Span], gold: list[Span]) -> float:
    """Take predicted and gold spans; return the overlap in characters relative to gold."""
    covered = sum(max(0, min(b, d) - max(a, c)) for a, b in gold for c, d in pred)
    return covered / max(1, sum(b - a for a, b in gold))


def normalise(name: str) -> list[str]:
    """Take a name and return its lower-cased tokens without accents, honorifics or punctuation."""
    plain = unicodedata.normalize("NFKD", re.sub("['’]", "", name))
    plain = plain.encode("ascii", "ignore").decode()
    return [t for t in re.findall(r"[a-z0-9]+", plain.lower()) if t not in _HONORIFICS]


def name_runs(head: str) -> list[tuple[list[str], str | None]]:
    """Take a source head; return its runs of capitalised non-title words and the word after."""
    runs: list[tuple[list[str], str | None]] = []
    current: list[str] = []
    for word in re.findall(r"[\w.'’\-]+", head):
        bare = word.rstrip(".").lower()
        leading = not current and bare in _NOT_NAME_HEADS  # "Another", not the "A." of a name
        acronym = len(bare) > 1 and bare.upper() == word.rstrip(".")  # "IMF", "MSNBC"
        if word[0].isupper() and bare not in _TITLE_WORDS | _HONORIFICS \
                and not leading and not acronym:
            current.append(word)
            continue
        if current:
            runs.append((current, word))
        current = []
    if current:
        runs.append((current, None))
    return runs


def person_in(head: str) -> list[str] | None:
    """Take one comma-free segment of a source span; return the person it names, or None."""
    head = _LIMITS.split(f" {head.strip()} ")[0].strip()
    runs = name_runs(head)
    if head.lower() in _PRONOUNS or (len(runs) > 1 and " and " in head):
        return None  # a pronoun, or "Cummings and Conyers": no single named person
    names = [run for run, after in runs
             if not (after and after[0].islower())  # "Clinton campaign spokesman ..."
             and not any(w.endswith(("'s", "’s", "'", "’")) for w in run)
             and not any(w.lower().rstrip(".") in _ORG_WORDS for w in run)]
    if not names:
        return None
    if len(names[-1]) == 1 and names[-1][0].lower() in _COMMON_PLURALS:
        return None
    return normalise(" ".join(names[-1])) or None


def gold_person(source: str | None) -> list[str] | None:
    """Take a gold source span and return the person name it holds, or None if it names none."""
    if not source:
        return None
    plain = re.sub(r"\([^)]*\)|[\"“][^\"“”]*[\"”]", " ", source).replace("\u00a0", " ")
    segments = [s.strip() for s in plain.split(",") if s.strip()]
    name = person_in(segments[0]) if segments else None
    role_first = bool(segments) and (segments[0][0].islower() or "'s " in segments[0]
                                     or "’s " in segments[0]
                                     or segments[0].split()[0].lower() in _NOT_NAME_HEADS)
    if name is None and role_first and len(segments) > 1:
        return person_in(segments[1])  # "Another critic, Laurence H. Tribe,"
    return name


def speaker_correct(gold: list[str], predicted: str | None) -> bool:
    """Take a gold name and a predicted speaker; return whether they name the same person."""
    tokens = [t for t in normalise(predicted or "") if t not in _SUFFIXES]
    gold = [t for t in gold if t not in _SUFFIXES]
    if not tokens or not gold or tokens[-1] != gold[-1]:
        return False
    if len(tokens) == 1 or len(gold) == 1 or tokens[0] == gold[0]:
        return True
    return tokens[0][0] == gold[0][0] and min(len(tokens[0]), len(gold[0])) == 1


def match(preds: list[Pred], golds: list[Gold], text: str,
          overlap: Callable[[str, list[Span], list[Span]], float],
          accept: Callable[[float], bool]) -> list[tuple[Pred, Gold]]:
    """Take predictions and gold quotes of one article; return one-to-one matches, best first."""
    pairs = []
    for i, p in enumerate(preds):
        for j, g in enumerate(golds):
            value = overlap(text, p.spans, g.spans)
            if value > 0 and accept(value):
                pairs.append((value, i, j))
    pairs.sort(key=lambda x: -x[0])
    used_p: set[int] = set()
    used_g: set[int] = set()
    out = []
    for _, i, j in pairs:
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
            out.append((preds[i], golds[j]))
    return out


def prf(tp: int, n_pred: int, n_gold: int) -> tuple[float, float, float]:
    """Take counts and return precision, recall and F1."""
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def show(text: str, spans: list[Span]) -> str:
    """Take raw text and spans; return the spanned text with some context, for error lists."""
    a, b = spans[0][0], spans[-1][1]
    return f"{text[max(0, a - 70):a]!r} [[{text[a:b][:200]!r}]] {text[b:b + 50]!r}"


def main() -> None:
    """Run the benchmark and print the figures (and error examples with --errors)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", choices=("test", "dev"), default="test")
    parser.add_argument("--errors", type=int, default=0, help="print N examples of each error")
    args = parser.parse_args()
    gold = load_gold(args.data, args.split)
    text_dir = args.data / "quotes" / "polnear" / args.split / "text"
    n_pred = n_gold = tp = jac_tp = ggt_tp = lenient_fp = 0
    named = named_ok = with_speaker = 0
    missed: list[tuple[str, Gold]] = []
    spurious: list[tuple[str, Pred]] = []
    wrong: list[tuple[Pred, Gold, list[str]]] = []
    for article in sorted(gold):
        text = (text_dir / f"{article}.txt").read_text(encoding="utf-8")
        preds = [Pred(article, locate(text, q), q) for q in extract_quotes(text)]
        direct = [g for g in gold[article] if not g.mixed]
        mixed = [g for g in gold[article] if g.mixed]
        n_pred += len(preds)
        n_gold += len(direct)
        pairs = match(preds, direct, text, gold_overlap, lambda v: v >= 0.5)
        tp += len(pairs)
        jac_tp += len(match(preds, direct, text, jaccard, lambda v: v >= 0.5))
        ggt_tp += len(match(preds, direct, text, char_overlap, lambda v: v > 0.3))
        matched_p = {id(p) for p, _ in pairs}
        matched_g = {id(g) for _, g in pairs}
        for p in preds:
            if id(p) not in matched_p:
                if any(char_overlap(text, p.spans, m.spans) > 0 for m in mixed):
                    lenient_fp += 1
                spurious.append((text, p))
        missed.extend((text, g) for g in direct if id(g) not in matched_g)
        for p, g in pairs:
            with_speaker += p.quote.speaker is not None
            name = gold_person(g.source)
            if name:
                named += 1
                if speaker_correct(name, p.quote.speaker):
                    named_ok += 1
                else:
                    wrong.append((p, g, name))
    prec, rec, f1 = prf(tp, n_pred, n_gold)
    lp, _, lf = prf(tp, n_pred - lenient_fp, n_gold)
    jp, jr, jf = prf(jac_tp, n_pred, n_gold)
    gp, gr, gf = prf(ggt_tp, n_pred, n_gold)
    print(DEFINITIONS)
    print(f"\nPolNeAR {args.split}: {len(gold)} articles, {n_gold} gold direct quotes, "
          f"{n_pred} predicted")
    print(f"direct quotes (token overlap vs gold >= 0.5): P {prec:.3f}  R {rec:.3f}  F1 {f1:.3f}")
    print(f"  check, token Jaccard >= 0.5: P {jp:.3f}  R {jr:.3f}  F1 {jf:.3f}")
    print(f"  check, GGT metric (char overlap vs gold > 0.3): P {gp:.3f}  R {gr:.3f}  F1 {gf:.3f}")
    print(f"  lenient, NOT the headline (unmatched predictions on gold mixed quotes ignored): "
          f"P {lp:.3f}  F1 {lf:.3f}")
    print(f"speaker accuracy where the gold source names a person: {named_ok}/{named} = "
          f"{named_ok / max(1, named):.3f}")
    print(f"  matched quotes with any speaker: {with_speaker}/{tp}")
    print(f"reference: {REFERENCE}; {TARGET}")
    if args.errors:
        print("\n--- missed gold direct quotes")
        for text, g in missed[:args.errors]:
            print(f"[{g.article[:30]}] {show(text, g.spans)}")
        print("\n--- false positives")
        for text, pr in spurious[:args.errors]:
            print(f"[{pr.article[:30]}] {show(text, pr.spans)} -> {pr.quote.speaker!r}")
        print("\n--- wrong speakers (gold name / predicted)")
        for pr, g, name in wrong[:args.errors]:
            print(f"[{pr.article[:30]}] {' '.join(name)!r} / {pr.quote.speaker!r} "
                  f"(source {g.source!r}): {pr.quote.text[:70]!r}")


if __name__ == "__main__":
    main()
