"""Incremental same-story clustering: which recent story, if any, a new article belongs to.

Candidate stories come from an inverted index over each article's most salient terms and its
entities, so one article costs about the same however many have been seen; only candidates
are scored. The score mixes TF-IDF cosine (IDF learned from the articles the index holds, with
a smoothed prior), title similarity, shared entities and shared quotations, damped by the time
gap; near-duplicates (syndicated copies, light rewrites) always join their original.

Vectors are numpy arrays over term ids: voting and the cosines with every candidate's members
are a few array operations per article instead of a Python loop per term and member.

`prune` keeps about what a rebuild from the store's window would hold, however long the index
runs: stories and articles older than the window leave it, their terms stop counting in the
IDF, and the vocabulary is renumbered once many of its terms have left with their articles.
"""

from __future__ import annotations

import bisect
import math
from array import array
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import accumulate
from typing import cast

import numpy as np
import numpy.typing as npt

from digestbot.features import ArticleFeatures, describe_article, estimate_resemblance
from digestbot.records import Article

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

# An article is one array of keys in four parts: text terms, entities, title terms and a flag
# saying it has a title. Each part holds at least one entry (a zero-weight pad when empty), so
# one reduceat sums every part of every member. In a dense vector a key's text or entity
# weight sits at 2 * id and its title weight at 2 * id + 1: text and entity keys are distinct.
TEXT, NAMES, TITLE, TITLED = 0, 1, 2, 3
PARTS = 4
_PAD, _FLAG = "", "\x00titled"  # key ids 0 and 1, never terms


@dataclass(frozen=True, slots=True)
class ClusterSettings:
    """The one fixed configuration of the clusterer."""

    threshold: float = 0.20  # a story joins when its combined score reaches this
    text_weight: float = 0.70
    title_weight: float = 0.25
    entity_weight: float = 0.05  # shared names also link same-topic events: a small weight
    # A pair lacking a title is judged on its text alone. Text alone separates events less
    # sharply than text plus title, so it is weighted up: 1.15 is where B-cubed F1 peaks on
    # BASIL and AllSides with their titles removed (1.1-1.2 within 0.005).
    untitled_text_weight: float = 1.15
    max_link: float = 0.5  # story score: this share of the best member, the rest the mean
    quote_bonus: float = 0.40  # the same quoted sentence is reported by both: same event
    duplicate_resemblance: float = 0.50  # estimated shingle Jaccard of a syndicated copy
    duplicate_cosine: float = 0.85
    # Shingle resemblance is only estimated for pairs already this close in text: a copy
    # sharing half its 5-word shingles shares far more of its words than this.
    resemblance_cosine: float = 0.40
    # A story is compared through its newest members only: it stays as cheap to score when
    # it grows, and an event's latest reports are the ones a new report resembles most.
    compare_members: int = 10
    grace: timedelta = timedelta(hours=24)  # gaps up to this cost nothing
    decay: timedelta = timedelta(days=2)  # beyond grace the score falls as a Gaussian
    index_terms: int = 25  # salient terms per article put into the inverted index
    # Stories scored per new article. 15 (was 30) leaves BASIL/AllSides F1 unchanged (also
    # dense) and halves the scoring; on the bench feeds' many concurrent stories it is better.
    candidates: int = 15
    max_postings: int = 1000  # a term in more stories than this is too common to fetch by
    prior_docs: float = 20.0  # pseudo-documents in which no term occurs, for early IDF
    # The vocabulary is renumbered once this many of its terms have left the IDF with the
    # articles that used them: a service running for months keeps a bounded vocabulary.
    compact_terms: int = 20_000


@dataclass(frozen=True, slots=True)
class _Terms:
    """An article's keys before weighting, in four parts (see PARTS); text terms come in
    alphabetical order, so ties in salience go to the first term alphabetically."""

    ids: Ints
    slots: Ints  # where each entry sits in a dense vector
    raw: Floats
    learned: Floats  # 1.0 where the key's document frequency counts this article
    parts: Ints
    bounds: tuple[int, ...]  # where each part starts
    texts: int  # how many real text terms (they come first)
    names: int  # how many real entities (they start at bounds[NAMES])
    titled: bool
    quotes: frozenset[int]
    sketch: tuple[int, ...]
    when: datetime


