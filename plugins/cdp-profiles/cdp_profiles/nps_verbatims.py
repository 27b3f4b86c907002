"""Verbatims: the comments of the NPS answers, per category, with their most frequent terms (docs/nps.md).

One query fetches the counted answers that have a comment (the same filters as every NPS figure);
the counting is done here. A comment is split into Unicode words, lowercased; words of one letter,
numbers and stop words (a short built-in list for English and German, :data:`STOP_WORDS`) are
dropped. A term counts once per comment that uses it (a comment repeating a word ten times is
one voice), so a term's count is the number of comments that mention it.

The comments are free text and may name people: ``cdp nps verbatims`` shows them as written.
Forgetting a person (``cdp privacy forget``) deletes their answers, comments included.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cdp_core import timeutil
from sqlalchemy import Engine, func, select

from cdp_profiles.nps import Filters, _answers
from cdp_profiles.store.kinds import nps_category

CATEGORIES = ("promoter", "passive", "detractor")
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
"""A run of letters (any script), with inner apostrophes kept: "don't", "it’s"."""

STOP_WORDS_EN = frozenset(
    """a about above after again against all also am an and any are aren't as at be because been before being
    below between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during
    each even few for from further get got had hadn't has hasn't have haven't having he her here hers herself him
    himself his how i i'm i've if in into is isn't it it's its itself just let me more most much my myself no nor
    not now of off on once only or other our ours ourselves out over own really same she should so some such than
    that that's the their theirs them themselves then there these they this those through to too under until up
    us very was wasn't we were weren't what when where which while who whom why will with won't would wouldn't
    you you're your yours yourself yourselves""".split()  # noqa: SIM905 (a word list reads better as text)
)
STOP_WORDS_DE = frozenset(
    """ab aber alle allem allen aller alles als also am an ander andere anderem anderen anderer anderes auch auf aus
    bei beim bin bis bist bitte da dabei damit dann das dass daß dein deine dem den denn der des dich die dies diese
    diesem diesen dieser dieses dir doch dort du durch ein eine einem einen einer eines einige er es etwas euch
    euer eure für gab gibt habe haben hab hat hatte hätte ich ihm ihn ihnen ihr ihre ihrem ihren im immer in ist
    ja jede jedem jeden jeder jetzt kann kein keine keinen man mal mehr mein meine meinem meinen mich mir mit muss
    nach nicht nichts noch nun nur ob oder ohne schon sehr sein seine sich sie sind so soll sowie über um und uns
    unser unsere unter viel vom von vor war waren warum was weil wenn wer werden wie wieder wir wird wo wurde
    wurden zu zum zur zwar zwischen""".split()  # noqa: SIM905
)
STOP_WORDS = STOP_WORDS_EN | STOP_WORDS_DE
"""Function words of English and German (articles, pronouns, auxiliaries, prepositions, "not"/"nicht"):
common in every comment, telling nothing of what it is about."""


def terms_of(text: str) -> list[str]:
    """The countable words of ``text``, in order: lowercase, stop words, one-letter words and numbers out."""
    words = (w.lower().replace("’", "'") for w in _WORD.findall(text))
    return [w for w in words if len(w) > 1 and w not in STOP_WORDS]


@dataclass(frozen=True)
class Example:
    text: str
    score: int
    answered_at: datetime | None

    def to_dict(self) -> dict[str, Any]:
        when = None if self.answered_at is None else timeutil.as_utc(self.answered_at).isoformat()
        return {"text": self.text, "score": self.score, "answered_at": when}


@dataclass
class CategoryVerbatims:
    n_comments: int = 0
    terms: list[tuple[str, int]] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_comments": self.n_comments,
            "terms": [[term, count] for term, count in self.terms],
            "examples": [e.to_dict() for e in self.examples],
        }


@dataclass
class Verbatims:
    """Per category (promoter, passive, detractor, always all three): comments, top terms, newest examples."""

    categories: dict[str, CategoryVerbatims]

    def to_dict(self) -> dict[str, Any]:
        return {name: self.categories[name].to_dict() for name in CATEGORIES}


def verbatims(engine: Engine, filters: Filters | None = None, *, per_category: int = 5, terms: int = 10) -> Verbatims:
    """The comments of the counted answers grouped by category: counts, the ``terms`` most frequent terms
    (by the number of comments using them, ties by term) and the ``per_category`` newest comments."""
    if per_category < 0 or terms < 0:
        raise ValueError("per_category and terms must be 0 or more")
    answers = _answers(filters or Filters(), person=False, comment=True)
    stmt = select(answers.c.score, answers.c.comment, answers.c.answered_at).where(
        answers.c.comment.is_not(None), func.length(func.trim(answers.c.comment)) > 0
    )
    found: dict[str, list[Example]] = {name: [] for name in CATEGORIES}
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            found[nps_category(int(row.score))].append(Example(row.comment.strip(), int(row.score), row.answered_at))
    out: dict[str, CategoryVerbatims] = {}
    for name, examples in found.items():
        counts: Counter[str] = Counter()
        for e in examples:
            counts.update(set(terms_of(e.text)))
        top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:terms]
        newest = sorted(examples, key=_newest_first)[:per_category]
        out[name] = CategoryVerbatims(len(examples), top, newest)
    return Verbatims(out)


def _newest_first(e: Example) -> tuple[int, float, str]:
    if e.answered_at is None:
        return (1, 0.0, e.text)  # undated last
    return (0, -timeutil.as_utc(e.answered_at).timestamp(), e.text)
