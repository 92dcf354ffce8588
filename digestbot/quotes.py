"""Direct quotes: find verbatim speech in an article, attribute it, and merge it across a story.

Conventions (pure, rule-based, offline):
- `Quote.text` is the speech without its quotation marks; a trailing comma or colon is dropped.
- A quote split around its attribution (`"X," she said, "Y."`) is ONE Quote whose parts are joined
  with " … " (the ellipsis marks the omitted attribution); a quote running over paragraphs joins
  its parts with a blank line. Every part returned by `quote_parts` is an exact substring of the
  source paragraph it came from. A quote that opens the sentence right after its attribution
  sentence (`"X," said Ann Lee, a lawyer. "Y."`) and has no attribution of its own continues X;
  so does an unattributed quote opening the paragraph right after `"X," she said.`
- Only direct speech is returned: scare quotes, fragments, titles of works ("her column, “…”"),
  transcript excerpts ("WALLACE: …") and partial quotes that the reporter's sentence wraps
  (`said that “…”`, `because, “…”`, `“…” for years, she said`) are skipped, as are quotes the
  reporter's clause leads into (`said she has one rule: “…”`) and unattributed quotes that go on
  from a paraphrase (`Lee said the bridge may wait. “The other option …”`): mixed, not direct.
- `Quote.paragraph` indexes the non-empty paragraphs (`Article.paragraphs`); `Quote.start` is the
  offset of the first part inside that paragraph.
- Speakers are people (full name, honorifics dropped) or named organisations
  ("the Interior Ministry said" -> "Interior Ministry"); unnamed sources give None.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from digestbot.attribution import (
    find_attribution_after,
    find_attribution_before,
    find_attribution_in_sentence,
    follows_paraphrase,
    leads_with_clause,
    sentence_bounds,
    sentence_ends,
    speech_verbs,
)
from digestbot.records import Quote, StoryQuote
from digestbot.speakers import Cast, build_cast, resolve_speaker, word_set

PART_SEPARATOR = " … "
PARAGRAPH_SEPARATOR = "\n\n"
_DOUBLE_OPEN = "“„«"
_DOUBLE_CLOSE = "”»"
_OPENER_BEFORE = set(" \t\n\u00a0([{—–-―/:")
_READ_MORE = re.compile(
    r"^\W*(?:read more|read|related|see also|also read|more|watch|listen|recommended|click here"
    r"|sign up|subscribe)\b\s*[:|\-–—]?", re.IGNORECASE)
_VERBLIKE = word_set("""
is are was were be been being am isn't aren't wasn't weren't will would can could should must
shall may might have has had do does did don't doesn't didn't won't can't couldn't wouldn't
get got go going goes went want wants think thinks know knew need needs say said make made take
let see come look give tell told believe feel hope stand keep stop work win lose fight help
""")
_WORD_RE = re.compile(r"[\w'’]+")
# "WALLACE: Let's start ..." opens a transcript excerpt, not one person's quote.
_TRANSCRIPT_LABEL = re.compile(r"[A-Z][A-Z.'’\- ]{1,30}:\s")
# Quoted text right after the name of a work is its title ("his op-ed, “A Plan for Lirna”").
_WORK_BEFORE = re.compile(
    r"\b(?:commentary|column|op-ed|editorial|article|essay|book|novel|memoir|song|album|film|movie"
    r"|documentary|series|poem|headline|titled|entitled|headlined),?$", re.IGNORECASE)
# `she said that “…”`: the quote finishes the reporter's sentence (a mixed quote, not direct).
_THAT_BEFORE = re.compile(r"\b(?:that|because|whether|than|such as),?$")
_QUOTE_MARKS = "\"“”„«»"
_SENTENCE_START = re.compile(r"(?:^|[.!?…][\"”’')]*\s)[\s\"“‘(]*$")


@dataclass
class Span:
    """One run of text between a pair of quotation marks inside one paragraph."""

    paragraph: int
    open: int  # index of the opening mark
    start: int  # first character of the inner text
    end: int  # one past the inner text
    close: int | None  # index of the closing mark, None when the paragraph ends first
    single: bool = False
    continues: bool = False  # the inner text goes on in the next span (next paragraph)


@dataclass
class Unit:
    """A quote under construction: its spans (parts), speaker and how it was attributed."""

    spans: list[Span]
    speaker: str | None = None
    attributed: bool = False
    by_verb: bool = False  # attributed by a speech verb, not only by a colon or dash
    from_before: bool = False  # the attribution stands before the quote


def quote_parts(quote: Quote) -> list[str]:
    """Take a Quote and return its verbatim parts (split at " … " and paragraph breaks)."""
    return [p for chunk in quote.text.split(PARAGRAPH_SEPARATOR)
            for p in chunk.split(PART_SEPARATOR) if p]


def find_closing_single(text: str, start: int, mark: str) -> int | None:
    """Take a paragraph and the start of single-quoted text; return the closing mark's index."""
    closers = [m.start() for m in re.finditer(re.escape(mark), text[start:])]
    candidates = []
    for rel in closers:
        i = start + rel
        after = text[i + 1:i + 2]
        if i > start and not text[i - 1].isspace() and not after.isalnum():
            candidates.append(i)
    for i in candidates:
        if text[i - 1] in ",.!?":
            return i
    return candidates[0] if candidates else None


