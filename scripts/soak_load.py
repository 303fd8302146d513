"""The load of ``soak.py``: users lifting, reading and listening, at a steady rate.

    .venv/bin/python scripts/soak_load.py --url URL --stats FILE [--users 20] [--rate 150]

Registers ``--users`` users (each following the next two, so that records and finished
workouts notify someone else too), keeps one WebSocket per user open on the live stream
(reconnecting, and resuming after the last message, whenever it drops; new tokens first when
it was closed for an expired one) and paces about ``--rate`` requests per second in all, each
user in turn: 45 % sets logged into the current workout (finished, and a new one started,
every 25 to 35 sets; a few weights creeping up, so records come now and then), 1 % "mark all
read", the rest reads by weight (exercise search, workout list, the current workout, progress
summary, records, volume and one exercise's history, AI recommendations, the inbox and its
unread count). Each user refreshes its tokens every 5 minutes, and after a 401.

The counters (requests by kind and status, errors with a few samples, WebSocket messages by
type, reconnects and why) are written to ``--stats`` as JSON every second, atomically;
``phase`` is ``running`` once every user is signed up and listening, ``done`` at the end,
with latency percentiles. A line on stdin (or its end) stops the load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from bench_common import percentile
from bench_split import register

WS_PATH = "/api/v1/notifications/ws"
EXERCISES = (
    "Barbell_Squat",
    "Barbell_Bench_Press_-_Medium_Grip",
    "Barbell_Deadlift",
    "Standing_Military_Press",
    "Bent_Over_Barbell_Row",
    "Dumbbell_Bicep_Curl",
)
SEARCHES = (
    "q=bench&limit=20",
    "muscle=chest&limit=20",
    "q=squat",
    "equipment=dumbbell&limit=10",
    "q=row&muscle=middle%20back",
    "category=strength&level=beginner&limit=50",
)
REFRESH_EVERY_S = 300.0  # access tokens live 15 minutes
STATS_EVERY_S = 1.0


@dataclass
class Stats:
    """The load's counters, written to a JSON file every second for the parent to read."""

    phase: str = "starting"
    requests: int = 0
    failed: int = 0  # no response: connection error or timeout
    status: Counter[str] = field(default_factory=Counter)
    kinds: Counter[str] = field(default_factory=Counter)
    ws_messages: Counter[str] = field(default_factory=Counter)
    ws_connects: int = 0
    ws_reconnects: int = 0
    ws_open: int = 0
    ws_drops: Counter[str] = field(default_factory=Counter)
    sets: int = 0
    finished: int = 0
    refreshes: int = 0
    error_samples: list[str] = field(default_factory=list)
    ws_open_at_stop: int = 0
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)

    def took(self, kind: str, started: float) -> None:
        self.latencies_ms.setdefault(kind, []).append((time.perf_counter() - started) * 1000)

    def error(self, what: str) -> None:
        if len(self.error_samples) < 10:
            self.error_samples.append(what[:300])

    def snapshot(self) -> dict[str, Any]:
        done = self.phase == "done"  # percentiles at the end only
        by_kind = {kind: sorted(ms) for kind, ms in self.latencies_ms.items()} if done else {}
        ordered = sorted(ms for each in by_kind.values() for ms in each)
        slowest = {
            kind: f"{percentile(ms, 0.5):.0f}/{percentile(ms, 0.99):.0f}"
            for kind, ms in sorted(by_kind.items(), key=lambda kv: -percentile(kv[1], 0.99))
        }
        errors = self.failed + sum(n for code, n in self.status.items() if int(code) >= 400)
        return {
            "phase": self.phase,
            "requests": self.requests,
            "errors": errors,
            "failed": self.failed,
            "status_5xx": sum(n for code, n in self.status.items() if int(code) >= 500),
            "status": dict(sorted(self.status.items())),
            "kinds": dict(self.kinds.most_common()),
            "ws_messages": sum(self.ws_messages.values()),
            "ws_types": dict(self.ws_messages.most_common()),
            "ws_connects": self.ws_connects,
            "ws_reconnects": self.ws_reconnects,
            "ws_open": self.ws_open,
            "ws_drops": dict(self.ws_drops),
            "sets": self.sets,
            "finished": self.finished,
            "refreshes": self.refreshes,
            "error_samples": self.error_samples,
            "ws_open_at_stop": self.ws_open_at_stop,
            "p50_ms": percentile(ordered, 0.5),
            "p99_ms": percentile(ordered, 0.99),
            "p50_p99_ms": slowest,
        }


