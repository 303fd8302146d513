"""Assembling today's recommendation: read the user's state, rank, let recommenders re-rank,
re-check, and prescribe sets, reps and weights (the HTTP layer is in :mod:`.routes_coach`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fittracker_plugins.ai.athletes import Athlete
from fittracker_plugins.ai.catalog import Catalog, Exercise
from fittracker_plugins.ai.goals import SETS_PER_EXERCISE, prescription, progression_params
from fittracker_plugins.ai.progression import prescribe, sessions_of
from fittracker_plugins.ai.recommend import (
    MIN_EXERCISES,
    Situation,
    finalize,
    focus_of,
    rank_today,
    week_coverage,
)
from fittracker_plugins.ai.recovery import WINDOW, RecoveryParams, muscle_report
from fittracker_plugins.ai.selection import Constraints
from fittracker_plugins.ai.state import Ai
from fittracker_plugins.ai.units import shown

from fittracker.coaching import Candidate, RecommendationContext, Recommender

log = logging.getLogger("fittracker.ai")
FAMILIAR_WINDOW = timedelta(days=28)
HISTORY_SETS = 60  # the last sets of an exercise that its target weight is read from
RECOMMENDER_TIMEOUT_S = 0.5


@dataclass(frozen=True, slots=True)
class Request:
    user_id: str
    now: datetime
    count: int | None
    units: str | None


def local_day(iso: str, athlete: Athlete) -> str:
    return datetime.fromisoformat(iso).astimezone(athlete.zone).date().isoformat()


def situation(
    athlete: Athlete,
    catalog: Catalog,
    week: Sequence[Mapping[str, Any]],
    now: datetime,
    recovery: RecoveryParams,
    min_recovery_pct: float,
    familiar: Mapping[str, int],
) -> tuple[Situation, list[dict[str, Any]]]:
    """The user's state today from the sets of the last 7 days (and the recovery report)."""
    c = Constraints.of(athlete)
    report = muscle_report(week, now, recovery)
    today = now.astimezone(athlete.zone).date()
    yesterday = (today - timedelta(days=1)).isoformat()
    recent_days = {today.isoformat(), yesterday}
    avoid_ids: set[str] = set()
    yesterday_ids: set[str] = set()
    for item in week:
        day = local_day(str(item["logged_at"]), athlete)
        if day in recent_days:
            avoid_ids.add(str(item["exercise_id"]))
        if day == yesterday:
            yesterday_ids.add(str(item["exercise_id"]))
    avoid_patterns = {catalog.by_id[i].pattern for i in yesterday_ids if i in catalog.by_id}
    muscles, push, pull = week_coverage(week, catalog)
    return (
        Situation(
            constraints=c,
            recovery_pct={item["muscle"]: item["recovery_pct"] for item in report},
            week_sets=muscles,
            push_sets=push,
            pull_sets=pull,
            avoid_ids=frozenset(avoid_ids),
            avoid_patterns=frozenset(avoid_patterns),
            familiar=dict(familiar),
            min_recovery_pct=min_recovery_pct,
            sets_per_exercise=SETS_PER_EXERCISE.get(c.experience, 3),
        ),
        report,
    )


async def rerank(
    recommenders: Sequence[Recommender],
    context: RecommendationContext,
    ranked: list[Candidate],
) -> tuple[list[Candidate], list[str], list[dict[str, str]]]:
    """Pass the ranking through every recommender; a failing or slow one is skipped."""
    used = ["builtin"]
    skipped: list[dict[str, str]] = []
    for recommender in recommenders:
        try:
            answer = await asyncio.wait_for(recommender.rerank(context, tuple(ranked)), RECOMMENDER_TIMEOUT_S)
        except Exception as exc:  # a third party's failure must not fail the request
            log.warning("recommender failed", extra={"recommender": recommender.name, "error": repr(exc)})
            skipped.append({"recommender": recommender.name, "reason": f"failed: {type(exc).__name__}"})
            continue
        if answer is not None:
            ranked = [c for c in answer if isinstance(c, Candidate)]
            used.append(recommender.name)
    return ranked, used, skipped


