"""Insights on synthetic histories with hand-computed answers, and ``GET /api/v1/ai/insights``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fittracker_plugins.ai.insights import SEVERITIES, describe, insights

from tests.ai.test_api import AI, CONFIG, PLUGINS
from tests.conftest import MakeClient
from tests.workouts.conftest import SignedIn, signed_in
from tests.workouts.workout_helpers import BENCH, Client, log, start

NOW = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)  # a Monday evening
NAMES = {"bench": "Bench Press"}
CHEST: dict[str, Any] = {"force": "push", "primary_muscles": ["chest"], "secondary_muscles": ["triceps"]}
ROW: dict[str, Any] = {"force": "pull", "primary_muscles": ["middle back"], "secondary_muscles": ["biceps"]}
SQUAT: dict[str, Any] = {
    "force": "push",
    "primary_muscles": ["quadriceps"],
    "secondary_muscles": ["glutes", "hamstrings"],
}
LEG_EXTENSION: dict[str, Any] = {"force": "push", "primary_muscles": ["quadriceps"], "secondary_muscles": []}


def work_set(
    at: datetime,
    workout: str,
    exercise: str = "bench",
    reps: int = 5,
    weight: float = 100.0,
    rpe: float | None = None,
    muscles: dict[str, Any] = CHEST,
    set_type: str = "normal",
) -> dict[str, Any]:
    return {
        "workout_id": workout,
        "exercise_id": exercise,
        "reps": reps,
        "weight_kg": weight,
        "rpe": rpe,
        "set_type": set_type,
        "logged_at": at.isoformat(),
        **muscles,
    }


def of_kind(found: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [item for item in found if item["kind"] == kind]


def weekly_bench(weights: list[float], reps: int = 5) -> list[dict[str, Any]]:
    """One bench session a week, the last one a day before NOW, plus a warm-up that must not count."""
    out = []
    for k, weight in enumerate(weights):
        at = NOW - timedelta(days=1 + 7 * (len(weights) - 1 - k))
        out.append(work_set(at - timedelta(minutes=5), f"w{k}", reps=10, weight=300.0, set_type="warmup"))
        out.append(work_set(at, f"w{k}", reps=reps, weight=weight))
    return out


# --- plateau ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "weights",
    [
        [100.0 + 2.5 * k for k in range(6)],  # 2.5 kg/week on a median of 106.25: +2.35 %/week
        [100.0] * 5 + [120.0],  # Theil-Sen reads the jump as an outlier (slope 0), but the best is fresh
    ],
)
def test_a_progressing_lifter_has_no_plateau(weights: list[float]) -> None:
    found = insights(weekly_bench(weights, reps=1), NOW, UTC, NAMES)
    assert of_kind(found, "plateau") == []


@pytest.mark.parametrize(("weeks", "severity", "since"), [(6, "medium", 5.1), (10, "high", 9.1)])
def test_a_stalled_lifter_has_a_plateau(weeks: int, severity: str, since: float) -> None:
    # 5 x 100 kg every week: e1RM 100 x (1 + 5/30) = 116.67 each time, slope 0; the best is the
    # first session, 1 + 7 x (weeks - 1) days before NOW.
    (plateau,) = of_kind(insights(weekly_bench([100.0] * weeks), NOW, UTC, NAMES), "plateau")
    assert plateau["severity"] == severity
    assert plateau["title"] == "Bench Press: e1RM plateau"
    assert plateau["reason"].startswith("Bench Press: over 6 sessions in 5 weeks your e1RM trend is flat")
    assert "+0.00 kg/week" in plateau["reason"]
    assert plateau["data"]["best_e1rm_kg"] == 116.67
    assert plateau["data"]["weeks_since_best"] == since


def test_a_falling_lifter_is_reported_and_a_missing_name_falls_back_to_the_id() -> None:
    found = insights(weekly_bench([110.0, 108.0, 106.0, 104.0, 102.0, 100.0], reps=1), NOW, UTC, {})
    (plateau,) = of_kind(found, "plateau")
    assert plateau["title"] == "bench: e1RM falling"
    assert plateau["data"]["slope_kg_per_week"] == -2.0


# --- load spike -------------------------------------------------------------------------------
def ewma(lam: float, inputs: list[float]) -> float:
    """Closed form of E_d = E_(d-1) + lam (x_d - E_(d-1)) from E = 0: sum of lam (1 - lam)^(n-d) x_d."""
    n = len(inputs) - 1
    return sum(lam * (1 - lam) ** (n - d) * x for d, x in enumerate(inputs))


def daily_sets(days: int, weight_for_day: Any, weekdays: range = range(7)) -> list[dict[str, Any]]:
    first = NOW.replace(hour=10) - timedelta(days=days - 1)
    return [
        work_set(first + timedelta(days=d), f"d{d}", reps=10, weight=weight_for_day(d), rpe=8)
        for d in range(days)
        if d % 7 in weekdays
    ]


def test_an_overreaching_week_is_a_load_spike_flag() -> None:
    # 28 days of 10 x 100 kg at RPE 8 (load 800), then 7 days at 2.5x (10 x 250 kg: 2000). The
    # input is the trailing 7-day mean: a ramp over the first week, 800, then a ramp to 2000.
    sets = daily_sets(35, lambda d: 100.0 if d < 28 else 250.0)
    (spike,) = of_kind(insights(sets, NOW, UTC, NAMES), "load_spike")
    inputs = [800 * (d + 1) / 7 for d in range(7)] + [800.0] * 21
    inputs += [(800 * (7 - j) + 2000 * j) / 7 for j in range(1, 8)]
    acute, chronic = ewma(2 / 8, inputs), ewma(2 / 29, inputs)  # 1554.27 and 1006.99
    assert spike["data"]["acute"] == pytest.approx(acute, abs=0.05) == 1554.3
    assert spike["data"]["chronic"] == pytest.approx(chronic, abs=0.05) == 1007.0
    assert spike["data"]["ratio"] == pytest.approx(acute / chronic, abs=0.005) == 1.54
    assert spike["severity"] == "medium"
    assert "flag" in spike["title"] and "not a diagnosis" in spike["title"]
    assert "not a diagnosis" in spike["reason"] and "ratio 1.54" in spike["reason"]


def test_a_weekly_routine_is_steady_until_its_load_jumps() -> None:
    # Mon/Wed/Fri for 12 weeks: every trailing week holds the same 3 sessions, so ratio 1.00 (on
    # raw daily loads it would swing 0.77-1.18 with the weekday). 4 such weeks, then one at 2.5x:
    # 1.56 (1.48-1.56 whatever the weekday; on raw daily loads anywhere from 1.17 to 1.76).
    (steady,) = of_kind(
        insights(daily_sets(84, lambda d: 100.0, range(0, 6, 2)), NOW, UTC, NAMES), "load_spike"
    )
    assert (steady["severity"], steady["data"]["ratio"]) == ("info", 1.0)
    sets = daily_sets(35, lambda d: 100.0 if d < 28 else 250.0, range(0, 6, 2))
    (spike,) = of_kind(insights(sets, NOW, UTC, NAMES), "load_spike")
    assert (spike["severity"], spike["data"]["ratio"]) == ("medium", 1.56)


def test_steady_load_is_info_and_short_histories_say_why() -> None:
    steady = of_kind(insights(daily_sets(60, lambda d: 100.0), NOW, UTC, NAMES), "load_spike")
    assert steady[0]["severity"] == "info" and 0.8 <= steady[0]["data"]["ratio"] <= 1.5
    (short,) = of_kind(insights(daily_sets(10, lambda d: 100.0), NOW, UTC, NAMES), "load_spike")
    assert (short["severity"], short["data"]) == ("info", {"days": 9})


# --- imbalance --------------------------------------------------------------------------------
def test_push_heavy_training_says_to_add_pulling() -> None:
    at = NOW - timedelta(days=3)
    sets = [work_set(at, "w1") for _ in range(12)] + [work_set(at, "w1", "row", muscles=ROW)] * 3
    sets += [work_set(at, "w1", "squat", muscles=SQUAT)] * 3  # legs: no push, 3 vs 1.5 too few to judge
    sets += [work_set(NOW - timedelta(days=40), "old", "row", muscles=ROW)] * 20  # outside 4 weeks
    (item,) = of_kind(insights(sets, NOW, UTC, NAMES), "imbalance")
    assert item["severity"] == "medium"
    assert item["data"] == {
        "pair": "push_pull",
        "sets": {"push": 12, "pull": 3},
        "ratio": 4.0,
        "more": "push",
        "add": "pull",
    }
    assert "12 upper-body push sets vs 3 pull sets (4.0:1" in item["reason"]
    assert "Add pulling" in item["reason"]


@pytest.mark.parametrize(
    ("muscles", "severity", "ratio", "hamstrings"),
    [(LEG_EXTENSION, "medium", None, 0.0), (SQUAT, "low", 2.0, 4.0)],
)
def test_quads_only_training_says_to_add_hamstrings(
    muscles: dict[str, Any], severity: str, ratio: float | None, hamstrings: float
) -> None:
    # 8 sets with quadriceps primary (1 each); hamstrings secondary on squats count 0.5 each.
    sets = [work_set(NOW - timedelta(days=2), "w1", "legs", muscles=muscles) for _ in range(8)]
    (item,) = of_kind(insights(sets, NOW, UTC, NAMES), "imbalance")
    assert (item["severity"], item["data"]["ratio"]) == (severity, ratio)
    assert item["data"]["sets"] == {"quadriceps": 8.0, "hamstrings": hamstrings}
    assert "Add hamstring work" in item["reason"]


# --- consistency ------------------------------------------------------------------------------
def sessions_in_weeks(per_week: list[int]) -> list[dict[str, Any]]:
    """``per_week[k]`` sessions in rolling week k (0 = the 7 days up to NOW), on days 1, 3, 5 of it."""
    return [
        work_set(NOW - timedelta(days=7 * k + 1 + 2 * i, hours=2), f"w{k}-{i}")
        for k, count in enumerate(per_week)
        for i in range(count)
    ]


def test_a_drop_in_frequency_is_flagged() -> None:
    # Weeks (newest first) 0, 1, then 3 a week: last 2 weeks 0.5/week vs 3.0 before -> <= 50 %.
    found = insights(sessions_in_weeks([0, 1, 3, 3, 3, 3, 3, 3]), NOW, UTC, NAMES)
    (item,) = of_kind(found, "consistency")
    assert item["severity"] == "medium"
    data = item["data"]
    assert data["sessions_per_week"] == [3, 3, 3, 3, 3, 3, 1, 0]
    assert (data["recent_per_week"], data["before_per_week"], data["streak_weeks"]) == (0.5, 3.0, 0)
    assert data["mean_per_week"] == 2.38  # 19 / 8
    assert item["reason"].startswith("0.5 sessions/week in the last 2 weeks vs 3.0 in the 6 before")
    assert [SEVERITIES.index(i["severity"]) for i in found] == sorted(
        SEVERITIES.index(i["severity"]) for i in found
    )


def test_steady_training_is_info() -> None:
    (item,) = of_kind(insights(sessions_in_weeks([3] * 8), NOW, UTC, NAMES), "consistency")
    assert (item["severity"], item["data"]["cv"], item["data"]["streak_weeks"]) == ("info", 0.0, 8)


def test_empty_history_gives_one_info_insight() -> None:
    (item,) = insights([], NOW, UTC, {})
    assert (item["kind"], item["severity"]) == ("consistency", "info")
    assert "too little data" in item["reason"]


# --- best times -------------------------------------------------------------------------------
def test_best_times_in_the_users_time_zone() -> None:
    # Tuesdays 17:30 UTC = 18:30 in Paris (CET, UTC+1) at 102 kg singles; Saturdays 08:00 UTC =
    # 09:00 Paris at 98 kg. Theil-Sen: 16 of 28 pairwise slopes are 0 -> slope 0, intercept 102:
    # evenings sit 0 % off the trend, mornings (98 - 102) / 102 = -3.92 %.
    tuesdays = [datetime(2026, 1, 6, 17, 30, tzinfo=UTC) + timedelta(weeks=k) for k in range(6)]
    saturdays = [datetime(2026, 1, 10, 8, 0, tzinfo=UTC) + timedelta(weeks=k) for k in range(2)]
    sets = [work_set(at, f"t{k}", reps=1, weight=102.0) for k, at in enumerate(tuesdays)]
    sets += [work_set(at, f"s{k}", reps=1, weight=98.0) for k, at in enumerate(saturdays)]
    sets.sort(key=lambda s: s["logged_at"])
    (item,) = of_kind(insights(sets, NOW, ZoneInfo("Europe/Paris"), NAMES), "best_times")
    data = item["data"]
    assert (data["best_weekdays"], data["best_bands"]) == (["Tuesday"], ["18:00-21:00"])
    assert data["by_band"] == {"09:00-12:00": 2, "18:00-21:00": 6}
    assert data["e1rm_vs_trend_pct"] == {"09:00-12:00": -3.92, "18:00-21:00": 0.0}
    assert data["strongest_band"] == "18:00-21:00"
    assert item["title"] == "You train most on Tuesday, 18:00-21:00"
    (in_utc,) = of_kind(insights(sets, NOW, UTC, NAMES), "best_times")
    assert in_utc["data"]["best_bands"] == ["15:00-18:00"]


def test_best_times_cross_midnight_into_the_local_weekday() -> None:
    # Saturday 04:00 UTC is Friday 20:00 in Los Angeles (PST, UTC-8).
    sets = [work_set(datetime(2026, 1, 10, 4, 0, tzinfo=UTC) + timedelta(weeks=k), f"w{k}") for k in range(6)]
    (item,) = of_kind(insights(sets, NOW, ZoneInfo("America/Los_Angeles"), NAMES), "best_times")
    assert (item["data"]["best_weekdays"], item["data"]["best_bands"]) == (["Friday"], ["18:00-21:00"])
    assert item["data"]["strongest_band"] is None  # one band only: nothing to compare
    few = insights(sets[:5], NOW, UTC, NAMES)
    assert of_kind(few, "best_times") == []


def test_describe_is_json() -> None:
    model = describe()
    assert json.loads(json.dumps(model)) == model
    assert model["load_spike"]["acute_days"] == 7 and model["load_spike"]["chronic_days"] == 28


# --- API --------------------------------------------------------------------------------------
async def wait_for_sessions(client: Client, who: SignedIn, sessions: int) -> list[dict[str, Any]]:
    """Events reach the read model asynchronously: poll until this week shows ``sessions``."""
    for _ in range(200):
        resp = await client.get(AI + "/insights", headers=who.headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        assert set(body) == {"insights", "model"}
        (item,) = of_kind(body["insights"], "consistency")
        if item["data"]["sessions_per_week"][-1] == sessions:
            found: list[dict[str, Any]] = body["insights"]
            return found
        await asyncio.sleep(0.025)
    raise AssertionError(f"the insights never showed {sessions} session(s) this week")


async def test_insights_endpoint(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    found = await wait_for_sessions(client, who, 0)
    assert [i["kind"] for i in found] == ["consistency"]

    workout = await start(client, who)
    for _ in range(3):
        await log(client, who, workout["id"], BENCH, reps=8, weight_kg=100, rpe=8)
    found = await wait_for_sessions(client, who, 1)
    (load,) = of_kind(found, "load_spike")
    assert (load["severity"], load["data"]) == ("info", {"days": 0})
    assert all(set(i) >= {"kind", "severity", "title", "reason", "data"} for i in found)

    resp = await client.get(AI + "/insights", headers=who.headers, params={"weeks": "4"})
    assert resp.status == 422
    assert (await client.get(AI + "/insights")).status == 401
