"""Benchmark the progress endpoints for one user, and how their cost grows with the sets stored.

    .venv/bin/python scripts/bench_progress.py [--requests 300] [--weeks 104] [--json]
    .venv/bin/python scripts/bench_progress.py --sets 1000,100000,1000000 [--requests 100] [--json]

Builds the app in-process (users + workouts, rate limiting off) on a temporary data dir,
registers one user through the API and seeds them through the workouts store layer with bulk
``insert_many`` writes, CHUNK workouts at a time (no per-set API calls): 6 workouts a week, 16
exercises x 10 sets each (2 of them warm-ups, so 160 sets a workout), with their derived
sessions, weekly roll-ups and records. Then it serves the app on a real TCP port and times each
endpoint sequentially with an aiohttp client (10 untimed warm-up requests, then ``--requests``
timed ones; the POST at most 250, as a workout holds 300 sets), next to ``GET /health`` as a
baseline measured in the same run: records (all, one exercise), one exercise's history, weekly
volume and summary (12 weeks, 2 years), the first page of workouts and logging a set.

Without ``--sets``: one run of ``--weeks`` weeks (default 104, about two years: 624 workouts,
99,840 sets); prints the seeding time and p50/p99/max per endpoint.

With ``--sets`` (comma-separated; issue #7, how cost grows with the data): for each size a fresh
data dir and app with one user holding about that many sets, ``round(sets / 960)`` weeks of
training, at least one (1,000 -> 1 week, 960 sets; 100,000 -> 104 weeks, 99,840 sets; 1,000,000
-> 1,042 weeks (20 years), 1,000,320 sets). The "2 y" requests ask for the last 104 weeks at every
size (history too, with ``from``), so every column asks the same question of more stored data.
Prints one table: p50 and p99 (ms) per endpoint at each size, and each size's seeding time;
seeding progress goes to stderr (a line about every 10%) from 100,000 sets up. On the 2-core dev
machine, shared with other work, 1,000,000 sets seeded in 61-87 s (100,000 in 8 s; 500 MB RSS)
and ``--sets 1000,100000,1000000 --requests 100`` took 2.5 minutes in all.

``--json`` prints the results as JSON instead of the table. Exits non-zero only if a request
fails; timings are reported, never asserted. Temporary data dirs are removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
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

from fittracker.runtime import RUNTIME, prepare_heap_for_serving
from fittracker.storage import Collection, Document

WORKOUTS_PER_WEEK = 6
EXERCISES_PER_WORKOUT = 16
SETS_PER_EXERCISE = 10  # 2 warm-ups + 8 working sets
SETS_PER_WEEK = WORKOUTS_PER_WEEK * EXERCISES_PER_WORKOUT * SETS_PER_EXERCISE  # 960
CHUNK = 200  # workouts per insert_many (160 sets each), with their heads and sessions; weeks 10x that
WINDOW_WEEKS = 104  # what the "2 y" requests ask for with --sets
WARMUP = 10  # untimed requests per endpoint
MAX_POSTS = 250  # a workout holds 300 sets
PROGRESS_FROM = 100_000  # with --sets, report seeding progress from this many sets up

# Called about every 10% of a seed with (sets written, sets to write, seconds since it began).
Progress = Callable[[int, int, float], None]


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


async def insert_chunked(coll: Collection, docs: list[Document], size: int) -> None:
    for i in range(0, len(docs), size):
        await coll.insert_many(docs[i : i + size])


async def seed(
    logbook: Logbook, user_id: str, weeks: int, progress: Progress | None = None
) -> tuple[int, int]:
    """Bulk-write workouts, heads, sessions, week roll-ups and records; returns (workouts, sets).

    Workouts are made week by week and written about CHUNK at a time with their heads and
    sessions (one ``insert_many`` each), while the next chunk is being made: SQLite works on its
    own thread. So a million sets never sit in memory at once; only the sessions (one per
    exercise of a workout) stay, for the records built at the end.
    """
    t0 = time.perf_counter()
    rng = random.Random(7)
    days = pick_days(logbook.catalog)
    by_id = {ex["id"]: ex for day in days for ex in day}
    names = {i: e["name"] for i, e in by_id.items()}
    today = datetime.now(UTC).date()
    first_monday = today - timedelta(days=today.weekday()) - timedelta(weeks=weeks)
    total_sets = weeks * SETS_PER_WEEK
    workouts: list[Document] = []  # made, not yet written
    sessions: list[Document] = []
    per_exercise: dict[str, list[Document]] = defaultdict(list)
    week_docs: list[Document] = []
    row_docs: list[Document] = []
    n_workouts = n_sets = tenths = 0
    writing: asyncio.Task[None] | None = None  # the previous chunk's writes

    async def write(chunk: list[Document], chunk_sessions: list[Document]) -> None:
        nonlocal n_workouts, n_sets, tenths
        await logbook.store.workouts.insert_many(chunk)
        heads = [{"_id": w["_id"], **logbook.store.head_of(w), "src_version": w["version"]} for w in chunk]
        await logbook.store.heads.insert_many(heads)
        await logbook.derived.sessions.insert_many(chunk_sessions)
        n_workouts += len(chunk)
        n_sets += sum(len(w["sets"]) for w in chunk)
        if progress is not None and n_sets * 10 // total_sets > tenths:
            tenths = n_sets * 10 // total_sets
            progress(n_sets, total_sets, time.perf_counter() - t0)

    async def flush() -> None:
        nonlocal writing
        if writing is not None:
            await writing  # at most one chunk in flight
        writing = asyncio.create_task(write(workouts[:], sessions[:])) if workouts else None
        workouts.clear()
        sessions.clear()

    try:
        for week in range(weeks):
            per_week: dict[str, list[Document]] = defaultdict(list)
            started_per_week: dict[str, int] = defaultdict(int)
            for slot in range(WORKOUTS_PER_WEEK):
                day = first_monday + timedelta(weeks=week, days=slot)
                started = datetime(day.year, day.month, day.day, 17, 30, tzinfo=UTC)
                doc = make_workout(user_id, started, days[slot % 3], 1 + week / weeks * 0.3, rng)
                doc["summary"] = build_summary(doc, names)
                workouts.append(doc)
                started_per_week[week_start(doc["started_at"])] += 1
                for ex in days[slot % 3]:
                    body = session_body(doc, ex["id"], ex)
                    session = {"_id": session_id(doc["_id"], ex["id"]), **body, "src_version": doc["version"]}
                    sessions.append(session)
                    per_week[session["week"]].append(session)
                    per_exercise[session["exercise_id"]].append(session)
            for monday, rows in per_week.items():  # a week's workouts are all made by now
                done = started_per_week[monday]  # every seeded workout is finished
                summary, exercise_rows = week_parts(user_id, monday, rows, done, done)
                week_docs.append({"_id": user_key(user_id, monday), **summary, "gen": 1})
                row_docs.append(
                    {"_id": user_key(user_id, monday), "rows": encode_rows(exercise_rows), "src_version": 1}
                )
            if len(workouts) >= CHUNK:
                await flush()
        await flush()
        await flush()  # and wait for the last chunk
    finally:
        if writing is not None:  # only when something failed
            writing.cancel()
    await insert_chunked(logbook.derived.weeks, week_docs, CHUNK * 10)
    await insert_chunked(logbook.derived.week_exercises, row_docs, CHUNK * 10)
    books = [
        {"_id": record_id(user_id, ex_id), **rebuild(user_id, by_id[ex_id], rows), "rev": 1}
        for ex_id, rows in per_exercise.items()
    ]
    await logbook.records.records.insert_many(books)
    return n_workouts, n_sets


async def timed(client: TestClient[Any, Any], method: str, path: str, n: int, **kw: Any) -> list[float]:
    samples = []
    for i in range(n + WARMUP):
        t0 = time.perf_counter()
        resp = await client.request(method, path, **kw)
        await resp.read()
        elapsed = (time.perf_counter() - t0) * 1000
        if resp.status >= 400:
            raise RuntimeError(f"{method} {path} -> {resp.status}: {await resp.text()}")
        if i >= WARMUP:  # the first few warm caches and connections
            samples.append(elapsed)
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Timing:
    """One endpoint's latencies in ms (None, with ``error`` set, when a request failed)."""

    endpoint: str
    method: str
    path: str
    n: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    max_ms: float | None = None
    error: str | None = None


