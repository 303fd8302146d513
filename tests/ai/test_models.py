"""The recovery and progression models on synthetic histories with hand-computed answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fittracker_plugins.ai.progression import ProgressionParams, prescribe, sessions_of
from fittracker_plugins.ai.recovery import RecoveryParams, muscle_report

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
PARAMS = RecoveryParams()  # tau 36 h, capacity 10 units
CHEST: dict[str, Any] = {"primary_muscles": ["chest"], "secondary_muscles": ["triceps"]}
QUADS: dict[str, Any] = {"primary_muscles": ["quadriceps"], "secondary_muscles": ["glutes"]}


def work_set(
    at: datetime, workout: str = "w1", reps: int = 8, weight: float = 100.0, **extra: Any
) -> dict[str, Any]:
    return {
        "workout_id": workout,
        "exercise_id": "squat",
        "reps": reps,
        "weight_kg": weight,
        "rpe": None,
        "set_type": "normal",
        "logged_at": at.isoformat(),
        **QUADS,
        **extra,
    }


def by_muscle(sets: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["muscle"]: item for item in muscle_report(sets, NOW, PARAMS)}


# --- recovery ---------------------------------------------------------------------------------
# 10 sets at RPE 8 -> 8.0 units on chest, 4.0 on triceps; recovery = 100 (1 - 8 e^(-h/36) / 10).
@pytest.mark.parametrize(
    ("hours", "chest", "triceps"),
    [(0, 20.0, 60.0), (24, 58.9, 79.5), (48, 78.9, 89.5), (72, 89.2, 94.6), (168, 99.2, 99.6)],
)
def test_decay_curve(hours: int, chest: float, triceps: float) -> None:
    at = NOW - timedelta(hours=hours)
    report = by_muscle([work_set(at, rpe=8, **CHEST) for _ in range(10)])
    assert report["chest"]["recovery_pct"] == chest
    assert report["triceps"]["recovery_pct"] == triceps  # secondary muscles take half


def test_typical_hard_session_is_about_90_pct_after_72h_and_full_after_a_week() -> None:
    # 8 sets at RPE 8 = 6.4 units: 6.4 e^-2 = 0.866 -> 91.3 %; 6.4 e^(-14/3) = 0.060 -> 99.4 %.
    assert by_muscle([work_set(NOW - timedelta(hours=72), rpe=8) for _ in range(8)])["quadriceps"][
        "recovery_pct"
    ] == pytest.approx(91.3)
    assert by_muscle([work_set(NOW - timedelta(days=7), rpe=8) for _ in range(8)])["quadriceps"][
        "recovery_pct"
    ] == pytest.approx(99.4)


def test_missing_rpe_counts_as_7_and_warmups_add_nothing() -> None:
    report = by_muscle([work_set(NOW), work_set(NOW, set_type="warmup", rpe=10)])
    assert report["quadriceps"]["fatigue"] == pytest.approx(0.7)
    assert report["quadriceps"]["recovery_pct"] == 93.0
    assert report["glutes"]["fatigue"] == pytest.approx(0.35)


def test_ready_at_and_reason() -> None:
    # 8 units need 36 ln(8 / 1) = 74.9 h to fall to 1 unit (90 %).
    item = by_muscle([work_set(NOW, rpe=8, **CHEST) for _ in range(10)])["chest"]
    ready = datetime.fromisoformat(item["ready_at"])
    assert (ready - NOW).total_seconds() / 3600 == pytest.approx(74.86, abs=0.01)
    assert item["reason"].startswith("chest: 10 sets in the last 7 days")
    assert "just now — about 20 % recovered; ready in about 3.1 days" in item["reason"]


def test_reason_in_hours() -> None:
    item = by_muscle([work_set(NOW - timedelta(hours=30), rpe=8) for _ in range(6)])["quadriceps"]
    # 4.8 e^(-30/36) = 2.086 -> 79.1 %; ready when 36 ln(4.8) = 56.5 h after the session, 26 h from now.
    assert item["reason"] == (
        "quadriceps: 6 sets in the last 7 days, the last 30 h ago — about 79 % recovered; ready in about 26 h"
    )


def test_sets_older_than_a_week_are_ignored() -> None:
    assert muscle_report([work_set(NOW - timedelta(days=8))], NOW, PARAMS) == []


# --- progression ------------------------------------------------------------------------------
START = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)


def session(
    day: int, weight: float, reps: list[int], rpe: float | None = None, **muscles: Any
) -> list[dict[str, Any]]:
    at = START + timedelta(days=day)
    return [
        work_set(at + timedelta(minutes=3 * i), f"w{day}", r, weight, rpe=rpe, **muscles)
        for i, r in enumerate(reps)
    ]


def plan(*sessions: list[dict[str, Any]], muscles: tuple[str, ...] = ("quadriceps",)) -> dict[str, Any]:
    sets = [s for group in sessions for s in group]
    return prescribe(sessions_of(sets), list(muscles), ProgressionParams())


def test_linear_lifter_at_top_of_range_adds_weight() -> None:
    history = [session(3 * i, 90 + 2.5 * i, [8, 8, 8]) for i in range(5)]  # 90 -> 100 kg
    target = plan(*history)
    assert (target["weight_kg"], target["reps"], target["sets"]) == (102.5, 5, 3)
    assert target["method"] == "double_progression"
    assert "add 2.5 kg" in target["reason"]


def test_upper_body_and_light_loads_use_small_plates() -> None:
    assert plan(session(0, 60, [8, 8, 8]), muscles=("chest",))["weight_kg"] == 61.25
    assert plan(session(0, 30, [8, 8, 8]))["weight_kg"] == 31.25  # light squat


def test_mid_range_adds_reps() -> None:
    target = plan(session(0, 100, [7, 6, 6]))
    assert (target["weight_kg"], target["reps"], target["method"]) == (100, 7, "double_progression")
    assert "aim for 7 reps" in target["reason"]


def test_rpe_above_target_reduces_load() -> None:
    # RPE 9.5 vs 8: 1.5 points x 3 % = 4.5 % off 100 kg = 95.5 -> 95 kg on the 2.5 kg grid.
    target = plan(session(0, 100, [5, 5, 5], rpe=9.5))
    assert (target["weight_kg"], target["reps"], target["method"]) == (95.0, 5, "rpe")
    assert "harder" in target["reason"]


def test_rpe_below_target_adds_load() -> None:
    assert plan(session(0, 100, [5, 5, 5], rpe=6))["weight_kg"] == 105.0  # +6 % = 106 -> 105


def test_rpe_on_target_falls_back_to_double_progression() -> None:
    assert plan(session(0, 100, [6, 6, 6], rpe=8))["method"] == "double_progression"


def test_stalled_lifter_deloads() -> None:
    # Best e1RM on day 0 (100 x 6 = 120), then 3 sessions over 21 days without beating it.
    history = [session(0, 100, [6, 6, 6]), session(7, 100, [5, 5, 5]), session(14, 100, [6, 5, 5])]
    history.append(session(21, 100, [5, 5, 4]))
    target = plan(*history)
    assert (target["weight_kg"], target["reps"], target["sets"], target["method"]) == (90.0, 4, 3, "deload")
    assert "no e1RM improvement in 3 sessions over 21 days" in target["reason"]


def test_no_deload_before_three_weeks() -> None:
    history = [session(0, 100, [6, 6, 6]), session(3, 100, [5, 5, 5]), session(6, 100, [6, 5, 5])]
    assert plan(*history, session(9, 100, [5, 5, 5]))["method"] == "double_progression"


def test_after_the_deload_progression_resumes() -> None:
    history = [session(0, 100, [6, 6, 6]), session(7, 100, [5, 5, 5]), session(14, 100, [6, 5, 5])]
    history += [session(21, 100, [5, 5, 4]), session(24, 90, [5, 5, 5])]
    target = plan(*history)
    assert (target["weight_kg"], target["reps"], target["method"]) == (90, 6, "double_progression")
