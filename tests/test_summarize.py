"""Tests for extractive story summaries and the sentence splitter, on fictional news."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from digestbot.records import Article
from digestbot.summarize import Summary, split_sentences, summarize_story

T0 = datetime(2031, 3, 14, 6, 0, tzinfo=UTC)


def make_article(slug: str, source: str, title: str, paragraphs: list[str],
                 minutes: int) -> Article:
    """Take a fictional article's parts; return an Article record."""
    url = f"https://{source.lower().replace(' ', '')}.example/{slug}"
    return Article(url=url, link=url, guid=None, feed_url=f"https://{slug}.example/feed",
                   source=source, title=title, text="\n\n".join(paragraphs),
                   published=T0 + timedelta(minutes=minutes), first_seen=T0)


LIVE = make_article("live", "Harbour Radio", "LIVE: Marrowby morning updates", [
    "Traffic is heavy on the coast road this morning.",
    "Sign up for our newsletter to get these updates by email every day.",
    "Will the ferry cope with the extra passengers?",
], minutes=0)

COURIER = make_article("commuters", "Coastline Courier", "Commuters in Marrowby brace for a long "
                       "winter", [
    "Marrowby closed the Old Quay Bridge on Tuesday after engineers found cracks in two of its "
    "steel girders, cutting the main route between the harbour and the town centre.",
    "He said the cracks in the Old Quay Bridge girders forced Marrowby to close the bridge to all "
    "traffic on Tuesday.",
    "Chief engineer Tamsin Orlov said the cracks were discovered during a routine inspection on "
    "Monday night.",
    "Repairs to the Old Quay Bridge are expected to cost about 4.5 million crowns.",
    "But the ferry will run every twenty minutes instead of every hour while the bridge is shut.",
], minutes=5)

LEDGER = make_article("bridge-closed", "Valley Ledger", "Marrowby closes Old Quay Bridge after "
                      "engineers find cracks in girders", [
    "The town of Marrowby shut the Old Quay Bridge on Tuesday when engineers found cracks in two "
    "steel girders during an inspection.",
    "The Old Quay Bridge will stay closed until at least March, the town council said.",
    "However, the cracks in the bridge girders were found during an inspection on Monday night.",
    "Council leader Brannoc Leith told reporters that repairs to the bridge would cost about 4.5 "
    "million crowns and would be paid from the town's reserve fund.",
    "Subscribe to the Valley Ledger for more local news.",
], minutes=10)

WIRE = make_article("cracks", "North Star Wire", "Engineers find cracks in Old Quay Bridge; "
                    "Marrowby closes crossing", [
    "MARROWBY (NSW) — Engineers found cracks in two girders of the Old Quay Bridge, and the town "
    "closed the crossing on Tuesday.",
    "The Old Quay Bridge will stay closed until at least March, the town council said.",
    "It is the second time in four years that the bridge has been closed for repairs.",
    "Shops near the harbour said they expected fewer customers while the bridge is closed.",
], minutes=15)

STORY = [LIVE, COURIER, LEDGER, WIRE]


def words_of(sentence: str) -> set[str]:
    """Take a sentence; return its lowercased words."""
    return set(re.findall(r"[a-z0-9]+", sentence.lower()))


def articles_containing(sentence: str, articles: list[Article]) -> list[Article]:
    """Take a sentence and articles; return the articles whose text holds it verbatim."""
    return [a for a in articles if sentence in a.text]


def test_summary_sentences_are_verbatim_and_count_is_respected() -> None:
    for count in (1, 2, 3):
        summary = summarize_story(STORY, sentences=count)
        assert len(summary.sentences) == count
        for sentence in summary.sentences:
            assert articles_containing(sentence, STORY), sentence
        assert summary.text == " ".join(summary.sentences)


def test_summary_has_no_near_duplicates_and_no_repeated_sentence() -> None:
    summary = summarize_story(STORY, sentences=4)
    assert len(set(summary.sentences)) == len(summary.sentences)
    for i, first in enumerate(summary.sentences):
        for second in summary.sentences[i + 1:]:
            a, b = words_of(first), words_of(second)
            assert len(a & b) / len(a | b) < 0.6, (first, second)


def test_dangling_openers_questions_and_boilerplate_are_skipped() -> None:
    summary = summarize_story(STORY, sentences=4)
    openers = {"he", "she", "it", "they", "but", "however", "this", "and"}
    for sentence in summary.sentences:
        assert re.findall(r"[A-Za-z]+", sentence)[0].lower() not in openers, sentence
        assert not sentence.endswith("?")
        assert "newsletter" not in sentence and "Subscribe" not in sentence


def test_sentences_come_from_several_sources_when_they_agree() -> None:
    summary = summarize_story(STORY, sentences=3)
    sources = {a.source for s in summary.sentences for a in articles_containing(s, STORY)}
    assert len(sources) >= 2
    assert "Harbour Radio" not in sources  # the live blog only has chatter and furniture


