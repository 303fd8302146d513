"""The recommender extension point: how a plug-in supplies or re-ranks daily recommendations.

The AI plug-in ranks candidate exercises for today with its own documented rules, then hands
the ranked list to every :class:`Recommender` from the ``fittracker_recommenders`` hook, in
plug-in order; each may reorder it, drop entries or add exercises of the catalog (an ML
model, a coach's preferences). The AI plug-in applies its hard rules again afterwards
(equipment, excluded muscles, recovery, yesterday's work), so a recommender can change the
choice but never make it unsafe; a recommender that fails or is slow is skipped, and the
answer says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Candidate:
    """One exercise a recommender may put forward; a higher ``score`` comes first."""

    exercise_id: str
    score: float
    reason: str


@dataclass(frozen=True, slots=True)
class RecommendationContext:
    """What the AI plug-in knows about the user today (read-only)."""

    user_id: str
    goal: str
    experience: str
    equipment: tuple[str, ...]
    excluded_muscles: tuple[str, ...]
    recovery_pct: Mapping[str, float]  # muscle -> % recovered; muscles missing are fully recovered
    recent_exercise_ids: tuple[str, ...]  # exercises of the last 7 days, most recent first


class Recommender(Protocol):
    """Re-ranks (or extends) the built-in candidates; ``None`` leaves them as they are."""

    name: str

    async def rerank(
        self, context: RecommendationContext, candidates: Sequence[Candidate]
    ) -> Sequence[Candidate] | None: ...