@dataclass
class Run:
    """One seeded data dir and the endpoints timed on it."""

    requested_sets: int | None  # None: sized by --weeks
    weeks: int
    workouts: int = 0
    sets: int = 0
    seed_s: float = 0.0
    timings: list[Timing] = field(default_factory=list)


def weeks_for(sets: int) -> int:
    """Whole weeks of training holding about ``sets`` sets (at least one week)."""
    return max(1, round(sets / SETS_PER_WEEK))


def cases(
    bench_ex: str, workout_id: str, window_from: str, history_from: bool
) -> list[tuple[str, str, str, Mapping[str, Any]]]:
    """(label, method, path, extra request arguments) of each timed endpoint."""
    history = f"/api/v1/progress/exercises/{bench_ex}?limit=1000"
    set_body = {"exercise_id": bench_ex, "reps": 5, "weight_kg": 80}
    return [
        ("baseline GET /health", "GET", "/health", {}),
        ("GET /progress/records", "GET", "/api/v1/progress/records", {}),
        ("GET /progress/records?exercise_id", "GET", f"/api/v1/progress/records?exercise_id={bench_ex}", {}),
        (
            "GET /progress/exercises/{id} (2 y)",
            "GET",
            f"{history}&from={window_from}" if history_from else history,
            {},
        ),
        ("GET /progress/volume (12 wk)", "GET", "/api/v1/progress/volume", {}),
        ("GET /progress/volume (2 y)", "GET", f"/api/v1/progress/volume?from={window_from}", {}),
        ("GET /progress/summary (12 wk)", "GET", "/api/v1/progress/summary", {}),
        ("GET /progress/summary (2 y)", "GET", f"/api/v1/progress/summary?from={window_from}", {}),
        ("GET /workouts (page of 20)", "GET", "/api/v1/workouts", {}),
        ("POST /workouts/{id}/sets", "POST", f"/api/v1/workouts/{workout_id}/sets", {"json": set_body}),
    ]


