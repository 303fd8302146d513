"""Benchmark the AI endpoints for one user with two years of training (~100k sets).

    .venv/bin/python scripts/bench_ai.py [--requests 200] [--weeks 104]

Builds the app in-process (users + workouts + ai, rate limiting off) on a temporary data dir,
registers one user through the API, seeds the AI's own read model with bulk writes (6
workouts a week, 16 exercises x 10 sets each, 2 of them warm-ups: 99,840 sets for 104 weeks,
with RPE and progressing loads), serves it on a real TCP port and times each endpoint
sequentially with an aiohttp client, next to ``GET /health`` as a baseline measured in the same
run. Prints p50/p99/max. Issue #6 asks recommendations for such a user under 100 ms; the figures
are reported, never asserted. Exits non-zero only if a request fails.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from bench_app import make_app
from fittracker_plugins.ai.catalog import Catalog
from fittracker_plugins.ai.state import AI, Ai

from fittracker.runtime import RUNTIME, prepare_heap_for_serving

WORKOUTS_PER_WEEK = 6
EXERCISES_PER_WORKOUT = 16
SETS_PER_EXERCISE = 10  # 2 warm-ups + 8 working sets
CHUNK = 500
PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway benchmark account


def ai_state(app: web.Application) -> Ai:
    return next(sub[AI] for sub in app._subapps if AI in sub)


def training_days(catalog: Catalog) -> list[list[Mapping[str, Any]]]:
    """Three days (push, pull, legs) of 16 real lifts each, staples first."""
    groups = {"push": [], "pull": [], "legs": []}  # type: dict[str, list[Mapping[str, Any]]]
    for e in sorted(catalog.exercises, key=lambda e: e.id):
        lift = e.category == "strength" and e.equipment in ("barbell", "dumbbell", "cable", "machine")
        if lift and e.group in groups and len(groups[e.group]) < EXERCISES_PER_WORKOUT:
            groups[e.group].append(
                {
                    "exercise_id": e.id,
                    "primary_muscles": list(e.primary_muscles),
                    "secondary_muscles": list(e.secondary_muscles),
                    "force": e.force,
                }
            )
    return list(groups.values())


async def seed(state: Ai, user_id: str, catalog: Catalog, weeks: int) -> int:
    """Bulk-insert the history into the AI read model; returns the number of sets."""
    rng = random.Random(6)
    days = training_days(catalog)
    start = datetime.now(UTC) - timedelta(weeks=weeks)
    batch: list[dict[str, Any]] = []
    sessions: list[dict[str, Any]] = []  # one per (workout, exercise), as the read model keeps them
    count = 0
    for week in range(weeks):
        for n in range(WORKOUTS_PER_WEEK):
            at = start + timedelta(weeks=week, days=n, hours=18)
            workout_id = f"w{week:03d}-{n}"
            for k, exercise in enumerate(days[n % 3]):
                base = 40 + 2 * k + week * 0.25  # slow linear progress
                session = {
                    "user_id": user_id,
                    "workout_id": workout_id,
                    "exercise_id": exercise["exercise_id"],
                }
                sessions.append(
                    {"_id": f"{workout_id}:{exercise['exercise_id']}", **session, "at": at.isoformat()}
                )
                for s in range(SETS_PER_EXERCISE):
                    warmup = s < 2
                    batch.append(
                        {
                            "_id": f"{workout_id}-{k}-{s}",
                            "user_id": user_id,
                            "workout_id": workout_id,
                            **exercise,
                            "reps": 10 if warmup else rng.choice((5, 6, 8)),
                            "weight_kg": round(base * (0.5 if warmup else 1.0), 2),
                            "rpe": None if warmup else rng.choice((7.0, 7.5, 8.0, 8.5)),
                            "set_type": "warmup" if warmup else "normal",
                            "logged_at": (
                                at + timedelta(minutes=3 * (k * SETS_PER_EXERCISE + s))
                            ).isoformat(),
                        }
                    )
                    if len(batch) >= CHUNK:
                        await state.log.sets.insert_many(batch)
                        count += len(batch)
                        batch = []
    if batch:
        await state.log.sets.insert_many(batch)
        count += len(batch)
    for i in range(0, len(sessions), CHUNK):
        await state.log.sessions.insert_many(sessions[i : i + CHUNK])
    return count


async def timed(client: TestClient[Any, Any], path: str, headers: Mapping[str, str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = await client.get(path, headers=headers)
        await resp.read()
        times.append((time.perf_counter() - t0) * 1000)
        if resp.status != 200:
            raise SystemExit(f"GET {path} -> {resp.status}: {await resp.text()}")
    return times


def row(name: str, times: list[float]) -> str:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"{name:<44} p50 {statistics.median(ordered):7.2f} ms  p99 {p99:7.2f} ms  max {ordered[-1]:7.2f} ms"
    )


async def main(requests: int, weeks: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp), "users,workouts,ai")
        async with TestClient(TestServer(app)) as client:
            app[RUNTIME].services.base_url = str(client.make_url("")).rstrip("/")
            body = {"email": "bench@example.com", "password": PASSWORD, "name": "Bench"}
            resp = await client.post("/api/v1/auth/register", json=body)
            account = await resp.json()
            headers = {"Authorization": f"Bearer {account['access_token']}"}
            state = ai_state(app)
            catalog = await state.catalog.get(account["access_token"])
            t0 = time.perf_counter()
            total = await seed(state, account["user"]["id"], catalog, weeks)
            print(f"seeded {total:,} sets over {weeks} weeks in {time.perf_counter() - t0:.1f} s")
            lift = training_days(catalog)[0][0]["exercise_id"]
            paths = {
                "GET /health (baseline)": "/health",
                "GET /ai/recommendations": "/api/v1/ai/recommendations",
                "GET /ai/recovery": "/api/v1/ai/recovery",
                f"GET /ai/progression/{{id}} ({lift[:14]})": f"/api/v1/ai/progression/{lift}",
                "GET /ai/predictions/{id}": f"/api/v1/ai/predictions/{lift}",
                "GET /ai/exercises/{id}/alternatives": f"/api/v1/ai/exercises/{lift}/alternatives",
                "GET /ai/insights (12 weeks)": "/api/v1/ai/insights",
            }
            for path in paths.values():  # warm up: caches, catalog, query plans
                await timed(client, path, headers, 3)
            prepare_heap_for_serving()  # as `fittracker serve` does once it is ready
            print(f"{requests} sequential requests each, one client, 100k-set user")
            for name, path in paths.items():
                times = await timed(
                    client, path, headers, requests if "insights" not in path else requests // 4
                )
                print(row(name, times))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--weeks", type=int, default=104)
    args = parser.parse_args()
    try:
        asyncio.run(main(args.requests, args.weeks))
    except KeyboardInterrupt:
        sys.exit(130)
