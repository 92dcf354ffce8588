"""Per-article clustering features on small fictional texts: tokens, terms, entities, sketch."""

from __future__ import annotations

import heapq
import math
import zlib
from datetime import UTC, datetime

from digestbot.features import (
    SHINGLE_WORDS,
    SKETCH_SIZE,
    clear_caches,
    content_terms,
    describe_article,
    extract_entities,
    read_token,
    sketch_text,
    tokenize_words,
    weigh_terms,
)
from digestbot.records import Article

T0 = datetime(2031, 3, 4, 8, 0, tzinfo=UTC)


def make_article(title: str, paragraphs: list[str]) -> Article:
    """Take a title and paragraphs and return an Article of a fictional outlet."""
    url = "https://orskherald.example/ferry"
    return Article(url=url, link=url, guid=None, feed_url="https://orskherald.example/feed",
                   source="orskherald", title=title, text="\n\n".join(paragraphs),
                   published=T0, first_seen=T0)


def reference_sketch(words: list[str]) -> tuple[int, ...]:
    """Take words and return the bottom-k CRC32s of their 5-word shingles, computed plainly."""
    hashes = {zlib.crc32(" ".join(words[i:i + SHINGLE_WORDS]).encode())
              for i in range(max(1, len(words) - SHINGLE_WORDS + 1))}
    return tuple(sorted(heapq.nsmallest(SKETCH_SIZE, hashes)))


def test_tokens_are_lowercased_with_possessives_cut_and_apostrophes_unified() -> None:
    assert tokenize_words("Marwick’s ferries DON’T sail; 4,200 crew") == [
        "marwick", "ferries", "don't", "sail", "4,200", "crew"]


def test_read_token_gives_a_stem_only_to_content_words() -> None:
    assert read_token("Ferries") == ("ferries", "ferry")
    assert read_token("Tuesday") == ("tuesday", None)
    assert read_token("the") == ("the", None)
    assert read_token("X") == ("x", None)


def test_content_terms_drop_stopwords_and_stem_endings() -> None:
    assert content_terms("The crews were striking and the boats docked at Lindal") == [
        "crew", "strik", "boat", "dock", "lindal"]


def test_title_and_lead_count_more_than_the_rest() -> None:
    terms = weigh_terms(content_terms("Ferry strike") * 3 + content_terms("A ferry") * 2
                        + content_terms("Ferry crews"))
    assert terms["ferry"] == 1.0 + math.log(6.0)
    assert terms["strike"] == 1.0 + math.log(3.0)
    assert terms["crew"] == 1.0
    assert list(terms) == ["ferry", "strike", "crew"]  # first-seen order, title first


def test_a_text_shorter_than_a_shingle_is_one_shingle() -> None:
    assert sketch_text(["ferry", "strike"]) == (zlib.crc32(b"ferry strike"),)
    assert sketch_text([]) == (zlib.crc32(b""),)


def test_sketch_keeps_the_smallest_shingle_hashes_in_order() -> None:
    words = [f"w{n % 97}x{n % 13}" for n in range(400)]
    sketch = sketch_text(words)
    assert len(sketch) == SKETCH_SIZE
    assert sketch == reference_sketch(words)


def test_article_sketch_runs_across_paragraph_breaks() -> None:
    article = make_article("Orsk ferry strike", [
        "Crews of the Orsk ferry walked out on Tuesday over unpaid night shifts.",
        "Harbour master Ilse Varga said 14 sailings were cancelled.",
        "Passengers queued at Lindal quay for buses.",
        "Talks resume on Friday, the union said."])
    feats = describe_article(article)
    assert feats.sketch == reference_sketch(tokenize_words(article.text))
    assert feats.title == {"orsk": 1.0, "ferry": 1.0, "strike": 1.0}
    assert feats.terms["ferry"] == 1.0 + math.log(3.0 + 2.0)  # title, then lead


def test_an_article_without_text_is_sketched_from_its_title() -> None:
    title = "Orsk ferry strike ends after nine days"
    feats = describe_article(make_article(title, []))
    assert feats.sketch == reference_sketch(tokenize_words(title))


def test_entities_hold_names_and_numbers_with_units() -> None:
    found = extract_entities([
        "Harbour master Ilse Varga of Lindal said 14 sailings and 2,500 people were hit.",
        "Fares rose to $120, a jump of 12 % since March."])
    assert "ilse varga of lindal" in found and "lindal" in found
    assert "2500 people" in found
    assert "120 a" in found  # a currency amount takes whatever word follows
    assert "12 percent" in found
    assert not any(e.startswith("14 ") for e in found)  # sailings is not a unit


def test_entities_keep_first_found_order_across_repeated_sentences() -> None:
    paragraphs = ["Ilse Varga met Tomas Brell in Lindal.", "Tomas Brell met Ilse Varga in Lindal.",
                  "Ilse Varga met Tomas Brell in Lindal."]
    assert extract_entities(paragraphs) == (
        "ilse varga", "varga", "tomas brell", "brell", "lindal")


def test_entities_go_sentence_by_sentence_names_before_numbers() -> None:
    # Read for a whole text at once, entities must still come as sentence by sentence: a
    # sentence's numbers after its names, no name across a sentence (closing quotes included)
    # or a paragraph end, and no stopword opening a sentence as part of a name.
    found = extract_entities([
        "About 40 people met Tomas Brell. The Bank of Lindal said 12 % of 30 people left, "
        "The Herald wrote.",
        "Brell told them “Ask Lindal.” Ilse Varga agreed with Tomas Brell",
        "Orsk Ferries cut $9 fares"])
    assert found == ("tomas brell", "brell", "40 people", "bank of lindal", "lindal", "herald",
                     "12 percent", "30 people", "ask lindal", "ilse varga", "varga",
                     "orsk ferries", "ferries", "9 fares")


def test_features_are_the_same_with_cold_and_warm_caches() -> None:
    article = make_article("Lindal ferry crews strike", [
        "Crews of the Lindal ferry walked out, Ilse Varga said, and 14 sailings were cancelled.",
        "“We will not sail until the night shifts are paid,” said Tomas Brell."])
    warm = describe_article(article)
    clear_caches()
    assert describe_article(article) == warm
