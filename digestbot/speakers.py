"""Who is speaking: person names, honorifics, roles and pronouns resolved within one article.

Pure, rule-based and offline. `build_cast` reads an article's names once (full names, "Ms Truss"
style short forms, titles such as "Foreign Secretary Liz Truss" and appositions such as
"Liz Truss, the foreign secretary,"); `resolve_speaker` turns the noun phrase next to a speech
verb ("she", "the minister", "Mr Kuleba", "the Interior Ministry") into a full name, an
organisation name, or None when nothing in the article supports a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


def word_set(text: str) -> frozenset[str]:
    """Take whitespace-separated words and return them as a frozen set."""
    return frozenset(text.split())

# A compact list written for digestbot: frequent given names in English-language news.
_MALE = word_set("""
aaron adam adrian ahmed alan albert alex alexander ali andrew andy anthony antonio arthur barack
ben benjamin bernie bill billy bob boris brad brandon brett brian bruce carl carlos charles charlie
chris christopher chuck colin craig dan daniel dave david dennis derek dmitry dmytro don donald
doug douglas ed eddie edward emmanuel eric frank fred gary george gerald glenn gordon greg gregory
harry henry howard hugh ian isaac ivan jack jacob jake james jamie jared jason jeb jeff jeffrey
jeremy jerry jim jimmy joe joel john johnny jon jonathan jordan jose joseph josh joshua juan justin
karl keith ken kenneth kevin kurt larry lee leo lindsey louis luis marco marcus mark martin matt
matthew michael miguel mike mitch mohammed muhammad nathan neil nick nicholas nigel oliver omar
patrick paul pete peter phil philip rahm ralph rand randy ray reince richard rick rob robby robert
roger ron ronald rudy russell ryan sam samuel scott sean sergei stephen steve steven stuart ted
terry thomas tim timothy todd tom tomas tony travis tyler victor vladimir walter wayne william
willie tobias viktor marek jonas lars henrik mateo andrei pavel stefan luca
""")
_FEMALE = word_set("""
abigail alice alicia alison amanda amy ana andrea angela ann anna anne barbara betsy betty
beverly brenda carla carly carol caroline catherine cathy charlotte cheryl christine claire
claudia cynthia dana daniela deborah debbie denise diana diane donna doris dorothy elaine elena
elizabeth ellen emily emma erin esther eva evelyn gina gloria grace gwen hannah heather helen
hillary huma ivanka jackie jacqueline jane janet jennifer jessica jill joan joanne jodi judith
judy julia julie karen kate katherine kathleen kathy katie kellyanne kelly kim kimberly kirsten
laura lauren linda lisa liz loretta lucy lynn margaret maria marie marine marina martha mary
megan melania melissa michelle monica nancy natalie nicola nicole nina olga olivia pamela patricia
patty paula rachel rebecca rosa ruth sandra sara sarah sharon sheila shirley sofia sonia sophie
stephanie susan suzanne tammy teresa theresa tina tulsi valerie vanessa victoria virginia wendy
yulia yvonne zoe ingrid greta mira lena katarina petra irina
""")

_HONORIFIC_GENDER: dict[str, str | None] = {
    "mr": "m", "mrs": "f", "ms": "f", "miss": "f", "sir": "m", "lord": "m", "lady": "f",
    "dame": "f", "king": "m", "queen": "f", "prince": "m", "princess": "f", "father": "m",
    "sister": "f", "dr": None, "prof": None, "professor": None, "rev": None, "reverend": None,
}
# Capitalised words that title a person when they stand before a name.
_TITLES = word_set("""
president vice prime minister secretary senator sen rep representative congressman congresswoman
gov governor mayor judge justice chief general gen col colonel capt captain lt lieutenant sgt
sergeant officer detective commissioner chancellor speaker ambassador attorney director chairman
chairwoman chair councillor councilman councilwoman sheriff pope bishop archbishop rabbi imam
deputy foreign interior home defence defense finance health justice economy trade state former
acting leader spokesman spokeswoman spokesperson admiral adm marshal inspector superintendent
constable agent dean principal coach president-elect premier sheikh delegate majority minority
""") | frozenset(_HONORIFIC_GENDER)
ROLE_HEADS = word_set("""
minister secretary senator governor mayor president spokesman spokeswoman spokesperson official
attorney lawyer adviser advisor aide director chief manager chairman chairwoman chair leader
nominee candidate commissioner ambassador judge prosecutor officer analyst economist strategist
founder executive ceo head professor researcher scientist author writer editor columnist
correspondent reporter anchor host daily newspaper narrator magnate mogul businessman
businesswoman congressman congresswoman lawmaker legislator chancellor premier diplomat envoy
general commander activist campaigner organiser organizer pollster surrogate representative
superintendent sheriff inspector deputy treasurer auditor economist coach captain owner
""")
# Words that make a capitalised phrase an organisation, place or thing rather than a person.
_ORG_HEADS = word_set("""
ministry department office agency committee council party campaign post times news journal
herald tribune guardian telegraph gazette network university college institute school
foundation center centre group association union bank fund court police service administration
house senate congress parliament commission board company corporation corp inc ltd co
government army navy force forces organisation organization club league caucus coalition
alliance network channel press review magazine daily hospital church strategies partners
associates foundation trust authority bureau command federation reserve exchange
""")
_NOT_NAMES = word_set("""
the a an and but or if in on at as for from to of by with after before when while he she it they
we i you his her their our its this that these those there here what why how who where still yet
so then now meanwhile however although though since because despite during under over asked
said says monday tuesday wednesday thursday friday saturday sunday january february march april
may june july august september october november december god read more related see also watch
listen share follow update updated photo video breaking exclusive live getty images reuters ap
afp democrats republicans democrat republican democratic american americans british european
christian muslim jewish catholic gop twitter facebook instagram youtube google thanks yes no
north south east west new united states america russia china ukraine europe britain england
washington london paris moscow kiev kyiv beijing brussels berlin york california texas florida
ohio iowa virginia carolina pennsylvania michigan wisconsin arizona nevada georgia colorado
internet web email tv u.s. u.k. u.n. mrs mr ms dr
""") - frozenset({"mrs", "mr", "ms", "dr"})
_PARTICLES = word_set("de da di du van von der den del della la le bin ibn al el")
PRONOUN_GENDER = {"he": "m", "she": "f"}
_ORG_PRONOUNS = frozenset({"it", "they", "we", "i", "you", "one", "who", "which", "this", "that"})
DETERMINERS = word_set("the a an his her their its our this that one another")

_WORD = re.compile(r"(?:[A-Z]\.){2,}|[^\W\d_][\w'’\-]*\.?|[^\W\d_]")
PARENTHESES = re.compile(r"\([^()]{0,60}\)")


@dataclass
class Person:
    """One person (or named organisation) an article talks about."""

    tokens: list[str]
    gender: str | None = None
    roles: list[list[str]] = field(default_factory=list)
    org: bool = False

    @property
    def name(self) -> str:
        return " ".join(self.tokens)

    @property
    def surname(self) -> str:
        return fold(self.tokens[-1])


@dataclass
class Cast:
    """Everyone named in one article, with positions of their mentions outside quotes."""

    people: list[Person] = field(default_factory=list)
    mentions: list[tuple[int, int]] = field(default_factory=list)  # (position, person index)

    def note(self, pos: int, index: int) -> None:
        """Record that person `index` was mentioned (or spoke) at `pos`."""
        self.mentions.append((pos, index))
        self.mentions.sort()


@dataclass(frozen=True)
class NameRun:
    """A run of capitalised words: its span, title words in front and the name tokens."""

    start: int
    end: int
    titles: tuple[str, ...]
    tokens: tuple[str, ...]


def fold(word: str) -> str:
    """Take a name word and return it lower-cased with one kind of apostrophe."""
    return word.lower().replace("’", "'")


def strip_dot(word: str) -> str:
    """Take a word and return it without a trailing period or possessive."""
    word = re.sub(r"['’]s?$", "", word)
    return word[:-1] if word.endswith(".") and not re.fullmatch(r"(?:[A-Z]\.)+", word) else word


def is_name_word(word: str) -> bool:
    """Take a word and return whether it can be part of a person's name."""
    bare = strip_dot(word)
    if not bare or not bare[0].isupper() or bare.lower() in _NOT_NAMES:
        return False
    if bare in ("II", "III", "IV", "Jr", "Sr"):
        return True
    return not (len(bare) > 1 and bare.isupper() and "." not in bare)