async def recommend(state: Ai, athlete: Athlete, catalog: Catalog, request: Request) -> dict[str, Any]:
    """The body of ``GET /api/v1/ai/recommendations``."""
    settings = state.ctx.settings
    user_id, now = request.user_id, request.now
    week = await state.log.sets_since(user_id, now - WINDOW)
    familiar = await state.log.familiar(user_id, now - FAMILIAR_WINDOW)
    s, report = situation(
        athlete, catalog, week, now, state.recovery, float(settings["min_recovery_pct"]), familiar
    )
    count = request.count or int(settings["exercises_per_session"])
    picked, alternates = rank_today(catalog, s, count)
    context = RecommendationContext(
        user_id=request.user_id,
        goal=athlete.goal,
        experience=s.constraints.experience,
        equipment=tuple(sorted(s.constraints.equipment)),
        excluded_muscles=tuple(sorted(s.constraints.excluded_muscles)),
        recovery_pct=dict(s.recovery_pct),
        recent_exercise_ids=tuple(await state.log.recent_exercises(user_id, now - WINDOW)),
    )
    ranked, used, skipped = await rerank(state.recommenders, context, [*picked, *alternates])
    kept, dropped = finalize(catalog, s, ranked, count) if used != ["builtin"] else (picked, [])
    units = request.units or athlete.units
    exercises = [
        await _prescribed(state, request.user_id, catalog.by_id[c.exercise_id], c, athlete, s, units)
        for c in kept
    ]
    low = [m for m in report if m["recovery_pct"] < s.min_recovery_pct]
    body: dict[str, Any] = {
        "date": request.now.astimezone(athlete.zone).date().isoformat(),
        "goal": athlete.goal,
        "rest_day": len(exercises) < MIN_EXERCISES,
        "focus": focus_of(catalog.by_id[c.exercise_id] for c in kept),
        "exercises": exercises if len(exercises) >= MIN_EXERCISES else [],
        "recovering": [
            {"muscle": m["muscle"], "recovery_pct": m["recovery_pct"], "ready_at": m["ready_at"]} for m in low
        ],
        "week": {"push_sets": s.push_sets, "pull_sets": s.pull_sets, "muscles": s.week_sets},
        "ranked_by": used,
        "overridden": dropped + skipped,
    }
    body["reason"] = _summary(body, s)
    body["model"] = {
        "min_recovery_pct": s.min_recovery_pct,
        "weekly_sets_target": s.target,
        "priority": "3 x (mean weekly-set need of its primary muscles + 0.25 x of its secondary ones) "
        "+ 0.75 if on the lagging push/pull side + 0.4 x preference",
        "preference": "staple 3, familiar up to 2, compound 1, loadable 0.5, level match 0.5, "
        "unusual equipment -1.5",
    }
    return body


def _summary(body: Mapping[str, Any], s: Situation) -> str:
    who = s.constraints.describe()
    if body["rest_day"]:
        tired = ", ".join(f"{m['muscle']} {m['recovery_pct']:.0f} %" for m in body["recovering"][:4])
        return (
            f"a rest or mobility day: fewer than {MIN_EXERCISES} exercises are possible with every muscle "
            f"at least {s.min_recovery_pct:.0f} % recovered ({tired or 'nothing fits your equipment'})"
        )
    out = f"{body['focus']} for a {body['goal']} goal ({who})"
    if body["recovering"]:
        out += "; resting " + ", ".join(m["muscle"] for m in body["recovering"][:4])
    return out


async def _prescribed(
    state: Ai,
    user_id: str,
    exercise: Exercise,
    candidate: Candidate,
    athlete: Athlete,
    s: Situation,
    units: str,
) -> dict[str, Any]:
    params = progression_params(athlete, state.progression, exercise.mechanic)
    low, high, rpe = params.rep_min, params.rep_max, params.target_rpe
    item: dict[str, Any] = {
        "exercise_id": exercise.id,
        "exercise_name": exercise.name,
        "pattern": exercise.pattern,
        "equipment": exercise.equipment,
        "primary_muscles": list(exercise.primary_muscles),
        "sets": s.sets_per_exercise,
        "reps": low,
        "reps_min": low,
        "reps_max": high,
        "rest_s": prescription(athlete.goal).rest_s,
        "target_rpe": rpe,
        "weight_kg": None,
        "weight": None,
        "units": units,
        "score": candidate.score,
    }
    history = sessions_of(await state.log.exercise_sets(user_id, exercise.id, last=HISTORY_SETS))
    if not history:
        reserve = 10 - rpe
        item["reason"] = (
            f"{candidate.reason}. No history yet: start with a weight you could lift about "
            f"{high + round(reserve)} times, do {low}-{high} reps (RPE {rpe:g}, "
            f"{reserve:g} reps in reserve), then log it"
        )
        return item
    plan = prescribe(history, exercise.primary_muscles, params)
    item.update(reps=plan["reps"], weight_kg=plan["weight_kg"], weight=shown(plan["weight_kg"], units))
    item["reason"] = f"{candidate.reason}. Target: {plan['reason']}"
    return item
