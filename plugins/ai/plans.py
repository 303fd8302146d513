"""Multi-week training plans: split, exercises, sets, reps, rest, effort and deloads, each with a reason.

Pure (no I/O). Exercises are chosen by :mod:`.selection` (the rules recommendations use); reps,
rest and target RPE by goal and weekly set ranges by experience come from :mod:`.goals`.

**Split by days a week.** From 2 days on every muscle is trained at least twice a week, which
beats once a week at equal volume (Schoenfeld, Ogborn & Krieger 2016, Sports Med 46:1689).
1: full body; 2: full body A/B; 3: full body A/B/A; 4: upper/lower x2; 5: upper, lower, push,
pull, legs; 6: push/pull/legs x2; 7: the six plus a light core day (RPE 6).

**Days** are slots of movement patterns (:mod:`.patterns`), main lifts first, each filled with
the best allowed exercise of its first pattern that has one (accessories prefer ones not used
yet that week), else of another pattern of its group, saying so; a day left without any
exercise is refused (:class:`PlanError`).

**Reps, rest, effort.** Compound lifts take the goal's main rep range and rest, isolation work
its accessory range with at most 90 s rest, core work at most 60 s (ACSM 2009: 2-3 min between
sets of heavy multi-joint lifts, 1-2 min for lighter assistance work). Beginners never go
below 5 reps (ACSM 2009 starts novices at 8-12 RM). Planks are held 30/45/60 s by experience.

**Weekly sets** count a set 1 for each primary muscle and 0.5 for each secondary one
(fractional counting, Pelland et al. 2024 dose-response meta-regressions). Ranges per major
muscle (``MAJOR``): beginner 6-10, intermediate 10-16, advanced 12-20 (Schoenfeld, Ogborn &
Krieger 2017, J Sports Sci 35:1073: 10+ weekly sets beat fewer; Baz-Valle et al. 2022, J Hum
Kinet 81:199: 12-20 for trained lifters). Main lifts start at 3 working sets (fewer only when
that alone passes a muscle's range), small-muscle and core work is fixed at 2, other
accessories start at 0. Sets are added one at a time, towards the bottom of the range, then
the week's target: the set closing most of the major muscles' gaps (weighted by size: the
neediest leads), less a quarter of its spill into muscles already there, never past 5 sets of
a main lift or 4 of an accessory, the top of a major muscle's range or the session's time.
One-set accessories get a second where no limit breaks; those at none are left out. Targets:
mid-range for beginners; others start 2 below and add 1 set a build week, up to the top.
Muscles left below the range (too little time or too few allowed exercises) are named.

**Time** of a set: 40 s of work (about 10 reps at 3-4 s) plus rest; 60 s to set up an exercise;
5 min of warm-up. Fixed work that does not fit is dropped, last slot first.

**Progression** by experience: beginners add load every session while every set reaches the
top of its range (linear; ACSM 2009: +2-10 % once 1-2 reps over the target are made);
intermediates use double progression and one more set per muscle each build week; advanced
lifters set loads by RPE (Helms et al. 2018) with daily undulation: days led by the same kind of
main lift (push, pull, legs) alternate heavy (lower half of the compound rep range, RPE +0.5)
and light (upper half, -0.5; Rhea et al. 2002). RPE (reps in reserve, Zourdos et al. 2016):
beginners 1 below the goal's; intermediates 1 below, +0.5 a week up to it; advanced 0.5 below,
up to 1 above.

**Deloads**: the last week, and the middle one from 8 weeks (one every 4-6 weeks): the same
exercises, half the sets, 2 RPE lower (Bell et al. 2023, Delphi consensus on deloading).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fittracker_plugins.ai.catalog import Catalog, Exercise
from fittracker_plugins.ai.goals import WEEKLY_SETS, prescription, rep_range
from fittracker_plugins.ai.models_plans import PlanRequest
from fittracker_plugins.ai.patterns import GROUPS, group_of
from fittracker_plugins.ai.selection import Choice, Constraints, rank

MAJOR = ("chest", "lats", "middle back", "shoulders", "quadriceps", "hamstrings", "glutes", "biceps",
         "triceps")  # fmt: skip
MIN_SETS, MAIN_START_SETS, MAX_SETS, MAX_ACCESSORY_SETS, LIGHT_RPE = 2, 3, 5, 4, 6.0
WORK_S, SETUP_S, WARMUP_S = 40, 60, 300
ACCESSORY_REST_S, CORE_REST_S = 90, 60
HOLD_S = {"beginner": 30, "intermediate": 45, "advanced": 60}
SCHEMES = {"beginner": "linear", "intermediate": "double_progression", "advanced": "rpe_undulating"}


class PlanError(ValueError):
    """The constraints leave a day without any exercise (the message says which)."""


@dataclass(frozen=True, slots=True)
class Slot:
    patterns: tuple[str, ...]
    main: bool = False
    muscle: str | None = None  # the wanted primary muscle (core: abdominals, not shoulder rotations)


def _a(*patterns: str, muscle: str | None = None) -> Slot:
    return Slot(patterns, muscle=muscle)


# Main lifts name the muscle they are for (a face pull is a horizontal pull, but not a row).
SQUAT, BENCH = Slot(("squat", "lunge"), True, "quadriceps"), Slot(("horizontal_push",), True, "chest")
ROW, PRESS = Slot(("horizontal_pull",), True, "middle back"), Slot(("vertical_push",), True, "shoulders")
PULLDOWN, HINGE = Slot(("vertical_pull", "horizontal_pull"), True, "lats"), Slot(("hinge",), True)
ABS, GLUTES = _a("core_flexion", "anti_extension", muscle="abdominals"), _a("hinge", muscle="glutes")
ARMS = (_a("elbow_flexion"), _a("elbow_extension"))
DAYS: dict[str, tuple[str, tuple[Slot, ...]]] = {
    "Full body": ("full body", (SQUAT, BENCH, ROW, _a("hinge"), _a("vertical_push"), _a("vertical_pull"),
                                *ARMS, ABS)),
    "Full body A": ("full body", (SQUAT, BENCH, ROW, _a("knee_flexion", "hinge"), _a("vertical_pull"),
                                  _a("shoulder_raise"), *ARMS, ABS)),
    "Full body B": ("full body", (HINGE, PRESS, PULLDOWN, _a("lunge", "squat"), _a("horizontal_pull"),
                                  _a("chest_fly", "horizontal_push"), GLUTES, *ARMS, ABS)),
    "Upper A": ("upper", (BENCH, ROW, _a("vertical_pull"), _a("vertical_push"), _a("chest_fly"),
                          _a("shoulder_raise"), *ARMS)),
    "Upper B": ("upper", (PRESS, PULLDOWN, _a("horizontal_push"), _a("horizontal_pull"), _a("chest_fly"),
                          *ARMS)),
    "Lower A": ("lower", (SQUAT, _a("hinge"), _a("lunge", "squat"), _a("knee_flexion"), GLUTES,
                          _a("calf_raise"), ABS)),
    "Lower B": ("lower", (HINGE, _a("squat", "lunge"), _a("knee_extension", "lunge"), _a("knee_flexion"),
                          GLUTES, _a("calf_raise"), ABS)),
    "Push A": ("push", (BENCH, _a("horizontal_push"), _a("vertical_push"), _a("chest_fly"),
                        _a("shoulder_raise"), _a("elbow_extension"))),
    "Push B": ("push", (PRESS, _a("horizontal_push"), _a("chest_fly"), _a("elbow_extension"),
                        _a("shoulder_raise"), _a("elbow_extension"))),
    "Pull A": ("pull", (PULLDOWN, _a("horizontal_pull"), _a("vertical_pull"), _a("elbow_flexion"),
                        _a("shrug"))),
    "Pull B": ("pull", (ROW, _a("vertical_pull"), _a("horizontal_pull"), _a("elbow_flexion"),
                        _a("elbow_flexion"), _a("shrug"))),
    "Legs A": ("legs", (SQUAT, _a("hinge"), _a("knee_extension", "lunge"), _a("knee_flexion"), GLUTES,
                        _a("calf_raise"), ABS)),
    "Legs B": ("legs", (HINGE, _a("lunge", "squat"), _a("squat"), _a("knee_flexion"), GLUTES,
                        _a("calf_raise"), ABS)),
    "Core": ("core", (ABS, _a("anti_extension", "core_flexion", muscle="abdominals"),
                      _a("rotation", "core_flexion", muscle="abdominals"))),
}  # fmt: skip
PPL = ("Push A", "Pull A", "Legs A", "Push B", "Pull B", "Legs B")
SPLITS: dict[int, tuple[str, tuple[str, ...], str]] = {
    1: ("full_body", ("Full body",), "one full-body day with every big movement pattern"),
    2: ("full_body", ("Full body A", "Full body B"), "full body A and B: every muscle twice a week"),
    3: ("full_body", ("Full body A", "Full body B", "Full body A"), "full body A/B/A: every muscle two "
        "to three times a week"),
    4: ("upper_lower", ("Upper A", "Lower A", "Upper B", "Lower B"), "upper/lower twice: every muscle "
        "twice a week with more room per session"),
    5: ("upper_lower_ppl", ("Upper A", "Lower A", "Push B", "Pull B", "Legs B"), "upper/lower then "
        "push/pull/legs: every muscle twice a week"),
    6: ("push_pull_legs", PPL, "push/pull/legs twice: every muscle twice a week, fewer muscles a day"),
    7: ("push_pull_legs", (*PPL, "Core"), "push/pull/legs twice plus a light core day"),
}  # fmt: skip


@dataclass(slots=True)
class Item:
    """One exercise of one day (the same exercises in every week; the sets change)."""

    exercise: Exercise
    pattern: str
    main: bool
    fixed: bool  # small-muscle and core work: 2 sets, not tuned
    compound: bool
    reps: tuple[int, int] | None  # None for timed holds
    hold_s: int | None
    rest_s: int
    rpe_shift: float  # daily undulation for advanced lifters
    light: bool  # the seventh, light core day
    why: str

    @property
    def set_s(self) -> int:
        return (self.hold_s or WORK_S) + self.rest_s

    @property
    def muscles(self) -> set[str]:
        return {*self.exercise.primary_muscles, *self.exercise.secondary_muscles}

    def credit(self, muscle: str) -> float:
        ex = self.exercise
        return 1.0 if muscle in ex.primary_muscles else 0.5 if muscle in ex.secondary_muscles else 0.0


Days = Sequence[Sequence[Item]]
Sets = dict[int, int]  # id(item) -> sets this week


class _Picker:
    """Fills slots through :func:`~.selection.rank`, ranking each pattern once per plan."""

    def __init__(self, catalog: Catalog, c: Constraints, familiar: Mapping[str, int]) -> None:
        self.catalog, self.c, self.familiar = catalog, c, familiar
        self.ranked: dict[tuple[str, str | None], list[Choice]] = {}
        self.week: set[str] = set()

    def _first(self, pattern: str, muscle: str | None, skip: set[str]) -> Choice | None:
        if (pattern, muscle) not in self.ranked:
            found = rank(self.catalog, self.c, patterns=[pattern], muscle=muscle, familiar=self.familiar)
            self.ranked[pattern, muscle] = found
        return next((ch for ch in self.ranked[pattern, muscle] if ch.exercise.id not in skip), None)

    def pick(self, slot: Slot, today: set[str]) -> tuple[Choice, str, str] | None:
        """The choice, its pattern and how the slot was filled."""
        own = [(p, slot.muscle) for p in slot.patterns] + [(p, None) for p in slot.patterns if slot.muscle]
        group = group_of(slot.patterns[0])
        spare = [(p, None) for p, g in GROUPS.items() if g == group and p not in slot.patterns]
        label = " or ".join(p.replace("_", " ") for p in slot.patterns)
        for candidates, fallback in ((own, False), (spare, True)):
            for skip in (today, today) if slot.main else (today | self.week, today):
                for pattern, muscle in candidates:
                    choice = self._first(pattern, muscle, skip)
                    if choice is None:
                        continue
                    how = f"{'main lift' if slot.main else 'accessory'} for the {label} slot"
                    if fallback:
                        how += f" (none of that is allowed for you: another {group} pattern stands in)"
                    self.week.add(choice.exercise.id)
                    return choice, pattern, how
        return None


def _layout(req: PlanRequest, c: Constraints, names: Sequence[str], picker: _Picker) -> list[list[Item]]:
    rx = prescription(req.goal)
    days: list[list[Item]] = []
    done: dict[str, list[Item]] = {}
    led: dict[str, int] = {}  # days led by a push, pull or legs main lift so far: they alternate
    for name in names:
        group = group_of(DAYS[name][1][0].patterns[0])
        led[group] = led.get(group, 0) + 1
        if name in done:  # A/B/A: the same exercises again (sets are allocated per day)
            days.append([dataclasses.replace(it) for it in done[name]])
            continue
        items: list[Item] = []
        today = set[str]()
        shift = (0.5 if led[group] % 2 else -0.5) if c.experience == "advanced" and name != "Core" else 0.0
        for slot in DAYS[name][1]:
            if (found := picker.pick(slot, today)) is None:
                continue
            choice, pattern, how = found
            ex = choice.exercise
            today.add(ex.id)
            core = group_of(pattern) == "core"
            compound = ex.mechanic == "compound" and not core
            core_reps = prescription("endurance").accessory_reps
            lo, hi = core_reps if name == "Core" else rep_range(req.goal, c.experience, compound)
            if shift and compound:  # heavy days low in the range, light days high
                mid = (lo + hi) / 2
                lo, hi = (lo, math.floor(mid)) if shift > 0 else (math.ceil(mid), hi)
            hold = HOLD_S[c.experience] if "plank" in ex.name.lower() else None
            rest = rx.rest_s if compound else min(rx.rest_s, CORE_REST_S if core else ACCESSORY_REST_S)
            fixed = not slot.main and (core or not set(MAJOR) & set(ex.primary_muscles))
            kind = f"{req.goal.replace('_', ' ')} {'main-lift' if compound else 'accessory'} range"
            kind = "light core day: endurance range" if name == "Core" else kind
            why = f"{ex.name}: {how}; {choice.reason or 'allowed for you'}; {kind}"
            reps = None if hold else (lo, hi)
            items.append(Item(ex, pattern, slot.main, fixed, compound, reps, hold, rest,
                              shift if compound else 0.0, name == "Core", why))  # fmt: skip
        days.append(items)
        done[name] = items
    return days


def _seconds(day: Sequence[Item], sets: Sets) -> int:
    return WARMUP_S + sum(SETUP_S + sets[id(it)] * it.set_s for it in day if sets[id(it)])


def _volume(days: Days, sets: Sets) -> dict[str, float]:
    out: dict[str, float] = {}
    for it in (it for day in days for it in day):
        for muscle in it.muscles:
            out[muscle] = out.get(muscle, 0.0) + sets[id(it)] * it.credit(muscle)
    return {m: v for m, v in sorted(out.items()) if v}


def _start(days: Days, top: float) -> Sets:
    sets = {id(it): MAIN_START_SETS if it.main else MIN_SETS if it.fixed else 0 for day in days for it in day}
    volume = _volume(days, sets)
    for muscle in [m for m in volume if volume[m] > top]:  # e.g. many main lifts on one muscle
        for it in sorted((it for day in days for it in day), key=lambda it: (it.main, -it.credit(muscle))):
            while it.credit(muscle) and sets[id(it)] > 1 and _volume(days, sets)[muscle] > top:
                sets[id(it)] -= 1
    return sets


def _fits(it: Item, day: Sequence[Item], sets: Sets, v: Mapping[str, float], top: float, budget: int) -> bool:
    cost = it.set_s + (0 if sets[id(it)] else SETUP_S)
    over = any(v.get(m, 0.0) + it.credit(m) > top for m in it.muscles if m in MAJOR)
    most = MAX_SETS if it.main else MAX_ACCESSORY_SETS
    return not over and sets[id(it)] < most and _seconds(day, sets) + cost <= budget


def _allocate(days: Days, start: Sets, majors: Sequence[str], aims: Sequence[float], top: float, budget: int,
              strength: bool) -> Sets:  # fmt: skip
    """One week's sets grown from ``start``: to each aim in turn (the range's bottom, then the week's
    target), a set at a time (see "Weekly sets" in the module docstring)."""
    sets = dict(start)
    for aim in aims:
        while True:
            volume = _volume(days, sets)
            gaps = {m: max(0.0, aim - volume.get(m, 0.0)) for m in majors}
            best: tuple[tuple[float, int, bool, int], Item] | None = None
            for d, day in enumerate(days):
                for order, it in enumerate(day):
                    if it.fixed or not _fits(it, day, sets, volume, top, budget):
                        continue
                    # Gaps weighted by their size (the neediest muscles first), less spill past the aim.
                    gain = sum(min(it.credit(m), gap) * gap / aim for m, gap in gaps.items())
                    spill = sum(it.credit(m) for m in it.muscles if m in gaps and not gaps[m])
                    key = (spill / 4 - gain, sets[id(it)], strength and not it.compound, d * 100 + order)
                    if gain > 0 and (best is None or key < best[0]):
                        best = (key, it)
            if best is None:
                break
            sets[id(best[1])] += 1
    for day in days:
        for it in day:
            if sets[id(it)] == 1 and _fits(it, day, sets, _volume(days, sets), top, budget):
                sets[id(it)] += 1
    return sets


def _deload(days: Days, build: Sets) -> Sets:
    """Half of each day's sets (rounded), at least one an exercise, extra sets in slot order."""
    sets = {key: (max(1, n // 2) if n else 0) for key, n in build.items()}
    for day in days:
        want = round(sum(build[id(it)] for it in day) / 2)
        for it in day:
            if sum(sets[id(x)] for x in day) < want and sets[id(it)] < build[id(it)]:
                sets[id(it)] += 1
    return sets


def _rpe(base: float, experience: str, step: int) -> float:
    start, cap = {"beginner": (-1, -1), "intermediate": (-1, 0)}.get(experience, (-0.5, 1))
    return min(base + cap, base + start + 0.5 * step)


def build_plan(
    req: PlanRequest, c: Constraints, catalog: Catalog, familiar: Mapping[str, int]
) -> dict[str, Any]:
    """The plan (see the module docstring); :class:`PlanError` when a day would be empty."""
    split, names, split_why = SPLITS[req.days_per_week]
    days = _layout(req, c, names, _Picker(catalog, c, familiar))
    low, high = WEEKLY_SETS.get(c.experience, WEEKLY_SETS["beginner"])
    budget, dropped = req.session_minutes * 60, []
    for name, day in zip(names, days, strict=True):
        if not day:
            raise PlanError(f"{name}: no exercise is allowed for {c.describe()}")
        while len(day) > 1 and _seconds(day, _start([day], high)) > budget:
            dropped.append(f"{day.pop().exercise.name} ({name})")
    majors = [m for m in MAJOR if m not in c.excluded_muscles]
    base_rpe, mid = prescription(req.goal).target_rpe, (low + high) / 2
    deloads = {req.weeks} | ({req.weeks // 2} if req.weeks >= 8 else set())
    weeks: list[dict[str, Any]] = []
    step, last = 0, Sets()
    for week in range(1, req.weeks + 1):
        if week in deloads:
            sets, rpe = _deload(days, last), _rpe(base_rpe, c.experience, step - 1) - 2
            why = f"deload: the same exercises at about half the sets and RPE {rpe:g}, so fatigue clears"
            phase, step = "deload", 0
        else:
            target = mid if c.experience == "beginner" else min(high, mid - 2 + step)
            start = last if step else _start(days, high)
            sets = _allocate(days, start, majors, (low, target), high, budget, req.goal == "strength")
            rpe = _rpe(base_rpe, c.experience, step)
            why = f"build week {step + 1} of the block: ~{target:g} weekly sets per major muscle, RPE {rpe:g}"
            phase, step, last = "build", step + 1, sets
        shown, volume = _days(names, days, sets, rpe, phase), _volume(days, sets)
        weeks.append({"week": week, "phase": phase, "reason": why, "weekly_sets": volume, "days": shown})
    first = weeks[0]["weekly_sets"]
    volume_why = f"{c.experience}: {low}-{high} weekly sets per major muscle (primary 1, secondary 0.5)"
    short = [f"{m} {first.get(m, 0.0):g}" for m in majors if first.get(m, 0.0) < low]
    if short:
        volume_why += (f"; below the range in week 1: {', '.join(short)} (too few allowed exercises, "
                       f"or too little time in {req.days_per_week} x {req.session_minutes} min)")  # fmt: skip
    if dropped:
        volume_why += f"; left out to fit {req.session_minutes} min: {', '.join(dropped)}"
    return {
        "split": split,
        "reason": f"{req.days_per_week} day(s) a week: {split_why}; for {c.describe()}",
        "weeks": weeks,
        "weekly_sets": first,
        "volume": {"min": low, "max": high, "muscles": majors, "reason": volume_why},
        "progression": {"scheme": SCHEMES[c.experience], "reason": PROGRESSION[c.experience]},
    }


def _days(names: Sequence[str], days: Days, sets: Sets, rpe: float, phase: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for number, (name, day) in enumerate(zip(names, days, strict=True), start=1):
        exercises = []
        for it in (it for it in day if sets[id(it)]):
            effort = (LIGHT_RPE - (2 if phase == "deload" else 0) if it.light else rpe) + it.rpe_shift
            lo, hi = it.reps or (None, None)
            dose = f"{sets[id(it)]} x {f'{lo}-{hi} reps' if it.reps else f'{it.hold_s} s'} at RPE {effort:g}"
            exercises.append({
                "exercise_id": it.exercise.id, "exercise_name": it.exercise.name, "pattern": it.pattern,
                "sets": sets[id(it)], "reps_min": lo, "reps_max": hi, "duration_s": it.hold_s,
                "rest_s": it.rest_s, "target_rpe": effort, "reason": f"{it.why}; {dose}, {it.rest_s} s rest",
            })  # fmt: skip
        focus, minutes = DAYS[name][0], math.ceil(_seconds(day, sets) / 60)
        out.append({"day": number, "name": name, "focus": focus, "exercises": exercises, "minutes": minutes})
    return out


PROGRESSION = {
    "beginner": "linear: add the smallest step (2.5 kg lower body, 1.25 kg upper body) every session in "
    "which every set reached the top of its rep range at or below the target RPE",
    "intermediate": "double progression: keep the load until every set reaches the top of the rep range, "
    "then add a step and restart at the bottom; one more set per major muscle each build week",
    "advanced": "RPE-based and undulating: choose the load that lands on the day's target RPE (heavy days "
    "low in the rep range, light days high); effort and sets rise each build week",
}