def find_name_runs(text: str, base: int = 0) -> list[NameRun]:
    """Take text and return its capitalised-word runs that may name people, with positions."""
    words = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    runs: list[NameRun] = []
    i = 0
    while i < len(words):
        if not words[i][2][0].isupper():
            i += 1
            continue
        j = i
        while j + 1 < len(words):
            gap = text[words[j][1]:words[j + 1][0]]
            nxt = words[j + 1][2]
            prev = words[j][2]
            if gap != " " or prev.endswith(("'s", "’s")):
                break
            if prev.endswith(".") and strip_dot(prev).lower() not in _HONORIFIC_GENDER \
                    and strip_dot(prev).lower() not in _TITLES and len(strip_dot(prev)) > 1 \
                    and not re.fullmatch(r"(?:[A-Z]\.)+", prev):
                break
            if nxt[0].isupper() or (nxt.lower() in _PARTICLES and j + 2 < len(words)
                                    and words[j + 2][2][0].isupper()):
                j += 1
                continue
            break
        run = [w for w in words[i:j + 1]]
        while run and strip_dot(run[0][2]).lower() in _NOT_NAMES:
            run = run[1:]
        if run:
            lowered = [strip_dot(w[2]).lower() for w in run]
            k = max((n + 1 for n, w in enumerate(lowered[:-1]) if w in _TITLES
                     or (w == "del" and run[n][2] == "Del.")), default=0)
            titles = [w for w in lowered[:k]]
            tokens = tuple(strip_dot(w[2]) for w in run[k:])
            if all(is_name_word(t) or t.lower() in _PARTICLES for t in tokens) \
                    and not any(t.lower() in _ORG_HEADS for t in tokens):
                runs.append(NameRun(base + run[0][0], base + run[-1][1], tuple(titles), tokens))
        i = j + 1
    return runs


