"""Daily recommendations on synthetic situations, with the real exercise catalog."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from fittracker_plugins.ai.athletes import Athlete
from fittracker_plugins.ai.catalog import Catalog, Exercise
from fittracker_plugins.ai.goals import progression_params
from fittracker_plugins.ai.progression import ProgressionParams
from fittracker_plugins.ai.recommend import Situation, finalize, focus_of, rank_today, week_coverage
from fittracker_plugins.ai.recovery import RecoveryParams
from fittracker_plugins.ai.selection import STAPLES, Constraints
from fittracker_plugins.ai.today import situation

from fittracker.coaching import Candidate

CATALOG_FILE = Path(__file__).parents[2] / "plugins" / "workouts" / "data" / "catalog.json"
NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday morning


@cache
def catalog() -> Catalog:
    items = json.loads(CATALOG_FILE.read_text(encoding="utf-8"))["exercises"]
    return Catalog.of([Exercise.from_api(item) for item in items])


def fresh(athlete: Athlete | None = None, **changes: Any) -> Situation:
    """A situation with nothing trained this week and everything recovered."""
    base: dict[str, Any] = {
        "constraints": Constraints.of(athlete or Athlete("u", experience="intermediate")),
        "recovery_pct": {},
        "week_sets": {},
        "push_sets": 0.0,
        "pull_sets": 0.0,
        "avoid_ids": frozenset(),
        "avoid_patterns": frozenset(),
        "familiar": {},
        "min_recovery_pct": 70.0,
        "sets_per_exercise": 3,
    }
    return Situation(**{**base, **changes})


def chosen(s: Situation, count: int = 5) -> list[Exercise]:
    picked, _ = rank_today(catalog(), s, count)
    return [catalog().by_id[c.exercise_id] for c in picked]


def test_every_staple_is_in_the_catalog() -> None:
    assert set(catalog().by_id) >= STAPLES


def test_a_fresh_week_gives_a_balanced_full_body_session() -> None:
    session = chosen(fresh())
    assert len(session) == 5
    groups = [e.group for e in session]
    assert "legs" in groups and "push" in groups and "pull" in groups
    assert len({e.pattern for e in session}) == 5  # no movement twice
    assert focus_of(session) == "full body"
    assert session[0].mechanic == "compound"  # main lifts first


def test_muscles_below_the_threshold_are_never_worked() -> None:
    tired = {"chest": 40.0, "triceps": 65.0, "quadriceps": 55.0}
    session = chosen(fresh(recovery_pct=tired), count=6)
    assert session
    for e in session:
        assert not {"chest", "triceps", "quadriceps"} & {*e.primary_muscles, *e.secondary_muscles}, e.name


def test_a_beginner_with_only_dumbbells() -> None:
    athlete = Athlete("u", experience="beginner", equipment=("Dumbbells",))
    session = chosen(fresh(athlete), count=6)
    assert len(session) == 6
    for e in session:
        assert e.equipment in ("dumbbell", "body only", None), e.name
        assert e.level != "expert"


def test_excluded_muscles_are_left_out() -> None:
    athlete = Athlete("u", experience="intermediate", excluded_muscles=("lower back", "shoulders"))
    for e in chosen(fresh(athlete), count=8):
        assert not {"lower back", "shoulders"} & {*e.primary_muscles, *e.secondary_muscles}, e.name


def test_yesterdays_exercises_and_movements_are_not_repeated() -> None:
    s = fresh(avoid_ids=frozenset({"Barbell_Squat"}), avoid_patterns=frozenset({"squat", "horizontal_push"}))
    for e in chosen(s):
        assert e.id != "Barbell_Squat" and e.pattern not in ("squat", "horizontal_push")


def test_a_push_heavy_week_is_evened_out_with_pulling() -> None:
    s = fresh(push_sets=18.0, pull_sets=3.0, week_sets={"chest": 12.0, "shoulders": 6.0, "triceps": 6.0})
    session = chosen(s, count=4)
    pulls = sum(1 for e in session if e.group == "pull")
    pushes = sum(1 for e in session if e.group == "push")
    assert pulls >= 2 and pushes == 0
    picked, _ = rank_today(catalog(), s, 4)
    assert any("evens out push/pull" in c.reason for c in picked)


def test_muscles_that_met_their_weekly_sets_step_back() -> None:
    done = {m: 14.0 for m in ("quadriceps", "hamstrings", "glutes", "calves")}
    session = chosen(fresh(week_sets=done), count=4)
    assert all(e.group != "legs" for e in session)


def test_the_same_inputs_give_the_same_answer() -> None:
    s = fresh(recovery_pct={"chest": 80.0}, push_sets=3.0)
    assert rank_today(catalog(), s, 5) == rank_today(catalog(), s, 5)


def test_finalize_reapplies_the_hard_rules_to_a_reranked_list() -> None:
    s = fresh(recovery_pct={"chest": 30.0})
    ranked = [
        Candidate("Barbell_Bench_Press_-_Medium_Grip", 9.0, "a recommender's favourite"),
        Candidate("No_Such_Exercise", 8.0, "made up"),
        Candidate("Pullups", 1.0, "fine"),
        Candidate("Chin-Up", 0.5, "same movement as pull-ups"),
    ]
    kept, dropped = finalize(catalog(), s, ranked, 5)
    assert [c.exercise_id for c in kept] == ["Pullups"]
    reasons = {d["exercise_id"]: d["reason"] for d in dropped}
    assert "chest is 30 % recovered" in reasons["Barbell_Bench_Press_-_Medium_Grip"]
    assert reasons["No_Such_Exercise"] == "not in the exercise catalog"


def work(at: datetime, exercise_id: str, workout: str = "w1", **extra: Any) -> dict[str, Any]:
    e = catalog().by_id[exercise_id]
    return {
        "workout_id": workout,
        "exercise_id": exercise_id,
        "primary_muscles": list(e.primary_muscles),
        "secondary_muscles": list(e.secondary_muscles),
        "force": e.force,
        "reps": 8,
        "weight_kg": 60.0,
        "rpe": 8.0,
        "set_type": "normal",
        "logged_at": at.isoformat(),
        **extra,
    }


def test_situation_reads_yesterday_in_the_users_time_zone() -> None:
    # 23:30 in Sydney on Tuesday is 12:30 UTC Tuesday; "now" is Wednesday 20:00 in Sydney.
    athlete = Athlete("u", timezone="Australia/Sydney", experience="intermediate")
    sets = [work(datetime(2026, 3, 3, 12, 30, tzinfo=UTC), "Barbell_Squat") for _ in range(4)]
    familiar = {"Barbell_Squat": 1, "Pullups": 1}
    s, report = situation(athlete, catalog(), sets, NOW, RecoveryParams(), 70.0, familiar)
    assert s.avoid_ids == {"Barbell_Squat"} and s.avoid_patterns == {"squat"}
    assert s.week_sets["quadriceps"] == 4.0 and s.week_sets["glutes"] == 2.0
    assert s.familiar == familiar
    assert {m["muscle"] for m in report} >= {"quadriceps"}


def test_week_coverage_counts_presses_not_squats_as_push() -> None:
    sets = [work(NOW - timedelta(days=1), "Barbell_Squat"), work(NOW, "Barbell_Bench_Press_-_Medium_Grip")]
    sets.append({**work(NOW, "Pullups"), "set_type": "warmup"})
    muscles, push, pull = week_coverage(sets, catalog())
    assert (push, pull) == (1, 0) and muscles["chest"] == 1.0 and muscles["quadriceps"] == 1.0


@pytest.mark.parametrize("count", [3, 7])
def test_count_is_honoured(count: int) -> None:
    assert len(chosen(fresh(), count=count)) == count


@pytest.mark.parametrize(
    ("goals", "experience", "expected"),
    [
        ((), "beginner", (5, 8, 8.0)),  # no goal: the configured defaults
        (("strength",), "advanced", (3, 6, 8.0)),
        (("strength",), "beginner", (5, 8, 8.0)),  # beginners never go below 5 reps
        (("strength",), None, (5, 8, 8.0)),  # unknown experience is treated as a beginner's
        (("hypertrophy",), "intermediate", (6, 10, 8.0)),
    ],
)
def test_progression_params_follow_goal_and_experience(
    goals: tuple[str, ...], experience: str | None, expected: tuple[int, int, float]
) -> None:
    athlete = Athlete("u", goals=goals, experience=experience)
    params = progression_params(athlete, ProgressionParams(), "compound")
    assert (params.rep_min, params.rep_max, params.target_rpe) == expected
