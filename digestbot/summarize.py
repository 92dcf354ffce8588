"""Extractive story summaries: pick central, non-redundant, standalone sentences and a headline.

Pure and offline: sentences are scored by TF-IDF centroid similarity, similarity to the story's
titles, cross-source support and lead position, then chosen by MMR so they do not repeat.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from digestbot.records import Article


def _wordset(words: str) -> frozenset[str]:
    """Take whitespace-separated words; return them as a frozen set."""
    return frozenset(words.split())


# Tokens that end in "." but rarely end a sentence: titles, months, company suffixes.
_ABBREVIATIONS = _wordset(
    """mr mrs ms dr prof sen rep gov gen col lt sgt capt cmdr adm maj pres supt det insp rev fr
    st jr sr inc corp ltd co bros dept univ assn est approx vs v etc al fig no nos vol ch sec
    jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun
    mt ft ave blvd rd hwy sq ste apt pp op ed cf ca gop"""
)
# After these a capitalised word is still usually the same sentence ("Sen. Ana Ruiz").
_NEVER_SPLIT_AFTER = _wordset(
    """mr mrs ms dr prof sen rep gov gen col lt sgt capt cmdr adm maj pres supt det insp rev fr
    st jr sr vs v no nos mt ft jan feb mar apr jun jul aug sep sept oct nov dec"""
)
# Words that typically start a new sentence after an ambiguous "U.S." or "p.m.".
_SENTENCE_STARTERS = _wordset(
    """the a an he she it they we i in on at but and this that these those there his her their
    its our after before when while however meanwhile officials police authorities some many
    according if as for by with from one two three four five several most no yes what who why
    how where under over since until during despite"""
)
_STOPWORDS = _wordset(
    """a about above after again against all also am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my no nor not now of off on once only or other our ours out over
    own same she should so some such than that the their theirs them then there these they this
    those through to too under until up very was we were what when where which while who whom why
    will with would you your said says say told tell according mr mrs ms dr one two new also
    would could may might must shall year years day days week weeks time get got make made
    like just even still well back many much us per via amid"""
)
_DANGLING_OPENERS = _wordset(
    """he she they it we i you him his her their its our them this that these those such
    but and or nor however also still yet so then thus moreover furthermore instead meanwhile
    nevertheless nonetheless besides likewise otherwise therefore hence indeed additionally
    both neither either another others later earlier here"""
)
# "This week, ..." refers to time, not back to an earlier sentence.
_TIME_WORDS = _wordset(
    """week weekend month year morning afternoon evening night summer winter spring autumn fall
    season decade century time"""
)
_BOILERPLATE = re.compile(
    r"click here|sign up|subscribe|newsletter|all rights reserved|copyright|©|read more|"
    r"follow (?:us|him|her|them)|advertisement|getty images|contributed to this report|"
    r"reporting by|editing by|this (?:story|article) (?:has been|was) updated|"
    r"https?://|www\.|@\w|cookies?\b|share this|related:|watch:|photo:|image:|video:|"
    r"email (?:us|me)|download the app|log ?in|terms of (?:use|service)|privacy policy|"
    r"\bdns\b|ip address|your (?:browser|device)|javascript|media (?:playback|caption)|"
    r"image caption|pic\.twitter|ap photo|file photo|(?:this|our) (?:site|page|domain|website)\b|"
    r"enable (?:cookies|javascript)|(?:please )?try again later|no longer available",
    re.IGNORECASE,
)
_HEADLINE_PREFIX = re.compile(
    r"^\s*(?:live(?: updates?| blog)?|opinion|analysis|editorial|commentary|watch|video|"
    r"breaking(?: news)?|exclusive|update[sd]?|podcast|photos?|in pictures|explainer|"
    r"letters?|review|sponsored|quiz)\b\s*[:|\-–—]",
    re.IGNORECASE,
)
_CLICKBAIT = re.compile(
    r"you won'?t believe|here'?s (?:why|what|how)|what (?:we|you) (?:know|need)|"
    r"\b\d+ (?:things|ways|reasons|times|facts)\b|this is why|will shock|everything you|"
    r"^\s*(?:why|how|what|who) ",
    re.IGNORECASE,
)
_DATELINE = re.compile(
    r"^(?:[A-Z][A-Z.'/\- ]{1,40}(?:,\s*[A-Z][A-Za-z.\- ]{1,20})?\s*(?:\([A-Za-z .&]{1,30}\)\s*)?"
    r"[—–-]{1,2}\s+|\([A-Z][A-Za-z .&]{1,20}\)\s*(?:[—–-]{1,2}\s*)?)"
)
_PRONOUN_ATTRIBUTION = re.compile(
    r"[,.!?][\"”’']?\s+(?:he|she|they|it|we)\s+(?:said|says|added|told|wrote|explained|"
    r"noted|argued|continued)\b",
    re.IGNORECASE,
)
# Page furniture that passes the boilerplate check: related-link tags, table rows, notices.
_BRACKET_TAG = re.compile(r"^\s*\[[^\]\n]{1,80}\]")
_TABLE_CELL = re.compile(r"\s\|\s")
_NOTICE_STEM = re.compile(
    r"\b(?:comment|coment[áa]ri|commentaire|kommentar|moderat|newsletter|cookie)",
    re.IGNORECASE,
)
_NOTICE_SHAPE = re.compile(
    r"^\s*(?:aten[çc][ãa]o|attention|aviso|nota?|note|important[e]?|hinweis|achtung|avis)\s*:|"
    r"\b(?:please|por favor|veuillez|bitte|reserves? the right|must (?:not )?be|"
    r"will (?:not )?be (?:approved|removed|deleted|published|reviewed)|"
    r"(?:não|nao|no) ser[aá]n?o? (?:aprovad|publicad)|ser[aá]n?o? (?:removid|excluíd|eliminad)|"
    r"are (?:pre-?)?moderated|be respectful|comment policy|community guidelines)\b",
    re.IGNORECASE,
)
_ATTRIBUTION = re.compile(r"\b(?:said|says|told|according to|disse|afirmou|dijo)\b",
                          re.IGNORECASE)
# Lowercase name prefixes before a capital ("McDonald", "DeSantis", "iPhone", "MacArthur").
_NAME_PREFIXES = _wordset("mc mac de di da du la le van von del della dos das")
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’\-]*")
_CANDIDATE_END = re.compile(r"(?:\.\.\.|…|[.!?])[\"”’')\]]*(?=\s+)")
_QUOTED = re.compile(r"\"[^\"]*\"|“[^”]*”")

_MIN_WORDS = 6
_MAX_WORDS = 80
_MAX_SENTENCES_PER_ARTICLE = 60
_MMR_LAMBDA = 0.7
# Cosine at which a sentence restates one already chosen. 0.45 (was 0.55): a long summary
# spends its budget on new facts, not a second outlet's wording of one (ROUGE rose on both
# Multi-News and NeuS).
_DUPLICATE_SIMILARITY = 0.45
# Weights of centroid, title, cross-source support, lead position and query-term signals.
_WEIGHTS = (0.35, 0.3, 0.2, 0.35, 0.3)


@dataclass(frozen=True, slots=True)
class Summary:
    """A story's headline and its extractive summary sentences."""

    headline: str
    headline_url: str  # the article whose title was chosen
    sentences: tuple[str, ...]  # verbatim sentences, in a readable order

    @property
    def text(self) -> str:
        """Return the summary sentences joined by a space."""
        return " ".join(self.sentences)


