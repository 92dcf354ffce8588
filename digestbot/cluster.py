"""Incremental same-story clustering: which recent story, if any, a new article belongs to.

Candidate stories come from an inverted index over each article's most salient terms and its
entities, so one article costs about the same however many have been seen; only candidates
are scored. The score mixes TF-IDF cosine (IDF learned from the articles added so far, with a
smoothed prior), title similarity, shared entities and shared quotations, damped by the time
gap; near-duplicates (syndicated copies, light rewrites) always join their original.
"""

from __future__ import annotations

import bisect
import heapq
import math
import operator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from digestbot.features import ArticleFeatures, describe_article, estimate_resemblance
from digestbot.records import Article


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


@dataclass(frozen=True, slots=True)
class _Member:
    """An article of a story, its vectors weighted and normalised when it was added."""

    text: dict[str, float]
    title: dict[str, float]
    entities: dict[str, float]
    quotes: frozenset[int]
    sketch: tuple[int, ...]
    when: datetime


@dataclass(slots=True)
class _Story:
    members: list[_Member] = field(default_factory=list)
    keys: dict[str, None] = field(default_factory=dict)
    newest: datetime | None = None
    times: list[datetime] = field(default_factory=list)  # every member's time, sorted
    # Sums of the compared (newest) members' vectors: one dot with each bounds a story's score.
    titled_text: dict[str, float] = field(default_factory=dict)  # members with a title
    untitled_text: dict[str, float] = field(default_factory=dict)
    titles: dict[str, float] = field(default_factory=dict)
    entities: dict[str, float] = field(default_factory=dict)
    recent: list[_Member] = field(default_factory=list)  # the compared (newest) members
    quotes: frozenset[int] = frozenset()  # every quote shingle of the compared members

    def take(self, member: _Member, compared: int) -> None:
        """Take a new member and how many newest members are compared; add it and its time."""
        self.members.append(member)
        bisect.insort(self.times, member.when)
        if self.newest is None or member.when > self.newest:
            self.newest = member.when
        self._count(member, 1.0)
        if len(self.members) > compared:
            self._count(self.members[-compared - 1], -1.0)
        self.recent = self.members[-compared:]
        self.quotes = frozenset().union(*(m.quotes for m in self.recent))

    def _count(self, member: _Member, sign: float) -> None:
        text = self.titled_text if member.title else self.untitled_text
        for total, vector in ((text, member.text), (self.titles, member.title),
                              (self.entities, member.entities)):
            for key, weight in vector.items():
                value = total.get(key, 0.0) + sign * weight
                if value > 1e-12:
                    total[key] = value
                else:  # a member leaving: drop what it alone held, not a float residue
                    total.pop(key, None)