def find_spans(text: str, paragraph: int) -> list[Span]:
    """Take one paragraph and return its quoted spans, in order."""
    spans: list[Span] = []
    current: int | None = None
    i = 0
    while i < len(text):
        ch = text[i]
        before = text[i - 1] if i else " "
        after = text[i + 1] if i + 1 < len(text) else " "
        opener_like = before in _OPENER_BEFORE and not after.isspace()
        if current is not None and text[current] == '"' and ch in _DOUBLE_OPEN \
                and before != "\n":
            # Curly quotes nested in a straight-quoted passage: skip to their closing mark.
            nested = text.find("”", i + 1)
            i = (nested if nested > 0 else i) + 1
            continue
        if ch in _DOUBLE_OPEN or ch in _DOUBLE_CLOSE or ch == '"':
            if current is None:
                if ch in _DOUBLE_OPEN or opener_like or (ch == '"' and not after.isspace()):
                    current = i
            elif ch in _DOUBLE_OPEN or (ch == '"' and before == "\n" and opener_like):
                end = len(text[:i].rstrip())
                spans.append(Span(paragraph, current, current + 1, end, None,
                                  continues=before == "\n"))
                current = i
            else:
                spans.append(Span(paragraph, current, current + 1, i, i))
                current = None
        elif current is None and ch in "‘'" and opener_like and after.isalpha():
            close = find_closing_single(text, i + 1, "’" if ch == "‘" else "'")
            if close is not None:
                spans.append(Span(paragraph, i, i + 1, close, close, single=True))
                i = close
        i += 1
    if current is not None:
        spans.append(Span(paragraph, current, current + 1, len(text.rstrip()), None))
    return [s for s in spans if s.end > s.start]


def link_units(paragraphs: list[str]) -> list[Unit]:
    """Take paragraphs and return quote units, joining quotes that run over paragraphs."""
    units: list[Unit] = []
    pending: Unit | None = None
    for index, text in enumerate(paragraphs):
        spans = find_spans(text, index)
        for n, span in enumerate(spans):
            if pending is not None and n == 0 and not text[:span.open].strip():
                pending.spans.append(span)
            else:
                units.append(Unit([span]))
            pending = units[-1] if span.close is None and not span.single else None
            if span.continues:
                pending = units[-1]
        if pending is not None and (not spans or spans[-1].close is not None):
            pending = None
    return units


