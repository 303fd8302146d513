"""Today's workout: which exercises, in what order, and why — the built-in recommender.

Inputs: the catalog, the user's constraints (:mod:`.selection`), goal and experience, the
per-muscle recovery from :mod:`.recovery`, and the work sets of the last 7 days.

1. **Hard rules.** An exercise is a candidate only when :func:`.selection.refusal` allows it,
   EVERY muscle it works (primary and secondary) is at least ``min_recovery_pct`` recovered,
   and it was not done yesterday or today (in the user's time zone); nor is its movement
   pattern repeated from yesterday.
2. **Weekly coverage.** Each major muscle has a weekly target of hard sets (the middle of the
   range for the user's experience, see :mod:`.goals`); sets of the last 7 days count 1 for a
   primary muscle and 0.5 for a secondary one. ``need(m) = max(0, target - done) / target``.
3. **Priority** of a candidate::

       priority = 3 x (mean need of its primary muscles + 0.25 x mean need of its secondary ones)
                + 0.75 if it is on the lagging side of push vs pull this week (by > 20 %)
                + 0.4 x preference score (:func:`.selection.score`: staple, familiar, compound...)

   Means, not sums: an exercise that touches many muscles a little is not worth more than one
   that trains the muscle that needs it.

4. **Greedy choice.** The highest-priority candidate is taken, its planned sets are added to
   the week (so the next pick sees the new coverage and balance), and candidates of the same
   movement pattern, a third one for the same primary muscle, or one more of a group (push,
   pull, legs) that already fills half the session, are passed over. Compound
   lifts come first in the session, core work last.
5. Fewer than three exercises possible → a rest (or mobility) day, with the reason.

Everything after the choice — sets, reps, rest and target weight — comes from :mod:`.goals`
and :mod:`.progression` (the user's last sessions of that exercise).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from fittracker_plugins.ai.catalog import Catalog, Exercise
from fittracker_plugins.ai.goals import weekly_target
from fittracker_plugins.ai.selection import Constraints, refusal, score

from fittracker.coaching import Candidate

MAJOR_MUSCLES = (
    *("chest", "shoulders", "triceps", "lats", "middle back", "biceps"),
    *("quadriceps", "hamstrings", "glutes", "calves", "abdominals"),
)
UPPER_BODY = frozenset(
    {"chest", "shoulders", "triceps", "lats", "middle back", "biceps", "traps", "forearms"}
)
MIN_EXERCISES = 3
MAX_PER_MUSCLE = 2
MAX_GROUP_SHARE = 0.5
NEED_WEIGHT = 3.0
SECONDARY_NEED = 0.25
BALANCE_BONUS = 0.75
BALANCE_SLACK = 1.2
PREFERENCE_WEIGHT = 0.4
ORDER = {"legs": 0, "push": 1, "pull": 1, "other": 2, "core": 3}
ALTERNATES = 30


@dataclass(frozen=True, slots=True)
class Situation:
    """Everything the choice depends on, computed once per request."""

    constraints: Constraints
    recovery_pct: Mapping[str, float]  # muscles missing are fully recovered
    week_sets: Mapping[str, float]  # muscle -> hard sets in the last 7 days
    push_sets: float
    pull_sets: float
    avoid_ids: frozenset[str]  # done yesterday or today
    avoid_patterns: frozenset[str]  # yesterday's movement patterns
    familiar: Mapping[str, int]  # exercise -> sessions in the last weeks
    min_recovery_pct: float
    sets_per_exercise: int

    @property
    def target(self) -> float:
        return weekly_target(self.constraints.experience)


@dataclass(slots=True)
class _Week:
    """The week's coverage as the greedy choice fills it in."""

    sets: dict[str, float]
    push: float
    pull: float
    per_muscle: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    patterns: set[str] = field(default_factory=set)
    groups: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def need(self, muscle: str, target: float) -> float:
        if muscle not in MAJOR_MUSCLES:
            return 0.0
        return max(0.0, target - self.sets.get(muscle, 0.0)) / target

    def lagging(self) -> str | None:
        if self.push > self.pull * BALANCE_SLACK:
            return "pull"
        if self.pull > self.push * BALANCE_SLACK:
            return "push"
        return None

    def add(self, exercise: Exercise, sets: int) -> None:
        for m in exercise.primary_muscles:
            self.sets[m] = self.sets.get(m, 0.0) + sets
        for m in exercise.secondary_muscles:
            self.sets[m] = self.sets.get(m, 0.0) + 0.5 * sets
        if exercise.group == "push":
            self.push += sets
        elif exercise.group == "pull":
            self.pull += sets
        if exercise.primary_muscles:
            self.per_muscle[exercise.primary_muscles[0]] += 1
        self.patterns.add(exercise.pattern)
        self.groups[exercise.group] += 1


def blocked(exercise: Exercise, s: Situation) -> str | None:
    """Why the hard rules keep ``exercise`` out today, or ``None``."""
    why = refusal(exercise, s.constraints, s.familiar)
    if why is not None:
        return why
    if exercise.id in s.avoid_ids:
        return f"you did {exercise.name} yesterday or today"
    if exercise.pattern in s.avoid_patterns:
        return f"yesterday already had a {exercise.pattern.replace('_', ' ')} movement"
    for m in (*exercise.primary_muscles, *exercise.secondary_muscles):
        pct = s.recovery_pct.get(m, 100.0)
        if pct < s.min_recovery_pct:
            return f"{m} is {pct:.0f} % recovered, under {s.min_recovery_pct:.0f} %"
    return None


