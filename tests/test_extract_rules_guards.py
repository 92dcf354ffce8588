"""The guarded boilerplate rules answer exactly as the full patterns they stand in for.

extract_rules checks promo phrases and photo credits through cheap guards (a word, a start, a
substring) before running the few regexes a guard admits; its full patterns _PROMO_PHRASE and
_CREDIT_END are the oracle here, over seeded random paragraphs built from boilerplate phrases,
prose and awkward characters (odd-case letters, invisible and control characters, entities).
"""

from __future__ import annotations

import random
import re

import pytest

from digestbot import extract_rules
from digestbot.extract_rules import (
    _ALONE,
    _BYLINE,
    _CAPTION_PREFIX,
    _COPYRIGHT,
    _CREDIT_END,
    _DATELINE,
    _PROMO_PHRASE,
    _PROMO_PHRASES,
    _PROMO_PREFIX,
    MAX_PROMO_CHARS,
    normalize_space,
)

PHRASES = [
    "Click here", "sign up for our", "Sign up to get", "subscribe to our", "Subscribe now",
    "Subscribe to the Daily newsletter", "subscribe to Lowmere’s morning newsletters",
    "sign up for free weekly alerts", "Newsletter sign-up", "get our weekly newsletter",
    "support independent local journalism", "make a one-off donation", "donate today",
    "become a member", "thank you for subscribing", "keep an eye on your inbox",
    "delivered to your inbox", "error processing your subscription",
    "we may earn a small commission", "might receive compensation",
    "contains affiliate links", "This page contains references to products", "affiliate link",
    "We may earn", "Like this story?", "share it with a friend", "Follow Ida Rusk on Twitter",
    "Source: Brackenford Courier", "Via Eastholm", "With Piet",
    "Additional reporting by Nadia Cordwell",
    "(Reporting by Tomas Brell; Editing by Greta Hallowell)", "newsletter", "Newsletters",
    "We use cookies", "this site uses cookies", "cookie policy", "Accept all cookies",
    "By continuing to use this site", "by using our website", "All rights reserved",
    "may not be published, broadcast", "May not be republished, broadcast", "Follow us on",
    "Like us on Facebook", "make a monthly contribution", "Thanks for signing up",
    "This story is for members", "Harbour at dusk via iStock", "The quay at night. Alamy",
    "Reporting by Tomas Brell in Lowmere and Ida Rusk in Brackenford, with Piet Vandermolen",
    "Writing by Luca Penhaligon; editing by Sunniva Kjell and the Tarrow Bay news desk team",
    "Editing by Greta Hallowell, who also checked the figures from the Fennick Guild report",
    "Compiled by the Fennick Guild press office from reports filed overnight on the coast",
    "follow the author on X", "(opens in a new window)",
    "The post Quay Works appeared first on Varnley Times.", "download the free app",
    "Enable JavaScript", "Your browser does not support", "unlimited digital access",
    "Already a subscriber", "This article is only available to subscribers",
    "Story continues below", "share this article", "Share on WhatsApp", "send us a tip",
    "Have a news tip", "get in touch with us", "Advertisement", "Read more", "Related stories",
    "More on this story", "5 min read", "Image 3 of 12", "Photo: Oakhaven Council",
    "Picture caption", "file photo", "(Photo: Sunniva Kjell/Getty Images)",
    "[Credit: Quillport Herald]", "Getty Images", "Shutterstock", "iStockphoto",
    "REUTERS/Luca Penhaligon", "| AFP", "/ AP", "By Ida Rusk", "By Ida Rusk and Tomas Brell, Staff",
    "Published 12 March 2031", "Updated: Mon, March 3, 2031 at 10:45 a.m. EST", "2031-03-01",
    "3/4/31", "Copyright 2031", "© Lowmere Post", "(c) 2031", "Tags:", "Filed under",
    "Read also:", "— Reuters", "(AP)", "Most read", "Top stories", "Editor's picks",
    "Continue reading", "Share", "Tweet", "Email", "12 comments", "Menu", "OK", "I agree",
    "Story continues after this advertisement", "Listen to this article", "Photos",
    "Related", "More from Varnley", "You might also like", "Latest headlines",
    "What to read next", "Around the web", "Skip to main content", "Sponsored content",
]
PROSE = [
    "The ferry service in Tarrow Bay resumed on Monday after storm damage.",
    "Council leader Emeka Thornbury said the budget would be balanced by June.",
    "\"We will not wait,\" said Rafael Ostrander, who chairs the Fennick Guild.",
    "Engineers found 14 faults in the flood barrier (the second inspection this year).",
    "Shops along the quay reported fewer visitors; the market / tram line was closed.",
    "The commission said members of the public may get a share of the refund.",
    "Residents can follow the works online | the council said updates would follow.",
    "A survey found 62 per cent backed the plan [see table].",
    "İstanbul-born engineer Sunniva Kjell ſaid the ıncident was minor.",
    "Prices rose by 3.5% in March…", "Read the full report on the council website.",
    "He said: “Subscribe to nothing and trust no one,” before leaving.",
    "Whether the depot reopens is unclear", "Lowmere Harbour Works Begin",
    "Quillport Council Votes To Sell Depot", "The Kelvin scale (K) was mentioned.",
    "Sign up", "Subscribe", "Follow", "With thanks",
]
# IGNORECASE matches İ ı ſ K to ASCII letters; the rest are invisible, control or spacing.
ODD = ["\u0130", "\u0131", "\u017f", "\u212a", "\u200b", "\u00ad", "\ufeff", "\u00a0", "\u2028",
       "\x1c", "\x0b", "\x00", "\x07", "\r", "\t", "\u3000", "’", "“", "…", "—", "•", "»", "é"]