def is_speech(unit: Unit, paragraphs: list[str]) -> bool:
    """Take a quote unit and return whether it is speech, not a scare quote, title or fragment."""
    first = unit.spans[0]
    para = paragraphs[first.paragraph]
    inner = " ".join(paragraphs[s.paragraph][s.start:s.end] for s in unit.spans)
    lead = para[:first.open].rstrip()
    if _READ_MORE.match(para) or _TRANSCRIPT_LABEL.match(inner.lstrip()) \
            or _WORK_BEFORE.search(lead) or _THAT_BEFORE.search(lead):
        return False
    if leads_with_clause(para, first.open):
        return False
    words = _WORD_RE.findall(inner)
    if inner.lstrip()[:1].islower():
        return False
    if len(words) < 4:
        # Short replies count only when a speech verb follows: "“You winning?” she said."
        last = unit.spans[-1]
        return len(words) >= 2 and unit.by_verb and not unit.from_before \
            and last.close is not None and inner.rstrip()[-1:] in ",.!?" \
            and not para[:first.open].strip(" \u00a0")[-1:].isalnum()
    # Sentence-initial capitals say nothing about title case ("It’s a dog whistle to all ...").
    long_words = [m.group() for m in _WORD_RE.finditer(inner) if len(m.group()) > 3
                  and not _SENTENCE_START.search(inner[:m.start()])]
    capitalised = sum(w[0].isupper() for w in long_words)
    ends_sentence = inner.rstrip()[-1:] in ".!?,…—-"
    if long_words and capitalised / len(long_words) > 0.6 and (
            inner.rstrip()[-1:] not in ".!?" or len(words) < 8):
        return False
    embedded = bool(lead) and (lead[-1].isalnum() or lead[-1] in "’'")
    if (embedded and not ends_sentence) or is_partial(unit, paragraphs, ends_sentence):
        return False
    if len(words) < 8 and not ends_sentence and not any(
            w.lower() in _VERBLIKE or w.lower().endswith(("ed", "ing", "n't")) for w in words):
        return False
    return not (first.single and not unit.by_verb)


def is_partial(unit: Unit, paragraphs: list[str], ends_sentence: bool) -> bool:
    """Take a unit; return whether the reporter's sentence goes on after its closing mark."""
    last = unit.spans[-1]
    if last.close is None or ends_sentence:
        return False
    follow = paragraphs[last.paragraph][last.close + 1:].lstrip()
    if not follow[:1].islower():
        return False
    # `“…” she said` names the speaker; `“…” for criminal behaviour, she said` is partial.
    return not (unit.attributed and speech_verbs(" ".join(follow.split()[:3])))


def attribute_units(units: list[Unit], paragraphs: list[str], cast: Cast,
                    bases: list[int]) -> None:
    """Take quote units in order and set each one's speaker from the text around it."""
    spans_by_par: dict[int, list[Span]] = {}
    for unit in units:
        for span in unit.spans:
            spans_by_par.setdefault(span.paragraph, []).append(span)
    last_speaker: dict[int, str | None] = {}
    for unit in units:
        first, last = unit.spans[0], unit.spans[-1]
        siblings = spans_by_par[last.paragraph]
        found = None
        if last.close is not None:
            text = paragraphs[last.paragraph]
            nxt = next((s.open for s in siblings if s.open > last.close), len(text))
            found = find_attribution_after(text, last.close + 1, nxt, text[last.start:last.end])
            unit.by_verb = bool(found and speech_verbs(text[last.close + 1:found[1] + 80]))
            if found:
                phrase, offset = found
                unit.speaker = resolve_speaker(cast, phrase, bases[last.paragraph] + offset)
        if not found:
            text = paragraphs[first.paragraph]
            prev = max((s.close + 1 for s in spans_by_par[first.paragraph]
                        if s.close is not None and s.close < first.open), default=0)
            found = find_attribution_before(text, prev, first.open)
            unit.from_before = found is not None
            unit.by_verb = bool(found and speech_verbs(text[found[1]:first.open]))
            if found:
                phrase, offset = found
                unit.speaker = resolve_speaker(cast, phrase, bases[first.paragraph] + offset)
        unit.attributed = found is not None
        if not found:
            unit.speaker = continue_speaker(unit, paragraphs, cast, bases, last_speaker)
        last_speaker[last.paragraph] = unit.speaker


def continue_speaker(unit: Unit, paragraphs: list[str], cast: Cast, bases: list[int],
                     last_speaker: dict[int, str | None]) -> str | None:
    """Take an unattributed unit and return the speaker carried over from just before it."""
    first = unit.spans[0]
    text = paragraphs[first.paragraph]
    start, _ = sentence_bounds(text, first.open)
    if start > 0 or text[:first.open].strip():
        previous = text[:first.open]
        found = find_attribution_in_sentence(previous)
        if found:
            return resolve_speaker(cast, found[0], bases[first.paragraph] + found[1])
        return last_speaker.get(first.paragraph)
    if first.paragraph - 1 in last_speaker:
        return last_speaker[first.paragraph - 1]
    if first.paragraph > 0:
        previous = paragraphs[first.paragraph - 1]
        found = find_attribution_in_sentence(previous)
        if found:
            return resolve_speaker(cast, found[0], bases[first.paragraph - 1] + found[1])
    return None


