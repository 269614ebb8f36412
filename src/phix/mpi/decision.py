"""From scored candidates to an outcome: link, review, or a new resident (pure, no database)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Literal

from phix.mpi.scoring import GRADES, Score

_RANK = {g: i for i, g in enumerate(GRADES)}


@dataclass(slots=True)
class Candidate:
    """The best-scoring source record of one resident (golden record)."""

    golden_id: str
    source_id: str
    score: Score

    def sort_key(self) -> tuple[int, float]:
        return (_RANK[self.score.grade], -self.score.total)


@dataclass(slots=True)
class Decision:
    action: Literal["link", "new"]
    golden_id: str | None  # for "link"
    grade: str  # certain for links; the best grade seen for new residents
    score: float | None
    rule: str | None
    review: list[Candidate] = field(default_factory=list)  # candidates a steward should look at
    review_kind: str | None = None  # possible-match | possible-duplicate


def best_per_golden(
    scored: Iterable[tuple[str, str, Score]], exclude: Collection[str] = ()
) -> list[Candidate]:
    """One candidate per resident (its best source), best first. ``exclude``: forbidden residents."""
    best: dict[str, Candidate] = {}
    for golden_id, source_id, score in scored:
        if golden_id in exclude:
            continue
        cand = Candidate(golden_id, source_id, score)
        current = best.get(golden_id)
        if current is None or cand.sort_key() < current.sort_key():
            best[golden_id] = cand
    return sorted(best.values(), key=Candidate.sort_key)


def decide(candidates: list[Candidate]) -> Decision:
    """Certain -> link to the best resident; probable/possible -> a new resident plus a review
    item; none -> a new resident. Several certain residents: link to the best and queue the
    others as possible duplicates of it."""
    if not candidates or candidates[0].score.grade == "none":
        return Decision("new", None, "none", candidates[0].score.total if candidates else None, None)
    top = candidates[0]
    reviewable = [c for c in candidates if c.score.grade != "none"]
    if top.score.grade == "certain":
        others = [c for c in reviewable[1:] if c.score.grade == "certain"]
        return Decision(
            "link", top.golden_id, "certain", top.score.total, top.score.rule,
            review=others, review_kind="possible-duplicate" if others else None,
        )  # fmt: skip
    return Decision("new", None, top.score.grade, top.score.total, None, reviewable[:10], "possible-match")