async def bench(
    run: Run,
    requests: int,
    *,
    window_weeks: int,
    history_from: bool,
    say: Callable[[str], None],
    progress: Progress | None = None,
) -> None:
    """Seed a fresh data dir with ``run.weeks`` weeks for one user and time every endpoint on it."""
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
            run.workouts, run.sets = await seed(logbook, user_id, run.weeks, progress)
            run.seed_s = time.perf_counter() - t0
            say(f"seeded {run.workouts} workouts, {run.sets} sets for one user in {run.seed_s:.1f} s")
            # As ``fittracker serve`` does once ready: what lives now stays out of the collector's
            # way (and the seeding's garbage, not some request's, pays for this collection).
            prepare_heap_for_serving()

            bench_ex = pick_days(catalog)[0][0]["id"]
            window_from = (date.today() - timedelta(weeks=window_weeks)).isoformat()
            workout = await (await client.post("/api/v1/workouts", json={}, headers=headers)).json()
            for label, method, path, extra in cases(bench_ex, workout["id"], window_from, history_from):
                timing = Timing(label, method, path)
                run.timings.append(timing)
                n = min(requests, MAX_POSTS) if method == "POST" else requests
                try:
                    samples = await timed(client, method, path, n, headers=headers, **extra)
                except RuntimeError as exc:
                    timing.error = str(exc)
                    continue
                timing.n = len(samples)
                timing.p50_ms = statistics.median(samples)
                timing.p99_ms = pct(samples, 0.99)
                timing.max_ms = max(samples)