def join_split_units(units: list[Unit], paragraphs: list[str]) -> list[Unit]:
    """Take attributed units and join `"X," she said, "Y."` pairs into one unit."""
    joined: list[Unit] = []
    for unit in units:
        prev = joined[-1] if joined else None
        if prev is not None and can_join(prev, unit, paragraphs) and (
                is_speech(prev, paragraphs) or not is_speech(unit, paragraphs)):
            prev.spans.extend(unit.spans)
            continue
        joined.append(unit)
    return joined


def can_join(prev: Unit, unit: Unit, paragraphs: list[str]) -> bool:
    """Take two neighbouring units and return whether the second continues the first."""
    a, b = prev.spans[-1], unit.spans[0]
    if b.paragraph == a.paragraph + 1 and a.close is not None and not unit.attributed:
        return continues_remarks(prev, unit, paragraphs)
    if a.paragraph != b.paragraph or a.close is None or a.single != b.single:
        return False
    between = paragraphs[a.paragraph][a.close + 1:b.open]
    if "\n" in between:
        return False
    if not between.strip():
        return True
    if unit.attributed and not unit.from_before:
        return False
    found = find_attribution_after(paragraphs[a.paragraph], a.close + 1, b.open, "")
    if not found:
        return False
    rest = between.strip()
    if not prev.attributed or rest[-1] not in ",.:;—–-":
        return False
    if len(rest.split()) <= 14:
        return True
    # `"X," said Ann Lee, a lawyer who … . "Y."`: a long apposition, still one attribution sentence.
    return not unit.attributed and rest[-1] == "." and len(rest.split()) <= 40 \
        and not any(c in rest for c in _QUOTE_MARKS) and not sentence_ends(rest[:-1])


def continues_remarks(prev: Unit, unit: Unit, paragraphs: list[str]) -> bool:
    """Take a quote closing its paragraph and an unattributed one opening the next; join them?"""
    a, b = prev.spans[-1], unit.spans[0]
    rest = paragraphs[a.paragraph][(a.close or 0) + 1:].strip()
    # `"…," he said.` then a paragraph that is only `"…"`: the same remarks go on.
    return prev.attributed and not prev.from_before and a.close is not None \
        and not paragraphs[b.paragraph][:b.open].strip() and "\n" not in rest \
        and not any(c in rest for c in _QUOTE_MARKS) and len(sentence_ends(rest)) <= 1 \
        and is_speech(unit, paragraphs)


def continues_paraphrase(unit: Unit, speech: list[Unit], paragraphs: list[str]) -> bool:
    """Take an unattributed speech unit; return whether it goes on from reported speech."""
    first = unit.spans[0]
    text = paragraphs[first.paragraph]
    # The reporter's text before it starts at the line break or at the last direct quote.
    line = text.rfind("\n", 0, first.open) + 1
    closes = [s.close + 1 for u in speech for s in u.spans if s.paragraph == first.paragraph
              and s.close is not None and line <= s.close < first.open]
    return follows_paraphrase(text[max([line, *closes]):first.open], after_quote=bool(closes))


def unit_text(unit: Unit, paragraphs: list[str]) -> str:
    """Take a unit and return its quote text: verbatim parts joined by the separators."""
    out = ""
    for n, span in enumerate(unit.spans):
        part = paragraphs[span.paragraph][span.start:span.end].strip()
        if n < len(unit.spans) - 1 or span.close is not None:
            part = part.rstrip(",;:").rstrip()
        if n:
            prev = unit.spans[n - 1]
            out += PARAGRAPH_SEPARATOR if prev.paragraph != span.paragraph or prev.continues \
                else PART_SEPARATOR
        out += part
    return out