@dataclass(frozen=True, slots=True)
class _Weighed:
    """An article's keys weighted by some IDF, with its salient keys and their weights."""

    weights: Floats
    keys: list[int]
    key_weights: list[float]


@dataclass(frozen=True, slots=True)
class _Member:
    """An article of a story, its vectors weighted and normalised when it was added."""

    slots: Ints
    weights: Floats
    bounds: Ints
    quotes: frozenset[int]
    sketch: tuple[int, ...]
    when: datetime
    keys: tuple[int, ...]  # the salient keys it put in the story's postings


@dataclass(slots=True)
class _Story:
    slot: int  # its row in the index's vote arrays
    members: list[_Member] = field(default_factory=list)
    keys: set[int] = field(default_factory=set)
    newest: datetime | None = None
    times: list[datetime] = field(default_factory=list)  # every member's time, sorted
    recent: list[_Member] = field(default_factory=list)  # the compared (newest) members
    quotes: frozenset[int] = frozenset()  # every quote shingle of the compared members
    # The compared members' arrays end to end, and where each member's parts start.
    slots: Ints = field(default_factory=lambda: np.zeros(0, np.int64))
    weights: Floats = field(default_factory=lambda: np.zeros(0))
    bounds: Ints = field(default_factory=lambda: np.zeros(0, np.int64))

    def take(self, member: _Member, compared: int) -> None:
        """Take a new member and how many newest members are compared; add it and its time."""
        self.members.append(member)
        bisect.insort(self.times, member.when)
        if self.newest is None or member.when > self.newest:
            self.newest = member.when
        drop = 0  # entries of the member no longer compared
        if len(self.recent) == compared:
            drop = len(self.recent[0].slots)
        self.recent = recent = self.members[-compared:]
        self.quotes = frozenset().union(*(m.quotes for m in recent))
        self.bounds = np.concatenate([self.bounds[PARTS if drop else 0:] - drop,
                                      member.bounds + (len(self.slots) - drop)])
        self.slots = np.concatenate([self.slots[drop:], member.slots])
        self.weights = np.concatenate([self.weights[drop:], member.weights])


