"""Where a quote is attributed: the speech verb and the speaker phrase next to a quote.

Pure, rule-based and offline. Works on one paragraph at a time: finds sentence ends, speech verbs
("said", "told", "according to") and the noun phrase that goes with them, before or after a quote
("Ms Truss said", "said Ms Truss, the foreign secretary", "He added:"). Turning that phrase into a
person is `speakers.resolve_speaker`'s job.
"""

from __future__ import annotations

import re

from digestbot.speakers import (
    DETERMINERS,
    PARENTHESES,
    PRONOUN_GENDER,
    ROLE_HEADS,
    find_name_runs,
    word_set,
)

_ABBREVIATIONS = word_set("""
mr mrs ms dr prof sen rep gov gen col capt lt sgt st jr sr rev adm mt ft no vs inc corp co ltd
del
""")

# Speech verbs; nouns that double as verbs ("remarks", "notes") are left out on purpose.
_SPEECH_VERBS = word_set("""
say says said saying tell tells told telling add adds added adding warn warns warned warning
reply replies replied replying write writes wrote writing ask asks asked asking insist insists
insisted insisting explain explains explained explaining noted noting argue argues argued arguing
claimed claiming stated stating continue continues continued continuing recall recalls recalled
recalling declare declares declared declaring announced announcing acknowledged acknowledges
admitted admits conceded concedes responded responds responding tweeted tweets tweeting posted
joked jokes quipped quips suggested suggests stressed stresses emphasized emphasised
emphasizes emphasises predicted predicts observed observes remarked countered complained
complains urged urges pleaded pleads vowed promised cautioned cautions commented concluded
boasted boasts lamented laments shouted shouts yelled exclaimed whispered mused testified
charged alleged contended maintained asserted asserts implored thundered fumed proclaimed
retorted chanted sang sings reads demanded demands scolded laughed reported wondered
""")
_PARTICIPLES = frozenset(w for w in _SPEECH_VERBS if w.endswith("ing"))
_ADVERBS = word_set("""
later also then again simply recently previously once often flatly quickly angrily earlier
further bluntly softly quietly finally repeatedly separately privately publicly sarcastically
""")
_PHRASE_STOP = re.compile(
    r",|;|:|—|–|―|\s(?:in|on|at|during|after|before|when|while|as|who|which|to|from|with|"
    r"last|this|that|about|of|for)\s", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…](?=[\"”’']?\s+[\"“‘(]?[A-Z0-9]|[\"”’']?\s*$)")
_VERB_WORD = re.compile(r"[A-Za-z][\w'’\-]*")
_CLAUSE_SUBJECT = re.compile(r"\b(?:he|she|they|we|I|it|who|which)\b")


def sentence_ends(text: str) -> list[int]:
    """Take text outside quotes and return the offsets just after each sentence's end mark."""
    ends = []
    for m in _SENTENCE_END.finditer(text):
        word = re.search(r"([\w.]+)$", text[:m.start()])
        prev = word.group(1) if word else ""
        if m.group() == "." and (prev.lower().rstrip(".") in _ABBREVIATIONS
                                 or re.fullmatch(r"(?:[A-Z]\.)*[A-Z]", prev)):
            continue
        ends.append(m.end())
    return ends


def sentence_bounds(text: str, pos: int) -> tuple[int, int]:
    """Take text and a position; return the start and end of the sentence holding it."""
    ends = sentence_ends(text)
    start = max((e for e in ends if e <= pos), default=0)
    end = min((e for e in ends if e > pos), default=len(text))
    while start < len(text) and text[start].isspace():
        start += 1
    return start, end


def speech_verbs(text: str) -> list[re.Match[str]]:
    """Take text and return the speech verbs in it, in order."""
    return [m for m in _VERB_WORD.finditer(text) if m.group().lower() in _SPEECH_VERBS
            or (m.group().lower() == "according" and text[m.end():m.end() + 3] == " to")]


_CLAUSE_BREAK = re.compile(r",|;|―|—|–|\s--\s|\b(?:that|when|while|because|after|as|and|but|"
                           r"if|since|where)\s")
# "Mitch Ranola, R-Ky.," and "(D-Md.)": a party and state tag, never the speaker's head.
_PARTY_TAG = re.compile(r"\(?[RDI]-[A-Z][A-Za-z.]{0,6}\)?")
_INTRO = word_set("""
in on at during after before but and asked speaking when while later earlier then also so yet
as with without since despite in addition for from by under over
""")


def choose_head(text: str, start: int, end: int) -> int:
    """Take a subject range that may hold intro clauses or appositions; return where it starts."""
    cuts = [start] + [m.end() for m in _CLAUSE_BREAK.finditer(text, start, end)]
    segments = [(a, text[a:b]) for a, b in zip(cuts, [*cuts[1:], end], strict=True)
                if text[a:b].strip(" ,;―—–-\u00a0")
                and not _PARTY_TAG.fullmatch(text[a:b].strip(" ,;\u00a0"))]
    if not segments:
        return start
    head_start, last = segments[-1]
    words = last.split()
    if words and (words[0] in DETERMINERS or words[0][:1].islower()) \
            and words[0].lower() not in PRONOUN_GENDER:
        for a, seg in segments[:-1]:
            first = seg.split()[0] if seg.split() else ""
            if first[:1].isupper() and first.lower() not in _INTRO:
                return a
    return head_start


def trim_subject(text: str, start: int, end: int) -> tuple[str, int] | None:
    """Take text and a subject range before a verb; return the subject without adverbs."""
    start = choose_head(text, start, end)
    words = list(_VERB_WORD.finditer(text, start, end))
    while words and words[-1].group().lower() in _ADVERBS | {"has", "had", "have"}:
        end = words[-1].start()
        words.pop()
    phrase = text[start:end]
    lead = len(phrase) - len(phrase.lstrip(" ,—–―-\u00a0\n"))
    phrase = phrase.strip(" ,—–―-\u00a0\n")
    if not phrase or len(phrase.split()) > 12:
        return None
    return phrase, start + lead


def object_phrase(text: str, start: int, end: int) -> tuple[str, int] | None:
    """Take text after an inverted verb ("said Ms Truss, ...") and return the speaker phrase."""
    rest = text[start:end]
    while True:
        m = re.match(r"\s*(\w+)\s", rest)
        if not m or m.group(1).lower() not in _ADVERBS:
            break
        start += m.end()
        rest = rest[m.end():]
    cut = _PHRASE_STOP.search(PARENTHESES.sub(lambda m: " " * len(m.group()), rest))
    phrase = rest[:cut.start()] if cut else rest
    return trim_subject(text, start, start + len(phrase))


def sentence_subject(text: str, start: int, end: int) -> tuple[str, int] | None:
    """Take a sentence range and return its leading noun phrase (for "..., saying:" forms)."""
    for m in _CLAUSE_BREAK.finditer(text, start, end):
        intro = text[start:m.start()].split()
        if not intro or intro[0].lower() not in _INTRO:
            break
        start = m.end()
    words = list(_VERB_WORD.finditer(text, start, end))
    taken: list[re.Match[str]] = []
    for w in words[:6]:
        lower = w.group().lower()
        if taken and not w.group()[0].isupper() and lower not in DETERMINERS \
                and lower not in ROLE_HEADS and not taken[-1].group()[0].islower():
            break
        taken.append(w)
        if lower in PRONOUN_GENDER or lower in ROLE_HEADS:
            break
    if not taken:
        return None
    return text[taken[0].start():taken[-1].end()], taken[0].start()


def find_attribution_after(text: str, start: int, limit: int,
                           inner: str) -> tuple[str, int] | None:
    """Take a paragraph and the text range after a quote; return (speaker phrase, offset)."""
    newline = text.find("\n", start, limit)
    limit = limit if newline < 0 else newline
    ends = [start + e for e in sentence_ends(text[start:limit])]
    end = min(ends, default=limit)
    frame = text[start:end]
    body = frame.lstrip(" ,\u00a0")
    offset = start + len(frame) - len(body)
    if body[:1] in "―—–" and not inner.rstrip().endswith((",", ":")):
        dashed = re.sub(r"^[―—–\-\s]+", "", body)
        if dashed[:1].isupper():
            return object_phrase(text, offset + len(body) - len(dashed), end)
        return None
    verbs = [v for v in speech_verbs(text[:end]) if v.start() >= offset]
    if not verbs:
        return None
    verb = verbs[0]
    before = text[offset:verb.start()]
    if len(before.split()) > 10:
        named = re.match(r"(?:[A-Z][\w.'’\-]*\s+){0,3}[A-Z][\w.'’\-]*,", before)
        if not named:
            return None
        return named.group().rstrip(","), offset
    new_sentence = inner.rstrip().endswith(".") and body[:1].isupper() \
        and not re.match(r"(?:[Ss]aid|[Ss]ays|[Aa]dded|[Ww]rote|[Aa]sked)\b", body)
    if new_sentence and (len(before.split()) > 4 or len(text[verb.end():end].split()) > 6):
        return None
    if verb.group().lower() == "according":
        return object_phrase(text, verb.end() + 3, end)
    if not before.strip(" ,—–-\u00a0"):
        return object_phrase(text, verb.end(), end)
    return trim_subject(text, offset, verb.start())


def find_attribution_before(text: str, lo: int, hi: int) -> tuple[str, int] | None:
    """Take a paragraph and the text range before a quote; return (speaker phrase, offset)."""
    lo = max(lo, text.rfind("\n", lo, hi) + 1)
    ends = [lo + e for e in sentence_ends(text[lo:hi])]
    start = max([e for e in ends if e < hi], default=lo)
    while start < hi and text[start] in " \u00a0\n,":
        start += 1
    seg = text[start:hi].rstrip(" \u00a0\n—–-")
    if not seg:
        return None
    according = re.match(r"(?:[Aa]ccording to|[Aa]s)\s+(.+?)(?:\s+(?:put it|puts it|said|says|"
                         r"wrote|writes|noted|explained))?,$", seg)
    if according:
        return trim_subject(text, start + according.start(1), start + according.end(1))
    verbs = speech_verbs(seg)
    if not verbs:
        if seg.endswith(":"):
            return sentence_subject(text, start, hi)
        return None
    verb = verbs[-1]
    tail = seg[verb.end():]
    if tail.strip() and not (tail.rstrip().endswith((":", ",", " that")) and
                             len(tail.split()) <= 8):
        return None
    if verb.group().lower() in _PARTICIPLES:
        named = re.search(r"((?:[A-Z][\w.'’\-]*\s+){0,3}[A-Z][\w.'’\-]*)\s+$",
                          seg[:verb.start()])
        if named and find_name_runs(named.group(1)):
            return named.group(1), start + named.start(1)
        return sentence_subject(text, start, start + verb.start())
    if not seg[:verb.start()].strip():
        return object_phrase(text, start + verb.end(), hi)
    return trim_subject(text, start, start + verb.start())


def find_attribution_in_sentence(text: str) -> tuple[str, int] | None:
    """Take text before a quote and return the speaker of its last sentence's speech verb."""
    ends = sentence_ends(text.rstrip())
    start = max([e for e in ends if e < len(text.rstrip())], default=0)
    seg_end = len(text.rstrip())
    if any(c in text[start:seg_end] for c in "\"“”"):
        return None
    verbs = speech_verbs(text[start:seg_end])
    if not verbs:
        return None
    verb = verbs[0]
    if verb.group().lower() in _PARTICIPLES:
        return sentence_subject(text, start, start + verb.start())
    if not text[start:start + verb.start()].strip():
        return object_phrase(text, start + verb.end(), seg_end)
    found = trim_subject(text, start, start + verb.start())
    if found and len(found[0].split()) <= 6:
        return found
    return None


def leads_with_clause(text: str, pos: int) -> bool:
    """Take a paragraph and a quote's opening mark; return whether a reported clause leads in."""
    start, _ = sentence_bounds(text, pos)
    lead = text[start:pos]
    verbs = speech_verbs(lead)
    # `said she has one rule: "…"`, `told of his father, who wired: "…"`: the quote ends the
    # reporter's own clause, so the source's content is mixed, not a direct quote.
    return bool(verbs) and _CLAUSE_SUBJECT.search(lead[verbs[-1].end():]) is not None


def follows_paraphrase(gap: str, *, after_quote: bool) -> bool:
    """Take the text before a quote on its line; return whether it ends in reported speech."""
    gap = gap.rstrip()
    ends = sentence_ends(gap)
    if not gap or not ends or ends[-1] != len(gap):
        return False  # the quote starts its line, or a lead-in of its own introduces it
    last = max([e for e in ends if e < len(gap)], default=0)
    if after_quote and not last:
        return False  # only the previous quote's own attribution: `"…," she said. "…"`
    # `Lee said the bridge may wait. "The other option …"`: the quote goes on from a paraphrase
    # and leans on it ("other", "in that sense"); sources file both as one mixed attribution.
    return bool(speech_verbs(gap[last:]))
