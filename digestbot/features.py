"""Per-article clustering features: weighted terms, entities, quote shingles, a text sketch.

Pure and deterministic: hashes are CRC32 (not Python's salted `hash`), and every mapping is
built in text order so float sums come out the same on every run.

A text is read chunk by chunk (the pieces `str.split` gives): no token holds whitespace, so a
text's tokens are its chunks' tokens in turn, and each distinct chunk is read once per process
(tokens, terms, and how it reads as a word of a name or a number). An article then costs a
split, a cache look-up per chunk and a few passes that run in C.
"""

from __future__ import annotations

import functools
import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from operator import attrgetter
from typing import NamedTuple

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
# Greedy, as the class cannot run past a closing mark it stops where a lazy match would.
_QUOTE = re.compile(r"[“\"]([^”\"]{20,})[”\"]")
_CAPITAL = re.compile(r"^[A-Z][\w'’\-.]*$|^[A-Z]{2,}$")
_EDGE = ".,;:!?()[]\"“”'’"  # stripped off a word before it is read for names and numbers
# Each chunk of a text is a letter: a capital word (C, or S where it is a stopword in
# lowercase), a lowercase connector (c), a number (n) or anything else (x); a chunk that ends
# a sentence (. ! or ? then only closing quotes, or a paragraph's last) is D, T or y instead.
# A name is a run of capitals in one sentence, lone connectors between them, that does not
# start with an S (or T) that opens the sentence.
_NAME_RUN = re.compile(r"""
    [CSDT] (?<! (?<![CScnx]) [ST] )               # a capital, not a stopword opening a sentence
    (?: (?<=[CS]) (?: c?[CS] )* (?: c?[DT] )? )?  # more unless it ended the sentence
""", re.VERBOSE)
_SENTENCE_END = re.compile(r"[DTy]")
_LAST = str.maketrans("CScnx", "DTyyy")

_KIND = attrgetter("kind")
_NAME = attrgetter("name")
_WORDS = attrgetter("words")
_TERMS = attrgetter("terms")


@dataclass(frozen=True, slots=True)
class ArticleFeatures:
    """What the clusterer compares between two articles."""

    terms: dict[str, float]  # sublinear term weights, title and lead counted more
    title: dict[str, float]  # title term weights
    entities: tuple[str, ...]  # normalised names, multi-word names and numbers with units
    quotes: frozenset[int]  # hashes of every QUOTE_WORDS-gram inside a quotation
    sketch: tuple[int, ...]  # bottom-k hashes of word shingles, for near-duplicate checks
    when: datetime


class Chunk(NamedTuple):
    """A whitespace-free piece of text: its tokens, and how it reads as a word of a sentence."""

    words: tuple[bytes, ...]  # its tokens' words, UTF-8 (what shingles hash)
    terms: tuple[str, ...]  # its tokens' content terms
    kind: str  # its letter (see _NAME_RUN)
    name: str  # the word in a name: lowercase, apostrophe unified, possessive cut
    alone: str  # the name it makes on its own, or "" (see _flush_name)
    unit: str  # the word after a number: lowercase, % spelled out
    is_unit: bool  # whether that is a unit word
    number: str  # the number it holds, commas and a leading $ dropped, or ""
    is_bare: bool  # whether that number is the whole word (no $ or commas)


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


# Half read_token's bound: a chunk's reading is larger (about 12 MB when the cache is full).
@functools.lru_cache(maxsize=1 << 15)
def read_chunk(chunk: str) -> Chunk:
    """Take a whitespace-free piece of text and return its tokens and its reading as a word."""
    word = chunk.strip(_EDGE)
    low = word.lower()
    number = ""
    words: tuple[bytes, ...]
    terms: tuple[str, ...]
    if word.isalpha():  # most are: a word, punctuation around it, and that word the one token
        token, term = read_token(word)
        words, terms = (token.encode(),), (term,) if term else ()
    else:
        read = list(map(read_token, _TOKEN.findall(chunk)))
        words, terms = tuple([w.encode() for w, _ in read]), tuple([t for _, t in read if t])
        number = word.lstrip("$").replace(",", "")
        if not number.replace(".", "", 1).isdigit():
            number = ""
    if "A" <= word[:1] <= "Z" and _CAPITAL.match(word):  # the cheap test first
        kind = "S" if low in STOPWORDS else "C"
    else:
        kind = "n" if number else "c" if low in CONNECTORS else "x"
    if chunk.rstrip("\"'”’)").endswith((".", "!", "?")):
        kind = kind.translate(_LAST)
    name = low.replace("’", "'").removesuffix("'s")
    trimmed = name in STOPWORDS or name in CALENDAR or name in CONNECTORS
    return Chunk(words, terms, kind, name, "" if trimmed else name,
                 "percent" if low == "%" else low, low in UNITS, number, number == word)


def read_chunks(text: str) -> list[Chunk]:
    """Take text and return the reading of each of its whitespace-separated chunks."""
    return list(map(read_chunk, text.split()))


def clear_caches() -> None:
    """Forget every memoised token, chunk, quotation and weight (a benchmark's cold start)."""
    for cached in (stem_word, read_token, read_chunk, shingle_quotation, weigh_count):
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


@functools.lru_cache(maxsize=1 << 10)
def weigh_count(count: int) -> float:
    """Take a term's (whole) weighted count and return its sublinear weight."""
    return 1.0 + math.log(count)


def weigh_terms(terms: Iterable[str]) -> dict[str, float]:
    """Take content terms, each listed once per unit of its weight; return sublinear weights."""
    counts = Counter(terms)
    return dict(zip(counts, map(weigh_count, counts.values()), strict=True))


