"""Same-story clustering on small fictional articles: StoryIndex.assign / add / prune."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from digestbot.cluster import ClusterSettings, StoryIndex, rank_stories
from digestbot.features import describe_article
from digestbot.records import Article

T0 = datetime(2031, 3, 4, 8, 0, tzinfo=UTC)


def make_article(slug: str, source: str, title: str, paragraphs: list[str],
                 when: datetime) -> Article:
    """Take a slug, outlet, title, paragraphs and time and return an Article."""
    url = f"https://{source}.example/{slug}"
    return Article(url=url, link=url, guid=None, feed_url=f"https://{source}.example/feed",
                   source=source, title=title, text="\n\n".join(paragraphs), published=when,
                   first_seen=when)


STRIKE_GAZETTE = make_article(
    "strike", "harborgazette", "Dockworkers walk out at the Port of Valdoria over night shifts",
    ["Thousands of dockworkers at the Port of Valdoria walked off the job on Tuesday, halting "
     "container traffic after talks over night-shift pay collapsed.",
     "The Valdoria Dockworkers Union said 4,200 members joined the strike. Transport Minister "
     "Elena Marwick urged both sides to return to the table.",
     "Shipping lines diverted at least 12 vessels to the smaller harbour at Kessen Bay."], T0)
STRIKE_LEDGER = make_article(
    "port-strike", "northernledger", "Valdoria port shut as union strikes over shift pay",
    ["Cranes stood idle at the Port of Valdoria as the dockworkers union began a strike, "
     "saying the operator had refused to raise pay for night shifts.",
     "Union leader Tomas Brecht said 4,200 dockworkers were out. Minister Elena Marwick called "
     "for talks to resume, while ships queued offshore or headed for Kessen Bay."],
    T0 + timedelta(hours=3))
STRIKE_COAST = make_article(
    "valdoria", "coastlinedaily", "Strike halts container traffic at Valdoria",
    ["Container traffic at the Port of Valdoria has stopped after dockworkers went on strike "
     "in a dispute over night-shift pay.",
     "The Valdoria Dockworkers Union put the number on strike at 4,200. Transport Minister "
     "Elena Marwick appealed for a quick return to negotiations.",
     "Several vessels were sent on to Kessen Bay, shipping agents said."],
    T0 + timedelta(hours=7))
RAIL_LEDGER = make_article(
    "rail", "northernledger", "Marwick unveils rail plan for Valdoria",
    ["Transport Minister Elena Marwick on Tuesday announced funding to electrify the rail line "
     "between Valdoria and the inland city of Orsk.",
     "Marwick said the plan would cut freight journey times and move more containers from the "
     "Port of Valdoria by train instead of by lorry.",
     "The union welcomed the announcement but said it wanted talks on jobs."],
    T0 + timedelta(days=7))
FOOTBALL = make_article(
    "cup", "sportsdesk", "Orsk Rovers win the Northern Cup on penalties",
    ["Orsk Rovers beat Lindal Athletic 5-4 on penalties to lift the Northern Cup after a "
     "goalless draw in front of 31,000 fans.",
     "Goalkeeper Mira Sand saved two spot kicks as the Rovers claimed their first trophy in a "
     "decade."], T0 + timedelta(hours=2))
PHONE = make_article(
    "phone", "techwire", "Lumora launches a folding phone with a week-long battery",
    ["Handset maker Lumora unveiled its first folding phone, promising a battery that lasts a "
     "week on a single charge.",
     "The device goes on sale in April at a price of 899 euros, chief executive Ilse Varga "
     "said at a launch event."], T0 + timedelta(hours=4))


def feed_articles(index: StoryIndex, articles: list[Article]) -> list[int]:
    """Take an index and articles in arrival order and return each article's story id."""
    ids: list[int] = []
    for article in articles:
        story_id = index.assign(article)
        if story_id is None:
            story_id = 100 + len(ids)
        index.add(story_id, article)
        ids.append(story_id)
    return ids