class StoryIndex:
    """Recent stories with their articles' features, searchable by salient terms."""

    def __init__(self, *, now: datetime | None = None, window: timedelta = timedelta(days=7),
                 settings: ClusterSettings = ClusterSettings()) -> None:
        self._now = now
        self._window = window
        self._settings = settings
        self._stories: dict[int, _Story] = {}
        self._postings: dict[str, dict[int, None]] = {}
        self._df: dict[str, int] = {}
        self._docs = 0
        self._last: tuple[Article, ArticleFeatures] | None = None

    def __len__(self) -> int:
        return len(self._stories)

    def add(self, story_id: int, article: Article,
            features: ArticleFeatures | None = None) -> None:
        """Take a story id and one of its articles (with its features, if already described)
        and register the article under that story."""
        if self._now is not None and article.when < self._now - self._window \
                and story_id not in self._stories:
            return  # too old to be joined by anything new; keeps a rebuild bounded
        feats = features if features is not None else self._describe(article)
        self._learn(feats)
        member = self._vectorize(feats)
        story = self._stories.setdefault(story_id, _Story())
        story.take(member, self._settings.compare_members)
        for key in self._salient_keys(member):
            if key not in story.keys:
                story.keys[key] = None
                self._postings.setdefault(key, {})[story_id] = None

    def assign(self, article: Article, features: ArticleFeatures | None = None) -> int | None:
        """Take a new article (with its features, if already described) and return the id of
        the story it belongs to, or None for new."""
        member = self._vectorize(features if features is not None else self._describe(article))
        best: int | None = None
        best_score = (False, self._settings.threshold)
        for story_id in self._candidates(member):
            score = self._score_story(member, self._stories[story_id], best_score)
            if score >= best_score and (best is None or score > best_score):
                best, best_score = story_id, score
        return best

    def relabel(self, renamed: dict[int, int]) -> None:
        """Take old story id -> new story id and rename those stories (provisional ids made
        real once stored); a new id already present is merged into."""
        for old, new in renamed.items():
            if old == new or old not in self._stories:
                continue
            story = self._stories.pop(old)
            for key in story.keys:
                posting = self._postings[key]
                posting.pop(old, None)
                posting[new] = None
            into = self._stories.get(new)
            if into is None:
                self._stories[new] = story
                continue
            merged = _Story(keys=into.keys | story.keys)
            for member in sorted(into.members + story.members, key=lambda m: m.when):
                merged.take(member, self._settings.compare_members)
            self._stories[new] = merged

    def discard(self, story_ids: list[int]) -> None:
        """Take story ids and forget those stories and their articles."""
        for story_id in story_ids:
            story = self._stories.pop(story_id, None)
            for key in story.keys if story is not None else ():
                posting = self._postings.get(key)
                if posting is not None:
                    posting.pop(story_id, None)
                    if not posting:
                        del self._postings[key]

    def prune(self, now: datetime) -> None:
        """Take the current time and drop stories whose newest article is older than the window."""
        self._now = now
        horizon = now - self._window
        self.discard([sid for sid, s in self._stories.items()
                      if s.newest is not None and s.newest < horizon])

    def _describe(self, article: Article) -> ArticleFeatures:
        # The pipeline calls add() right after assign() with the same article: describe it once.
        if self._last is not None and (self._last[0] is article or self._last[0] == article):
            return self._last[1]
        feats = describe_article(article)
        self._last = (article, feats)
        return feats

    def _learn(self, feats: ArticleFeatures) -> None:
        self._docs += 1
        for key in [*feats.terms, *("E:" + e for e in feats.entities)]:
            self._df[key] = self._df.get(key, 0) + 1

    def _weigh(self, terms: dict[str, float]) -> dict[str, float]:
        """Take raw term weights and return them times the current IDF, scaled to unit length."""
        top, df, log = math.log(self._docs + self._settings.prior_docs), self._df, math.log
        out = {t: w * (top - log(df.get(t, 0) + 1.0)) for t, w in terms.items()}
        norm = math.sqrt(sum(w * w for w in out.values()))
        return {t: w / norm for t, w in out.items()} if norm > 0.0 else {}

    def _vectorize(self, feats: ArticleFeatures) -> _Member:
        # Members keep the IDF of the moment they were added: no re-weighting per comparison.
        return _Member(text=self._weigh(feats.terms), title=self._weigh(feats.title),
                       entities=self._weigh({"E:" + e: 1.0 for e in feats.entities}),
                       quotes=feats.quotes, sketch=feats.sketch, when=feats.when)

    def _salient_keys(self, member: _Member) -> list[str]:
        text = member.text
        # Sorting (-weight, term) pairs orders as the key (-weight, term) would, without a call
        # per term.
        pairs = zip(map(operator.neg, text.values()), text, strict=True)
        top = [t for _, t in sorted(pairs)]
        return top[:self._settings.index_terms] + list(member.entities)

    def _candidates(self, member: _Member) -> list[int]:
        """Take a new article's vector; return the ids of the stories sharing the most weight
        of its salient keys (ties by id), at most `candidates` of them."""
        votes: dict[int, float] = {}
        vote = votes.get
        weights = member.text | member.entities
        limit = self._settings.max_postings
        for key in self._salient_keys(member):
            posting = self._postings.get(key)
            if not posting or len(posting) > limit:
                continue
            weight = weights[key]
            for story_id in posting:
                votes[story_id] = vote(story_id, 0.0) + weight
        return top_stories(votes, self._settings.candidates)

    def _score_story(self, new: _Member, story: _Story,
                     beat: tuple[bool, float]) -> tuple[bool, float]:
        """Take a new article, a story and the score to beat; return (the article copies a
        member, score), or (False, 0.0) as soon as the story cannot beat that score."""
        s = self._settings
        gap = nearest_gap(story.times, new.when)
        if gap > self._window:
            return False, 0.0
        over = max(0.0, (gap - s.grace) / s.decay)
        damp = math.exp(-over * over)
        recent = story.recent
        # Bounds first, from one dot per summed vector: every member score is >= 0 (weights
        # are positive), so the best member is at most the sum of all, and so is each cosine.
        titled = dot(new.text, story.titled_text)
        untitled = dot(new.text, story.untitled_text) if story.untitled_text else 0.0
        far = titled + untitled < s.resemblance_cosine - 1e-9  # no member can be a copy
        if far and beat[0]:
            return False, 0.0
        titles = s.title_weight * dot(new.title, story.titles) if new.title else 0.0
        names = s.entity_weight * dot(new.entities, story.entities)
        # One test against all compared members' shingles spares a test per member mostly.
        quoted = ([not new.quotes.isdisjoint(m.quotes) for m in recent]
                  if new.quotes and not new.quotes.isdisjoint(story.quotes) else [])
        total = titles + names + s.quote_bonus * sum(quoted) + (
            s.text_weight * titled + s.untitled_text_weight * untitled if new.title
            else s.untitled_text_weight * (titled + untitled))
        if far and _loses(total, total, len(recent), damp, beat[1], s.max_link):
            return False, 0.0  # and the story cannot win
        texts: list[float] = []
        for member in recent:
            text = dot(new.text, member.text)
            if text >= s.duplicate_cosine or (text >= s.resemblance_cosine and estimate_resemblance(
                    new.sketch, member.sketch) >= s.duplicate_resemblance):
                return True, text  # a copy joins whatever the other signals say
            texts.append(text)
        if beat[0]:
            return False, 0.0
        weights = [s.text_weight if new.title and m.title else s.untitled_text_weight
                   for m in recent]
        best = (max(w * t for w, t in zip(weights, texts, strict=True)) + titles + names
                + (s.quote_bonus if any(quoted) else 0.0))
        if _loses(best, total, len(recent), damp, beat[1], s.max_link):
            return False, 0.0
        best, total = 0.0, 0.0
        for member, text in zip(recent, texts, strict=True):
            if new.title and member.title:
                score = s.text_weight * text + s.title_weight * dot(new.title, member.title)
            else:  # a missing title is no evidence either way
                score = s.untitled_text_weight * text
            score += (s.entity_weight * dot(new.entities, member.entities)
                     + (s.quote_bonus if new.quotes & member.quotes else 0.0))
            best, total = max(best, score), total + score
        linked = s.max_link * best + (1.0 - s.max_link) * total / len(recent)
        return False, linked * damp