@dataclass(slots=True)
class _Candidate:
    text: str
    article: int
    position: int
    words: int
    vector: dict[str, float]
    tier: int  # 2: reads on its own, 1: not boilerplate, 0: page furniture
    score: float = 0.0


def split_sentences(text: str) -> list[str]:
    """Take plain text (paragraphs split by blank lines) and return its sentences, verbatim."""
    sentences: list[str] = []
    for block in re.split(r"\n\s*\n", text):
        for line in _split_lines(block):
            sentences.extend(_split_block(line))
    return sentences


def _split_lines(block: str) -> list[str]:
    """Take one paragraph and return it joined, or split at lines that look like headings."""
    lines = [ln.strip() for ln in block.split("\n") if ln.strip()]
    if not lines:
        return []
    parts: list[str] = [lines[0]]
    for line in lines[1:]:
        # A line ending without punctuation followed by a capitalised line is a break, not a wrap.
        if re.search(r"[.!?:;\"”’)]$", parts[-1]) or (line[:1].isupper() and len(parts[-1]) < 80
                                                      and not parts[-1][-1:].isalnum()):
            parts.append(line)
        else:
            parts[-1] = f"{parts[-1]} {line}"
    return parts


def _split_block(block: str) -> list[str]:
    """Take one line of prose and return its sentences."""
    out: list[str] = []
    start = 0
    for match in _CANDIDATE_END.finditer(block):
        end = match.end()
        rest = block[end:].lstrip()
        if not rest or not _is_boundary(block[start:match.start() + 1], rest):
            continue
        piece = block[start:end].strip()
        if piece:
            out.append(piece)
        start = end
    tail = block[start:].strip()
    if tail:
        out.append(tail)
    return out