def extract_entities(paragraphs: list[str]) -> tuple[str, ...]:
    """Take paragraphs and return names (capitalised runs, their last word) and numbers+units."""
    readings = list(map(read_chunks, paragraphs))
    return find_entities(list(chain.from_iterable(readings)), read_kinds(readings))


def read_kinds(paragraphs: list[list[Chunk]]) -> str:
    """Take paragraphs' chunk readings and return their letters; a paragraph ends a sentence."""
    kinds = ["".join(map(_KIND, chunks)) for chunks in paragraphs]
    return "".join([k[:-1] + k[-1:].translate(_LAST) for k in kinds])


def find_numbers(chunks: list[Chunk], kinds: str) -> list[tuple[int, str]]:
    """Take a text's chunk readings and letters; return each number+unit in order, with the
    position where its sentence ends."""
    numbers: list[tuple[int, str]] = []
    sentence_end = 0
    at = kinds.find("n")
    while at >= 0:  # an n never ends a sentence, so a word follows it
        unit = chunks[at + 1]
        if unit.is_unit or not chunks[at].is_bare:
            if at >= sentence_end:  # looked up once a sentence, or long ones cost n squared
                found_end = _SENTENCE_END.search(kinds, at)
                assert found_end is not None  # a paragraph's last letter ends a sentence
                sentence_end = found_end.end()
            numbers.append((sentence_end, f"{chunks[at].number} {unit.unit}"))
        at = kinds.find("n", at + 1)
    return numbers


def find_entities(chunks: list[Chunk], kinds: str) -> tuple[str, ...]:
    """Take a text's chunk readings and letters; return each sentence's names, then its
    numbers+units, sentence by sentence, each the first time it is found."""
    numbers = find_numbers(chunks, kinds)
    found: dict[str, None] = {}
    later = 0  # the first number not yet added, due once a run starts past its sentence
    due = numbers[0][0] if numbers else len(kinds)
    for run in _NAME_RUN.finditer(kinds):
        start, end = run.span()
        if start >= due:
            while later < len(numbers) and numbers[later][0] <= start:
                found[numbers[later][1]] = None
                later += 1
            due = numbers[later][0] if later < len(numbers) else len(kinds)
        first = chunks[start]
        if start + 1 == end:
            if first.alone:
                found[first.alone] = None
            continue
        last = chunks[end - 1]
        if first.alone and last.alone:  # no word to trim off either end
            found[" ".join(map(_NAME, chunks[start:end]))] = None
            if len(last.name) > 2:
                found[last.name] = None
        else:
            _flush_name([chunk.name for chunk in chunks[start:end]], found)
    found.update((entity, None) for _, entity in numbers[later:])
    return tuple(found)


def _flush_name(names: list[str], found: dict[str, None]) -> None:
    while names and (names[0] in STOPWORDS or names[0] in CALENDAR):
        names.pop(0)
    while names and (names[-1] in CONNECTORS or names[-1] in CALENDAR):
        names.pop()
    if not names:
        return
    found[" ".join(names)] = None
    if len(names) > 1 and len(names[-1]) > 2:
        found[names[-1]] = None


def hash_windows(words: Sequence[bytes], size: int) -> Iterator[int]:
    """Take UTF-8 words and a window size; return the CRC32 of each window's words."""
    windows = zip(*(words[k:] for k in range(size)), strict=False)  # the shorter ones end it
    return map(zlib.crc32, map(b" ".join, windows))


# The same quotation runs through every report that cites it.
@functools.lru_cache(maxsize=1 << 12)
def shingle_quotation(quoted: str) -> tuple[int, ...]:
    """Take a quotation's text and return the hashes of its QUOTE_WORDS-word windows."""
    words = list(chain.from_iterable(map(_WORDS, read_chunks(quoted))))
    return tuple(hash_windows(words, QUOTE_WORDS))


def shingle_quotes(text: str) -> frozenset[int]:
    """Take text and return hashes of every QUOTE_WORDS-word window inside its quotations."""
    return frozenset(chain.from_iterable(map(shingle_quotation, _QUOTE.findall(text))))


def sketch_text(words: list[str]) -> tuple[int, ...]:
    """Take word tokens and return the bottom-k hashes of their word shingles."""
    return sketch_encoded([w.encode() for w in words])


def sketch_encoded(words: list[bytes]) -> tuple[int, ...]:
    """Take UTF-8 word tokens and return the bottom-k hashes of their word shingles."""
    if len(words) < SHINGLE_WORDS:
        return (zlib.crc32(b" ".join(words)),)  # a text shorter than a shingle is one shingle
    return tuple(sorted(set(hash_windows(words, SHINGLE_WORDS)))[:SKETCH_SIZE])


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
    paragraphs = list(map(read_chunks, split_paragraphs(text)))
    chunks = list(chain.from_iterable(paragraphs))
    lead = sum(map(len, paragraphs[:LEAD_PARAGRAPHS]))
    title = read_chunks(title_text)
    title_terms = list(chain.from_iterable(map(_TERMS, title)))
    lead_terms = list(chain.from_iterable(map(_TERMS, chunks[:lead])))
    # The weights are whole numbers: listing a term once per unit of weight gives its count.
    weighted = chain(title_terms * int(TITLE_WEIGHT), lead_terms * int(LEAD_WEIGHT),
                     chain.from_iterable(map(_TERMS, chunks[lead:])))
    words = list(chain.from_iterable(map(_WORDS, chunks if text else title)))
    return ArticleFeatures(
        terms=weigh_terms(weighted), title=weigh_terms(title_terms),
        entities=find_entities(chunks, read_kinds(paragraphs)), quotes=shingle_quotes(text),
        sketch=sketch_encoded(words), when=when)
