"""Topic queries: parse the query language and match articles against it (pure).

Syntax: words, "quoted phrases", trailing `*` for prefixes (`troop*`), `*` alone for every
article, AND / OR / NOT (uppercase), parentheses; two terms side by side mean AND.
Precedence NOT > AND > OR. Matching is case- and accent-insensitive on whole words.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

from digestbot.errors import QueryError

__all__ = [
    "And",
    "AnyArticle",
    "Document",
    "Node",
    "Not",
    "Or",
    "Query",
    "Term",
    "match_document",
    "match_query",
    "normalize_words",
    "parse_query",
    "query_terms",
    "tokenize_document",
]

_KEYWORDS = frozenset({"AND", "OR", "NOT"})
_QUOTES = frozenset('"“”')
_APOSTROPHES = {0x2019: "'", 0x02BC: "'", 0x2018: "'"}
_WORD = re.compile(r"\w+(?:'\w+)*")


@dataclass(frozen=True, slots=True)
class Term:
    """A word or phrase; `words` are normalised tokens, `prefix` makes the last one a prefix."""

    text: str  # as written in the query, without the quotes of a phrase
    words: tuple[str, ...]
    prefix: bool = False
    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class AnyArticle:
    """`*` on its own: matches every article."""

    position: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Not:
    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    operands: tuple[Node, ...]


Node = Term | AnyArticle | Not | And | Or


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed topic query: the text as written and its syntax tree."""

    text: str
    root: Node

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Document:
    """An article tokenised once for matching against many queries."""

    tokens: tuple[str, ...]  # "" separates title from text so phrases never span both
    positions: Mapping[str, Sequence[int]]
    vocabulary: tuple[str, ...]  # sorted distinct tokens, for prefix search


@cache
def _mark_pattern() -> re.Pattern[str]:
    """Return a regex of every combining mark (built once, on first non-ASCII text)."""
    ranges: list[list[int]] = []
    for cp in range(0x300, 0x20000):
        if unicodedata.category(chr(cp))[0] == "M":
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])
    ranges.append([0xE0100, 0xE01EF])  # variation selectors supplement, the only marks above
    body = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{body}]+")


def _fold(text: str) -> str:
    """Return text case-folded with accents and other combining marks removed."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    return _mark_pattern().sub("", text).casefold()


def normalize_words(text: str) -> list[str]:
    """Return the normalised whole-word tokens of text, as documents and queries both use."""
    folded = _fold(text)
    words: list[str] = _WORD.findall(folded)
    if "'" not in folded:
        return words
    return [_drop_apostrophes(w) if "'" in w else w for w in words]


def _drop_apostrophes(word: str) -> str:
    # "Kyiv's" is about Kyiv; other apostrophes ("O'Brien") are just dropped.
    return (word[:-2] if word.endswith("'s") else word).replace("'", "")


def tokenize_document(title: str, text: str) -> Document:
    """Return the tokens and word index of an article's title and text."""
    tokens = (*normalize_words(title), "", *normalize_words(text))
    positions: dict[str, list[int]] = {}
    for i, token in enumerate(tokens):
        if token:
            positions.setdefault(token, []).append(i)
    return Document(tokens=tokens, positions=positions, vocabulary=tuple(sorted(positions)))


def _has_prefix(doc: Document, prefix: str) -> bool:
    vocab = doc.vocabulary
    i = bisect_left(vocab, prefix)
    return i < len(vocab) and vocab[i].startswith(prefix)


def _has_term(doc: Document, term: Term) -> bool:
    words = term.words
    if len(words) == 1:
        return _has_prefix(doc, words[0]) if term.prefix else words[0] in doc.positions
    starts = doc.positions.get(words[0])
    if not starts:
        return False
    tokens, last = doc.tokens, len(words) - 1
    for start in starts:
        if start + last >= len(tokens):
            break
        for i in range(1, last + 1):
            token = tokens[start + i]
            if i == last and term.prefix:
                if not (token and token.startswith(words[i])):
                    break
            elif token != words[i]:
                break
        else:
            return True
    return False


def _evaluate(node: Node, doc: Document, found: list[str]) -> bool:
    """Return whether node matches doc, appending the terms that made it match to found."""
    if isinstance(node, Term):
        if _has_term(doc, node):
            found.append(node.text)
            return True
        return False
    if isinstance(node, And):
        mark = len(found)
        for child in node.operands:
            if not _evaluate(child, doc, found):
                del found[mark:]
                return False
        return True
    if isinstance(node, Or):
        hit = False
        for child in node.operands:  # no short cut: every matching alternative is a reason
            hit = _evaluate(child, doc, found) or hit
        return hit
    if isinstance(node, Not):
        return not _evaluate(node.operand, doc, [])
    found.append("*")
    return True