def test_three_outlets_reporting_one_event_join_one_story() -> None:
    ids = feed_articles(StoryIndex(), [STRIKE_GAZETTE, FOOTBALL, STRIKE_LEDGER, PHONE,
                                       STRIKE_COAST])
    assert ids[0] == ids[2] == ids[4]
    assert len({ids[0], ids[1], ids[3]}) == 3


def test_same_minister_a_week_later_is_a_separate_story() -> None:
    ids = feed_articles(StoryIndex(), [STRIKE_GAZETTE, STRIKE_LEDGER, RAIL_LEDGER])
    assert ids[0] == ids[1]
    assert ids[2] != ids[0]


def test_same_follow_up_within_the_day_would_join_so_the_gap_is_what_separates() -> None:
    follow_up = make_article(
        "strike-day2", "harborgazette", "Valdoria port strike enters second day",
        ["The dockworkers strike at the Port of Valdoria entered its second day on Wednesday "
         "with 4,200 union members still out over night-shift pay.",
         "Transport Minister Elena Marwick again urged the union and the operator to resume "
         "talks, as more ships headed for Kessen Bay."], T0 + timedelta(days=1))
    late = make_article("strike-late", follow_up.source, follow_up.title,
                        follow_up.paragraphs, T0 + timedelta(days=8))
    assert feed_articles(StoryIndex(), [STRIKE_GAZETTE, follow_up])[1] == 100
    assert feed_articles(StoryIndex(), [STRIKE_GAZETTE, late])[1] != 100


def test_syndicated_copy_joins_its_original() -> None:
    copy = make_article(
        "wire-copy", "eveningpost", "Port of Valdoria: dockworkers strike",
        [*STRIKE_GAZETTE.paragraphs, "This report was supplied by a news agency."],
        T0 + timedelta(hours=5))
    index = StoryIndex()
    feed_articles(index, [STRIKE_GAZETTE, FOOTBALL, PHONE])
    assert index.assign(copy) == 100


def test_near_duplicate_joins_even_when_other_signals_are_weighted_out() -> None:
    strict = ClusterSettings(threshold=5.0)  # no ordinary score can reach this
    copy = make_article("wire-copy", "eveningpost", "Strike news", STRIKE_GAZETTE.paragraphs,
                        T0 + timedelta(hours=1))
    index = StoryIndex(settings=strict)
    feed_articles(index, [STRIKE_GAZETTE, FOOTBALL])
    assert index.assign(copy) == 100
    assert index.assign(STRIKE_LEDGER) is None


QUOTE = ("“We will not unload a single ship until the night shifts are paid fairly,” "
         "said Tomas Brecht.")
QUOTE_GAZETTE = make_article(
    "brecht", "harborgazette", "Union chief vows to keep cranes idle",
    ["Members voted by a wide margin at a packed meeting in the union hall to extend the "
     "stoppage, and the operator's shares fell sharply in early trading. " + QUOTE,
     "Analysts at Crane & Moor estimated the cost to exporters at several million euros a "
     "day."], T0)
QUOTE_RADIO = make_article(
    "brecht-radio", "radiovaldoria", "Rally fills the old market square",
    ["Several hundred people gathered in the old market square on Tuesday evening, waving "
     "flags and singing, before marching towards the waterfront. " + QUOTE,
     "Police said the march passed off peacefully and the square was cleared by nine."],
    T0 + timedelta(hours=2))
PARAPHRASE_RADIO = make_article(
    "brecht-paraphrase", "radiovaldoria", "Rally fills the old market square",
    ["Several hundred people gathered in the old market square on Tuesday evening, waving "
     "flags and singing, before marching towards the waterfront. Speakers demanded better "
     "wages for those working after dark.",
     "Police said the march passed off peacefully and the square was cleared by nine."],
    T0 + timedelta(hours=2))


def test_two_reports_quoting_the_same_sentence_join() -> None:
    assert feed_articles(StoryIndex(), [QUOTE_GAZETTE, QUOTE_RADIO])[1] == 100


def test_without_the_shared_quote_the_same_reports_stay_apart() -> None:
    assert feed_articles(StoryIndex(), [QUOTE_GAZETTE, PARAPHRASE_RADIO])[1] != 100


