"""e1RM projections: Theil-Sen on synthetic histories with hand-computed answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fittracker_plugins.ai.predictions import project, refusal
from fittracker_plugins.ai.progression import Session

from tests.ai.test_api import AI, CONFIG, PLUGINS, log_bench_session, wait_for_muscle
from tests.conftest import MakeClient
from tests.workouts.conftest import signed_in
from tests.workouts.workout_helpers import BENCH

START = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)


def weekly(e1rms: list[float], every_days: int = 7) -> list[Session]:
    """One session per period whose single (1 rep) makes the e1RM exactly the weight."""
    return [
        Session(f"w{k}", START + timedelta(days=every_days * k), [{"weight_kg": value, "reps": 1}])
        for k, value in enumerate(e1rms)
    ]


def test_linear_lifter_projects_the_line_with_no_band() -> None:
    # 100, 101 ... 107 kg weekly: 1 kg/week; 4 weeks after 107 -> 111, residuals all 0.
    out = project(weekly([100.0 + k for k in range(8)]), weeks=4)
    assert out["slope_kg_per_week"] == 1.0
    assert out["projection"][-1] == {
        "week": 4,
        "date": "2026-03-23",
        "e1rm_kg": 111.0,
        "low_kg": 111.0,
        "high_kg": 111.0,
    }


def test_an_outlier_does_not_bend_the_trend() -> None:
    values = [100.0 + k for k in range(8)]
    values[3] = 130.0  # a mis-typed set: 7 of 28 pairwise slopes change, the median does not
    out = project(weekly(values), weeks=4)
    assert (out["slope_kg_per_week"], out["projection"][-1]["e1rm_kg"]) == (1.0, 111.0)


def test_band_from_the_spread_of_residuals() -> None:
    # 101, 100, 103, 102, ...: slope still 1 kg/week (median of pairwise slopes), intercept 100,
    # |residuals| all 1 -> sigma = 1.4826; half width = 2 x 1.4826 x sqrt(1 + 28/49) = 3.717.
    out = project(weekly([100.0 + k + (1 if k % 2 == 0 else -1) for k in range(8)]), weeks=4)
    assert out["sigma_kg"] == 1.48
    last = out["projection"][-1]
    assert (last["e1rm_kg"], last["low_kg"], last["high_kg"]) == (111.0, 107.28, 114.72)
    assert "rising at +1 kg/week" in out["reason"]


def test_refuses_too_little_data() -> None:
    assert refusal(weekly([100.0] * 5)) == "only 5 session(s) with an e1RM; a projection needs at least 6"
    assert "spans 15 days" in str(refusal(weekly([100.0] * 6, every_days=3)))
    assert refusal(weekly([100.0] * 6)) is None


async def test_api_refuses_with_a_reason(make_client: MakeClient) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    resp = await client.get(f"{AI}/predictions/{BENCH}", headers=who.headers)
    assert resp.status == 404
    await log_bench_session(client, who)
    await wait_for_muscle(client, who, "chest")
    resp = await client.get(f"{AI}/predictions/{BENCH}", headers=who.headers, params={"weeks": "4"})
    assert resp.status == 422
    assert "only 1 session(s)" in (await resp.json())["detail"]


@pytest.mark.parametrize("weeks", ["0", "27", "x"])
async def test_api_checks_weeks(make_client: MakeClient, weeks: str) -> None:
    client = await make_client(plugins=PLUGINS, config=CONFIG)
    who = await signed_in(client)
    resp = await client.get(f"{AI}/predictions/{BENCH}", headers=who.headers, params={"weeks": weeks})
    assert resp.status == 422
