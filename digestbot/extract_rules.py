"""Boilerplate rules for extracted paragraphs: promos, captions, bylines, headline lists (pure).

Text rules work on paragraphs alone (`clean_paragraphs`, also used on feed-carried content);
`clean_blocks` adds what the page tells: block kind and share of link text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Block", "clean_blocks", "clean_paragraphs", "is_boilerplate", "normalize_space"]

# Paragraphs longer than this are real prose even when they mention a promo phrase.
MAX_PROMO_CHARS = 320
MAX_TITLE_CHARS = 160
MIN_HEADLINE_RUN = 3
MIN_DUPLICATE_CHARS = 30

_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
_SEP = r"\s*[:|»›>\-–—•]"

# Whole paragraph is one of these words or labels and nothing else.
_ALONE = re.compile(
    r"^(advertisement|advertising|ad|ads|sponsored( content)?|promoted|paid (post|content)"
    r"|share|shares|share this( article| story| post| page)?|share (on|via) \w+|tweet|email|print"
    r"|e-?mail this( article| story)?|copy link|link copied|comments?|\d+ comments?|view comments"
    r"|subscribe( now| today| here)?|sign up( now| today| here)?|sign in|log ?in|register"
    r"|read more|more|read full (article|story)|continue reading|keep reading|show more|load more"
    r"|see more( photos| pictures| videos)?:?|view more|skip to (main )?content|back to top"
    r"|scroll (down )?to continue"
    r"|(story|article|text) continues (below|after)( this)?( advertisement| ad)?"
    r"|continue reading (below|the main story)|related( articles| stories| content| posts| news"
    r"| coverage| links| topics| reading)?|more (on|from|about) .{1,40}|you (may|might) also like"
    r"|recommended( for you| stories| reading)?|most (read|popular|viewed|shared)|trending( now)?"
    r"|top stories|latest( news| stories| headlines)?|editor'?s picks|popular( now)?"
    r"|watch( now| live| video| the video)?|video|photos?|gallery|listen( now| to this article)?"
    r"|\d+ min(ute)?s? read|reading time.{0,20}|image \d+ (of|/) \d+|(previous|next)"
    r"( article| story| post| slide| page)?|follow us|tags?|topics|filed under|close|menu"
    r"|cookies?|accept( all)?( cookies)?|got it|ok(ay)?|i agree|manage (preferences|cookies)"
    r"|(\(|- )?(reuters|ap|afp|bloomberg)\)?)[\s:.!»›>|\-–—•]*$",
    re.IGNORECASE,
)

# Paragraph opens with a promo label, then a link or teaser.
_PROMO_PREFIX = re.compile(
    r"^(\W{0,3})(read (more|also|next|this)|also read|see also|related( article| story| stories"
    r"| content| coverage| link)?|more (on|from|about) (this|that|the)( story| topic)?|just in"
    r"|see more|also"
    r"|breaking( news)?|latest|watch|listen|video|photos?|pictures?|images?|gallery|slideshow"
    r"|credit|photo credit|image (source|credit)|caption|tags?|topics|filed under|trending"
    r"|recommended|don'?t miss|must read|top stories|sponsored|advertisement|opinion|explainer"
    r"|category|categories|posted in|section"
    r"|live updates|podcast|newsletter|sign up|subscribe|follow us|share( this)?)" + _SEP,
    re.IGNORECASE,
)

# Calls to action and notices: a short paragraph containing one is boilerplate. Run whole, this
# alternation costs ~150 us per paragraph, so each phrase comes with guards, one of which every
# match passes on the lowercased paragraph: "word" is a whole word (a run of a-z letters),
# "^text" begins it, "~text" occurs anywhere in it. Prose that passes none skips the regexes.
_PROMO_PHRASES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("click",), r"\bclick here\b"),
    (("sign",), r"\bsign up (for|to) (our|my)\b"),
    (("sign",), r"\bsign up to (get|receive)\b"),
    (("subscribe",), r"\bsubscribe (to|for) (our|my)\b"),
    (("subscribe",), r"\bsubscribe to the (\w+ )?(newsletter|podcast|channel|briefing)"),
    (("subscribe",), r"\bsubscribe to [\w.’']+ (\w+ )?newsletters?\b"),
    (("sign",), r"\bsign up for (the|a|free|daily|weekly)"
                r" (\w+ )?(newsletter|briefing|alerts|updates|emails?)\b"),
    (("subscribe",), r"\bsubscribe (now|today|here)\b"),
    (("~newsletter",), r"newsletter sign[- ]?up"),
    (("~newsletter",), r"\bget (our|the) (\w+ )?newsletter"),
    (("support",), r"\bsupport (our|independent|quality|local|trusted) (\w+ )?journalism"),
    (("donation", "contribution"),
     r"\bmake a (one-off |one-time |monthly )?(donation|contribution)\b"),
    (("donate",), r"\bdonate (now|today|here)\b"),
    (("become",), r"\bbecome a (member|supporter|patron|subscriber)\b"),
    (("signing", "subscribing"), r"\bthanks? (you )?for (signing up|subscribing)\b"),
    (("inbox",), r"\bkeep an eye on your inbox\b"),
    (("inbox",), r"\b(delivered |straight |right )?(to|in) your inbox\b"),
    (("error",), r"\berror processing your subscription"),
    (("get", "earn", "receive"),
     r"\b(may|might|could) (get|earn|receive) (a share|a (small )?commission|an affiliate"
     r"|compensation)"),
    (("contains",), r"\bcontains (references to products|affiliate links)\b"),
    (("affiliate",), r"\baffiliate (links?|commission)\b"),
    (("earn",), r"\bwe may earn\b"),
    (("^like this ",), r"^like this (story|article)\?"),
    (("friend",), r"\bshare it with a friend\b"),
    (("^follow",), r"^follow\b.{0,80}\bon (facebook|twitter|instagram|x|linkedin"
                   r"|tiktok|threads|bluesky|youtube)\b"),
    (("^source", "^via", "^with"), r"^(source|sources|via|with)\b[^.]{0,50}$"),
    (("^(", "^additional", "^reporting", "^writing", "^editing", "^compiled"),
     r"^\(?(additional )?(reporting|writing|editing|compiled) by\b.{0,300}$"),
    (("~newsletter",), r"\bnewsletters?$"),
    (("cookies",), r"\bwe use cookies\b"),
    (("cookies",), r"\buses cookies\b"),
    (("cookie",), r"\bcookie (policy|settings|preferences|consent)\b"),
    (("cookies",), r"\baccept (all )?cookies\b"),
    (("continuing", "using"),
     r"\bby (continuing|using) (to (use|browse) )?(this|our) (site|website)"),
    (("reserved",), r"\ball rights reserved\b"),
    (("published", "republished"), r"\bmay not be (re)?published, broadcast"),
    (("follow",), r"\bfollow us on\b"),
    (("facebook",), r"\blike us on facebook\b"),
    (("follow",),
     r"\bfollow (him|her|them|the author) on (twitter|x|instagram|facebook)"),
    (("opens",), r"\(opens in (a )?new (window|tab)\)"),
    (("appeared",), r"\bappeared first on\b"),
    (("download",), r"\bdownload (our|the) (free )?app\b"),
    (("javascript",), r"\benable javascript\b"),
    (("browser",), r"\byour browser does not support"),
    (("unlimited",), r"\bunlimited (digital )?access\b"),
    (("subscriber",), r"\balready a subscriber\b"),
    (("subscribers", "members"),
     r"\bthis (article|story|content) is (only )?(available|for) (to )?(subscribers|members)\b"),
    (("continues",), r"\bstory continues below\b"),
    (("share",),
     r"\bshare (this|on) (article|story|facebook|twitter|whatsapp|linkedin)\b"),
    (("tip",), r"\bsend (us )?a tip\b"),
    (("tip",), r"\bhave a news tip\b"),
    (("touch",), r"\bget in touch with (us|our)\b"),
)
_PROMO_PHRASE = re.compile("(" + "|".join(p for _, p in _PROMO_PHRASES) + ")", re.IGNORECASE)


def _group_by_guard(table: tuple[tuple[tuple[str, ...], str], ...], kind: str,
                    ) -> dict[str, tuple[re.Pattern[str], ...]]:
    """Take (guards, pattern) rows and a guard mark ("", "^", "~"); return guard -> patterns."""
    grouped: dict[str, list[re.Pattern[str]]] = {}
    for guards, pattern in table:
        for guard in guards:
            mark = guard[0] if guard[0] in "^~" else ""
            if mark == kind:
                grouped.setdefault(guard[len(mark):], []).append(re.compile(pattern, re.I))
    return {guard: tuple(patterns) for guard, patterns in grouped.items()}


_PROMO_BY_WORD = _group_by_guard(_PROMO_PHRASES, "")
_PROMO_BY_START = _group_by_guard(_PROMO_PHRASES, "^")
_PROMO_BY_PART = _group_by_guard(_PROMO_PHRASES, "~")
_PROMO_STARTS = tuple(_PROMO_BY_START)
_PROMO_WORDS = frozenset(word.encode("ascii") for word in _PROMO_BY_WORD)
_LETTERS_ONLY = bytes(c if 97 <= c <= 122 else 32 for c in range(256))

_CAPTION_PREFIX = re.compile(
    r"^(\W{0,2})((image caption|media caption|image copyright|image source|picture caption)\b"
    r"|(caption|file photo|file picture|pictured|photo(graph)?|picture|image|credit"
    r"|photo credit|illustration|graphic|video)\b\s*[:|/\-–—(])",
    re.IGNORECASE,
)
_CREDIT_END = re.compile(
    r"([(\[]\s*(photos?|images?|pictures?|credit|courtesy|file( photo)?|handout|source)\b"
    r"[^()\[\]]{0,80}[)\]]|[(\[][^()\[\]]{0,60}\b(getty|shutterstock|alamy|istock|reuters|afp|epa"
    r"|ap photo|xinhua)\b[^()\[\]]{0,60}[)\]]|\b(getty images|shutterstock|alamy|istock(photo)?)"
    r"|\bfile (photo|picture|image)"
    r"|\b(reuters|ap|afp|epa|ap photo)\s*/\s*\S.{0,40}|[|/]\s*(reuters|ap|afp|epa|getty|xinhua)\b"
    r".{0,20})[\s.]*$",
    re.IGNORECASE,
)
# Words (a-z runs) of which a _CREDIT_END match without a bracket, slash or bar has one.
_CREDIT_END_WORDS = frozenset({b"getty", b"shutterstock", b"alamy", b"istock", b"istockphoto",
                               b"file"})
# Characters that IGNORECASE matches to an ASCII letter but str.lower() does not turn into it.
_ODD_CASE = re.compile("[\u0130\u0131\u017f]")
_BYLINE = re.compile(
    r"^(by|written by|words by|reporting by|story by|posted by|author:?)\s+"
    r"[\w.'’-]+(\s+[\w.'’-]+){0,3}(\s*(,|and|&)\s*[\w.'’-]+(\s+[\w.'’-]+){0,3}){0,3}"
    r"(\s*[,|\-–—/]\s*.{0,60})?$",
    re.IGNORECASE,
)
_MONTH = (r"(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?"
          r"|sep(t(ember)?)?|oct(ober)?|nov(ember)?|dec(ember)?)\.?")
_DATE = (rf"(\d{{1,2}}(st|nd|rd|th)? {_MONTH},? \d{{4}}|{_MONTH} \d{{1,2}}(st|nd|rd|th)?,? \d{{4}}"
         r"|\d{4}-\d{2}-\d{2}|\d{1,2}[/.]\d{1,2}[/.]\d{2,4})")
_DATELINE = re.compile(
    r"^((published|updated|posted|last updated|first published|modified|created)( on| at)?:?"
    r"\s*.{0,80}|((mon|tue|wed|thu|fri|sat|sun)[a-z]*,? )?" + _DATE
    + r"([\s,|]*(at )?\d{1,2}[:.]\d{2}( ?[ap]\.?m\.?)?( [a-z]{2,4})?)?"
    r"([\s|•·-]*(updated|published).{0,60})?)$",
    re.IGNORECASE,
)
_COPYRIGHT = re.compile(r"^(copyright\s*(©|\(c\)|\d{4})|©|\(c\)\s*\d{4})", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?…:;\"”’')\]]$")
_RELATED_HEADING = re.compile(
    r"^(related|more (from|on|about|in|stories|news|coverage)|you (may|might) (also )?like"
    r"|recommended|most (read|popular|viewed|shared)|trending|top stories|latest( news)?"
    r"|read (more|next|also)|also read|see also|what to read next|further reading"
    r"|popular|editor'?s picks|around the web|from our partners|elsewhere)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Block:
    """One extracted paragraph with what the page tells about it."""

    text: str
    kind: str = "p"  # "p", "head", "item", "quote", "table"
    link_share: float = 0.0  # share of its characters that are link text in the page
    group: int = -1  # which <list> of the page the item belongs to; -1 when none


def normalize_space(text: str) -> str:
    """Take text and return it on one line with single spaces and no invisible characters."""
    if not text.isascii():  # O(1); the invisible characters are all outside ASCII
        text = _INVISIBLE.sub("", text)
    return " ".join(text.split())


def clean_paragraphs(paragraphs: list[str]) -> list[str]:
    """Take paragraphs of plain text and return those that are not boilerplate, in order."""
    blocks = []
    for paragraph in paragraphs:
        lines = [normalize_space(line) for line in paragraph.split("\n")]
        text = "\n".join(line for line in lines if line)
        if text:
            blocks.append(Block(text))
    return clean_blocks(blocks)


def clean_blocks(blocks: list[Block]) -> list[str]:
    """Take extracted blocks and return the texts of those that are article text, in order."""
    # runs first: their "Related" or "More from" heading is itself boilerplate, and it marks them
    kept = _drop_headline_runs(_drop_link_lists(blocks))
    kept = [b for b in kept if not is_boilerplate(b.text) and not _is_link_only(b)]
    kept = _drop_trailing_labels(kept)
    out: list[str] = []
    for block in kept:
        if out and len(block.text) >= MIN_DUPLICATE_CHARS and block.text == out[-1]:
            continue  # a paragraph printed twice in a row is a template glitch
        out.append(block.text)
    return out


def is_boilerplate(text: str) -> bool:
    """Take one paragraph and return whether it is a promo, caption, byline, date or notice."""
    t = normalize_space(text)
    if not t or not any(c.isalnum() for c in t):
        return True
    if _ALONE.match(t) or _COPYRIGHT.match(t):
        return True
    if len(t) > MAX_PROMO_CHARS:
        return False
    if _PROMO_PREFIX.match(t) or _CAPTION_PREFIX.match(t):
        return True
    if not t.isascii() and _ODD_CASE.search(t):  # lower() cannot stand in for IGNORECASE here
        if _PROMO_PHRASE.search(t) or (len(t) < 250 and _CREDIT_END.search(t)):
            return True
    else:
        low = t.lower()
        # maximal runs of a-z: every other byte, and each byte of a non-ASCII character, is a gap
        words = low.encode("utf-8", "surrogatepass").translate(_LETTERS_ONLY).split()
        if _has_promo_phrase(t, low, words) or (len(t) < 250 and _has_credit_end(t, low, words)):
            return True
    return len(t) < 120 and (_BYLINE.match(t) is not None or _DATELINE.match(t) is not None)


def _has_promo_phrase(t: str, low: str, words: list[bytes]) -> bool:
    """Take a normalised paragraph, its lowercase and a-z words; return if _PROMO_PHRASE occurs."""
    if not _PROMO_WORDS.isdisjoint(words):
        for word in _PROMO_WORDS.intersection(words):
            if any(p.search(t) for p in _PROMO_BY_WORD[word.decode("ascii")]):
                return True
    for part, patterns in _PROMO_BY_PART.items():
        if part in low and any(p.search(t) for p in patterns):
            return True
    if low.startswith(_PROMO_STARTS):
        for start, patterns in _PROMO_BY_START.items():
            if low.startswith(start) and any(p.search(t) for p in patterns):
                return True
    return False


def _has_credit_end(t: str, low: str, words: list[bytes]) -> bool:
    """Take a normalised paragraph, its lowercase and a-z words; return if _CREDIT_END occurs."""
    # a normalised paragraph holds no whitespace but single spaces, so a match ends the text
    # save for spaces and dots: a bracket there, else a slash or bar, else an agency word
    if ("/" in t or "|" in t or t.rstrip(" .").endswith((")", "]"))
            or not _CREDIT_END_WORDS.isdisjoint(words)):
        return _CREDIT_END.search(t) is not None
    return False


def _drop_link_lists(blocks: list[Block]) -> list[Block]:
    """Take blocks and return them without lists whose items are mostly links (related lists)."""
    items: dict[int, list[Block]] = {}
    for block in blocks:
        if block.kind == "item" and block.group >= 0:
            items.setdefault(block.group, []).append(block)
    linked = {group for group, members in items.items() if _is_link_list(members)}
    return [b for b in blocks if not (b.kind == "item" and b.group in linked)]


def _is_link_list(items: list[Block]) -> bool:
    """Take the items of one list and return whether it is a list of links to elsewhere."""
    linked = sum(b.link_share >= 0.9 for b in items)
    # long lists alternate linked headlines with unlinked teasers; short ones must be all links
    return linked == len(items) >= 2 or (len(items) >= 4 and linked * 2 >= len(items))


def _is_link_only(block: Block) -> bool:
    """Take a block and return whether it is (nearly) all link text without being prose."""
    if block.link_share < 0.9 or block.kind == "table":
        return False
    return len(block.text) < 200 or not _SENTENCE_END.search(block.text)


def is_title_like(text: str) -> bool:
    """Take a paragraph and return whether it reads as a headline, not a sentence."""
    if len(text) > MAX_TITLE_CHARS or "\n" in text:
        return False
    return (2 <= len(text.split()) <= 24 and not _SENTENCE_END.search(text)
            and text[0].isupper())


def _drop_headline_runs(blocks: list[Block]) -> list[Block]:
    """Take blocks and return them without runs of related-headline lines."""
    out: list[Block] = []
    i = 0
    while i < len(blocks):
        j = i
        while j < len(blocks) and blocks[j].kind != "table" and is_title_like(blocks[j].text):
            j += 1
        run = blocks[i:j]
        if run and _is_headline_run(run, out, at_end=j == len(blocks)):
            i = j
            continue
        if run:
            out.extend(run)
            i = j
        else:
            out.append(blocks[i])
            i += 1
    return out


def _is_headline_run(run: list[Block], before: list[Block], *, at_end: bool) -> bool:
    """Take a run of title-like blocks and return whether it is a related-headline list."""
    if _RELATED_HEADING.match(run[0].text) and len(run) >= 2:
        return True
    linked = sum(1 for b in run if b.link_share >= 0.5)
    if len(run) >= 2 and linked == len(run):
        return True
    if len(run) < MIN_HEADLINE_RUN:
        return False
    if before and before[-1].text.rstrip().endswith(":"):
        return False  # a list the article itself introduces
    if any(b.kind in ("item", "head") for b in run) and linked < len(run) / 2:
        return False
    return (at_end and len(run) >= MIN_HEADLINE_RUN + 1) or linked >= len(run) / 2


def _drop_trailing_labels(blocks: list[Block]) -> list[Block]:
    """Take blocks and return them without short title-like lines dangling at the end."""
    end = len(blocks)
    while end > 0 and blocks[end - 1].kind != "table" and _is_trailing_label(blocks[end - 1]):
        end -= 1
    return blocks[:end] if end > 0 else blocks


def _is_trailing_label(block: Block) -> bool:
    """Take the last block and return whether it is a heading or link line left after the text."""
    if not is_title_like(block.text):
        return False
    return block.kind == "head" or block.link_share >= 0.5 or bool(
        _RELATED_HEADING.match(block.text))
