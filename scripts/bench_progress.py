"""Benchmark the progress endpoints for one user with two years of training (~100k sets).

    .venv/bin/python scripts/bench_progress.py [--requests 300] [--weeks 104]

Builds the app in-process (users + workouts, rate limiting off) on a temporary data dir, seeds
one user through the workouts store layer with bulk writes (6 workouts a week, 16 exercises x
10 sets each: 624 workouts, 99,840 sets, with their derived sessions, weekly roll-ups and
records), serves it on a real TCP port and times each endpoint sequentially with an aiohttp
client, next to ``GET /health`` as a baseline measured in the same run. Prints p50/p99/max.
Exits non-zero only if a request fails; timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from bench_app import make_app
from fittracker_plugins.workouts.catalog import Catalog
from fittracker_plugins.workouts.derived import (
    encode_rows,
    session_body,
    session_id,
    user_key,
    week_parts,
    week_start,
)
from fittracker_plugins.workouts.logbook import Logbook
from fittracker_plugins.workouts.prefs import UserPrefs
from fittracker_plugins.workouts.records import rebuild, record_id
from fittracker_plugins.workouts.views import build_summary
from fittracker_plugins.workouts.workouts_store import iso, new_id

from fittracker.runtime import RUNTIME

WORKOUTS_PER_WEEK = 6
EXERCISES_PER_WORKOUT = 16
SETS_PER_EXERCISE = 10  # 2 warm-ups + 8 working sets
CHUNK = 200


def pick_days(catalog: Catalog) -> list[list[dict[str, Any]]]:
    """Three training days (push / pull / legs-ish) of 16 real strength exercises each."""
    pool: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for ex_id in sorted(catalog._builtin):
        ex = catalog.builtin(ex_id)
        if (
            ex
            and ex["category"] == "strength"
            and ex["equipment"] in ("barbell", "dumbbell", "cable", "machine")
        ):
            pool[ex["primary_muscles"][0]].append(ex)
    groups = [
        ["chest", "shoulders", "triceps"],
        ["lats", "middle back", "biceps", "forearms"],
        ["quadriceps", "hamstrings", "glutes", "calves"],
    ]
    days = []
    for muscles in groups:
        chosen: list[dict[str, Any]] = []
        while len(chosen) < EXERCISES_PER_WORKOUT:
            for muscle in muscles:
                candidates = [e for e in pool[muscle] if e not in chosen]
                if candidates and len(chosen) < EXERCISES_PER_WORKOUT:
                    chosen.append(candidates[0])
        days.append(chosen)
    return days


def make_workout(
    user_id: str, started: datetime, exercises: list[dict[str, Any]], progress: float, rng: random.Random
) -> dict[str, Any]:
    sets = []
    moment = started
    for n, ex in enumerate(exercises):
        base = (40 + 7 * (n % 9)) * progress  # heavier compounds first, slow progression
        for k in range(SETS_PER_EXERCISE):
            moment += timedelta(seconds=90)
            warmup = k < 2
            # Plates come in 2.5 kg steps.
            weight = round((base * (0.5 if warmup else 1.0)) / 2.5) * 2.5 + rng.choice((0, 0, 2.5, -2.5))
            reps = 10 if warmup else rng.randint(3, 12)
            stamp = iso(moment)
            sets.append(
                {
                    "id": new_id(),
                    "exercise_id": ex["id"],
                    "reps": reps,
                    "weight_kg": max(weight, 0.0),
                    "rpe": None if warmup else rng.choice((7.0, 7.5, 8.0, 8.5, 9.0)),
                    "duration_s": None,
                    "distance_m": None,
                    "set_type": "warmup" if warmup else "normal",
                    "logged_at": stamp,
                    "updated_at": stamp,
                }
            )
    finished = iso(moment + timedelta(minutes=5))
    return {
        "_id": new_id(),
        "user_id": user_id,
        "name": None,
        "notes": None,
        "status": "finished",
        "started_at": iso(started),
        "finished_at": finished,
        "routine_id": None,
        "day_index": None,
        "plan": None,
        "sets": sets,
        "set_count": len(sets),
        "achievements": [],
        "summary": None,
        "version": 2,
        "created_at": iso(started),
        "updated_at": finished,
    }


async def seed(logbook: Logbook, user_id: str, weeks: int) -> tuple[int, int]:
    """Bulk-write workouts, sessions, week roll-ups and records; returns (workouts, sets)."""
    rng = random.Random(7)
    days = pick_days(logbook.catalog)
    by_id = {ex["id"]: ex for day in days for ex in day}
    today = datetime.now(UTC).date()
    first_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks)
    workouts, sessions = [], []
    for week in range(weeks):
        for slot in range(WORKOUTS_PER_WEEK):
            day = first_monday + timedelta(weeks=week, days=slot)
            started = datetime(day.year, day.month, day.day, 17, 30, tzinfo=UTC)
            doc = make_workout(user_id, started, days[slot % 3], 1 + week / weeks * 0.3, rng)
            doc["summary"] = build_summary(doc, {i: e["name"] for i, e in by_id.items()})
            workouts.append(doc)
            for ex in days[slot % 3]:
                body = session_body(doc, ex["id"], ex)
                sessions.append(
                    {"_id": session_id(doc["_id"], ex["id"]), **body, "src_version": doc["version"]}
                )
    for i in range(0, len(workouts), CHUNK):
        await logbook.store.workouts.insert_many(workouts[i : i + CHUNK])
    heads = [{"_id": w["_id"], **logbook.store.head_of(w), "src_version": w["version"]} for w in workouts]
    await logbook.store.heads.insert_many(heads)
    for i in range(0, len(sessions), CHUNK * 10):
        await logbook.derived.sessions.insert_many(sessions[i : i + CHUNK * 10])
    per_week: dict[str, list[dict[str, Any]]] = defaultdict(list)
    per_exercise: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for s in sessions:
        per_week[s["week"]].append(s)
        per_exercise[s["exercise_id"]].append(s)
    started_per_week: dict[str, int] = defaultdict(int)
    for w in workouts:
        started_per_week[week_start(w["started_at"])] += 1
    week_docs, row_docs = [], []
    for monday, rows in per_week.items():
        done = started_per_week[monday]  # every seeded workout is finished
        summary, exercise_rows = week_parts(user_id, monday, rows, done, done)
        week_docs.append({"_id": user_key(user_id, monday), **summary, "gen": 1})
        row_docs.append(
            {"_id": user_key(user_id, monday), "rows": encode_rows(exercise_rows), "src_version": 1}
        )
    await logbook.derived.weeks.insert_many(week_docs)
    await logbook.derived.week_exercises.insert_many(row_docs)
    books = [
        {"_id": record_id(user_id, ex_id), **rebuild(user_id, by_id[ex_id], rows), "rev": 1}
        for ex_id, rows in per_exercise.items()
    ]
    await logbook.records.records.insert_many(books)
    return len(workouts), sum(len(w["sets"]) for w in workouts)


async def timed(client: TestClient[Any, Any], method: str, path: str, n: int, **kw: Any) -> list[float]:
    samples = []
    for i in range(n + 10):
        t0 = time.perf_counter()
        resp = await client.request(method, path, **kw)
        await resp.read()
        elapsed = (time.perf_counter() - t0) * 1000
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path} -> {resp.status}: {await resp.text()}")
        if i >= 10:  # the first few warm caches and connections
            samples.append(elapsed)
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def main(requests: int, weeks: int) -> int:
    with tempfile.TemporaryDirectory(prefix="fittracker-bench-") as tmp:
        app = make_app(Path(tmp), "users,workouts")
        async with TestClient(TestServer(app)) as client:
            app[RUNTIME].services.base_url = str(client.make_url("")).rstrip("/")
            resp = await client.post(
                "/api/v1/auth/register",
                json={"email": "bench@example.com", "password": "correct horse battery", "name": "Bench"},
            )
            reg = await resp.json()
            user_id, headers = reg["user"]["id"], {"Authorization": f"Bearer {reg['access_token']}"}
            ctx = app[RUNTIME].contexts["workouts"]
            catalog = Catalog(ctx.db)
            await catalog.reload()
            logbook = Logbook(ctx, catalog, UserPrefs(ctx.db))

            t0 = time.perf_counter()
            n_workouts, n_sets = await seed(logbook, user_id, weeks)
            seeded = time.perf_counter() - t0
            print(f"seeded {n_workouts} workouts, {n_sets} sets for one user in {seeded:.1f} s")

            bench_ex = pick_days(catalog)[0][0]["id"]
            two_years = (date.today() - timedelta(weeks=weeks)).isoformat()
            workout = await (await client.post("/api/v1/workouts", json={}, headers=headers)).json()
            set_body = {"exercise_id": bench_ex, "reps": 5, "weight_kg": 80}
            cases: list[tuple[str, str, str, Mapping[str, Any]]] = [
                ("baseline GET /health", "GET", "/health", {}),
                ("GET /progress/records", "GET", "/api/v1/progress/records", {}),
                (
                    "GET /progress/records?exercise_id",
                    "GET",
                    f"/api/v1/progress/records?exercise_id={bench_ex}",
                    {},
                ),
                (
                    "GET /progress/exercises/{id} (2 y)",
                    "GET",
                    f"/api/v1/progress/exercises/{bench_ex}?limit=1000",
                    {},
                ),
                ("GET /progress/volume (12 wk)", "GET", "/api/v1/progress/volume", {}),
                ("GET /progress/volume (2 y)", "GET", f"/api/v1/progress/volume?from={two_years}", {}),
                ("GET /progress/summary (12 wk)", "GET", "/api/v1/progress/summary", {}),
                ("GET /progress/summary (2 y)", "GET", f"/api/v1/progress/summary?from={two_years}", {}),
                ("GET /workouts (page of 20)", "GET", "/api/v1/workouts", {}),
                (
                    "POST /workouts/{id}/sets",
                    "POST",
                    f"/api/v1/workouts/{workout['id']}/sets",
                    {"json": set_body},
                ),
            ]
            print(f"\n{'endpoint':<40} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
            failed = False
            for label, method, path, extra in cases:
                n = min(requests, 250) if method == "POST" else requests  # a workout holds 300 sets
                try:
                    samples = await timed(client, method, path, n, headers=headers, **extra)
                except RuntimeError as exc:
                    print(f"{label:<40} ERROR {exc}")
                    failed = True
                    continue
                print(
                    f"{label:<40} {len(samples):>5} {statistics.median(samples):>8.2f} "
                    f"{pct(samples, 0.99):>8.2f} {max(samples):>8.2f}"
                )
    return 1 if failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per endpoint")
    parser.add_argument("--weeks", type=int, default=104, help="weeks of history to seed")
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.requests, args.weeks)))