def guess_gender(run: NameRun) -> str | None:
    """Take a name run and return "m", "f" or None from its honorific or given name."""
    for title in run.titles:
        if _HONORIFIC_GENDER.get(title):
            return _HONORIFIC_GENDER[title]
        if title.endswith("woman"):
            return "f"
        if title.endswith("man"):
            return "m"
    first = run.tokens[0].lower()
    if first in _MALE:
        return "m"
    return "f" if first in _FEMALE else None


def is_person_run(run: NameRun) -> bool:
    """Take a name run and return whether it names a person, not a place or thing."""
    if len(run.tokens) > 4:
        return False
    if run.titles:
        return True
    first = run.tokens[0].lower()
    if first in _MALE or first in _FEMALE:
        return True
    return len(run.tokens) >= 2 and not any(len(t) < 2 for t in run.tokens[-1:])


def find_person(cast: Cast, tokens: tuple[str, ...], pos: int) -> int | None:
    """Take name tokens and return the index of the matching person, most recent first."""
    last = fold(tokens[-1])
    first = fold(tokens[0]) if len(tokens) > 1 else None
    recent = [i for p, i in reversed(cast.mentions) if p <= pos]
    order: list[int] = list(dict.fromkeys([*recent, *range(len(cast.people))]))
    for i in order:
        person = cast.people[i]
        if person.org or person.surname != last:
            continue
        if first is None or len(person.tokens) == 1 or fold(person.tokens[0]) == first \
                or fold(person.tokens[0]).startswith(first.rstrip(".")):
            return i
    if first is None:
        for i in order:
            person = cast.people[i]
            if not person.org and len(person.tokens) > 1 and fold(person.tokens[0]) == last:
                return i
    return None