def test_unrelated_articles_stay_apart() -> None:
    ids = feed_articles(StoryIndex(), [STRIKE_GAZETTE, FOOTBALL, PHONE])
    assert ids == [100, 101, 102]


# Two untitled reports of one wildfire from different angles (feeds without <title>): the
# text must carry the weight a title would have carried, or such reports never meet.
FIRE_GAZETTE = make_article(
    "fire", "harborgazette", "",
    ["A wildfire forced the evacuation of about 900 residents from the hill town of Brenmoor "
     "overnight, as strong winds pushed the flames towards the northern edge of the town.",
     "Fire chief Anna Kovar said crews had saved the school and the clinic but that at least "
     "fourteen houses on Quarry Lane had burned. Nobody was hurt.",
     "Residents were taken by bus to a sports hall in Lindal, where volunteers handed out "
     "blankets and hot soup."], T0)
FIRE_LEDGER = make_article(
    "brenmoor", "northernledger", "",
    ["Insurers expect claims running into millions after the wildfire swept through Quarry Lane "
     "in Brenmoor, a town of 2,000 people where the evacuation order was lifted on Wednesday.",
     "Homeowners among the 900 evacuated residents described blackened gardens and melted "
     "fences. Some said the warnings had come too late.",
     "The regional council promised emergency grants and a review of how the fire service was "
     "called out."], T0 + timedelta(hours=5))


def test_untitled_reports_of_one_event_join_and_unrelated_stay_apart() -> None:
    ids = feed_articles(StoryIndex(), [FOOTBALL, FIRE_GAZETTE, PHONE, FIRE_LEDGER])
    assert ids == [100, 101, 102, 101]


def test_assign_does_not_add() -> None:
    index = StoryIndex()
    feed_articles(index, [STRIKE_GAZETTE])
    assert index.assign(STRIKE_LEDGER) == 100
    assert index.assign(FOOTBALL) is None
    assert len(index) == 1


def test_same_input_order_gives_the_same_partition() -> None:
    articles = [STRIKE_GAZETTE, FOOTBALL, STRIKE_LEDGER, PHONE, STRIKE_COAST, RAIL_LEDGER,
                QUOTE_GAZETTE, QUOTE_RADIO]
    assert feed_articles(StoryIndex(), articles) == feed_articles(StoryIndex(), articles)


def test_partition_does_not_depend_on_the_hash_seed(tmp_path: Path) -> None:
    # Salted str hashes change set order between processes; scores must not depend on it.
    script = tmp_path / "run.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parents[1])!r}]\n"
        "import test_cluster as t\n"
        "from digestbot.cluster import StoryIndex\n"
        "arts = [t.STRIKE_GAZETTE, t.FOOTBALL, t.STRIKE_LEDGER, t.PHONE, t.STRIKE_COAST,\n"
        "        t.RAIL_LEDGER, t.QUOTE_GAZETTE, t.QUOTE_RADIO, t.PARAPHRASE_RADIO]\n"
        "index = StoryIndex()\n"
        "ids = t.feed_articles(index, arts)\n"
        "probe = index.assign(t.STRIKE_COAST)\n"
        "print(json.dumps([ids, probe]))\n", encoding="utf-8")
    outputs = []
    for seed in ("1", "2", "3"):
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                              env={"PYTHONHASHSEED": seed, "PATH": ""}, check=True,
                              cwd=Path(__file__).parents[1])
        outputs.append(json.loads(done.stdout))
    assert outputs[0] == outputs[1] == outputs[2]


def make_filler(day: int) -> Article:
    """Take a day number and return a fictional article about a distinct local event."""
    return make_article(
        f"fair-{day}", "towncrier", f"Village fair number {day} draws crowds",
        [f"The fair in the village of Hollin{day} drew visitors on day {day}, organisers "
         f"said, with stalls run by volunteer group {day}."], T0 + timedelta(days=day))


def test_prune_bounds_memory_to_the_window() -> None:
    index = StoryIndex(window=timedelta(days=7))
    sizes = []
    for day in range(60):
        filler = make_filler(day)
        index.prune(filler.when)
        index.add(1000 + day, filler)
        sizes.append(len(index))
    assert max(sizes) <= 8
    assert len(index) == 8  # days 52..59: their newest article is within a week of day 59


