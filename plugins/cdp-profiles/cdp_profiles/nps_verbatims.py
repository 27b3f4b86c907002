"""STUB of the NPS verbatims module (comments by category with their most frequent terms).

Placeholder with the agreed interface only, so the report can show verbatims until the full
module lands: plain word counts, the newest comments as examples.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, func, select

from cdp_profiles.nps import Filters, _nps

CATEGORIES = ("promoter", "passive", "detractor")
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)
_STOP = frozenset({"the", "and", "for", "but", "with", "this", "that", "was", "are", "you", "not", "have", "very"})


@dataclass
class Verbatims:
    by_category: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return self.by_category


def verbatims(engine: Engine, filters: Filters, *, per_category: int = 5, terms: int = 10) -> Verbatims:
    """STUB: every comment of the filtered answers (the person filters aside)."""
    n = _nps
    text = func.trim(n.c.comment)
    stmt = (
        select(n.c.category, n.c.comment, n.c.score, n.c.answered_at)
        .where(*filters.conditions(), n.c.comment.is_not(None), text != "")
        .order_by(n.c.answered_at.desc(), n.c.stream, n.c.key)
    )
    result = Verbatims({c: {"n_comments": 0, "terms": [], "examples": []} for c in CATEGORIES})
    counts: dict[str, Counter[str]] = {c: Counter() for c in CATEGORIES}
    with engine.connect() as conn:
        for row in conn.execute(stmt):
            entry = result.by_category[row.category]
            entry["n_comments"] += 1
            counts[row.category].update(w for w in (m.lower() for m in _WORD.findall(row.comment)) if w not in _STOP)
            if len(entry["examples"]) < per_category:
                when = row.answered_at.isoformat() if row.answered_at is not None else None
                entry["examples"].append({"text": row.comment, "score": row.score, "answered_at": when})
    for c in CATEGORIES:
        top = sorted(counts[c].items(), key=lambda kv: (-kv[1], kv[0]))[:terms]
        result.by_category[c]["terms"] = [[t, k] for t, k in top]
    return result
