"""Choosing exercises: what a user may do, and which of those fits a movement best.

Shared by daily recommendations, plans and alternatives, so all three agree on the rules.

**Allowed** (hard rules, each refusal has a reason): lifting categories only (no stretches,
cardio or jumps; olympic lifts and strongman events only once the user has logged them, as
they need coaching and special kit); usable with the user's equipment (body-only work always
is; no equipment in the profile is read as a full gym); no excluded muscle (an injury) among
its primary or secondary muscles; ``expert`` exercises are not given to beginners.

**Score** (soft preferences, higher is better)::

    score = 3.0  if the exercise is a staple of its pattern (the lifts coaches program first)
          + 2.0  x min(1, sessions the user has logged of it / 4)   (familiar lifts first)
          + 1.0  if compound (a movement over several joints)
          + 0.5  if loadable (it takes external weight, so it can progress in small steps)
          + 0.5  if its level matches the user's experience
          - 1.5  if it needs unusual equipment (the catalog's "other": sleds, logs, sandbags...)
          - 0.5  per secondary muscle that is below the recovery threshold (soft: it works less)

Ties are broken by name, so the same inputs always give the same answer.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from fittracker_plugins.ai.athletes import Athlete
from fittracker_plugins.ai.catalog import FREE, Catalog, Exercise, normalize_equipment

EVERYTHING = frozenset({"everything"})
LEVELS = {"beginner": "beginner", "intermediate": "intermediate", "advanced": "expert"}
FAMILIAR_SESSIONS = 4
SPECIALIST = frozenset({"olympic weightlifting", "strongman"})
# The staples of each pattern, in the catalog's ids (checked against the catalog by a test).
STAPLES: frozenset[str] = frozenset(
    {
        # squat / lunge
        "Barbell_Squat",
        "Front_Barbell_Squat",
        "Goblet_Squat",
        "Dumbbell_Squat",
        "Leg_Press",
        "Bodyweight_Squat",
        "Dumbbell_Lunges",
        "Split_Squat_with_Dumbbells",
        # hinge / knee flexion / calves
        "Barbell_Deadlift",
        "Romanian_Deadlift",
        "Stiff-Legged_Dumbbell_Deadlift",
        "Barbell_Hip_Thrust",
        "One-Arm_Kettlebell_Swings",
        "Kettlebell_One-Legged_Deadlift",
        "Lying_Leg_Curls",
        "Glute_Ham_Raise",
        "Leg_Extensions",
        "Standing_Calf_Raises",
        # horizontal / vertical push
        "Barbell_Bench_Press_-_Medium_Grip",
        "Dumbbell_Bench_Press",
        "Incline_Dumbbell_Press",
        "Pushups",
        "Dips_-_Triceps_Version",
        "Standing_Military_Press",
        "Dumbbell_Shoulder_Press",
        "Seated_Dumbbell_Press",
        # horizontal / vertical pull
        "Bent_Over_Barbell_Row",
        "One-Arm_Dumbbell_Row",
        "Seated_Cable_Rows",
        "Inverted_Row",
        "Face_Pull",
        "Band_Pull_Apart",
        "Pullups",
        "Chin-Up",
        "Wide-Grip_Lat_Pulldown",
        # arms, shoulders, traps
        "Barbell_Curl",
        "Dumbbell_Bicep_Curl",
        "Hammer_Curls",
        "Triceps_Pushdown",
        "Lying_Triceps_Press",
        "Side_Lateral_Raise",
        "Cable_Crossover",
        "Barbell_Shrug",
        # core
        "Plank",
        "Hanging_Leg_Raise",
        "Cable_Crunch",
        "Crunches",
    }
)


@dataclass(frozen=True, slots=True)
class Constraints:
    """What a user can and may do (see the module docstring)."""

    equipment: frozenset[str]
    experience: str
    excluded_muscles: frozenset[str]

    @classmethod
    def of(
        cls,
        athlete: Athlete,
        *,
        equipment: Iterable[str] | None = None,
        experience: str | None = None,
        excluded_muscles: Iterable[str] = (),
    ) -> Constraints:
        """The athlete's profile, with explicit values (from a request) taking precedence."""
        items = list(athlete.equipment if equipment is None else equipment)
        return cls(
            equipment=normalize_equipment(items) if items else EVERYTHING,
            experience=experience or athlete.experience or "beginner",
            excluded_muscles=frozenset(athlete.excluded_muscles) | frozenset(excluded_muscles),
        )

    def describe(self) -> str:
        gear = "a full gym" if "everything" in self.equipment else ", ".join(sorted(self.equipment))
        out = f"{self.experience}, with {gear}"
        if self.excluded_muscles:
            out += f", leaving out {', '.join(sorted(self.excluded_muscles))}"
        return out


