"""Quote extraction, attribution and cross-article merging on fictional news texts."""

from __future__ import annotations

from digestbot.quotes import extract_quotes, merge_quotes, quote_parts
from digestbot.records import Quote


def paragraphs_of(text: str) -> list[str]:
    """Take article text and return its non-empty paragraphs, as Article.paragraphs does."""
    return [p for p in text.split("\n\n") if p.strip()]


def assert_verbatim(text: str, quotes: list[Quote]) -> None:
    """Take a text and its quotes; fail unless every part is a substring of the source."""
    paras = paragraphs_of(text)
    for quote in quotes:
        parts = quote_parts(quote)
        assert paras[quote.paragraph][quote.start:].startswith(parts[0])
        for part in parts:
            assert any(part in p for p in paras), part


def by_text(quotes: list[Quote], fragment: str) -> Quote:
    """Take quotes and return the one whose text contains the fragment."""
    found = [q for q in quotes if fragment in q.text]
    assert len(found) == 1, (fragment, quotes)
    return found[0]


BEROVIC = """Interior Minister Ana Berovic visited the flooded valley of Lirna on Tuesday.

"We will rebuild every bridge that the river took from us," she said. \
"Nobody will be left behind this winter."

Tomas Keller, the regional governor, disagreed with the timetable.

“The money promised so far would not even cover the first bridge,” Mr Keller said.

The minister added: "Engineers from three provinces are already on their way to the valley."

"I understand the anger of people who lost their homes," said Ms Berovic.
"""


def test_split_quote_is_one_quote_with_verbatim_parts() -> None:
    quotes = extract_quotes(BEROVIC)
    split = by_text(quotes, "rebuild every bridge")
    assert split.text == ("We will rebuild every bridge that the river took from us … "
                          "Nobody will be left behind this winter.")
    assert quote_parts(split) == ["We will rebuild every bridge that the river took from us",
                                  "Nobody will be left behind this winter."]
    assert split.speaker == "Ana Berovic"
    assert split.paragraph == 1 and split.start == 1
    assert_verbatim(BEROVIC, quotes)


def test_curly_quotes_title_joined_to_full_name() -> None:
    quote = by_text(extract_quotes(BEROVIC), "first bridge")
    assert quote.speaker == "Tomas Keller"
    assert quote.text == "The money promised so far would not even cover the first bridge"


def test_role_and_colon_speech_resolve_to_the_minister() -> None:
    quote = by_text(extract_quotes(BEROVIC), "Engineers from three provinces")
    assert quote.speaker == "Ana Berovic"
    assert quote.text.endswith("on their way to the valley.")


def test_said_before_name_with_honorific_is_stripped() -> None:
    quote = by_text(extract_quotes(BEROVIC), "anger of people")
    assert quote.speaker == "Ana Berovic"


def test_pronouns_resolve_to_most_recent_compatible_person() -> None:
    text = """Harbour master Jonas Eklund closed the port of Vestra after the storm.

Deputy mayor Ingrid Solberg met fishermen at the quay on Friday morning.

"The boats will stay in the harbour until the wind drops below gale force," he said.

"We are paying for the repairs from the emergency fund this year," she replied.
"""
    quotes = extract_quotes(text)
    assert by_text(quotes, "wind drops").speaker == "Jonas Eklund"
    assert by_text(quotes, "emergency fund").speaker == "Ingrid Solberg"


def test_multi_paragraph_quote_is_joined() -> None:
    text = """Professor Mira Halden gave evidence to the Lirna inquiry on Monday.

"The dam was inspected twice in ten years, and both reports warned about the spillway.

"Nobody in the water authority read the second report before the rains came," Prof Halden said.
"""
    quotes = extract_quotes(text)
    assert len(quotes) == 1
    quote = quotes[0]
    assert quote.speaker == "Mira Halden"
    assert quote_parts(quote) == [
        "The dam was inspected twice in ten years, and both reports warned about the spillway.",
        "Nobody in the water authority read the second report before the rains came"]
    assert "\n\n" in quote.text
    assert_verbatim(text, quotes)


def test_no_speaker_gives_none() -> None:
    text = """Crowds gathered outside the Vestra town hall on Sunday evening.

"We have waited three years for this road and we will wait no longer."
"""
    quotes = extract_quotes(text)
    assert [q.speaker for q in quotes] == [None]


def test_unnamed_source_is_not_guessed() -> None:
    text = """Mayor Petra Novak opened the new library in Kestrel on Monday.

"The budget for the next phase has not been agreed by anyone yet," a council official said.
"""
    quote = by_text(extract_quotes(text), "budget for the next phase")
    assert quote.speaker is None


def test_named_organisation_is_the_speaker() -> None:
    text = """Flooding closed the main road into Lirna for a third day.

"The road will reopen once the bridge supports have been checked," the Transport Ministry said.
"""
    assert by_text(extract_quotes(text), "road will reopen").speaker == "Transport Ministry"


