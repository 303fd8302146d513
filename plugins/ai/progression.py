"""Next session's target for one exercise: double progression, RPE autoregulation, deload.

Sessions are the user's work sets (warm-ups excluded) of the exercise grouped by workout, in
time order. The target is read off the last session's *top sets* (the work sets at its
heaviest weight):

1. **Stall -> deload.** e1RM per session is Epley's ``w x (1 + reps/30)`` (2-12 reps; a single
   is its weight) of the best set. A stall is 3+ sessions after the last new best e1RM that
   together span 21+ days. Then: 90 % of the top weight for a week, same sets and reps. Once the
   user has trained at or below 92 % of that best session's weight, the deload counts as done
   and normal progression resumes.
2. **RPE autoregulation** when every top set has an RPE and their mean is at least half a
   point off the target (8 by default): the load moves 3 % per RPE point (up when the sets
   were easier than the target, down when harder), at least one increment, same reps.
3. **Double progression** otherwise, in a rep range (5-8 by default): when every top set
   reached the top of the range, add one increment and restart at the bottom of the range;
   else keep the weight and aim one rep above the weakest top set.

Increment: 2.5 kg for lower-body lifts (a primary muscle among quadriceps, hamstrings,
glutes, calves, adductors, abductors, lower back) at 40 kg or more, where small jumps are a
small share of the load; 1.25 kg otherwise (upper body, light loads: 2.5 kg on a 20 kg press
is 12 %). Targets are rounded to the increment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from statistics import mean
from typing import Any

LOWER_BODY = frozenset(
    {"quadriceps", "hamstrings", "glutes", "calves", "adductors", "abductors", "lower back"}
)
E1RM_MAX_REPS = 12
STALL_SESSIONS = 3
STALL_DAYS = 21
DELOAD_FACTOR = 0.9
DELOAD_DONE_FACTOR = 0.92
LOAD_PER_RPE = 0.03
RPE_DEADBAND = 0.5


@dataclass(frozen=True, slots=True)
class ProgressionParams:
    rep_min: int = 5
    rep_max: int = 8
    target_rpe: float = 8.0


@dataclass(slots=True)
class Session:
    """One workout's work sets of one exercise (complete once built: the figures are cached)."""

    workout_id: str
    at: datetime
    sets: list[Mapping[str, Any]] = field(default_factory=list)
    _top: float | None = field(default=None, repr=False, compare=False)
    _e1rm: float | None = field(default=None, repr=False, compare=False)

    @property
    def top_weight(self) -> float:
        if self._top is None:
            self._top = max(float(s["weight_kg"]) for s in self.sets)
        return self._top

    @property
    def top_sets(self) -> list[Mapping[str, Any]]:
        return [s for s in self.sets if float(s["weight_kg"]) == self.top_weight]

    @property
    def e1rm(self) -> float:
        if self._e1rm is None:
            estimates = (estimate(float(s["weight_kg"]), int(s["reps"])) for s in self.sets)
            self._e1rm = max(estimates, default=0.0)
        return self._e1rm


def estimate(weight_kg: float, reps: int) -> float:
    """Epley's e1RM (0 when no estimate is sound: 0 reps, 0 kg or more than 12 reps)."""
    if reps <= 0 or weight_kg <= 0 or reps > E1RM_MAX_REPS:
        return 0.0
    return round(weight_kg if reps == 1 else weight_kg * (1 + reps / 30), 2)


def sessions_of(sets: Sequence[Mapping[str, Any]]) -> list[Session]:
    """Work sets grouped by workout, sessions ordered by their first set."""
    by_workout: dict[str, Session] = {}
    for s in sets:
        if s.get("set_type") == "warmup" or int(s.get("reps") or 0) <= 0:
            continue
        at = datetime.fromisoformat(str(s["logged_at"]))
        key = str(s["workout_id"])
        session = by_workout.get(key)
        if session is None:
            by_workout[key] = Session(key, at, [s])
            continue
        if at < session.at:
            session.at = at
        session.sets.append(s)
    return sorted(by_workout.values(), key=lambda x: x.at)