ENTITIES = ["&amp;", "&nbsp;", "&#8217;", "&#x2F;", "&lt;", "&quot;", "&foo;", "&", "&amp",
            "&#0;", "&#xD800;", "&copy", "&hellip;"]
BLOCKS = ["p", "div", "li", "td", "th", "h2", "blockquote", "section", "tr", "pre", "table", "ul"]
INLINES = ["span", 'a href="/x"', "b", "em", "strong", "font", "sup", "code"]
DROPPED = ["script", "style", "noscript", "iframe", "button", "form", "svg", "template"]


def vary(rng: random.Random, text: str) -> str:
    """Take a phrase and return it with random case, odd characters, entities and punctuation."""
    roll = rng.random()
    text = text.upper() if roll < 0.15 else text.lower() if roll < 0.25 else (
        text.title() if roll < 0.32 else text)
    for extras, chance in ((ODD, 0.2), (ENTITIES, 0.1)):
        if rng.random() < chance:
            at = rng.randrange(len(text) + 1)
            text = text[:at] + rng.choice(extras) + text[at:]
    if rng.random() < 0.15:
        text = rng.choice(["", "  ", "\n", " - ", " | ", ": ", "• ", "(", "[", "— "]) + text
    if rng.random() < 0.25:
        text += rng.choice([".", " ...", ":", " »", " |", ")", "]", " .", "!", "\n", " (AP)",
                            " / Reuters", " …"])
    return text


def make_piece(rng: random.Random, depth: int = 0) -> str:
    """Take a random source and return a random bit of feed HTML."""
    roll = rng.random()
    if roll < 0.35:
        return vary(rng, rng.choice(PHRASES))
    if roll < 0.6:
        return vary(rng, " ".join(rng.choice(PROSE) for _ in range(rng.randint(1, 4))))
    if roll < 0.65:
        return rng.choice(["<br>", "<br/>", "<hr>"])
    if roll < 0.7:
        return f"<!-- {rng.choice(PHRASES)} -->"
    if depth > 3:
        return rng.choice(PROSE)
    inner = "".join(make_piece(rng, depth + 1) for _ in range(rng.randint(1, 3)))
    tag = rng.choice(BLOCKS if roll < 0.85 else INLINES if roll < 0.95 else DROPPED)
    close = "" if rng.random() < 0.08 else f"</{tag.split()[0]}>"
    return f"<{tag}>{inner}{close}"



def make_paragraphs(count: int, seed: int) -> list[str]:
    """Take a size and seed; return random paragraphs of one to three phrases or sentences."""
    rng = random.Random(seed)
    return [rng.choice([" ", "  ", "\n", ", ", ". ", " | ", " / ", ""]).join(
        vary(rng, rng.choice(PHRASES + PROSE)) for _ in range(rng.randint(1, 3)))
        for _ in range(count)]


def oracle_is_boilerplate(text: str) -> bool:
    """is_boilerplate with the full patterns and no guards: slow and plainly right."""
    t = normalize_space(text)
    if not t or not any(c.isalnum() for c in t):
        return True
    if _ALONE.match(t) or _COPYRIGHT.match(t):
        return True
    if len(t) > MAX_PROMO_CHARS:
        return False
    if _PROMO_PREFIX.match(t) or _CAPTION_PREFIX.match(t):
        return True
    if _PROMO_PHRASE.search(t) or (len(t) < 250 and _CREDIT_END.search(t)):
        return True
    return len(t) < 120 and (_BYLINE.match(t) is not None or _DATELINE.match(t) is not None)


def test_guarded_rules_answer_as_the_full_patterns() -> None:
    paras = make_paragraphs(6000, seed=11)
    verdicts = [oracle_is_boilerplate(p) for p in paras]
    assert [extract_rules.is_boilerplate(p) for p in paras] == verdicts
    assert 0.2 < sum(verdicts) / len(verdicts) < 0.8  # both answers well represented


def test_random_paragraphs_reach_every_promo_phrase_alone() -> None:
    # each guarded phrase must be the only one matching some paragraph, or a wrong guard on it
    # could hide behind another phrase that also matches
    paras = [t for t in map(normalize_space, make_paragraphs(6000, seed=11))
             if t and len(t) <= MAX_PROMO_CHARS]
    phrases = [re.compile(p, re.IGNORECASE) for _, p in _PROMO_PHRASES]
    for phrase in phrases:
        hits = [t for t in paras if phrase.search(t)]
        assert any(not any(o.search(t) for o in phrases if o is not phrase) for t in hits), (
            phrase.pattern)


@pytest.mark.parametrize("text", [
    "Clİck here", "SUBſCRIBE NOW", "We uſe cookies", "Sıgn up for our", "Follow uſ on",
    "Harbour at dusk (Photo: Ida Rusk/Gettı Images)", "Quay works, ſhutterstock",
    "Sign up for our newsletter", "We use cookies to improve this site",
    "Subscribe to nothing, he said, and trust no one at the ferry terminal in Lowmere.",
    "Sign up for our newsletter \ud800", "Harbour at dusk (Photo: Ida Rusk) \udcff",
])
def test_odd_characters_get_the_oracle_answer(text: str) -> None:
    assert extract_rules.is_boilerplate(text) is oracle_is_boilerplate(text)


def test_odd_case_letters_are_still_boilerplate() -> None:
    # IGNORECASE matches ı to i and ſ to s, which str.lower() leaves alone
    assert extract_rules.is_boilerplate("Clıck here to read the Lowmere budget")
    assert extract_rules.is_boilerplate("Subſcribe now")
    assert not extract_rules.is_boilerplate(
        "The Lowmere council voted on Tuesday to keep the ferry running through the winter.")