def test_scare_quotes_fragments_titles_and_read_more_are_skipped() -> None:
    text = """The so-called "green corridor" plan was called a "historic step" by its backers.

Critics of the plan read "The Long River Home" at a protest in Kestrel.

Read more: "Minister says the valley will be rebuilt by spring"

"These families cannot wait for another committee to meet," said Lars Dahl, a volunteer.
"""
    quotes = extract_quotes(text)
    assert [q.text for q in quotes] == ["These families cannot wait for another committee to meet"]
    assert quotes[0].speaker == "Lars Dahl"


def test_british_single_quotes_need_an_attribution_verb() -> None:
    text = """Sir Henrik Voss spoke to reporters outside the court in Kestrel.

‘We will appeal this ruling at the earliest opportunity,’ Sir Henrik said.

The ‘wind tax’ was dropped from the budget last year.
"""
    quotes = extract_quotes(text)
    assert len(quotes) == 1
    assert quotes[0].text == "We will appeal this ruling at the earliest opportunity"
    assert quotes[0].speaker == "Henrik Voss"


def test_name_after_dash_and_inverted_order() -> None:
    text = """Readers wrote in about the Kestrel ferry closure.

“The ferry was the only way my children could reach their school on time.” ― Olivia Brandt

"It is a scandal that nobody consulted the islanders," said Marek Lund, who runs the island shop.
"""
    quotes = extract_quotes(text)
    assert by_text(quotes, "ferry was the only way").speaker == "Olivia Brandt"
    assert by_text(quotes, "scandal").speaker == "Marek Lund"


def test_merge_same_quote_excerpt_and_majority_speaker() -> None:
    full = Quote("We will rebuild every bridge that the river took from us … "
                 "Nobody will be left behind this winter.", "Ana Berovic", 1, 1)
    same = Quote("We will rebuild every bridge that the river took from us,", "Ana Berovic", 2, 1)
    excerpt = Quote("Nobody will be left behind this winter", None, 3, 1)
    wrong = Quote("We will rebuild every bridge that the river took from us", "Tomas Keller", 1, 1)
    other = Quote("The money promised so far would not even cover the first bridge",
                  "Tomas Keller", 4, 1)
    merged = merge_quotes([("https://a.example/1", [full, other]),
                           ("https://b.example/2", [same]),
                           ("https://c.example/3", [excerpt, wrong])])
    assert len(merged) == 2
    bridge = next(m for m in merged if "rebuild" in m.text)
    assert bridge.text == full.text
    assert bridge.urls == ("https://a.example/1", "https://b.example/2", "https://c.example/3")
    assert bridge.speaker == "Ana Berovic"
    money = next(m for m in merged if "money" in m.text)
    assert money.urls == ("https://a.example/1",)
    assert bridge.score > money.score


def test_merge_normalises_marks_case_and_whitespace() -> None:
    a = Quote("It’s too early to say when the port reopens.", "Jonas Eklund")
    b = Quote("it's too  early to say when the port reopens", None)
    merged = merge_quotes([("u1", [a]), ("u2", [b])])
    assert len(merged) == 1
    assert merged[0].urls == ("u1", "u2")
    assert merged[0].speaker == "Jonas Eklund"


def test_ranking_prefers_relevant_prominent_speaker() -> None:
    story = ("The Lirna dam inquiry heard that the spillway reports were ignored. "
             "Mira Halden told the inquiry. Halden said Halden had warned twice. Halden again.")
    relevant = Quote("The spillway reports about the dam were ignored by the water authority "
                     "for years.", "Mira Halden")
    offtopic = Quote("I enjoyed the sandwiches they served in the corridor this afternoon.",
                     "Pavel Ostrov")
    merged = merge_quotes([("u1", [offtopic, relevant])], terms=("spillway",), story_text=story)
    assert [m.text for m in merged] == [relevant.text, offtopic.text]
    assert merged[0].score > merged[1].score


def test_role_from_apposition_resolves_to_named_person() -> None:
    text = """Tomas Keller, the regional governor, toured the flooded farms near Lirna.

Interior Minister Ana Berovic stayed in the capital on Wednesday.

"Every farm in the valley will get a grant before the end of the month," the governor said.
"""
    quote = by_text(extract_quotes(text), "Every farm")
    assert quote.speaker == "Tomas Keller"


def test_quote_after_long_attribution_sentence_continues_the_first() -> None:
    text = ('"The reservoir was never meant to hold this much water," said Petra Vance, an '
            "engineer at the Lirna water board who has inspected the dam every spring since the "
            'nineties. "We warned the council about the spillway twice."\n')
    quotes = extract_quotes(text)
    assert len(quotes) == 1
    assert quote_parts(quotes[0]) == [
        "The reservoir was never meant to hold this much water",
        "We warned the council about the spillway twice."]
    assert quotes[0].speaker == "Petra Vance"
    assert_verbatim(text, quotes)


def test_quote_with_its_own_attribution_is_not_joined_to_the_previous_one() -> None:
    text = ('"The reservoir was never meant to hold this much water," said Petra Vance, an '
            "engineer at the Lirna water board who has inspected the dam every spring since the "
            'nineties. "The council listened to us in the end," said Oskar Brandt.\n')
    quotes = extract_quotes(text)
    assert [q.speaker for q in quotes] == ["Petra Vance", "Oskar Brandt"]