def extract_quotes(text: str, *, title: str | None = None) -> list[Quote]:
    """Take article plain text (blank-line paragraphs) and return its attributed direct quotes."""
    paragraphs = [p for p in text.split("\n\n") if p.strip()]
    bases: list[int] = []
    offset = 0
    for para in paragraphs:
        bases.append(offset)
        offset += len(para) + 2
    units = link_units(paragraphs)
    quoted = [(bases[s.paragraph] + s.start, bases[s.paragraph] + s.end)
              for u in units for s in u.spans]
    cast = build_cast(paragraphs, quoted, title or "")
    attribute_units(units, paragraphs, cast, bases)
    quotes: list[Quote] = []
    joined = join_split_units(units, paragraphs)
    speech = [u for u in joined if is_speech(u, paragraphs)]
    for unit in speech:
        if not unit.attributed and continues_paraphrase(unit, speech, paragraphs):
            continue
        first = unit.spans[0]
        inner = paragraphs[first.paragraph][first.start:first.end]
        lead = len(inner) - len(inner.lstrip())
        quotes.append(Quote(unit_text(unit, paragraphs), unit.speaker, first.paragraph,
                            first.start + lead))
    return quotes


_STOPWORDS = word_set("""
a an the and or but if of in on at to for from by with as is are was were be been it its this
that these those i we you he she they me us him her them my our your his their not no so do does
did have has had will would can could should there here what which who whom when where why how
all any some just very about into over than then also up out
""")


def normalise_words(text: str) -> list[str]:
    """Take quote text and return its lower-case words, ignoring marks, case and punctuation."""
    return re.findall(r"[a-z0-9]+(?:'[a-z]+)?", text.lower().replace("’", "'").replace("‘", "'"))


def contains_quote(longer: Quote, shorter: Quote) -> bool:
    """Take two quotes and return whether every part of the shorter appears in the longer."""
    whole = " " + " ".join(normalise_words(longer.text)) + " "
    parts = [" ".join(normalise_words(p)) for p in quote_parts(shorter)]
    parts = [p for p in parts if p]
    return bool(parts) and all(f" {p} " in whole for p in parts)


def score_quote(text: str, speaker: str | None, outlets: int, vocabulary: set[str],
                terms: Sequence[str], story_text: str) -> float:
    """Take a merged quote and its story context; return its ranking score (higher is better)."""
    words = normalise_words(text)
    content = {w for w in words if w not in _STOPWORDS}
    relevance = len(content & vocabulary) / len(content) if content and vocabulary else 0.0
    lowered = " ".join(words)
    hits = sum(1 for t in terms if " ".join(normalise_words(t)) in lowered)
    term_score = min(1.0, hits / len(terms)) if terms else 0.0
    prominence = 0.0
    if speaker:
        surname = normalise_words(speaker)[-1:] or [""]
        mentions = normalise_words(story_text).count(surname[0])
        prominence = min(1.0, mentions / 5)
    n = len(words)
    length = 0.5 if 10 <= n <= 60 else (0.5 * n / 10 if n < 10 else max(-0.5, 0.5 - (n - 60) / 80))
    outlets_score = min(1.0, (outlets - 1) / 3)
    return round(2.0 * term_score + 1.5 * relevance + outlets_score
                 + (0.5 if speaker else 0.0) + 0.5 * prominence + length, 4)


def merge_quotes(per_article: Sequence[tuple[str, Sequence[Quote]]], *, terms: Sequence[str] = (),
                 story_text: str = "") -> list[StoryQuote]:
    """Take (article URL, quotes) pairs of one story; return merged quotes ranked best first."""
    groups: list[tuple[Quote, list[str], list[str | None]]] = []
    for url, quotes in per_article:
        for quote in quotes:
            for n, (best, urls, speakers) in enumerate(groups):
                if contains_quote(best, quote) or contains_quote(quote, best):
                    longer = quote if len(quote.text) > len(best.text) \
                        and contains_quote(quote, best) else best
                    groups[n] = (longer, urls if url in urls else [*urls, url],
                                 [*speakers, quote.speaker])
                    break
            else:
                groups.append((quote, [url], [quote.speaker]))
    vocabulary = {w for w in normalise_words(story_text) if w not in _STOPWORDS}
    merged = []
    for order, (best, urls, speakers) in enumerate(groups):
        named = Counter(s for s in speakers if s)
        speaker = None
        if named:
            top = max(named.values())
            speaker = next(s for s in speakers if s and named[s] == top)
        score = score_quote(best.text, speaker, len(urls), vocabulary, terms, story_text)
        merged.append((score, order, StoryQuote(best.text, speaker, tuple(urls), score)))
    merged.sort(key=lambda item: (-item[0], item[1]))
    return [item[2] for item in merged]
