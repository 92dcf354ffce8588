"""CPU time of `features.describe_text` against its 81006cd version, and proof they agree.

Usage: python bench/describe_speed.py [--repeat 3] [--fuzz 20000] [--profile N]

Times `describe_text` over the 12,000 articles of a first `bench/poll.py` poll (built as
`bench/cluster_speed.py` builds them), caches emptied before each run, best of --repeat, for
the current module and for the one at commit 81006cd (read with `git show`, imported from a
temporary folder; runs alternate, so both see the same machine load), and the same over the
real articles in ../shared/evaldata (skipped where absent; a varied vocabulary, few repeats).
Then compares the two on every input it has: those articles, variants of the real ones with
paragraph breaks and quote marks written other ways, hostile strings and --fuzz random texts
over a small, awkward alphabet. Features are equal when every field is: dicts item for item in
order, floats bit for bit. Prints the CPU seconds before and after and the number of inputs
where the features differ (must be 0).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import importlib.util
import json
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster_speed import make_articles

from digestbot import features

ROOT = Path(__file__).resolve().parents[1]
BASE = "81006cd"
EVALDATA = ROOT.parent / "shared" / "evaldata"
WHEN = datetime(2031, 5, 6, 12, 0, tzinfo=UTC)
Case = tuple[str, str]  # (title, text)
Describe = Callable[..., Any]


def load_base() -> ModuleType:
    """Take nothing; return digestbot/features.py as it was at BASE, imported as a module."""
    source = subprocess.run(["git", "show", f"{BASE}:digestbot/features.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="describe_speed_")) / f"features_{BASE}.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def time_describe(module: ModuleType, cases: list[Case]) -> float:
    """Take a features module and (title, text) cases; return CPU seconds to describe them
    all, caches emptied first."""
    module.clear_caches()
    describe = module.describe_text
    started = time.process_time()
    for title, text in cases:
        describe(title, text, when=WHEN)
    return time.process_time() - started


def compare_times(base: ModuleType, cases: list[Case], repeat: int) -> tuple[float, float]:
    """Take the base module, cases and a repeat count; return the best CPU seconds of the base
    and of the current module, runs alternating."""
    before, after = [], []
    for _ in range(repeat):
        before.append(time_describe(base, cases))
        after.append(time_describe(features, cases))
    return min(before), min(after)


def read_evaldata(root: Path) -> Iterator[Case]:
    """Take the evaldata folder; yield (title, text) of the news articles it holds."""
    for path in sorted((root / "clustering" / "basil" / "articles").glob("*/*.json")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        paragraphs = raw["body-paragraphs"]
        yield raw.get("title") or "", "\n\n".join(" ".join(p) for p in paragraphs)
    allsides = root / "clustering" / "allsides_neus" / "allsides_crawled_2021-10-19.jsonl"
    for line in allsides.read_text(encoding="utf-8").splitlines():
        story = json.loads(line)
        yield story.get("issue") or "", "\n\n".join(story.get("roundup") or [])
        for news in (story.get("news") or {}).values():
            yield news.get("newsTitle") or "", "\n\n".join(news.get("newBody") or [])
    with (root / "summarization" / "multinews_sample" / "sample_100_seed42.tsv").open(
            encoding="utf-8", newline="") as tsv:
        for row in csv.DictReader(tsv, delimiter="\t"):
            for doc in row["document"].split("|||||"):
                yield doc[:80], doc.replace("NEWLINE_CHAR", "\n")
            yield "", row["summary"]
    neus = root / "summarization" / "neus_allsides" / "neus_test.source"
    for line in neus.read_text(encoding="utf-8").splitlines():
        for part in line.split("[SEP]"):
            title, _, text = part.partition("ARTICLE=>")
            yield title.replace("TITLE=>", "").strip(), text.strip()
    csv.field_size_limit(1 << 24)
    semeval = root / "clustering" / "semeval2022_task8"
    with (semeval / "hfl_trainsample_en_en_pairs_with_text.csv").open(
            encoding="utf-8", newline="") as pairs:
        for row in csv.DictReader(pairs):
            yield "", row["text1"]
            yield row["text2"][:60], row["text2"]
    for path in sorted((root / "quotes" / "polnear").glob("*/text/*.txt")):
        text = path.read_text(encoding="utf-8")
        yield text.split("\n", 1)[0], text


def vary(text: str) -> list[str]:
    """Take a text; return it with its paragraph breaks and quote marks written other ways."""
    return [text.replace("\n\n", "\n\n\n"), text.replace("\n\n", " \n\n "),
            text.replace("\n", "\n\n"), text.replace(". ", ".\n\n"),
            text.replace('"', "“").replace("“ ", "” "), text.replace("'", "’").upper()]


def hostile_cases() -> list[Case]:
    """Take nothing; return awkward titles and texts (empty, quotes only, odd words...)."""
    long_word = "Pneumono" + "ultramicroscopic" * 400
    texts = [
        "", " ", "\n\n", "\n\n\n\n", " \n\n \n\n ", '"', '""', "“”", '"' * 50, "“" * 30 + "”" * 30,
        "’’’ ''' ’s 's s’ O’Brien’s O'Neill's rock’n’roll ’90s", long_word,
        f"{long_word}. {long_word.lower()}! “{long_word} said {long_word}.”",
        "$5 . $ 5, 5, 1,000 people 3.5 % 4.2.1 million 10,000,000 $ 12.5.6 km ١٢ people ² cases",
        "THE UNITED NATIONS SAID. NASA AND THE EU OF THE US. OF Lindal. For Varga.",
        "The Bank of of America. Bank Of America. Bank of the West said. Mr. Smith Jr. met Dr. X.",
        "Ilse Varga’s ferry. Ilse Varga's ferry. Monday Ilse Varga Tuesday. January of Lindal",
        'He said: "We will not sail until the night shifts are paid," and left."\n\n"Never."',
        "“We will not sail until the night shifts are paid and the crews are home,” said Brell.",
        "A.\n\nB.\n\n\nC.)\n\nD!”\n\n”E?’ F", "A\n\n.\"\n\nB", "x.\" \"y. z.' 'w",
        "\r\n\r\nWindows\r\nlines\r\n\r\nhere.", "tab\tseparated\u00a0nbsp\u2028line\u2029para",
        "\x1c\x1d\x1e\x1fcontrol\x85chars", "emoji 🚢 ferry 🚢🚢 crews",
        "café naïve Zürich İstanbul ǅemal",
        "(Lindal) [Varga] {Brell} <Orsk> 'Ilse' \"Tomas\"", "12. 13! 14? 15.\" 16 people.",
        "E.U. U.S.A. A.B.C. A-B Al-Sharif al-Assad bin Laden van der Berg de la Cruz",
        " ".join(f"${n} x Name{n} Of" for n in range(3000)),  # one long sentence
    ]
    cases = [(t, t) for t in texts] + [("", t) for t in texts] + [(t, "") for t in texts]
    return cases + [("Orsk ferry strike", t) for t in texts]


def fuzz_cases(count: int, seed: int = 7) -> list[Case]:
    """Take a count and seed; return random texts built from a small, awkward alphabet."""
    pieces = ["A", "Ab", "of", "Of", "The", "the", "de", "x", "5", "$5", "1,0", "3.", "%",
              "people", "said", "Monday", "’s", "'s", ".", "!", "?", '"', "“", "”", "’", ")",
              "(", ",", " ", " ", " ", "\n", "\n\n", "\t", "I", "US", "Lindal", "ferry"]
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        text = "".join(rng.choices(pieces, k=rng.randrange(0, 60)))
        cases.append(("".join(rng.choices(pieces, k=rng.randrange(0, 12))), text))
    return cases


def same_features(a: Any, b: Any) -> bool:
    """Take two ArticleFeatures; return whether every field is equal, floats bit for bit."""
    if type(a.entities) is not type(b.entities) or type(a.quotes) is not type(b.quotes):
        return False
    if type(a.sketch) is not type(b.sketch) or a.when != b.when:
        return False
    for x, y in ((a.terms, b.terms), (a.title, b.title)):
        if [(k, v.hex()) for k, v in x.items()] != [(k, v.hex()) for k, v in y.items()]:
            return False
    return bool(a.entities == b.entities and a.quotes == b.quotes and a.sketch == b.sketch)


def count_mismatches(base: ModuleType, cases: list[Case], cold_every: int = 500) -> int:
    """Take the base module and (title, text) cases; return how many describe differently."""
    wrong = 0
    for n, (title, text) in enumerate(cases):
        if n % cold_every == 0:
            features.clear_caches()  # some cases cold, most warm: caches must not matter
        before = base.describe_text(title, text, when=WHEN)
        after = features.describe_text(title, text, when=WHEN)
        if not same_features(before, after):
            wrong += 1
            if wrong <= 5:
                print(f"mismatch: title={title[:60]!r} text={text[:120]!r}")
    return wrong


def main() -> None:
    """Parse arguments, time both versions, compare them; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fuzz", type=int, default=20000)
    parser.add_argument("--profile", type=int, default=0)
    args = parser.parse_args()
    base = load_base()
    cases = [(a.title, a.text) for a in make_articles(300, 40)]
    before, after = compare_times(base, cases, args.repeat)
    per = 12000 / len(cases)
    print(f"poll bench, {len(cases)} articles: CPU s per 12,000, best of {args.repeat}: "
          f"before {before * per:.2f}, after {after * per:.2f} ({before / after:.2f}x)")
    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(time_describe, features, cases)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(args.profile)
    if EVALDATA.is_dir():
        real = list(read_evaldata(EVALDATA))
        before, after = compare_times(base, real, args.repeat)
        print(f"evaldata, {len(real)} articles: CPU s, best of {args.repeat}: before "
              f"{before:.2f}, after {after:.2f} ({before / after:.2f}x)")
        cases += real + [(title, v) for title, text in real[::4] for v in vary(text)]
        print(f"evaldata: {len(real)} articles, {len(real[::4]) * 6} variants")
    else:
        print(f"evaldata: {EVALDATA} absent, skipped")
    cases += hostile_cases() + fuzz_cases(args.fuzz)
    print(f"compared {len(cases)} inputs: {count_mismatches(base, cases)} mismatches")


if __name__ == "__main__":
    main()