@dataclass(frozen=True, slots=True)
class Choice:
    exercise: Exercise
    score: float
    reason: str


def refusal(exercise: Exercise, c: Constraints, familiar: Collection[str] = ()) -> str | None:
    """Why ``exercise`` may not be suggested to this user, or ``None`` when it may."""
    if not exercise.is_lift:
        return f"{exercise.name} is {exercise.category or 'not a lift'}, not strength work"
    if exercise.category in SPECIALIST and exercise.id not in familiar:
        return f"{exercise.name} is a specialist lift ({exercise.category}) you have not logged yet"
    if not exercise.usable_with(c.equipment):
        return f"{exercise.name} needs {exercise.equipment}, which is not in your equipment"
    hurt = c.excluded_muscles & {*exercise.primary_muscles, *exercise.secondary_muscles}
    if hurt:
        return f"{exercise.name} works {', '.join(sorted(hurt))}, which you asked to leave out"
    if exercise.level == "expert" and c.experience == "beginner":
        return f"{exercise.name} is an expert-level exercise"
    return None


def score(
    exercise: Exercise,
    c: Constraints,
    familiar: Mapping[str, int],
    tired: Collection[str] = (),
) -> tuple[float, list[str]]:
    """The preference score of an allowed exercise and the words that explain it."""
    points = 0.0
    why: list[str] = []
    if exercise.id in STAPLES:
        points += 3.0
        why.append("a staple")
    sessions = familiar.get(exercise.id, 0)
    if sessions:
        points += 2.0 * min(1.0, sessions / FAMILIAR_SESSIONS)
        why.append(f"you have logged it in {sessions} session{'s' if sessions != 1 else ''}")
    if exercise.mechanic == "compound":
        points += 1.0
        why.append("compound")
    if exercise.equipment not in FREE:
        points += 0.5
        why.append(f"loadable ({exercise.equipment})")
    if exercise.equipment == "other":
        points -= 1.5
        why.append("but needs unusual equipment")
    if exercise.level == LEVELS.get(c.experience):
        points += 0.5
        why.append(f"{exercise.level} level")
    sore = [m for m in exercise.secondary_muscles if m in tired]
    if sore:
        points -= 0.5 * len(sore)
        why.append(f"but {', '.join(sore)} still recovering")
    return points, why


def rank(
    catalog: Catalog,
    c: Constraints,
    *,
    patterns: Collection[str] | None = None,
    muscle: str | None = None,
    familiar: Mapping[str, int] | None = None,
    tired: Collection[str] = (),
    skip: Collection[str] = (),
) -> list[Choice]:
    """Allowed exercises of the given patterns (and/or primary muscle), best first."""
    familiar = familiar or {}
    found: list[Choice] = []
    for exercise in catalog.exercises:
        if exercise.id in skip:
            continue
        if patterns is not None and exercise.pattern not in patterns:
            continue
        if muscle is not None and (not exercise.primary_muscles or exercise.primary_muscles[0] != muscle):
            continue
        if refusal(exercise, c, familiar) is not None:
            continue
        points, why = score(exercise, c, familiar, tired)
        found.append(Choice(exercise, points, "; ".join(why)))
    found.sort(key=lambda choice: (-choice.score, choice.exercise.name))
    return found


def best(
    catalog: Catalog,
    c: Constraints,
    patterns: Collection[str],
    *,
    familiar: Mapping[str, int] | None = None,
    tired: Collection[str] = (),
    skip: Collection[str] = (),
) -> Choice | None:
    """The first of :func:`rank`, or ``None`` when nothing of these patterns is allowed."""
    ranked = rank(catalog, c, patterns=patterns, familiar=familiar, tired=tired, skip=skip)
    return ranked[0] if ranked else None