def test_quote_completing_a_that_clause_is_skipped() -> None:
    text = ("Mayor Oskar Brandt said that “the ferry timetable will be restored by the end of "
            "the month.”\n\n"
            "Brandt told reporters the delays were unacceptable because, “Families on the islands "
            "cannot wait another winter for a reliable ferry.”\n\n"
            "“We will publish the new timetable on Monday,” Brandt said.\n")
    quotes = extract_quotes(text)
    assert [q.text for q in quotes] == ["We will publish the new timetable on Monday"]


def test_partial_quote_with_sentence_going_on_is_skipped_even_when_attributed() -> None:
    text = ("“The operators squeezed the island families to the breaking point” for years, "
            "Councillor Mira Halden said.\n\n"
            "“Nobody on the mainland would accept a ferry that runs twice a week,” Halden said.\n")
    quotes = extract_quotes(text)
    assert [q.text for q in quotes] == [
        "Nobody on the mainland would accept a ferry that runs twice a week"]
    assert quotes[0].speaker == "Mira Halden"


def test_transcript_excerpt_is_skipped() -> None:
    text = ("Partial transcript of the Vestra radio debate:\n\n"
            '"HOST: Let us start with the ferry. Minister, when will the boats run again?"\n\n'
            '"The ferry will run again in March," Minister Ana Berovic said.\n')
    quotes = extract_quotes(text)
    assert [q.text for q in quotes] == ["The ferry will run again in March"]
    assert quotes[0].speaker == "Ana Berovic"


def test_title_after_the_name_of_a_work_is_skipped() -> None:
    text = ("Her weekly column, “Why the islands still wait for a ferry that never comes,” drew "
            "many letters.\n\n"
            "Mira Halden wrote the book “We were promised a ferry for every island.”\n")
    assert extract_quotes(text) == []


def test_party_tag_and_delegate_title_do_not_become_the_speaker() -> None:
    text = ('Senate Majority Leader Mitch Ranola, R-Ky., said: "We will not let this bill pass '
            'the chamber this year."\n\n'
            '"This hearing is a waste of everybody\'s time and money," said Del. Stacey Orwin.\n')
    assert [q.speaker for q in extract_quotes(text)] == ["Mitch Ranola", "Stacey Orwin"]


def test_headline_introduced_by_colon_is_kept_as_speech() -> None:
    text = ("The Vestra Courier used one of the fishermen's remarks as its headline: "
            "“Nobody asked the people who actually live on the islands.”\n")
    quotes = extract_quotes(text)
    assert [q.text for q in quotes] == [
        "Nobody asked the people who actually live on the islands."]


def test_sentence_initial_capitals_do_not_make_a_title() -> None:
    text = """Senator Mira Holt spoke at the Vardan river crossing on Thursday.

“It’s a warning to all Vardanians, especially Northern Vardanians,” Senator Holt said.
"""
    quote = by_text(extract_quotes(text), "warning to all")
    assert quote.speaker == "Mira Holt"


def test_question_quote_then_name_and_verb_is_attributed() -> None:
    text = """Mayor Teodor Varga addressed the crowd in the Kestrel market square.

“Who would have thought this square could hold ten thousand people?” Varga said, looking \
out at the cheering crowd.
"""
    quote = by_text(extract_quotes(text), "ten thousand people")
    assert quote.speaker == "Teodor Varga"


def test_unattributed_quote_after_an_attributed_paragraph_continues_it() -> None:
    text = """Harbour master Jonas Eklund spoke after the storm.

"The boats will stay in the harbour until the wind drops below gale force," he said.

"After that, the insurers will have to inspect every hull before anyone sails again."
"""
    quotes = extract_quotes(text)
    assert len(quotes) == 1
    assert quote_parts(quotes[0]) == [
        "The boats will stay in the harbour until the wind drops below gale force",
        "After that, the insurers will have to inspect every hull before anyone sails again."]
    assert quotes[0].speaker == "Jonas Eklund"
    assert_verbatim(text, quotes)


def test_quote_going_on_from_a_paraphrase_is_not_direct() -> None:
    text = """Councillor Ana Petrov said the Vestra bridge may stay closed until spring. "The \
other option is a ferry, and nobody on the island wants to pay for one."

"We will vote on the repairs next week," Petrov said. "The engineers are ready to start."
"""
    quotes = extract_quotes(text)
    assert [q.text for q in quotes] == [
        "We will vote on the repairs next week … The engineers are ready to start."]
    assert quotes[0].speaker == "Ana Petrov"


def test_quote_led_in_by_the_reporters_clause_is_not_direct() -> None:
    text = """Judge Lena Morales said she has one rule for the Kestrel court: "Nobody leaves \
before the last witness has been heard."

Judge Morales added: "The jury will sit again on Monday morning at nine."
"""
    quotes = extract_quotes(text)
    assert [q.text for q in quotes] == ["The jury will sit again on Monday morning at nine."]
    assert quotes[0].speaker == "Lena Morales"