def _is_boundary(before: str, rest: str) -> bool:
    """Take the text up to a stop and the text after it; return whether a sentence ends there."""
    first = rest[0]
    if first.islower() or first in ",;:)]":
        return False
    token_match = re.search(r"(\S+)$", before)
    token = token_match.group(1) if token_match else ""
    if not token.endswith("."):
        return True  # "?", "!" or a closing quote: next capitalised word starts a sentence
    bare = token.rstrip(".").lstrip("\"“‘'([").lower()
    next_word = re.match(r"[\"“‘'(\[]*([A-Za-z]+)", rest)
    starter = next_word is not None and next_word.group(1).lower() in _SENTENCE_STARTERS
    if bare in _NEVER_SPLIT_AFTER or (len(bare) == 1 and bare.isalpha()):
        return False  # titles and initials: "Dr. Vale", "J. R. Okafor"
    if "." in bare or bare in _ABBREVIATIONS:
        return starter  # "U.S. The" ends a sentence; "U.S. Navy" does not
    return True


def _stem(word: str) -> str:
    """Take a lowercased word and return a crude stem so plurals and tenses meet."""
    word = word.replace("’", "'").removesuffix("'s").strip("'-")
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _terms(text: str) -> list[str]:
    """Take text and return its content-word stems."""
    words = (w.lower() for w in _WORD.findall(text))
    return [_stem(w) for w in words if w not in _STOPWORDS and not w.isdigit() and len(w) > 1]


def _cosine(a: dict[str, float], b: dict[str, float]) -> float:
    """Take two L2-normalised sparse vectors and return their cosine similarity."""
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())


def _vectorize(terms: list[str], idf: dict[str, float]) -> dict[str, float]:
    """Take term stems and IDF weights; return an L2-normalised TF-IDF vector."""
    counts = Counter(terms)
    vec = {t: (1.0 + math.log(c)) * idf.get(t, 1.0) for t, c in counts.items()}
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {t: v / norm for t, v in vec.items()} if norm else {}


def _strip_dateline(sentence: str) -> str:
    """Take a lead sentence and return it without a leading "CITY (Agency) —" dateline."""
    match = _DATELINE.match(sentence)
    if match and len(sentence) - match.end() > 20:
        return sentence[match.end():]
    return sentence


def _is_standalone(sentence: str) -> bool:
    """Take a sentence; return whether it reads on its own (no dangling opener or fragment)."""
    words = _WORD.findall(sentence)
    if not words:
        return False
    if sentence.lstrip("\"“‘'([")[:1].islower():
        return False  # starts mid-sentence, e.g. text cut after a caption
    first = words[0].lower()
    if first in _DANGLING_OPENERS:
        second = words[1].lower() if len(words) > 1 else ""
        if not (first in {"this", "that", "these", "later", "earlier"} and second in _TIME_WORDS):
            return False
    stripped = sentence.rstrip("\"”’') ]")
    if stripped.endswith("?") or stripped.endswith(":"):
        return False
    if sentence.count('"') % 2 or sentence.count("“") != sentence.count("”"):
        return False  # a piece of a multi-sentence quote
    quoted = sum(len(m.group(0)) for m in _QUOTED.finditer(sentence))
    return quoted <= 0.6 * len(sentence) and not _is_page_furniture(sentence)


def _is_page_furniture(sentence: str) -> bool:
    """Take a sentence; return whether it is glued link text, a tagged link, a table or a notice."""
    if _BRACKET_TAG.match(sentence) or len(_TABLE_CELL.findall(sentence)) >= 2:
        return True
    if sum(_count_glued_joins(token) for token in sentence.split()) >= 2:
        return True
    return bool(_NOTICE_STEM.search(sentence) and _NOTICE_SHAPE.search(sentence)
                and not _ATTRIBUTION.search(sentence))