def print_run(run: Run) -> None:
    """One run as a table: n, p50, p99, max per endpoint."""
    print(f"\n{'endpoint':<40} {'n':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for t in run.timings:
        if t.error is not None or t.p50_ms is None or t.p99_ms is None or t.max_ms is None:
            print(f"{t.endpoint:<40} ERROR {t.error}")
        else:
            print(f"{t.endpoint:<40} {t.n:>5} {t.p50_ms:>8.2f} {t.p99_ms:>8.2f} {t.max_ms:>8.2f}")


def print_growth(runs: list[Run], requests: int) -> None:
    """Every run side by side: p50 and p99 (ms) per endpoint at each size, then seeding."""
    label_w, cell = 36, 8
    group = 2 * cell + 3

    def row(label: str, cells: list[str]) -> str:
        return f"{label:<{label_w}}" + "".join(f" {c:>{group}}" for c in cells)

    print(row("", [f"{f'{r.sets:,} sets':^{group}}" for r in runs]))
    print(row("endpoint", [f"{'p50 ms':>{cell}}   {'p99 ms':>{cell}}" for _ in runs]))
    errors = []
    for i, label in enumerate(t.endpoint for t in runs[0].timings):
        cells = []
        for r in runs:
            t = r.timings[i]
            if t.p50_ms is None or t.p99_ms is None:
                cells.append("ERROR")
                errors.append(f"{r.sets:,} sets, {label}: {t.error}")
            else:
                cells.append(f"{t.p50_ms:>{cell}.2f}   {t.p99_ms:>{cell}.2f}")
        print(row(label, cells))
    print(row("seeding (s)", [f"{r.seed_s:.1f}" for r in runs]))
    print(row("weeks / workouts", [f"{r.weeks:,} / {r.workouts:,}" for r in runs]))
    posts = f"POST: {min(requests, MAX_POSTS)}" if requests > MAX_POSTS else "POST too"
    print(f"\n{requests} timed requests per endpoint ({posts}) after {WARMUP} warm-ups, one at a time;")
    print(f'"2 y" = the last {WINDOW_WEEKS} weeks at every size; one fresh data dir and app per size.')
    for line in errors:
        print(f"ERROR {line}")


def stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def seed_progress(done: int, total: int, elapsed: float) -> None:
    stderr(f"  {done / total:4.0%}  {done:,} of {total:,} sets  {elapsed:6.1f} s")


async def main(requests: int, weeks: int, sets: list[int] | None = None, as_json: bool = False) -> int:
    """Without ``sets``: one run of ``weeks`` weeks; with it, one run per size and one table."""
    if sets is None:
        runs = [Run(None, weeks)]
        # Say when seeding is done, as before; with --json stdout holds only the JSON.
        say = stderr if as_json else print
        await bench(runs[0], requests, window_weeks=weeks, history_from=False, say=say)
        if not as_json:
            print_run(runs[0])
    else:
        runs = []
        for size in sets:
            run = Run(size, weeks_for(size))
            runs.append(run)
            stderr(f"{size:,} sets requested: seeding {run.weeks:,} week{'s' * (run.weeks != 1)} ...")
            progress = seed_progress if size >= PROGRESS_FROM else None
            await bench(
                run, requests, window_weeks=WINDOW_WEEKS, history_from=True, say=stderr, progress=progress
            )
            stderr(f"  timed {len(run.timings)} endpoints")
        if not as_json:
            print_growth(runs, requests)
    if as_json:
        print(json.dumps({"requests": requests, "runs": [asdict(r) for r in runs]}, indent=2))
    return 1 if any(t.error is not None for r in runs for t in r.timings) else 0


def parse_sets(text: str) -> list[int]:
    """``1000,100000,1_000_000`` -> [1000, 100000, 1000000]."""
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of numbers: {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("every size must be at least 1 set")
    return sizes


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="timed requests per endpoint")
    parser.add_argument("--weeks", type=int, help="weeks of history to seed (default 104; not with --sets)")
    parser.add_argument(
        "--sets",
        type=parse_sets,
        help="comma-separated sizes (sets stored for the user), e.g. 1000,100000,1000000: "
        "one fresh data dir per size and one table; default one run sized by --weeks",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.sets is not None and args.weeks is not None:
        parser.error("--weeks and --sets do not go together (--sets picks the weeks)")
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    sys.exit(asyncio.run(main(args.requests, args.weeks or 104, args.sets, args.json)))