def _priority(exercise: Exercise, s: Situation, week: _Week, preference: float) -> tuple[float, str]:
    target = s.target
    need = _mean([week.need(m, target) for m in exercise.primary_muscles])
    need += SECONDARY_NEED * _mean([week.need(m, target) for m in exercise.secondary_muscles])
    points = NEED_WEIGHT * need + PREFERENCE_WEIGHT * preference
    words = []
    for m in exercise.primary_muscles:
        done = week.sets.get(m, 0.0)
        pct = s.recovery_pct.get(m, 100.0)
        if m in MAJOR_MUSCLES:
            words.append(f"{m} {pct:.0f} % recovered, {done:g} of ~{target:g} weekly sets done")
        else:
            words.append(f"{m} {pct:.0f} % recovered")
    lagging = week.lagging()
    if lagging is not None and exercise.group == lagging:
        points += BALANCE_BONUS
        words.append(f"evens out push/pull this week ({week.push:g} push vs {week.pull:g} pull sets)")
    return points, "; ".join(words)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def rank_today(catalog: Catalog, s: Situation, count: int) -> tuple[list[Candidate], list[Candidate]]:
    """The built-in ranking: the chosen ``count`` (session order) and then alternates."""
    preferences: dict[str, tuple[float, str]] = {}
    pool: list[Exercise] = []
    for exercise in catalog.exercises:
        if blocked(exercise, s) is None:
            points, words = score(exercise, s.constraints, s.familiar)
            preferences[exercise.id] = (points, "; ".join(words))
            pool.append(exercise)
    week = _Week(dict(s.week_sets), s.push_sets, s.pull_sets)
    chosen: list[tuple[Exercise, float, str]] = []
    while len(chosen) < count:
        best: tuple[float, str, Exercise, str] | None = None
        for exercise in pool:
            if not _fits(exercise, week, count):
                continue
            points, why = _priority(exercise, s, week, preferences[exercise.id][0])
            key = (points, exercise.name)
            if best is None or key[0] > best[0] or (key[0] == best[0] and key[1] < best[1]):
                best = (points, exercise.name, exercise, why)
        if best is None:
            break
        points, _, exercise, why = best
        pref_why = preferences[exercise.id][1]
        chosen.append((exercise, points, f"{why}; {pref_why}" if pref_why else why))
        week.add(exercise, s.sets_per_exercise)
    chosen.sort(key=lambda item: ORDER[item[0].group] + (0.5 if item[0].mechanic != "compound" else 0))
    picked = [Candidate(e.id, round(p, 3), why) for e, p, why in chosen]
    taken = {c.exercise_id for c in picked}
    rest = sorted(
        (e for e in pool if e.id not in taken),
        key=lambda e: (-preferences[e.id][0], e.name),
    )[:ALTERNATES]
    alternates = [Candidate(e.id, round(preferences[e.id][0], 3), preferences[e.id][1]) for e in rest]
    return picked, alternates


def _fits(exercise: Exercise, week: _Week, count: int) -> bool:
    if exercise.pattern in week.patterns:
        return False
    if week.groups.get(exercise.group, 0) >= max(1, math.ceil(count * MAX_GROUP_SHARE)):
        return False
    primary = exercise.primary_muscles[0] if exercise.primary_muscles else ""
    return week.per_muscle.get(primary, 0) < MAX_PER_MUSCLE


def finalize(
    catalog: Catalog, s: Situation, ranked: Sequence[Candidate], count: int
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """Walk a (possibly re-ranked) list and keep what the hard rules and variety allow."""
    week = _Week(dict(s.week_sets), s.push_sets, s.pull_sets)
    kept: list[Candidate] = []
    dropped: list[dict[str, Any]] = []
    for candidate in ranked:
        if len(kept) >= count:
            break
        exercise = catalog.by_id.get(candidate.exercise_id)
        if exercise is None:
            dropped.append({"exercise_id": candidate.exercise_id, "reason": "not in the exercise catalog"})
            continue
        why = blocked(exercise, s)
        if why is not None:
            dropped.append({"exercise_id": exercise.id, "reason": why})
            continue
        if _fits(exercise, week, count):
            kept.append(candidate)
            week.add(exercise, s.sets_per_exercise)
    return kept, dropped


def focus_of(exercises: Iterable[Exercise]) -> str:
    groups = {e.group for e in exercises} & {"push", "pull", "legs"}
    if groups == {"push", "pull", "legs"} or groups == {"legs", "push"} or groups == {"legs", "pull"}:
        return "full body"
    if groups == {"push", "pull"}:
        return "upper body"
    return next(iter(groups)) if groups else "core and accessories"


def week_coverage(
    sets: Iterable[Mapping[str, Any]], catalog: Catalog
) -> tuple[dict[str, float], float, float]:
    """Hard sets per muscle, and upper-body push and pull sets, of work-set documents.

    Push and pull follow the movement pattern (a squat pushes, but it is not a press); an
    exercise missing from the catalog (a custom one) counts by its ``force`` when its primary
    muscle is an upper-body one.
    """
    muscles: dict[str, float] = defaultdict(float)
    push = pull = 0.0
    for item in sets:
        if item.get("set_type") == "warmup":
            continue
        primary = list(item.get("primary_muscles") or ())
        for m in primary:
            muscles[m] += 1.0
        for m in item.get("secondary_muscles") or ():
            muscles[m] += 0.5
        known = catalog.by_id.get(str(item.get("exercise_id")))
        if known is not None:
            side = known.group
        else:
            side = str(item.get("force")) if primary and primary[0] in UPPER_BODY else "other"
        if side == "push":
            push += 1
        elif side == "pull":
            pull += 1
    return dict(muscles), push, pull