def _count_glued_joins(token: str) -> int:
    """Take a token; return how many lowercase-to-capitalised-word joins glue words inside it."""
    joins = 0
    for word in re.split(r"[\W\d_]+", token):
        if len(word) < 8:
            continue  # short camel case is mostly brands: "YouTube", "eBay", "FedEx"
        segment_start = 0
        for i in range(1, len(word) - 1):
            if word[i - 1].islower() and word[i].isupper() and word[i + 1].islower():
                prefix = word[segment_start:i]
                if len(prefix) > 1 and prefix.lower() not in _NAME_PREFIXES:
                    joins += 1
                segment_start = i
    return joins


def _is_boilerplate(sentence: str, words: int) -> bool:
    """Take a sentence and its word count; return whether it is page furniture, not news."""
    if _BOILERPLATE.search(sentence) or not re.search(r"[.!?][\"”’')\]]*$", sentence):
        return True
    letters = [c for c in sentence if c.isalpha()]
    return words < _MIN_WORDS or words > _MAX_WORDS or (
        bool(letters) and sum(c.isupper() for c in letters) > 0.5 * len(letters))


def _length_weight(words: int) -> float:
    """Take a sentence's word count and return a preference weight, highest for 8-40 words."""
    if words < 8:
        return 0.6 + 0.05 * (words - _MIN_WORDS)
    if words > 60:
        return 0.9 - 0.01 * (words - 60)
    if words > 40:
        return 1.0 - 0.005 * (words - 40)
    return 1.0


def _collect_candidates(articles: Sequence[Article]) -> list[_Candidate]:
    """Take ordered articles and return every sentence as an unscored candidate."""
    found: list[_Candidate] = []
    for index, article in enumerate(articles):
        seen: set[str] = set()
        for position, raw in enumerate(split_sentences(article.text)[:_MAX_SENTENCES_PER_ARTICLE]):
            text = _strip_dateline(raw) if position == 0 else raw
            key = " ".join(text.lower().split())
            if key in seen:
                continue
            seen.add(key)
            words = len(text.split())
            tier = 0 if _is_boilerplate(text, words) else 2 if _is_standalone(text) else 1
            found.append(_Candidate(text, index, position, words, {}, tier))
    return found


def _score_candidates(candidates: list[_Candidate], articles: Sequence[Article],
                      terms: Sequence[str]) -> dict[str, float]:
    """Take candidates and their articles; set vectors and scores, return the story's IDF."""
    tokens = [_terms(c.text) for c in candidates]
    titles = [_terms(a.title) for a in articles]
    docs = len(tokens) + len(titles)
    df = Counter(t for toks in tokens + titles for t in set(toks))
    # Damped IDF: in one story the key words recur in most sentences and must keep weight.
    idf = {t: math.sqrt(math.log((1 + docs) / (1 + n)) + 1.0) for t, n in df.items()}
    for toks, cand in zip(tokens, candidates, strict=True):
        cand.vector = _vectorize(toks, idf)
    title_vecs = [_vectorize(t, idf) for t in titles if t]
    centroid = _sum_vectors([c.vector for c in candidates])
    # Cross-source support: a stem used by several outlets is part of the shared story.
    sources_of: dict[str, set[int]] = {}
    for toks, cand in zip(tokens, candidates, strict=True):
        for t in toks:
            sources_of.setdefault(t, set()).add(cand.article)
    for index, toks in enumerate(titles):
        for stem in toks:
            sources_of.setdefault(stem, set()).add(index)
    outlets = max(1, len(articles))
    wanted = [_terms(t) for t in terms]
    for toks, cand in zip(tokens, candidates, strict=True):
        central = _cosine(cand.vector, centroid)
        title = max((_cosine(cand.vector, tv) for tv in title_vecs), default=0.0)
        if outlets > 1 and toks:
            weight = sum(idf[t] for t in toks)
            support = sum(idf[t] * (len(sources_of[t]) - 1) for t in toks) / weight / (outlets - 1)
        else:
            support = 0.0
        # Lead position only lifts on-topic sentences; an off-topic opener stays weak.
        lead = min(1.0, 3.0 * central) / math.sqrt(1.0 + cand.position)
        hits = sum(1 for w in wanted if w and set(w) <= set(toks))
        topical = hits / len(wanted) if wanted else 0.0
        signals = (central, title, support, lead, topical)
        base = sum(w * s for w, s in zip(_WEIGHTS, signals, strict=True))
        cand.score = base * _length_weight(cand.words)
        if _PRONOUN_ATTRIBUTION.search(cand.text):
            cand.score *= 0.85
    return idf