class StoryIndex:
    """Recent stories with their articles' features, searchable by salient terms."""

    def __init__(self, *, now: datetime | None = None, window: timedelta = timedelta(days=7),
                 settings: ClusterSettings = ClusterSettings()) -> None:
        self._now = now
        self._window = window
        self._settings = settings
        self._stories: dict[int, _Story] = {}
        self._by_slot: list[_Story | None] = []
        self._story_ids = np.zeros(64, np.int64)  # slot -> story id, to break ties by id
        self._free: list[int] = []  # slots of discarded stories, for reuse
        self._postings: dict[int, array[int]] = {}  # key id -> slots of stories holding it
        self._vocab: dict[str, int] = {_PAD: 0, _FLAG: 1}
        self._df = np.zeros(1024)
        self._query = np.zeros(2048)  # the article being assigned, densely by slot
        self._docs = 0
        self._dead = 0  # terms whose last counted article has left since the last compaction
        self._last: tuple[ArticleFeatures, _Terms] | None = None
        self._pending: tuple[_Terms, int, _Weighed] | None = None
        self._described: tuple[Article, ArticleFeatures] | None = None

    def __len__(self) -> int:
        return len(self._stories)

    @property
    def term_count(self) -> int:
        """How many distinct terms (and entities) the index holds ids for."""
        return len(self._vocab) - 2

    def add(self, story_id: int, article: Article,
            features: ArticleFeatures | None = None) -> None:
        """Take a story id and one of its articles (with its features, if already described)
        and register the article under that story."""
        if self._now is not None and article.when < self._now - self._window \
                and story_id not in self._stories:
            return  # too old to be joined by anything new; keeps a rebuild bounded
        terms = self._terms(features if features is not None else self._describe(article))
        # assign() weighed the article as it will be once learned, unless another came between.
        pending = self._pending
        learned = (pending[2] if pending is not None and pending[0] is terms
                   and pending[1] == self._docs else self._weigh(terms)[1])
        self._docs += 1
        # Text and entity keys are learned (pads too, harmlessly: id 0 is never a term).
        self._df[terms.ids[:terms.bounds[TITLE]]] += 1.0
        member = _Member(terms.slots, learned.weights, np.array(terms.bounds), terms.quotes,
                         terms.sketch, terms.when, tuple(learned.keys))
        story = self._stories.get(story_id)
        if story is None:
            story = self._stories[story_id] = self._open_story(story_id)
        story.take(member, self._settings.compare_members)
        postings = self._postings
        for key in learned.keys:
            if key not in story.keys:
                story.keys.add(key)
                posting = postings.get(key)
                if posting is None:
                    posting = postings[key] = array("q")
                posting.append(story.slot)

    def assign(self, article: Article, features: ArticleFeatures | None = None) -> int | None:
        """Take a new article (with its features, if already described) and return the id of
        the story it belongs to, or None for new."""
        terms = self._terms(features if features is not None else self._describe(article))
        now, learned = self._weigh(terms)
        self._pending = (terms, self._docs, learned)
        stories = [story for slot in self._candidates(now)
                   if (story := self._by_slot[slot]) is not None]
        if not stories:
            return None
        best: _Story | None = None
        best_score = (False, self._settings.threshold)
        for story, score in zip(stories, self._score_stories(terms, now.weights, stories),
                                strict=True):
            if score >= best_score and (best is None or score > best_score):
                best, best_score = story, score
        return None if best is None else int(self._story_ids[best.slot])

    def relabel(self, renamed: dict[int, int]) -> None:
        """Take old story id -> new story id and rename those stories (provisional ids made
        real once stored); a new id already present is merged into."""
        for old, new in renamed.items():
            if old == new or old not in self._stories:
                continue
            story = self._stories.pop(old)
            into = self._stories.get(new)
            if into is None:
                self._stories[new] = story
                self._story_ids[story.slot] = new
                continue
            self._close(story)
            merged = self._by_slot[into.slot] = _Story(into.slot, keys=into.keys)
            for member in sorted(into.members + story.members, key=lambda m: m.when):
                merged.take(member, self._settings.compare_members)
            for key in story.keys - into.keys:
                merged.keys.add(key)
                self._postings.setdefault(key, array("q")).append(into.slot)
            self._stories[new] = merged

    def discard(self, story_ids: list[int]) -> None:
        """Take story ids and forget those stories and their articles (their terms no longer
        count in the IDF, as if they had never been added)."""
        for story_id in story_ids:
            story = self._stories.pop(story_id, None)
            if story is not None:
                self._close(story)
                self._forget(story.members)

    def _forget(self, members: list[_Member]) -> None:
        """Take members leaving the index; their terms no longer count in the IDF."""
        for member in members:
            # What add() counted: the text and entity keys (fancy indexing counts each key
            # once, as there).
            ids = member.slots[:member.bounds[TITLE]] // 2
            self._df[ids] -= 1.0
            self._dead += int(np.count_nonzero(self._df[ids] <= 0.0))
        self._docs -= len(members)
        self._pending = None

    def prune(self, now: datetime) -> None:
        """Take the current time and drop stories whose newest article is older than the window."""
        self._now = now
        horizon = now - self._window
        self.discard([sid for sid, s in self._stories.items()
                      if s.newest is not None and s.newest < horizon])
        # A story still being reported keeps only its articles from the window, as a rebuild
        # from the store would: one that runs for months (a daily column) stays bounded.
        for story in [s for s in self._stories.values() if s.times and s.times[0] < horizon]:
            self._keep(story, [m.when >= horizon for m in story.members])
        if self._dead > self._settings.compact_terms:
            self._compact()

    def size(self, story_id: int) -> int:
        """Take a story id; return how many of its articles the index holds (0: none)."""
        story = self._stories.get(story_id)
        return 0 if story is None else len(story.members)

    def truncate(self, sizes: dict[int, int]) -> None:
        """Take story id -> article count (from `size`); forget the articles each story got
        since, as when their placement could not be stored."""
        for sid, size in sizes.items():
            story = self._stories.get(sid)
            if story is not None and len(story.members) > size:
                self._keep(story, [i < size for i in range(len(story.members))])

    def _keep(self, story: _Story, keep: list[bool]) -> None:
        """Take a live story and, per member, whether it stays (some do); forget the others."""
        self._forget([m for m, kept in zip(story.members, keep, strict=True) if not kept])
        rebuilt = _Story(story.slot)
        for member, kept in zip(story.members, keep, strict=True):
            if kept:
                rebuilt.take(member, self._settings.compare_members)
                rebuilt.keys.update(member.keys)
        for key in story.keys - rebuilt.keys:
            posting = self._postings[key]
            posting.remove(story.slot)
            if not posting:
                del self._postings[key]
        self._stories[int(self._story_ids[story.slot])] = self._by_slot[story.slot] = rebuilt

    def _compact(self) -> None:
        """Renumber the keys the live stories use and forget every other key."""
        old_live = np.unique(np.concatenate(
            [np.array([0, 1], np.int64)]
            + [m.slots // 2 for story in self._stories.values() for m in story.members]))
        remap = np.full(len(self._df), -1, np.int64)
        remap[old_live] = np.arange(len(old_live))
        self._vocab = {key: int(remap[old]) for key, old in self._vocab.items()
                       if remap[old] >= 0}
        size = max(1024, 2 * len(old_live))
        df = np.zeros(size)
        df[:len(old_live)] = self._df[old_live]
        self._df, self._query = df, np.zeros(2 * size)

        def renumber(slots: Ints) -> Ints:
            return 2 * remap[slots // 2] + slots % 2

        for story in self._stories.values():
            story.members = [replace(m, slots=renumber(m.slots),
                                     keys=tuple(int(k) for k in remap[list(m.keys)]))
                             for m in story.members]
            story.recent = story.members[-len(story.recent):] if story.recent else []
            story.slots = renumber(story.slots)
            story.keys = {int(remap[key]) for key in story.keys}
        self._postings = {int(remap[key]): posting for key, posting in self._postings.items()}
        self._last = self._pending = None
        self._dead = 0

    def _open_story(self, story_id: int) -> _Story:
        """Take a new story's id; return an empty story in a free slot."""
        slot = self._free.pop() if self._free else len(self._by_slot)
        story = _Story(slot)
        if slot == len(self._by_slot):
            self._by_slot.append(story)
        else:
            self._by_slot[slot] = story
        if slot >= len(self._story_ids):
            self._story_ids = np.concatenate([self._story_ids, np.zeros_like(self._story_ids)])
        self._story_ids[slot] = story_id
        return story

    def _close(self, story: _Story) -> None:
        """Take a story leaving the index; remove it from the postings and free its slot."""
        for key in story.keys:
            posting = self._postings.get(key)
            if posting is not None:
                posting.remove(story.slot)
                if not posting:
                    del self._postings[key]
        self._by_slot[story.slot] = None
        self._free.append(story.slot)

    def _describe(self, article: Article) -> ArticleFeatures:
        # The pipeline calls add() right after assign() with the same article: describe it once.
        if self._described is not None and (self._described[0] is article
                                             or self._described[0] == article):
            return self._described[1]
        feats = describe_article(article)
        self._described = (article, feats)
        return feats

    def _terms(self, feats: ArticleFeatures) -> _Terms:
        """Take features; return their keys as ids (new keys get one), raw weights and parts."""
        if self._last is not None and self._last[0] is feats:
            return self._last[1]
        texts = sorted(feats.terms)
        names = ["E:" + e for e in feats.entities]
        titles = list(feats.title)
        sizes = [max(1, len(texts)), max(1, len(names)), max(1, len(titles)), 1]
        keys = [*(texts or [_PAD]), *(names or [_PAD]), *(titles or [_PAD]), _FLAG]
        vocab = self._vocab
        found = list(map(vocab.get, keys))
        if None in found:
            found = [vocab.setdefault(k, len(vocab)) for k in keys]
        ids = np.array(found, np.int64)
        if len(vocab) > len(self._df):
            size = max(len(vocab), 2 * len(self._df))
            self._df = np.concatenate([self._df, np.zeros(size - len(self._df))])
            self._query = np.zeros(2 * size)
        raw = np.array([*(map(feats.terms.__getitem__, texts) if texts else [0.0]),
                        *([1.0] * len(names) or [0.0]),
                        *(feats.title.values() if titles else [0.0]), 0.0])
        parts = np.repeat(np.arange(PARTS), sizes)
        cuts = tuple(accumulate(sizes[:-1], initial=0))
        # Text and entity keys count the article; a title term counts it as a text term.
        counted = set(found[:cuts[TITLE]])
        learned = np.array([*([1.0] * cuts[TITLE]),
                            *(1.0 if key in counted else 0.0 for key in found[cuts[TITLE]:-1]),
                            0.0])
        terms = _Terms(ids, 2 * ids + (parts >= TITLE), raw, learned, parts, cuts, len(texts),
                       len(names), bool(titles), feats.quotes, feats.sketch, feats.when)
        self._last = (feats, terms)
        return terms

    def _weigh(self, terms: _Terms) -> tuple[_Weighed, _Weighed]:
        """Take an article's keys; return them weighted by the IDF now and by the IDF once the
        article itself is learned."""
        prior = self._settings.prior_docs
        tops = np.array([[math.log(self._docs + prior)], [math.log(self._docs + 1 + prior)]])
        df = self._df[terms.ids] + 1.0
        weights: Floats = terms.raw * (
            tops - np.log(np.concatenate((df, df + terms.learned)).reshape(2, -1)))
        # Each part scaled to unit length; a part of pads only stays zero.
        norms = np.sqrt(np.add.reduceat(weights * weights, terms.bounds, axis=1))
        norms[norms == 0.0] = 1.0
        weights /= norms[:, terms.parts]
        weights[:, -1] = 1.0 if terms.titled else 0.0
        # The most salient text keys, ties to the first alphabetically, and every entity key.
        top = np.argsort(-weights[:, :terms.texts], axis=1, kind="stable")[
            :, :self._settings.index_terms]
        names = slice(terms.bounds[NAMES], terms.bounds[NAMES] + terms.names)
        entities = terms.ids[names].tolist()
        now, learned = (_Weighed(weights[row], terms.ids[top[row]].tolist() + entities,
                                 weights[row, top[row]].tolist() + weights[row, names].tolist())
                        for row in (0, 1))
        return now, learned

    def _candidates(self, new: _Weighed) -> list[int]:
        """Take a new article's weights; return the slots of the stories sharing the most
        weight of its salient keys (ties by story id), at most `candidates` of them."""
        limit = self._settings.max_postings
        found = array("q")
        votes: list[float] = []
        sizes: list[int] = []
        get = self._postings.get
        for key, weight in zip(new.keys, new.key_weights, strict=True):
            posting = get(key)
            if posting and len(posting) <= limit:
                found.extend(posting)
                votes.append(weight)
                sizes.append(len(posting))
        if not votes:
            return []
        # bincount adds in array order, key by key: each story's vote is summed as a loop would.
        tally = cast(Floats, np.bincount(np.frombuffer(found, np.int64),
                                         np.array(votes).repeat(sizes)))
        return rank_stories(tally, self._story_ids[:len(tally)], self._settings.candidates)

    def _score_stories(self, new: _Terms, weights: Floats,
                       stories: list[_Story]) -> list[tuple[bool, float]]:
        """Take a new article, its weights and candidate stories; return for each story
        (the article copies one of its members, score)."""
        s = self._settings
        counts = [len(story.recent) for story in stories]
        firsts = list(accumulate(counts[:-1], initial=0))  # each story's first member
        query = self._query
        query[new.slots] = weights
        try:
            # Every candidate member's text, entity and title cosine with the new article, and
            # whether both have a title: the flags' product.
            products = query[np.concatenate([st.slots for st in stories])] * np.concatenate(
                [st.weights for st in stories])
        finally:
            query[new.slots] = 0.0
        sizes = [len(story.slots) for story in stories]
        bounds = np.concatenate([st.bounds for st in stories]) + np.repeat(
            list(accumulate(sizes[:-1], initial=0)), [PARTS * n for n in counts])
        cosines = np.add.reduceat(products, bounds).reshape(-1, PARTS)
        text = cosines[:, TEXT]
        # A missing title is no evidence either way: such a pair is judged on its text alone.
        scores = (np.where(cosines[:, TITLED] > 0.5,
                           s.text_weight * text + s.title_weight * cosines[:, TITLE],
                           s.untitled_text_weight * text)
                  if new.titled else s.untitled_text_weight * text)
        extra = s.entity_weight * cosines[:, NAMES]
        if new.quotes:
            quoted = np.zeros(len(extra))
            for story, first in zip(stories, firsts, strict=True):
                if not new.quotes.isdisjoint(story.quotes):
                    for k, member in enumerate(story.recent, first):
                        quoted[k] = not new.quotes.isdisjoint(member.quotes)
            extra += s.quote_bonus * quoted
        scores += extra
        linked = (s.max_link * np.maximum.reduceat(scores, firsts) + (1.0 - s.max_link)
                  * np.add.reduceat(scores, firsts) / counts).tolist()
        copies: dict[int, float] = {}
        for k in np.flatnonzero(text >= s.resemblance_cosine - 1e-12).tolist():
            i = bisect.bisect_right(firsts, k) - 1
            cosine = float(text[k])
            if i not in copies and (cosine >= s.duplicate_cosine or (
                    cosine >= s.resemblance_cosine and estimate_resemblance(
                        new.sketch, stories[i].recent[k - firsts[i]].sketch)
                    >= s.duplicate_resemblance)):
                copies[i] = cosine  # a copy joins whatever the other signals say
        out: list[tuple[bool, float]] = []
        when = new.when
        for i, story in enumerate(stories):
            newest = story.newest
            # Articles mostly come in published order: then the newest member is the nearest.
            gap = (when - newest if newest is not None and when >= newest
                   else nearest_gap(story.times, when))
            if gap > self._window:
                out.append((False, 0.0))
            elif i in copies:
                out.append((True, copies[i]))
            else:
                over = max(0.0, (gap - s.grace) / s.decay)
                out.append((False, linked[i] * math.exp(-over * over)))
        return out


def rank_stories(votes: Floats, story_ids: Ints, wanted: int) -> list[int]:
    """Take votes by slot and each slot's story id; return the slots of the `wanted` highest
    votes, highest first, ties by story id (slots without a vote are never returned)."""
    live = (votes != 0.0).nonzero()[0]
    if len(live) > wanted:
        # Only stories tied with or above the wanted-th best vote can make the cut.
        cut = len(live) - wanted
        floor = np.partition(votes[live], cut)[cut]
        live = live[votes[live] >= floor]
    order = np.lexsort((story_ids[live], -votes[live]))[:wanted]
    return [int(slot) for slot in live[order]]


def nearest_gap(times: list[datetime], when: datetime) -> timedelta:
    """Take sorted times (at least one) and a time; return the distance to the nearest."""
    at = bisect.bisect_left(times, when)
    near = times[max(0, at - 1):at + 1]
    return min(abs(when - t) for t in near)