class User:
    """One lifter: its tokens, current workout, and a request loop paced at ``rate`` per second."""

    def __init__(self, n: int, auth: dict[str, Any], url: str, stats: Stats, refresh_s: float) -> None:
        self.n, self.url, self.stats, self.refresh_s = n, url, stats, refresh_s
        self.id = str(auth["user"]["id"])
        self.token, self.refresh_token = str(auth["access_token"]), str(auth["refresh_token"])
        self.rng = random.Random(n)  # a reproducible mix
        self.lock = asyncio.Lock()
        self.workout = ""
        self.sets_left = self.sets = 0
        self.refreshed_at = time.monotonic()

    async def call(
        self, session: aiohttp.ClientSession, kind: str, method: str, path: str, body: Any = None
    ) -> Any:
        """One request, counted; retried once with fresh tokens after a 401. The JSON, or None."""
        for attempt in (1, 2):
            token = self.token
            if (status := await self.send(session, kind, method, path, body, token)) is None:
                return None
            code, raw = status
            if code == 401 and attempt == 1:
                await self.refresh(session, token)
                continue
            if code >= 400:
                self.stats.error(f"{method} {path}: {code} {raw[:200]!r}")
                return None
            return json.loads(raw) if raw else {}
        return None

    async def send(
        self, session: aiohttp.ClientSession, kind: str, method: str, path: str, body: Any, token: str
    ) -> tuple[int, bytes] | None:
        """One request, counted: its status and body, or None when it got no response."""
        self.stats.requests += 1
        self.stats.kinds[kind] += 1
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        started = time.perf_counter()
        try:
            async with session.request(method, self.url + path, json=body, headers=headers) as resp:
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.stats.failed += 1
            self.stats.error(f"{method} {path}: {type(exc).__name__}: {exc}")
            return None
        self.stats.took(kind, started)
        self.stats.status[str(resp.status)] += 1
        return resp.status, raw

    async def refresh(self, session: aiohttp.ClientSession, stale: str) -> None:
        """New tokens, unless another task of this user already replaced ``stale``."""
        async with self.lock:
            if self.token != stale:
                return
            self.stats.refreshes += 1
            self.refreshed_at = time.monotonic()
            body = {"refresh_token": self.refresh_token}
            got = await self.send(session, "refresh", "POST", "/api/v1/auth/refresh", body, "")
            if got is not None and got[0] == 200:
                pair = json.loads(got[1])
                self.token, self.refresh_token = str(pair["access_token"]), str(pair["refresh_token"])
            elif got is not None:
                self.stats.error(f"POST /api/v1/auth/refresh: {got[0]} {got[1][:200]!r}")

    async def new_workout(self, session: aiohttp.ClientSession) -> None:
        got = await self.call(session, "start workout", "POST", "/api/v1/workouts", {"name": "Soak"})
        self.workout = str(got["id"]) if got else ""
        self.sets_left = self.rng.randint(25, 35)

    async def log_set(self, session: aiohttp.ClientSession) -> None:
        if not self.workout:
            await self.new_workout(session)
            return
        # Few weights and rep counts, up a plate every 1000 sets (minutes): after the first sets, a
        # record (notifying the user and two followers) now and then, not at every set.
        weight = 40 + 2.5 * (self.rng.randint(0, 2) + self.sets // 1000)
        reps, exercise = self.rng.choice((5, 8, 10)), self.rng.choice(EXERCISES)
        body = {"exercise_id": exercise, "reps": reps, "weight_kg": weight}
        if await self.call(session, "log set", "POST", f"/api/v1/workouts/{self.workout}/sets", body):
            self.stats.sets += 1
            self.sets += 1
        self.sets_left -= 1
        if self.sets_left <= 0:
            if await self.call(session, "finish workout", "POST", f"/api/v1/workouts/{self.workout}/finish"):
                self.stats.finished += 1
            self.workout = ""

    async def read(self, session: aiohttp.ClientSession) -> None:
        """One of the reads, by weight."""
        rng = self.rng
        choices = [
            ("search", f"/api/v1/exercises?{rng.choice(SEARCHES)}", 10),
            ("workout list", "/api/v1/workouts?limit=20", 8),
            ("workout", f"/api/v1/workouts/{self.workout}" if self.workout else "/api/v1/workouts", 5),
            ("progress summary", "/api/v1/progress/summary", 6),
            ("records", "/api/v1/progress/records", 6),
            ("volume", "/api/v1/progress/volume", 3),
            ("history", f"/api/v1/progress/exercises/{rng.choice(EXERCISES)}", 3),
            ("recommendations", "/api/v1/ai/recommendations", 4),
            ("inbox", "/api/v1/notifications?limit=20", 6),
            ("unread count", "/api/v1/notifications/unread-count", 3),
        ]
        kind, path, _ = rng.choices(choices, weights=[w for *_, w in choices])[0]
        await self.call(session, kind, "GET", path)

    async def act(self, session: aiohttp.ClientSession) -> None:
        if time.monotonic() - self.refreshed_at > self.refresh_s:
            await self.refresh(session, self.token)
        roll = self.rng.random()
        if roll < 0.45:
            await self.log_set(session)
        elif roll < 0.46:
            await self.call(session, "read all", "POST", "/api/v1/notifications/read-all")
        else:
            await self.read(session)

    async def run(self, session: aiohttp.ClientSession, rate: float, stop: asyncio.Event) -> None:
        interval = 1.0 / rate
        next_at = time.monotonic() + self.rng.uniform(0, interval)  # spread the users' starts
        while not stop.is_set():
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            await self.act(session)
            next_at += interval
            next_at = max(next_at, time.monotonic() - 1.0)  # behind: no burst to catch up

    async def listen(self, session: aiohttp.ClientSession, stop: asyncio.Event) -> None:
        """The user's live stream, reconnected (resuming after the last message) whenever it drops."""
        stats, last_id = self.stats, ""
        timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0)
        while not stop.is_set():
            token = self.token
            query = f"?access_token={token}" + (f"&last_event_id={last_id}" if last_id else "")
            reason = ""
            try:
                async with session.ws_connect(self.url + WS_PATH + query, timeout=timeout) as ws:
                    stats.ws_connects += 1
                    stats.ws_open += 1
                    try:
                        async for msg in ws:
                            if msg.type != aiohttp.WSMsgType.TEXT:
                                continue
                            message = json.loads(msg.data)
                            kind = str(message.get("type"))
                            if kind == "notification":  # by the notification's own type
                                kind = str((message.get("data") or {}).get("type", kind))
                            stats.ws_messages[kind] += 1
                            if message.get("id") is not None:
                                last_id = str(message["id"])
                    finally:
                        stats.ws_open -= 1
                    reason = f"closed {ws.close_code}"
            except aiohttp.WSServerHandshakeError as exc:
                reason = f"handshake {exc.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
            if stop.is_set():
                return
            stats.ws_reconnects += 1
            stats.ws_drops[reason] += 1
            if reason in ("closed 4001", "handshake 401"):  # the token expired or was revoked
                await self.refresh(session, token)
            await asyncio.sleep(0.5)