def add_person(cast: Cast, run: NameRun) -> int:
    """Take a person's name run and return their index in the cast, adding or upgrading them."""
    found = find_person(cast, run.tokens, run.start)
    gender = guess_gender(run)
    if found is None:
        cast.people.append(Person(list(run.tokens), gender))
        found = len(cast.people) - 1
    person = cast.people[found]
    if len(run.tokens) > len(person.tokens) and run.tokens[-1].lower() == person.surname:
        person.tokens = list(run.tokens)
    person.gender = person.gender or gender
    role = [t for t in run.titles if t not in _HONORIFIC_GENDER]
    if role and role[-1] in _TITLES - {"former", "acting", "deputy", "vice"}:
        person.roles.append(role)
    return found


def add_roles(cast: Cast, text: str, run: NameRun, index: int, base: int) -> None:
    """Take a person's run and record roles written next to it as apposition or prefix."""
    before = text[max(0, run.start - base - 60):run.start - base]
    after = text[run.end - base:run.end - base + 90]
    prefix = re.search(r"((?:[a-z][\w\-]*\s){1,3})$", before)
    if prefix:
        words = prefix.group(1).split()
        while words and words[0] in DETERMINERS:
            words = words[1:]
        if words and words[-1] in ROLE_HEADS:
            cast.people[index].roles.append(words)
    appos = re.match(r",\s+(?:the|a|an|[A-Z]\w+['’]s|his|her)\s+((?:[\w\-]+\s){0,5}?[\w\-]+)"
                     r"(?=,|\.|\s+who\b|\s+for\b|\s+of\b|\s+at\b|$)", after)
    if appos:
        words = [w.lower() for w in appos.group(1).split()]
        if words[-1] in ROLE_HEADS or len(words) <= 4:
            cast.people[index].roles.append(words)
    pre_appos = re.search(r"\bthe\s+((?:[\w\-]+\s){0,4}?[\w\-]+),\s+$", before)
    if pre_appos:
        words = [w.lower() for w in pre_appos.group(1).split()]
        if words[-1] in ROLE_HEADS:
            cast.people[index].roles.append(words)
    for word in (*run.titles, *(w.lower() for w in (prefix.group(1).split() if prefix else []))):
        if word.endswith("woman"):
            cast.people[index].gender = cast.people[index].gender or "f"
        elif word.endswith(("man", "men")) and word != "human":
            cast.people[index].gender = cast.people[index].gender or "m"


def build_cast(paragraphs: list[str], quoted: list[tuple[int, int]], title: str = "") -> Cast:
    """Take paragraphs (joined by blank lines for positions) and quote spans; return the cast."""
    cast = Cast()
    text = "\n\n".join(paragraphs)
    runs = find_name_runs(text)
    title_runs = find_name_runs(title, -len(title) - 2) if title else []
    for run in sorted([*title_runs, *runs], key=lambda r: (-len(r.tokens), r.start)):
        if len(run.tokens) >= 2 and is_person_run(run):
            add_person(cast, run)
    for run in runs:
        inside = any(a <= run.start < b for a, b in quoted)
        index = find_person(cast, run.tokens, run.start)
        if index is None and run.titles and is_person_run(run):
            index = add_person(cast, run)
        if index is None:
            continue
        person = cast.people[index]
        person.gender = person.gender or guess_gender(run)
        if not inside:
            add_roles(cast, text, run, index, 0)
            cast.note(run.start, index)
    learn_genders(cast, text, quoted)
    return cast


