"""How a goal and an experience level turn into sets, reps, rest and effort.

Rep ranges, rest and effort by goal follow the ACSM position stand on progression models in
resistance training (2009) and common coaching practice:

============  ===========  ==============  =========  ==========
goal          main lifts   accessories     rest       target RPE
============  ===========  ==============  =========  ==========
strength      3-6 reps     6-10 reps       180 s      8
hypertrophy   6-10 reps    10-15 reps      90 s       8
endurance     12-20 reps   15-20 reps      45 s       7
fat_loss      8-12 reps    12-15 reps      45 s       7.5
general       8-12 reps    10-15 reps      90 s       7.5
============  ===========  ==============  =========  ==========

Weekly hard sets per muscle (primary sets count 1, secondary 0.5) follow the dose-response
of Schoenfeld, Ogborn & Krieger (2017): at least ~10 per week for growth, more helping
trained lifters up to roughly 20. Ranges by experience: beginner 6-10, intermediate 10-16,
advanced 12-20; the middle of the range is the weekly target.
"""

from __future__ import annotations

from dataclasses import dataclass

from fittracker_plugins.ai.athletes import Athlete
from fittracker_plugins.ai.progression import ProgressionParams

GOALS = ("strength", "hypertrophy", "endurance", "fat_loss", "general")
EXPERIENCES = ("beginner", "intermediate", "advanced")


@dataclass(frozen=True, slots=True)
class Prescription:
    """Reps, rest and effort of one goal: ``main`` for compound lifts, ``accessory`` otherwise."""

    main_reps: tuple[int, int]
    accessory_reps: tuple[int, int]
    rest_s: int
    target_rpe: float

    def reps(self, compound: bool) -> tuple[int, int]:
        return self.main_reps if compound else self.accessory_reps


PRESCRIPTIONS: dict[str, Prescription] = {
    "strength": Prescription((3, 6), (6, 10), 180, 8.0),
    "hypertrophy": Prescription((6, 10), (10, 15), 90, 8.0),
    "endurance": Prescription((12, 20), (15, 20), 45, 7.0),
    "fat_loss": Prescription((8, 12), (12, 15), 45, 7.5),
    "general": Prescription((8, 12), (10, 15), 90, 7.5),
}
WEEKLY_SETS: dict[str, tuple[int, int]] = {
    "beginner": (6, 10),
    "intermediate": (10, 16),
    "advanced": (12, 20),
}
# Beginners never go below 5 reps (ACSM 2009 starts novices at 8-12 RM; heavy triples need practice).
BEGINNER_MIN_REPS = 5
# Sets per exercise in one session, by experience.
SETS_PER_EXERCISE = {"beginner": 3, "intermediate": 3, "advanced": 4}


def prescription(goal: str) -> Prescription:
    """The goal's prescription (``general`` for goals without one, such as ``mobility``)."""
    return PRESCRIPTIONS.get(goal, PRESCRIPTIONS["general"])


def rep_range(goal: str, experience: str, compound: bool) -> tuple[int, int]:
    """The goal's rep range for a lift, raised to at least 5 reps for beginners."""
    low, high = prescription(goal).reps(compound)
    if experience == "beginner" and low < BEGINNER_MIN_REPS:
        return BEGINNER_MIN_REPS, max(high, BEGINNER_MIN_REPS + 3)
    return low, high


def weekly_target(experience: str) -> float:
    low, high = WEEKLY_SETS.get(experience, WEEKLY_SETS["beginner"])
    return (low + high) / 2


def progression_params(
    athlete: Athlete, default: ProgressionParams, mechanic: str | None
) -> ProgressionParams:
    """The rep range and RPE targets progress within: the user's goal when they named one (the
    main range for a compound lift, the accessory one otherwise, unknown mechanics included),
    else the configured defaults (``ai.rep_min``, ``ai.rep_max``, ``ai.target_rpe``)."""
    if not athlete.goals:
        return default
    low, high = rep_range(athlete.goal, athlete.experience or "beginner", mechanic == "compound")
    return ProgressionParams(rep_min=low, rep_max=high, target_rpe=prescription(athlete.goal).target_rpe)