def match_document(query: Query, doc: Document) -> tuple[str, ...] | None:
    """Return the query terms that matched doc (query order, deduplicated), or None."""
    found: list[str] = []
    if not _evaluate(query.root, doc, found):
        return None
    return tuple(dict.fromkeys(found))


def match_query(query: Query, title: str, text: str) -> tuple[str, ...] | None:
    """Return the query terms that matched an article's title and text, or None."""
    return match_document(query, tokenize_document(title, text))


def query_terms(query: Query) -> tuple[str, ...]:
    """Return the terms that can make query match (not those under NOT), in query order."""
    found: list[str] = []

    def collect(node: Node, positive: bool) -> None:
        if isinstance(node, Term):
            if positive:
                found.append(node.text)
        elif isinstance(node, AnyArticle):
            if positive:
                found.append("*")
        elif isinstance(node, Not):
            collect(node.operand, not positive)
        else:
            for child in node.operands:
                collect(child, positive)

    collect(query.root, True)
    return tuple(dict.fromkeys(found))


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "AND", "OR", "NOT", "term", "phrase"
    text: str
    position: int


def _lex_query(text: str) -> list[_Token]:
    """Return the tokens of a query, raising QueryError on an unterminated quote."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
        elif char in "()":
            tokens.append(_Token(char, char, i))
            i += 1
        elif char in _QUOTES:
            end = next((j for j in range(i + 1, n) if text[j] in _QUOTES), -1)
            if end < 0:
                raise QueryError("unterminated quote", i)
            tokens.append(_Token("phrase", text[i + 1 : end], i))
            i = end + 1
        else:
            start = i
            while i < n and not (text[i].isspace() or text[i] in "()" or text[i] in _QUOTES):
                i += 1
            word = text[start:i]
            tokens.append(_Token(word if word in _KEYWORDS else "term", word, start))
    return tokens


def _build_term(token: _Token) -> Term | AnyArticle:
    """Return the node for a word or phrase token, raising QueryError when it has no words."""
    raw = token.text.strip()
    if token.kind == "term" and raw == "*":
        return AnyArticle(token.position)
    if token.kind == "term" and raw.startswith("-") and len(raw) > 1:
        raise QueryError(f"use NOT to exclude a term, not '{raw}'", token.position)
    prefix = raw.endswith("*")
    body = raw[:-1] if prefix else raw
    if "*" in body:
        offset = token.text.index("*") + (1 if token.kind == "phrase" else 0)
        raise QueryError("'*' is only allowed at the end of a term", token.position + offset)
    words = tuple(normalize_words(body))
    if not words:
        what = "empty phrase" if token.kind == "phrase" and not raw else f"'{raw}' has no words"
        raise QueryError(what, token.position)
    return Term(text=" ".join(raw.split()), words=words, prefix=prefix, position=token.position)


class _Parser:
    """Recursive-descent parser over the query's tokens."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex_query(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def parse_or(self) -> Node:
        operands = [self.parse_and()]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.take()
            operands.append(self.parse_and(after=token))
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def parse_and(self, after: _Token | None = None) -> Node:
        operands = [self.parse_not(after)]
        while (token := self.peek()) is not None and token.kind not in ("OR", ")"):
            if token.kind == "AND":
                self.take()
                operands.append(self.parse_not(token))
            else:
                operands.append(self.parse_not(None))
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def parse_not(self, after: _Token | None) -> Node:
        token = self.peek()
        if token is not None and token.kind == "NOT":
            self.take()
            return Not(self.parse_not(token))
        return self.parse_primary(after)

    def parse_primary(self, after: _Token | None) -> Node:
        token = self.peek()
        if token is None or token.kind in ("AND", "OR", ")"):
            if after is not None:
                raise QueryError(f"expected a term after {after.text}", after.position)
            if token is None:
                raise QueryError("empty query", 0)
            if token.kind == ")":
                raise QueryError("empty parentheses", token.position)
            raise QueryError(f"expected a term before {token.text}", token.position)
        self.take()
        if token.kind == "(":
            inner = self.peek()
            if inner is not None and inner.kind == ")":
                raise QueryError("empty parentheses", token.position)
            if inner is None:
                raise QueryError("unbalanced parenthesis", token.position)
            node = self.parse_or()
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise QueryError("unbalanced parenthesis", token.position)
            self.take()
            return node
        return _build_term(token)


def parse_query(text: str) -> Query:
    """Return the parsed query, raising QueryError with a 0-based position when it is wrong."""
    parser = _Parser(text)
    if not parser.tokens:
        raise QueryError("empty query", 0)
    root = parser.parse_or()
    leftover = parser.peek()
    if leftover is not None:  # only a ")" can stop parse_or early
        raise QueryError("unbalanced parenthesis", leftover.position)
    return Query(text=text.strip(), root=root)