def weights_by_key(index: StoryIndex, article: Article) -> dict[tuple[str, int], float]:
    """Take an index and an article; return the article's weights now, by (key, part)."""
    terms = index._terms(describe_article(article))
    now, _ = index._weigh(terms)
    names = {i: key for key, i in index._vocab.items()}
    return {(names[int(i)], int(part)): round(float(w), 12)
            for i, part, w in zip(terms.ids, terms.parts, now.weights, strict=True)}


def test_a_pruned_index_weighs_terms_as_one_rebuilt_from_the_window() -> None:
    later = T0 + timedelta(days=10)
    phone = replace(PHONE, published=later)
    running, rebuilt = StoryIndex(window=timedelta(days=7)), StoryIndex(window=timedelta(days=7))
    feed_articles(running, [STRIKE_GAZETTE, STRIKE_LEDGER, FOOTBALL])
    running.prune(later)
    running.add(9, phone)
    rebuilt.add(9, phone)
    ledger = replace(STRIKE_LEDGER, published=later)
    # The pruned strike reports no longer make "Valdoria" a common, low-weight term.
    assert weights_by_key(running, ledger) == weights_by_key(rebuilt, ledger)
    assert running.assign(ledger) == rebuilt.assign(ledger) is None


def test_a_story_reported_every_day_keeps_only_its_last_week() -> None:
    index = StoryIndex(window=timedelta(days=7))
    ids = []
    for day in range(30):
        report = replace(STRIKE_GAZETTE, url=f"{STRIKE_GAZETTE.url}?day={day}",
                         published=T0 + timedelta(days=day))
        index.prune(report.when)
        story = index.assign(report)
        index.add(story if story is not None else 1, report)
        ids.append(story if story is not None else 1)
    assert set(ids) == {1}  # one running story all month
    [story] = index._stories.values()
    assert [(m.when - T0).days for m in story.members] == list(range(22, 30))
    assert index._docs == 8  # the IDF counts what a rebuild from the last week would


def test_compacting_the_vocabulary_changes_no_decision_and_bounds_it() -> None:
    compacting = StoryIndex(window=timedelta(days=7), settings=ClusterSettings(compact_terms=20))
    keeping = StoryIndex(window=timedelta(days=7))
    decisions: dict[str, list[int | None]] = {"compacting": [], "keeping": []}
    terms: dict[str, list[int]] = {"compacting": [], "keeping": []}
    for day in range(40):
        when = T0 + timedelta(days=day)
        reports = [replace(a, url=f"{a.url}?day={day}", published=when)
                   for a in (STRIKE_GAZETTE, PHONE, FOOTBALL)]
        batch = [make_filler(day), *reports[day % 3:]]
        for name, index in (("compacting", compacting), ("keeping", keeping)):
            index.prune(when)
            for n, article in enumerate(batch):
                story = index.assign(article)
                decisions[name].append(story)
                index.add(story if story is not None else 100 * day + n, article)
            terms[name].append(index.term_count)
    assert decisions["compacting"] == decisions["keeping"]
    assert len(compacting) == len(keeping)
    # Each day's fair brings new names; only the last week's (and 20 spare) are kept.
    assert terms["keeping"][39] - terms["keeping"][19] >= 30
    assert max(terms["compacting"][19:]) - min(terms["compacting"][19:]) <= 25


def test_pruned_story_is_no_longer_assigned() -> None:
    index = StoryIndex(window=timedelta(days=7))
    feed_articles(index, [STRIKE_GAZETTE])
    index.prune(T0 + timedelta(days=10))
    assert len(index) == 0
    assert index.assign(STRIKE_LEDGER) is None


def test_rebuild_with_now_skips_articles_older_than_the_window() -> None:
    index = StoryIndex(now=T0 + timedelta(days=20), window=timedelta(days=7))
    index.add(1, STRIKE_GAZETTE)
    index.add(2, replace(RAIL_LEDGER, published=T0 + timedelta(days=19)))
    assert len(index) == 1
    assert index.assign(replace(STRIKE_LEDGER, published=T0 + timedelta(days=20))) != 1


