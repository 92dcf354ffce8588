"""Topic query language: parsing, precedence, phrases, prefixes, accents, errors."""

from __future__ import annotations

import pytest

from digestbot.errors import QueryError
from digestbot.match import (
    And,
    Not,
    Or,
    Term,
    match_document,
    match_query,
    parse_query,
    query_terms,
    tokenize_document,
)

TITLE = "Vellmark troops gather near the Ostrava border"
TEXT = ("Minister Zélenskyy Ardanova said on Tuesday that Vellmark's army had moved two "
        "brigades.\n\n"
        "\"We are watching closely,\" said Colonel Ivo Brannigan. The café near the crossing "
        "closed early, and peace talks in Lindholm were postponed.")


def matches(query: str, title: str = TITLE, text: str = TEXT) -> tuple[str, ...] | None:
    return match_query(parse_query(query), title, text)


def test_and_or_not_operators() -> None:
    assert matches("Vellmark AND brigades") == ("Vellmark", "brigades")
    assert matches("Vellmark AND tanks") is None
    assert matches("tanks OR brigades") == ("brigades",)
    assert matches("tanks OR submarines") is None
    assert matches("Vellmark NOT tennis") == ("Vellmark",)
    assert matches("Vellmark NOT brigades") is None
    assert matches("Vellmark AND NOT brigades") is None


def test_adjacent_terms_mean_and() -> None:
    assert matches("Vellmark brigades") == ("Vellmark", "brigades")
    assert matches("Vellmark submarines") is None
    assert parse_query("a b").root == parse_query("a AND b").root


def test_precedence_not_over_and_over_or() -> None:
    # a OR b AND c  ==  a OR (b AND c)
    root = parse_query("tanks OR Vellmark AND submarines").root
    assert isinstance(root, Or)
    assert isinstance(root.operands[1], And)
    assert matches("tanks OR Vellmark AND submarines") is None
    assert matches("brigades OR Vellmark AND submarines") == ("brigades",)
    # NOT binds tighter than AND: NOT a AND b == (NOT a) AND b
    root = parse_query("NOT tanks AND Vellmark").root
    assert isinstance(root, And) and isinstance(root.operands[0], Not)
    assert matches("NOT tanks AND Vellmark") == ("Vellmark",)
    assert matches("(tanks OR Vellmark) AND submarines") is None
    assert matches("(tanks OR Vellmark) AND brigades") == ("Vellmark", "brigades")


def test_lowercase_keywords_are_words() -> None:
    # "and" is an ordinary word here, so this is Vellmark AND and AND tanks.
    assert matches("Vellmark and tanks") is None
    assert matches("Vellmark and brigades") == ("Vellmark", "and", "brigades")


def test_phrases_match_consecutive_words() -> None:
    assert matches('"peace talks"') == ("peace talks",)
    assert matches('"talks peace"') is None
    assert matches('"peace in Lindholm"') is None
    assert matches('"two brigades" AND "Colonel Ivo Brannigan"') == (
        "two brigades", "Colonel Ivo Brannigan")


def test_phrase_does_not_span_title_and_text() -> None:
    doc_title, doc_text = "Talks end in Lindholm", "Peace returned."
    assert match_query(parse_query('"Lindholm peace"'), doc_title, doc_text) is None
    assert match_query(parse_query("Lindholm peace"), doc_title, doc_text) == ("Lindholm", "peace")


def test_prefixes() -> None:
    assert matches("troop*") == ("troop*",)
    assert matches("brigade*") == ("brigade*",)
    assert matches("brigader*") is None
    assert matches('"peace talk*"') == ("peace talk*",)


def test_whole_words_only() -> None:
    assert matches("Vellmar") is None
    assert match_query(parse_query("Ukraine"), "Ukrainex report", "") is None
    assert match_query(parse_query("Ukraine"), "Report from Ukraine.", "") == ("Ukraine",)
    assert match_query(parse_query("troop*"), "", "The troops left.") == ("troop*",)
    assert match_query(parse_query("troop"), "", "The troops left.") is None