def write_stats(path: Path, stats: Stats) -> None:
    part = path.with_suffix(".part")
    part.write_text(json.dumps(stats.snapshot()), encoding="utf-8")
    os.replace(part, path)


async def load(
    url: str, users: int, rate: float, stats_file: Path, refresh_s: float = REFRESH_EVERY_S
) -> None:
    """Sign up, follow, connect, then load until stdin says ``stop`` (or closes)."""
    stats = Stats()
    stop = asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as http,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as sockets,
    ):
        gate = asyncio.Semaphore(4)

        async def sign_up(n: int) -> User:
            async with gate:
                return User(n, await register(url, n, http), url, stats, refresh_s)

        people = await asyncio.gather(*(sign_up(n + 1) for n in range(users)))
        for person in people:  # each follows the next two: social notifications flow
            for other in {people[(person.n) % users], people[(person.n + 1) % users]} - {person}:
                await person.call(http, "follow", "POST", f"/api/v1/users/{other.id}/follow")
        listeners = [asyncio.create_task(p.listen(sockets, stop)) for p in people]
        for _ in range(300):  # every stream open first (or 30 s gone): the parent's baseline
            if stats.ws_open >= users:
                break
            await asyncio.sleep(0.1)
        stats.phase = "running"
        write_stats(stats_file, stats)
        loops = [asyncio.create_task(p.run(http, rate / users, stop)) for p in people]

        async def until_stopped() -> None:
            await asyncio.to_thread(sys.stdin.readline)  # "stop", or EOF when the parent is gone
            stop.set()

        waiter = asyncio.create_task(until_stopped())
        while not stop.is_set():
            write_stats(stats_file, stats)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), STATS_EVERY_S)
        stats.ws_open_at_stop = stats.ws_open
        await asyncio.wait(loops, timeout=30.0)  # the requests in flight end
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        await waiter
    stats.phase = "done"
    write_stats(stats_file, stats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rate", type=float, default=150.0, help="requests per second, all users")
    parser.add_argument("--stats", type=Path, required=True, help="the JSON file of the counters")
    parser.add_argument("--refresh-s", type=float, default=REFRESH_EVERY_S, help="token refresh period")
    args = parser.parse_args()
    run = load(args.url, max(1, args.users), max(0.1, args.rate), args.stats, max(1.0, args.refresh_s))
    try:
        import uvloop

        uvloop.run(run)
    except ImportError:  # pragma: no cover - uvloop is a dependency of the server
        asyncio.run(run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