def test_dateline_is_dropped_from_a_lead_sentence() -> None:
    summary = summarize_story([WIRE], sentences=3)
    assert summary.sentences[0].startswith("Engineers found cracks")
    assert not any("(NSW)" in s for s in summary.sentences)


def test_headline_is_representative_not_live_or_first() -> None:
    summary = summarize_story(STORY)
    assert summary.headline in {LEDGER.title, WIRE.title}
    assert summary.headline_url in {LEDGER.url, WIRE.url}
    assert not summary.headline.startswith("LIVE")


def test_headline_avoids_shouting_and_opinion_titles() -> None:
    caps = make_article("caps", "Loud Daily", "MARROWBY BRIDGE CLOSED AFTER CRACKS FOUND",
                        LEDGER.text.split("\n\n"), minutes=1)
    opinion = make_article("op", "Quay Review",
                           "Opinion: Marrowby bridge closed after cracks found",
                           WIRE.text.split("\n\n"), minutes=2)
    plain = make_article("plain", "Valley Ledger", "Marrowby bridge closed after cracks are found",
                         COURIER.text.split("\n\n"), minutes=3)
    summary = summarize_story([caps, opinion, plain])
    assert summary.headline == plain.title
    assert summary.headline_url == plain.url


def test_headline_ties_go_to_the_earliest_article() -> None:
    late = make_article("late", "Valley Ledger", LEDGER.title, LEDGER.text.split("\n\n"), 90)
    early = make_article("early", "North Star Wire", LEDGER.title, LEDGER.text.split("\n\n"), 30)
    assert summarize_story([late, early]).headline_url == early.url


def test_result_does_not_depend_on_input_order() -> None:
    forward = summarize_story(STORY, sentences=3)
    backward = summarize_story(list(reversed(STORY)), sentences=3)
    assert forward == backward


def test_max_words_caps_the_summary_length() -> None:
    summary = summarize_story(STORY, sentences=5, max_words=45)
    assert summary.sentences
    assert sum(len(s.split()) for s in summary.sentences) <= 45
    longer = summarize_story(STORY, sentences=5, max_words=120)
    assert len(longer.sentences) > len(summary.sentences)


def test_terms_pull_in_sentences_about_the_watched_topic() -> None:
    plain = summarize_story(STORY, sentences=2)
    watched = summarize_story(STORY, sentences=2, terms=("shops", "customers"))
    assert not any("customers" in s for s in plain.sentences)
    assert any("customers" in s for s in watched.sentences)


def test_single_article_still_gets_a_summary_and_its_title() -> None:
    summary = summarize_story([LEDGER], sentences=2)
    assert summary.headline == LEDGER.title
    assert summary.headline_url == LEDGER.url
    assert len(summary.sentences) == 2
    assert all(s in LEDGER.text for s in summary.sentences)
    assert summary.sentences[0].startswith("The town of Marrowby shut")


def test_weak_sentences_are_used_only_when_nothing_better_exists() -> None:
    only = make_article("only", "Harbour Radio", "Ferry timetable changes", [
        "He said the ferry from the Old Quay would run every twenty minutes from Wednesday.",
    ], minutes=0)
    summary = summarize_story([only], sentences=2)
    assert summary.sentences == (only.text,)


def test_empty_story_and_untitled_articles() -> None:
    assert summarize_story([]) == Summary("", "", ())
    untitled = make_article("untitled", "Valley Ledger", "", LEDGER.text.split("\n\n"), 0)
    summary = summarize_story([untitled], sentences=1)
    assert summary.headline == ""
    assert summary.headline_url == untitled.url
    assert len(summary.sentences) == 1


def test_quote_fragments_are_not_chosen() -> None:
    quoted = make_article("quotes", "Coastline Courier", "Marrowby ferry adds sailings", [
        "The Marrowby ferry will add twelve sailings a day while the Old Quay Bridge is closed.",
        "\"We have never run this many boats across the harbour in one day.",
        "We will keep them running until the Old Quay Bridge reopens,\" said skipper Odile Fenn.",
        "\"The harbour ferry is ready for the extra passengers,\" Fenn said.",
        "The extra ferry sailings will be free for pupils of the Marrowby harbour school.",
    ], minutes=0)
    summary = summarize_story([quoted], sentences=2)
    assert set(summary.sentences) == {
        "The Marrowby ferry will add twelve sailings a day while the Old Quay Bridge is closed.",
        "The extra ferry sailings will be free for pupils of the Marrowby harbour school.",
    }


