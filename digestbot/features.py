"""Per-article clustering features: weighted terms, entities, quote shingles, a text sketch.

Pure and deterministic: hashes are CRC32 (not Python's salted `hash`), and every mapping is
built in text order so float sums come out the same on every run.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from dataclasses import dataclass
from datetime import datetime

from digestbot.records import Article, split_paragraphs

LEAD_PARAGRAPHS = 3
TITLE_WEIGHT = 3.0
LEAD_WEIGHT = 2.0
SKETCH_SIZE = 64
SHINGLE_WORDS = 5
QUOTE_WORDS = 6



def split_words(text: str) -> frozenset[str]:
    """Take whitespace-separated words and return them as a set."""
    return frozenset(text.split())


STOPWORDS = split_words("""
a about above after again against all also am an and any are aren't as at be because been before
being below between both but by can can't cannot could couldn't did didn't do does doesn't doing
don't down during each few for from further had hadn't has hasn't have haven't having he he'd he'll
he's her here here's hers herself him himself his how how's i i'd i'll i'm i've if in into is isn't
it it's its itself let's me more most mustn't my myself no nor not of off on once only or other
ought our ours ourselves out over own same shan't she she'd she'll she's should shouldn't so some
such than that that's the their theirs them themselves then there there's these they they'd
they'll they're they've this those through to too under until up very was wasn't we we'd we'll
we're we've were weren't what what's when when's where where's which while who who's whom why
why's with won't would wouldn't you you'd you'll you're you've your yours yourself yourselves
said says say saying told tell according just like will may might must shall one two three also
new year years time last first since still even much many well back now get got make made way
mr mrs ms dr per via yet however although though around including went go going
""")

CALENDAR = split_words("""
monday tuesday wednesday thursday friday saturday sunday january february march april may june
july august september october november december today yesterday tomorrow
""")

UNITS = split_words("""
percent % million billion trillion thousand hundred people dead killed injured troops soldiers
votes seats points degrees miles kilometers km acres tons tonnes dollars euros pounds years days
hours weeks months magnitude jobs cases deaths students workers
""")

CONNECTORS = frozenset({"of", "de", "la", "van", "von", "der", "al", "bin", "for"})

_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+(?:['’][^\W\d_]+)*")
_SENTENCE = re.compile(r"(?<=[.!?])[\"'”’)]*\s+")
_QUOTE = re.compile(r"[“\"]([^”\"]{20,}?)[”\"]")
_CAPITAL = re.compile(r"^[A-Z][\w'’\-.]*$|^[A-Z]{2,}$")
_UPPER = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")  # what every _CAPITAL match starts with


@dataclass(frozen=True, slots=True)
class ArticleFeatures:
    """What the clusterer compares between two articles."""

    terms: dict[str, float]  # sublinear term weights, title and lead counted more
    title: dict[str, float]  # title term weights
    entities: tuple[str, ...]  # normalised names, multi-word names and numbers with units
    quotes: frozenset[int]  # hashes of every QUOTE_WORDS-gram inside a quotation
    sketch: tuple[int, ...]  # bottom-k hashes of word shingles, for near-duplicate checks
    when: datetime


@functools.lru_cache(maxsize=1 << 16)
def stem_word(word: str) -> str:
    """Take a lowercase word and return a light stem (plural and verb endings cut)."""
    if len(word) <= 3 or word.isdigit():
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if word.endswith("ing") and len(word) > 5:
        return word[:-3]
    if word.endswith("ed") and len(word) > 4:
        return word[:-2]
    return word


# Bounded so a long-running service keeps a steady size; news vocabulary repeats, so most
# tokens are read once per process rather than once per occurrence.
@functools.lru_cache(maxsize=1 << 16)
def read_token(token: str) -> tuple[str, str | None]:
    """Take a raw token; return its word (lowercase, apostrophe unified, possessive cut) and
    its content term (stemmed), or None where it is a stopword, a date word or one letter."""
    low = token.lower().replace("’", "'")
    if low.endswith("'s"):
        low = low[:-2]
    if len(low) > 1 and low not in STOPWORDS and low not in CALENDAR:
        return low, stem_word(low)
    return low, None


def clear_caches() -> None:
    """Forget every memoised token and sentence (a benchmark's cold start); returns nothing."""
    for cached in (stem_word, read_token, sentence_entities):
        cached.cache_clear()


def read_text(text: str) -> list[tuple[str, str | None]]:
    """Take text and return (word, content term or None) for each of its tokens, in order."""
    return list(map(read_token, _TOKEN.findall(text)))


def tokenize_words(text: str) -> list[str]:
    """Take text and return its lowercase word tokens, apostrophes unified and possessives cut."""
    return [word for word, _ in read_text(text)]


def content_terms(text: str) -> list[str]:
    """Take text and return its stemmed content terms (no stopwords, no one-letter words)."""
    return [term for _, term in read_text(text) if term is not None]


def weigh_term_lists(parts: list[tuple[list[str], float]]) -> dict[str, float]:
    """Take (content terms, weight) parts and return sublinear weighted term frequencies."""
    counts: dict[str, float] = {}
    get = counts.get
    for terms, weight in parts:
        for term in terms:
            counts[term] = get(term, 0.0) + weight
    return {t: 1.0 + math.log(c) for t, c in counts.items()}


def split_sentences(paragraph: str) -> list[str]:
    """Take a paragraph and return its sentences (a plain punctuation split)."""
    return [s for s in _SENTENCE.split(paragraph) if s.strip()]


def extract_entities(paragraphs: list[str]) -> tuple[str, ...]:
    """Take paragraphs and return names (capitalised runs, their last word) and numbers+units."""
    found: dict[str, None] = {}
    for paragraph in paragraphs:
        for sentence in split_sentences(paragraph):
            found.update(dict.fromkeys(sentence_entities(sentence)))
    return tuple(found)


# Syndicated copies and reports of one event repeat whole sentences: each is read once.
@functools.lru_cache(maxsize=1 << 14)
def sentence_entities(sentence: str) -> tuple[str, ...]:
    """Take one sentence and return its names and numbers+units, first-found first."""
    found: dict[str, None] = {}
    words = [w.strip(".,;:!?()[]\"“”'’") for w in sentence.split()]
    _collect_names(words, found)
    _collect_numbers(words, found)
    return tuple(found)


def _collect_names(words: list[str], found: dict[str, None]) -> None:
    run: list[str] = []
    capital = _CAPITAL.match
    for i, word in enumerate(words):
        # The first-letter test is only a cheap way to skip the regex for most words.
        if word[:1] in _UPPER and capital(word) and not (i == 0 and word.lower() in STOPWORDS):
            run.append(word)
            continue
        if run and word.lower() in CONNECTORS and i + 1 < len(words) \
                and capital(words[i + 1] or "a"):
            run.append(word)
            continue
        if run:
            _flush_name(run, found)
            run = []
    if run:
        _flush_name(run, found)


def _flush_name(run: list[str], found: dict[str, None]) -> None:
    names = [w.lower().replace("’", "'").removesuffix("'s") for w in run]
    while names and (names[0] in STOPWORDS or names[0] in CALENDAR):
        names.pop(0)
    while names and (names[-1] in CONNECTORS or names[-1] in CALENDAR):
        names.pop()
    if not names:
        return
    found[" ".join(names)] = None
    if len(names) > 1 and len(names[-1]) > 2:
        found[names[-1]] = None


def _collect_numbers(words: list[str], found: dict[str, None]) -> None:
    for i, word in enumerate(words[:-1]):
        # A number ends in a digit unless its last character is one the test below drops.
        tail = word[-1:]
        if not tail.isdigit() and tail not in ".,$":
            continue
        number = word.lstrip("$").replace(",", "")
        unit = words[i + 1].lower()
        if number and number.replace(".", "", 1).isdigit() and (unit in UNITS or word != number):
            found[f"{number} {'percent' if unit == '%' else unit}"] = None


def shingle_quotes(text: str) -> frozenset[int]:
    """Take text and return hashes of every QUOTE_WORDS-word window inside its quotations."""
    hashes: set[int] = set()
    for quoted in _QUOTE.findall(text):
        words = tokenize_words(quoted)
        for i in range(len(words) - QUOTE_WORDS + 1):
            hashes.add(zlib.crc32(" ".join(words[i:i + QUOTE_WORDS]).encode()))
    return frozenset(hashes)


def sketch_text(words: list[str]) -> tuple[int, ...]:
    """Take word tokens and return the bottom-k hashes of their word shingles."""
    encoded = [w.encode() for w in words]
    if len(encoded) < SHINGLE_WORDS:
        shingles = [b" ".join(encoded)]  # a text shorter than a shingle is one shingle
    else:
        shingles = list(map(b" ".join, zip(*(encoded[k:] for k in range(SHINGLE_WORDS)),
                                           strict=False)))
    return tuple(sorted(set(map(zlib.crc32, shingles)))[:SKETCH_SIZE])


def estimate_resemblance(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    """Take two bottom-k sketches and return the estimated Jaccard similarity of their sets."""
    if not a or not b:
        return 0.0
    k = min(SKETCH_SIZE, len(a), len(b))
    seen = set(a)
    both = seen.intersection(b)
    # Sorting 2k small ints beats a heap here; the k smallest of the union are the same.
    union = sorted(seen.union(b))[:k]
    return sum(1 for h in union if h in both) / k


def describe_article(article: Article) -> ArticleFeatures:
    """Take an article and return its clustering features."""
    return describe_text(article.title, article.text, when=article.when)


def describe_text(title_text: str, text: str, *, when: datetime) -> ArticleFeatures:
    """Take an article's title, text and time; return its clustering features."""
    paragraphs = split_paragraphs(text)
    title = read_text(title_text)
    lead = read_text("\n\n".join(paragraphs[:LEAD_PARAGRAPHS]))
    rest = read_text("\n\n".join(paragraphs[LEAD_PARAGRAPHS:]))
    title_terms = [term for _, term in title if term is not None]
    terms = weigh_term_lists([(title_terms, TITLE_WEIGHT),
                              ([term for _, term in lead if term is not None], LEAD_WEIGHT),
                              ([term for _, term in rest if term is not None], 1.0)])
    # No token spans a paragraph break, so the text's tokens are the lead's then the rest's.
    words = [word for word, _ in (lead + rest if text else title)]
    return ArticleFeatures(
        terms=terms, title=weigh_term_lists([(title_terms, 1.0)]),
        entities=extract_entities(paragraphs), quotes=shingle_quotes(text),
        sketch=sketch_text(words), when=when)