def test_case_and_accent_insensitive() -> None:
    assert matches("VELLMARK") == ("VELLMARK",)
    assert matches("Zelenskyy") == ("Zelenskyy",)
    assert match_query(parse_query("Zélenskyy"), "Zelenskyy arrives", "") == ("Zélenskyy",)
    assert matches("cafe") == ("cafe",)
    assert matches("CAFÉ") == ("CAFÉ",)
    # decomposed input (e + combining acute) matches too
    assert match_query(parse_query("café"), "", "cafe\u0301 owners") == ("café",)
    assert match_query(parse_query("strasse"), "", "Die Hauptstraße") is None
    assert match_query(parse_query("Hauptstrasse"), "", "Die Hauptstraße") == ("Hauptstrasse",)


def test_possessive_apostrophe() -> None:
    assert matches("Vellmark AND army") == ("Vellmark", "army")
    assert match_query(parse_query("Kyiv"), "Kyiv's mayor", "") == ("Kyiv",)
    assert match_query(parse_query("Kyiv"), "Kyiv’s mayor", "") == ("Kyiv",)
    assert match_query(parse_query('"Kyiv mayor"'), "Kyiv’s mayor", "") == ("Kyiv mayor",)
    assert match_query(parse_query("O'Dwyer"), "", "Senator O’Dwyer spoke") == ("O'Dwyer",)


def test_star_matches_everything() -> None:
    assert matches("*") == ("*",)
    assert match_query(parse_query("*"), "", "") == ("*",)
    assert matches("* NOT brigades") is None
    assert matches("* NOT tennis") == ("*",)


def test_matched_terms_in_query_order_deduplicated() -> None:
    assert matches("brigades OR Vellmark OR brigades OR tanks") == ("brigades", "Vellmark")
    assert matches("(Vellmark OR troop*) AND (café OR Vellmark)") == ("Vellmark", "troop*", "café")
    # terms of a failed AND branch are not reported
    assert matches("(Vellmark AND tanks) OR brigades") == ("brigades",)


def test_pure_not_query_matches_with_no_terms() -> None:
    assert matches("NOT tennis") == ()
    assert matches("NOT Vellmark") is None


def test_query_terms_skip_negated_terms() -> None:
    query = parse_query('Vellmark NOT (tennis OR golf) "peace talks" troop* Vellmark')
    assert query_terms(query) == ("Vellmark", "peace talks", "troop*")
    assert query_terms(parse_query("NOT NOT tanks")) == ("tanks",)
    assert query_terms(parse_query("*")) == ("*",)


def test_document_reused_across_queries() -> None:
    doc = tokenize_document(TITLE, TEXT)
    assert "vellmark" in doc.positions and "zelenskyy" in doc.tokens
    results = [match_document(parse_query(q), doc) for q in ("troop*", "tanks", '"peace talks"')]
    assert results == [("troop*",), None, ("peace talks",)]


def test_query_is_frozen_and_hashable() -> None:
    query = parse_query("Vellmark AND troop*")
    assert hash(query) == hash(parse_query("Vellmark AND troop*"))
    assert {query, parse_query("Vellmark AND troop*")} == {query}
    assert str(query) == "Vellmark AND troop*"
    term = query.root.operands[1] if isinstance(query.root, And) else None
    assert term == Term(text="troop*", words=("troop",), prefix=True)
    with pytest.raises(AttributeError):
        query.text = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("", "empty query", 0),
        ("   ", "empty query", 0),
        ("Vellmark AND (troop* OR invasion", "unbalanced parenthesis", 13),
        ("Vellmark) OR tanks", "unbalanced parenthesis", 8),
        ("Vellmark AND", "expected a term after AND", 9),
        ("OR tanks", "expected a term before OR", 0),
        ("tanks OR OR brigades", "expected a term after OR", 6),
        ("tanks NOT", "expected a term after NOT", 6),
        ('tanks "peace talks', "unterminated quote", 6),
        ("tanks ()", "empty parentheses", 6),
        ('tanks ""', "empty phrase", 6),
        ("tr*ops", "'*' is only allowed at the end of a term", 2),
        ('"peace* talks"', "'*' is only allowed at the end of a term", 6),
        ("-tennis", "use NOT to exclude a term, not '-tennis'", 0),
        ("tanks &&", "'&&' has no words", 6),
    ],
)
def test_errors_have_message_and_position(text: str, message: str, position: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(text)
    assert caught.value.message == message
    assert caught.value.position == position
    assert str(caught.value) == f"{message} (at character {position + 1})"