@pytest.mark.parametrize(("text", "expected"), [
    ("Mr. Hale met Dr. Ines Varga at 3.5 p.m. on Jan. 4. The talks ended.",
     ["Mr. Hale met Dr. Ines Varga at 3.5 p.m. on Jan. 4.", "The talks ended."]),
    ("The firm moved to the U.S. The board agreed. It cost $4.2 million.",
     ["The firm moved to the U.S.", "The board agreed.", "It cost $4.2 million."]),
    ("J. R. Okafor, a U.S. Navy officer, spoke. \"Is it over?\" she asked. No one answered!",
     ["J. R. Okafor, a U.S. Navy officer, spoke.", "\"Is it over?\" she asked.",
      "No one answered!"]),
    ("She said, “We will rebuild the quay.” Then the crowd left.",
     ["She said, “We will rebuild the quay.”", "Then the crowd left."]),
    ("Sen. Aldo Prent backed it. Turnout rose 2.75 percent, etc. The vote is on No. 5 Main St. "
     "next week.",
     ["Sen. Aldo Prent backed it.", "Turnout rose 2.75 percent, etc.",
      "The vote is on No. 5 Main St. next week."]),
    ("First paragraph ends here.\n\nSecond paragraph has no stop",
     ["First paragraph ends here.", "Second paragraph has no stop"]),
])
def test_split_sentences_handles_abbreviations_decimals_and_quotes(
        text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


FERRY_FACTS = [
    "The Marrowby ferry will add twelve sailings a day while the Old Quay Bridge is closed.",
    "The extra Marrowby ferry sailings will be free for pupils of the harbour school.",
]


@pytest.mark.parametrize("furniture", [
    # Related-link titles glued together by the page layout.
    "Marrowby Mayor Tilda VossTilda Anne VossMarrowby ferry adds twelve sailings while Old Quay "
    "Bridge is closed.",
    # A bracket-tagged related headline.
    "[Marrowby Ferry Guide] More Old Quay Bridge sailings reviews from ferry passengers!",
    # A timetable rendered as text.
    "Ferry | Sailings | Old Quay Bridge | Marrowby | Free for pupils.",
    # Comment-moderation notices, in English and Portuguese.
    "Note: comments on the Marrowby ferry and Old Quay Bridge sailings will not be approved by "
    "the moderator if they are rude.",
    "AVISO: Comentários sobre o ferry de Marrowby e a ponte Old Quay não serão aprovados pelo "
    "moderador.",
])
def test_page_furniture_is_not_chosen_over_real_sentences(furniture: str) -> None:
    article = make_article("furniture", "Coastline Courier", "Marrowby ferry adds sailings while "
                           "Old Quay Bridge is closed", [furniture, *FERRY_FACTS], minutes=0)
    summary = summarize_story([article], sentences=2)
    assert set(summary.sentences) == set(FERRY_FACTS)


def test_page_furniture_is_still_used_when_nothing_better_exists() -> None:
    table = "Ferry | Sailings | Old Quay Bridge | Marrowby | Free for pupils."
    article = make_article("table", "Coastline Courier", "Ferry timetable", [table], minutes=0)
    assert summarize_story([article], sentences=2).sentences == (table,)


@pytest.mark.parametrize("sentence", [
    "Marrowby councillor Ewan McDonald said the ferry sailings were filmed for YouTube on an "
    "iPhone by Rosa DeSantis.",
    "Harbour master Nell MacArthur and pilot Cian O'Brien-LaFleur will steer the extra Marrowby "
    "ferry sailings.",
    "Readers can comment on the new Marrowby ferry sailings until Friday, the council said.",
    "The Old Quay Bridge closure is moderating traffic in the narrow lanes of Marrowby, the "
    "police said.",
])
def test_sentences_with_camel_case_names_or_comment_words_still_qualify(sentence: str) -> None:
    article = make_article("names", "Coastline Courier", "Marrowby ferry adds sailings while "
                           "Old Quay Bridge is closed", [sentence, FERRY_FACTS[0]], minutes=0)
    summary = summarize_story([article], sentences=2)
    assert set(summary.sentences) == {sentence, FERRY_FACTS[0]}


def test_a_second_outlets_rewording_of_a_chosen_fact_is_skipped() -> None:
    first = make_article("ferry", "Coastline Courier", "", [
        "The Kestle Island ferry ran aground on a sandbank off Brennock Point on Friday morning "
        "with 140 passengers aboard.",
        "Coastguard boats took every passenger off the ferry within three hours, and nobody was "
        "hurt.",
        "The operator, Tidewell Lines, said the ship would be towed to the Vellmoor dry dock for "
        "inspection.",
    ], minutes=0)
    # Shares about half its weighted words with the first lead: the same fact, reworded.
    reworded = "Tidewell Lines said its Kestle Island ferry hit a sandbank on Friday, and no " \
               "passengers were hurt."
    second = make_article("aground", "Valley Ledger", "", [
        reworded,
        "Harbour pilots blamed a shifting sandbank that had not been charted since the spring "
        "storms.",
        "Islanders will use a smaller boat from the old lifeboat slip until the ferry returns.",
    ], minutes=10)
    summary = summarize_story([first, second], sentences=6)
    assert len(summary.sentences) == 5
    assert not {first.text.split("\n\n")[0], reworded} <= set(summary.sentences)
    assert "Harbour pilots blamed a shifting sandbank that had not been charted since the " \
           "spring storms." in summary.sentences