def _loses(best: float, total: float, members: int, damp: float, beat: float,
           max_link: float) -> bool:
    """Take bounds on a story's best and summed member scores, its member count, damping,
    the score to beat and the best member's share; return whether it surely scores less."""
    linked = max_link * best + (1.0 - max_link) * total / members
    return linked * damp * (1.0 + 1e-9) + 1e-12 < beat


def top_stories(votes: dict[int, float], wanted: int) -> list[int]:
    """Take story id -> vote and a count; return that many ids, highest vote first, ties by id."""
    if len(votes) > wanted:
        # Only stories tied with or above the wanted-th best vote can make the cut.
        floor = heapq.nlargest(wanted, votes.values())[-1]
        votes = {sid: vote for sid, vote in votes.items() if vote >= floor}
    return sorted(votes, key=lambda sid: (-votes[sid], sid))[:wanted]


def nearest_gap(times: list[datetime], when: datetime) -> timedelta:
    """Take sorted times (at least one) and a time; return the distance to the nearest."""
    at = bisect.bisect_left(times, when)
    near = times[max(0, at - 1):at + 1]
    return min(abs(when - t) for t in near)


def dot(a: dict[str, float], b: dict[str, float]) -> float:
    """Take two sparse unit vectors and return their dot product, their cosine similarity."""
    # The key intersection runs in C; fsum is exact, so the set's order cannot change the sum.
    return math.fsum([a[t] * b[t] for t in a.keys() & b.keys()])
