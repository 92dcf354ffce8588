"""The boilerplate rules as they were before the speed work: an oracle for equivalence tests.

A frozen copy of digestbot/extract_rules.py at commit 9a319b2, before its regexes got literal
prechecks. tests/test_extract_equivalence.py checks the fast rules give the same answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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

# Calls to action and notices: a short paragraph containing one is boilerplate.
_PROMO_PHRASE = re.compile(
    r"(\bclick here\b|\bsign up (for|to) (our|my)\b|\bsign up to (get|receive)\b"
    r"|\bsubscribe (to|for) (our|my)\b"
    r"|\bsubscribe to the (\w+ )?(newsletter|podcast|channel|briefing)"
    r"|\bsubscribe to [\w.’']+ (\w+ )?newsletters?\b|\bsign up for (the|a|free|daily|weekly)"
    r" (\w+ )?(newsletter|briefing|alerts|updates|emails?)\b"
    r"|\bsubscribe (now|today|here)\b|newsletter sign[- ]?up|\bget (our|the) (\w+ )?newsletter"
    r"|\bsupport (our|independent|quality|local|trusted)"
    r" (\w+ )?journalism|\bmake a (one-off |one-time |monthly )?(donation|contribution)\b"
    r"|\bdonate (now|today|here)\b|\bbecome a (member|supporter|patron|subscriber)\b"
    r"|\bthanks? (you )?for (signing up|subscribing)\b|\bkeep an eye on your inbox\b"
    r"|\b(delivered |straight |right )?(to|in) your inbox\b|\berror processing your subscription"
    r"|\b(may|might|could) (get|earn|receive) (a share|a (small )?commission|an affiliate"
    r"|compensation)|\bcontains (references to products|affiliate links)\b"
    r"|\baffiliate (links?|commission)\b|\bwe may earn\b|^like this (story|article)\?"
    r"|\bshare it with a friend\b|^follow\b.{0,80}\bon (facebook|twitter|instagram|x|linkedin"
    r"|tiktok|threads|bluesky|youtube)\b|^(source|sources|via|with)\b[^.]{0,50}$"
    r"|^\(?(additional )?(reporting|writing|editing|compiled) by\b.{0,300}$|\bnewsletters?$"
    r"|\bwe use cookies\b|\buses cookies\b|\bcookie (policy|settings|preferences|consent)\b"
    r"|\baccept (all )?cookies\b|\bby (continuing|using) (to (use|browse) )?(this|our)"
    r" (site|website)|\ball rights reserved\b|\bmay not be (re)?published, broadcast"
    r"|\bfollow us on\b|\blike us on facebook\b|\bfollow (him|her|them|the author) on "
    r"(twitter|x|instagram|facebook)|\(opens in (a )?new (window|tab)\)|\bappeared first on\b"
    r"|\bdownload (our|the) (free )?app\b|\benable javascript\b|\byour browser does not support"
    r"|\bunlimited (digital )?access\b|\balready a subscriber\b|\bthis (article|story|content)"
    r" is (only )?(available|for) (to )?(subscribers|members)\b|\bstory continues below\b"
    r"|\bshare (this|on) (article|story|facebook|twitter|whatsapp|linkedin)\b"
    r"|\bsend (us )?a tip\b|\bhave a news tip\b|\bget in touch with (us|our)\b)",
    re.IGNORECASE,
)

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
    return " ".join(_INVISIBLE.sub("", text).split())


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
    if _PROMO_PREFIX.match(t) or _CAPTION_PREFIX.match(t) or _PROMO_PHRASE.search(t):
        return True
    if _CREDIT_END.search(t) and len(t) < 250:
        return True
    return len(t) < 120 and (_BYLINE.match(t) is not None or _DATELINE.match(t) is not None)


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
    words = text.split()
    return (len(text) <= MAX_TITLE_CHARS and 2 <= len(words) <= 24 and "\n" not in text
            and not _SENTENCE_END.search(text) and text[0].isupper())


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