def increment(primary_muscles: Sequence[str], weight_kg: float) -> float:
    return 2.5 if weight_kg >= 40 and LOWER_BODY & set(primary_muscles) else 1.25


def round_to(weight: float, step: float) -> float:
    return round(round(weight / step) * step, 2)


def stalled_best(sessions: Sequence[Session]) -> Session | None:
    """The last session that set a new best e1RM, when 3+ sessions over 21+ days followed it."""
    best: Session | None = None
    for session in sessions:
        if best is None or session.e1rm > best.e1rm:
            best = session
    assert best is not None
    after = [s for s in sessions if s.at > best.at]
    if len(after) >= STALL_SESSIONS and (after[-1].at - best.at).days >= STALL_DAYS:
        return best
    return None


def prescribe(
    sessions: Sequence[Session], primary_muscles: Sequence[str], params: ProgressionParams
) -> dict[str, Any]:
    """The next session's target: ``{weight_kg, reps, sets, method, reason}``."""
    last = sessions[-1]
    weight = last.top_weight
    step = increment(primary_muscles, weight)
    top = last.top_sets
    n_sets = len(last.sets)
    low_reps = min(int(s["reps"]) for s in top)
    best = stalled_best(sessions)
    if best is not None and weight > best.top_weight * DELOAD_DONE_FACTOR:
        target = round_to(weight * DELOAD_FACTOR, step)
        after = sum(1 for s in sessions if s.at > best.at)
        days = (last.at - best.at).days
        reason = (
            f"no e1RM improvement in {after} sessions over {days} days (best {best.e1rm:g} kg e1RM "
            f"on {best.at.date()}): deload for a week at ~10 % less, {target:g} kg, then build back up"
        )
        return _target(target, low_reps, n_sets, "deload", reason)
    rpes = [s.get("rpe") for s in top]
    if all(r is not None for r in rpes):
        felt = mean(float(r) for r in rpes if r is not None)
        off = params.target_rpe - felt
        if abs(off) >= RPE_DEADBAND:
            moved = weight * (1 + LOAD_PER_RPE * off)
            target = round_to(moved, step)
            if target == weight:  # the change rounds away: move one increment anyway
                target = weight + step if off > 0 else weight - step
            target = max(target, 0.0)
            word = "easier" if off > 0 else "harder"
            reason = (
                f"last session's top sets at {weight:g} kg felt RPE {felt:g}, {abs(off):g} point(s) {word} "
                f"than the target RPE {params.target_rpe:g}: {'add' if off > 0 else 'take off'} about "
                f"{abs(LOAD_PER_RPE * off) * 100:.0f} % -> {target:g} kg x {low_reps}"
            )
            return _target(target, low_reps, n_sets, "rpe", reason)
    if low_reps >= params.rep_max:
        target = round_to(weight + step, step)
        reason = (
            f"every top set at {weight:g} kg reached {params.rep_max} reps, the top of the "
            f"{params.rep_min}-{params.rep_max} range: add {step:g} kg and restart at {params.rep_min} reps"
        )
        return _target(target, params.rep_min, n_sets, "double_progression", reason)
    reps = max(params.rep_min, min(params.rep_max, low_reps + 1))
    reason = (
        f"top sets at {weight:g} kg reached {low_reps} reps, below the top of the "
        f"{params.rep_min}-{params.rep_max} range: keep the weight and aim for {reps} reps on every set"
    )
    return _target(weight, reps, n_sets, "double_progression", reason)


def _target(weight_kg: float, reps: int, sets: int, method: str, reason: str) -> dict[str, Any]:
    return {"weight_kg": weight_kg, "reps": reps, "sets": sets, "method": method, "reason": reason}