def learn_genders(cast: Cast, text: str, quoted: list[tuple[int, int]]) -> None:
    """Take the cast and set unknown genders from he/she that directly follow a lone mention."""
    votes: dict[int, list[str]] = {}
    for m in re.finditer(r"\b([Hh]e|[Ss]he|[Hh]is|[Hh]er)\b", text):
        if any(a <= m.start() < b for a, b in quoted):
            continue
        before = [(p, i) for p, i in cast.mentions if m.start() - 200 <= p < m.start()]
        if len({i for _, i in before}) != 1:
            continue
        gender = "m" if m.group(1).lower() in ("he", "his") else "f"
        votes.setdefault(before[-1][1], []).append(gender)
    for index, genders in votes.items():
        person = cast.people[index]
        if person.gender is None:
            person.gender = max(set(genders), key=genders.count)


def resolve_pronoun(cast: Cast, gender: str, pos: int) -> int | None:
    """Take he/she as a gender and a position; return the most recent compatible person."""
    unknown: int | None = None
    for p, i in reversed(cast.mentions):
        if p > pos or pos - p > 3000:
            continue
        person = cast.people[i]
        if person.org:
            continue
        if person.gender == gender:
            return i
        if person.gender is None and unknown is None:
            unknown = i
    return unknown


def resolve_role(cast: Cast, words: list[str], pos: int) -> int | None:
    """Take role words ("foreign", "secretary") and return the most recent person holding it."""
    words = [w for w in words if w not in DETERMINERS]
    if not words:
        return None
    recent = [i for p, i in reversed(cast.mentions) if p <= pos]
    order: list[int] = list(dict.fromkeys([*recent, *range(len(cast.people))]))
    for i in order:
        for role in cast.people[i].roles:
            if role and role[-1] == words[-1] and set(words) <= set(role):
                return i
    return None


def clean_phrase(phrase: str) -> str:
    """Take a speaker phrase and return it without parentheses, quotes and edge punctuation."""
    phrase = PARENTHESES.sub(" ", phrase)
    phrase = re.sub(r"\s+", " ", phrase)
    return phrase.strip(" ,;:—–-―\u00a0\n\"“”‘’")


def resolve_speaker(cast: Cast, phrase: str, pos: int) -> str | None:
    """Take the noun phrase next to a speech verb and its position; return a name or None."""
    phrase = clean_phrase(phrase)
    head = phrase.split(",")[0].strip()
    if not head:
        return None
    lowered = head.lower()
    if lowered in PRONOUN_GENDER:
        index = resolve_pronoun(cast, PRONOUN_GENDER[lowered], pos)
        if index is not None:
            cast.note(pos, index)
            return cast.people[index].name
        return None
    if lowered in _ORG_PRONOUNS:
        return None
    runs = [r for r in find_name_runs(head) if r.tokens]
    if runs:
        run = runs[-1]
        index = find_person(cast, run.tokens, pos)
        if index is None and (is_person_run(run) or len(run.tokens) == 1):
            cast.people.append(Person(list(run.tokens), guess_gender(run)))
            index = len(cast.people) - 1
        if index is not None:
            cast.note(pos, index)
            return cast.people[index].name
        return None
    org = resolve_organisation(head)
    if org:
        return org
    words = re.findall(r"[a-z][\w\-]*", lowered.split(" for ")[0].split(" of ")[0])
    if (words and words[0] in ("the", "this")) or re.match(r"^[A-Z]\w+['’]s\s", head):
        index = resolve_role(cast, [w for w in words if w not in ("the", "this")], pos)
        if index is not None:
            cast.note(pos, index)
            return cast.people[index].name
    return None


def resolve_organisation(phrase: str) -> str | None:
    """Take a phrase like "the Interior Ministry" and return "Interior Ministry", else None."""
    m = re.fullmatch(r"(?:[Tt]he\s+)?((?:[A-Z][\w&'’.\-]*\s+){0,4}[A-Z][\w&\-]*)", phrase)
    if not m:
        return None
    words = m.group(1).split()
    if words[-1].lower() in _ORG_HEADS and len(words) >= 2:
        return m.group(1)
    if len(words) == 1 and words[0].isupper() and len(words[0]) >= 2:
        return words[0]
    return None