def _normalize(vec: dict[str, float]) -> dict[str, float]:
    """Take a sparse vector and return it scaled to unit length."""
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return {t: v / norm for t, v in vec.items()} if norm else {}


def _select(candidates: list[_Candidate], count: int, max_words: int | None) -> list[_Candidate]:
    """Take scored candidates; return up to `count` by MMR, skipping near-duplicates."""
    # Weaker sentences are used only when a story has nothing better (e.g. one short article).
    best_tier = max((c.tier for c in candidates), default=0)
    pool = [c for c in candidates if c.tier == best_tier]
    chosen: list[_Candidate] = []
    used_words = 0
    top = max((c.score for c in pool), default=1.0) or 1.0
    while pool and len(chosen) < count:
        best: _Candidate | None = None
        best_value = -math.inf
        sources = {c.article for c in chosen}
        for cand in pool:
            if max_words is not None and used_words + cand.words > max_words:
                continue
            overlap = max((_cosine(cand.vector, c.vector) for c in chosen), default=0.0)
            if overlap >= _DUPLICATE_SIMILARITY or _is_contained(cand, chosen):
                continue
            fresh = 0.05 if cand.article not in sources else 0.0
            value = _MMR_LAMBDA * (cand.score / top + fresh) - (1 - _MMR_LAMBDA) * overlap
            if value > best_value:
                best, best_value = cand, value
        if best is None:
            break
        chosen.append(best)
        used_words += best.words
        pool.remove(best)
    return chosen


def _is_contained(cand: _Candidate, chosen: list[_Candidate]) -> bool:
    """Take a candidate and chosen sentences; return whether most of its words are already said."""
    words = set(cand.vector)
    if not words:
        return True
    return any(len(words & set(c.vector)) >= 0.7 * len(words) for c in chosen)


def _headline_penalty(title: str) -> float:
    """Take a title; return a multiplier below 1 for live-blog, opinion, clickbait or all caps."""
    penalty = 1.0
    if _HEADLINE_PREFIX.search(title):
        penalty *= 0.4
    if _CLICKBAIT.search(title) or title.rstrip().endswith("?"):
        penalty *= 0.6
    letters = [c for c in title if c.isalpha()]
    if letters and sum(c.isupper() for c in letters) > 0.7 * len(letters):
        penalty *= 0.5
    words = len(title.split())
    if words < 4 or words > 25:
        penalty *= 0.7
    return penalty


def _sum_vectors(vectors: Sequence[dict[str, float]]) -> dict[str, float]:
    """Take sparse vectors; return their sum scaled to unit length."""
    total: dict[str, float] = {}
    for vec in vectors:
        for t, v in vec.items():
            total[t] = total.get(t, 0.0) + v
    return _normalize(total)


def _choose_headline(articles: Sequence[Article], candidates: list[_Candidate],
                     idf: dict[str, float]) -> tuple[str, str]:
    """Take ordered articles, candidates and IDF; return the most representative title and URL."""
    titled = [a for a in articles if a.title.strip()]
    if not titled:
        return "", articles[0].url if articles else ""
    vecs = [_vectorize(_terms(a.title), idf) for a in titled]
    # Titles and bodies count equally, so a long article cannot drown the other outlets' titles.
    titles_centre = _sum_vectors(vecs)
    body_centre = _sum_vectors([c.vector for c in candidates])
    best, best_value = titled[0], -math.inf
    for article, vec in zip(titled, vecs, strict=True):
        fit = _cosine(vec, titles_centre) + _cosine(vec, body_centre)
        value = (0.1 + fit) * _headline_penalty(article.title)
        if value > best_value + 1e-9:  # ties keep the earliest article
            best, best_value = article, value
    return " ".join(best.title.split()), best.url


def summarize_story(articles: Sequence[Article], *, sentences: int = 3,
                    max_words: int | None = None, terms: Sequence[str] = ()) -> Summary:
    """Take a story's articles; return its headline and up to `sentences` summary sentences."""
    ordered = sorted(articles, key=lambda a: (a.when, a.url))
    candidates = _collect_candidates(ordered)
    idf = _score_candidates(candidates, ordered, terms)
    chosen = _select(candidates, max(0, sentences), max_words)
    # Readable order: leads before details, earlier articles first among equals.
    chosen.sort(key=lambda c: (c.position > 0, c.position, c.article))
    headline, url = _choose_headline(ordered, candidates, idf)
    return Summary(headline, url, tuple(c.text for c in chosen))