def test_relabel_moves_a_story_and_discard_forgets_it() -> None:
    index = StoryIndex()
    index.add(-1, STRIKE_GAZETTE)
    index.add(-2, PHONE)
    index.relabel({-1: 7})
    assert index.assign(STRIKE_LEDGER) == 7
    index.discard([-2])
    assert len(index) == 1
    assert index.assign(replace(PHONE, url="https://techwire.example/phone-again")) is None


def test_relabel_onto_an_existing_story_merges_them() -> None:
    index = StoryIndex()
    index.add(3, STRIKE_GAZETTE)
    index.add(-1, STRIKE_LEDGER)
    index.relabel({-1: 3})
    assert len(index) == 1
    assert index.assign(STRIKE_COAST) == 3


def test_a_big_story_is_still_found_through_its_newest_members() -> None:
    index = StoryIndex()
    fillers = [make_filler(0)] + [
        replace(make_filler(0), url=f"https://filler.example/{n}", title=f"Filler {n}")
        for n in range(25)]
    for article in fillers:
        index.add(1, article)
    index.add(2, STRIKE_GAZETTE)
    assert index.assign(STRIKE_LEDGER) == 2
    assert index.assign(FOOTBALL) is None


def test_a_quote_carried_by_a_merged_in_story_still_links() -> None:
    quoting = replace(STRIKE_GAZETTE, text=STRIKE_GAZETTE.text + "\n\n“Nobody leaves the "
                      "quay until the cranes are safe again,” said a crane driver.")
    index = StoryIndex()
    index.add(3, quoting)
    index.add(-1, QUOTE_GAZETTE)
    index.relabel({-1: 3})
    assert index.assign(QUOTE_RADIO) == 3
    assert index.assign(PARAPHRASE_RADIO) is None


def test_rank_stories_ranks_by_vote_then_story_id_and_keeps_the_wanted_number() -> None:
    # Slot i holds story id ids[i]; slot 5 has no vote and is never a candidate.
    ids = np.array([90, 40, 70, 20, 50, 30])
    votes = np.array([0.5, 0.5, 0.9, 0.1, 0.5, 0.0])
    assert [int(ids[s]) for s in rank_stories(votes, ids, 3)] == [70, 40, 50]
    assert [int(ids[s]) for s in rank_stories(votes, ids, 10)] == [70, 40, 50, 90, 20]
    assert rank_stories(np.zeros(3), ids[:3], 3) == []


def test_a_slot_freed_by_pruning_is_reused_without_its_old_terms() -> None:
    index = StoryIndex(window=timedelta(days=7))
    index.add(1, STRIKE_GAZETTE)
    index.prune(T0 + timedelta(days=10))
    phone = replace(PHONE, published=T0 + timedelta(days=10))
    index.add(2, phone)  # takes the strike story's freed slot
    assert len(index) == 1
    assert index.assign(replace(STRIKE_LEDGER, published=T0 + timedelta(days=10))) is None
    assert index.assign(replace(phone, url="https://techwire.example/phone-again")) == 2


def test_an_add_after_another_add_weighs_the_article_afresh() -> None:
    features = describe_article(STRIKE_LEDGER)
    interleaved, plain = StoryIndex(), StoryIndex()
    interleaved.add(1, STRIKE_GAZETTE)
    plain.add(1, STRIKE_GAZETTE)
    # assign() weighs the article for the add that follows; a second add of the same features
    # comes after the IDF has changed and must not reuse those weights.
    interleaved.assign(STRIKE_LEDGER, features)
    for index in (interleaved, plain):
        index.add(2, STRIKE_LEDGER, features)
        index.add(3, STRIKE_LEDGER, features)
    stored = [ix._stories[3].members[0].weights.tolist() for ix in (interleaved, plain)]
    assert stored[0] == stored[1]
    assert interleaved.assign(STRIKE_COAST) == plain.assign(STRIKE_COAST)
