"""The moving parts of the split-mode chaos test (tests/api/test_split_faults.py).

Load (reads and writes per user), live WebSocket listeners that resume after every drop, a
monitor of ``/health/services`` and a killer that SIGKILLs workers. Each part only records
what it saw (statuses with their timing, stream ids, kills and when the replacement was
ready); the test checks those records against the server's state at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from tests.deployments import SplitServer
from tests.helpers import DEFAULT_PASSWORD, auth

BENCH = "Barbell_Bench_Press_-_Medium_Grip"
WS = "/api/v1/notifications/ws"
MULTI = ("workouts", "notifications")  # two workers each in SPLIT_CONFIG
SINGLE = ("users", "ai")  # one worker each
# The supervisor's default guard: a slot that crashes more than 5 times within 60 s rests
# for 5 minutes, by design. The killer stays under it so every worker comes back.
CRASH_LOOP_LIMIT = 5
CRASH_LOOP_WINDOW_S = 60.0
SETS_PER_WORKOUT = 12
# At most 4 writes a second per lane, and 250 in a run however long: on a fast machine too,
# a user's stream stays within what the notifications plug-in keeps (1000 entries), so a
# resume can always replay.
MAX_WRITES_PER_S = 4.0
MAX_WRITES = 250
READ_PAUSE_S = 0.02


def slot_of(upstream_id: str) -> str:
    """``workouts-2`` of the upstream ``workouts-2-7`` (slot, generation)."""
    return upstream_id.rsplit("-", 1)[0]


@dataclass
class Call:
    """One HTTP request of the load and what came back."""

    method: str
    plugin: str
    what: str
    status: int  # 0: the request to the router itself failed
    started: float
    ended: float
    retry_after: str | None = None
    detail: str = ""


@dataclass
class Kill:
    at: float
    plugin: str
    slot: str
    pid: int
    back_at: float | None = None  # when a ready replacement was first seen


@dataclass
class SetWrite:
    call: Call
    workout_id: str
    marker: int  # the set's duration_s: unique per user, to find a set whose answer was lost
    set_id: str | None  # from its 201
    payload: dict[str, Any] = field(default_factory=dict)
    retried_id: str | None = None  # from the 201 of its retry, once the workers were back

    @property
    def key(self) -> str:
        return set_key(self.marker)


def set_key(marker: int) -> str:
    """A set write's Idempotency-Key: a retry of a 503'd set must not log it twice."""
    return f"chaos-set-{marker}"


@dataclass
class User:
    index: int
    user_id: str
    token: str
    workout_ids: list[str] = field(default_factory=list)  # acknowledged (201)
    sets: list[SetWrite] = field(default_factory=list)
    finishes: list[tuple[Call, str]] = field(default_factory=list)
    profiles: list[tuple[Call, float]] = field(default_factory=list)  # (call, weight_kg sent)

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)

    def acknowledged_sets(self) -> dict[str, str]:
        """Set id -> workout id of every set answered with 201."""
        return {w.set_id: w.workout_id for w in self.sets if w.set_id is not None}


class Client:
    """One HTTP client session against the router, recording every call."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.calls: list[Call] = []

    async def call(
        self,
        method: str,
        path: str,
        plugin: str,
        what: str,
        user: User,
        json: Any = None,
        key: str | None = None,
    ) -> tuple[Call, Any]:
        started = time.monotonic()
        body: Any = None
        headers = {**user.headers, "Idempotency-Key": key} if key else user.headers
        try:
            async with self.session.request(method, self.base + path, json=json, headers=headers) as resp:
                raw = await resp.read()
                if raw and "json" in (resp.content_type or ""):
                    body = await resp.json()
                status, retry_after = resp.status, resp.headers.get("Retry-After")
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            status, retry_after, body = 0, None, {"detail": f"{type(exc).__name__}: {exc}"}
        detail = body.get("detail", "") if isinstance(body, dict) and status >= 400 else ""
        call = Call(method, plugin, what, status, started, time.monotonic(), retry_after, str(detail))
        self.calls.append(call)
        return call, body


async def register(session: aiohttp.ClientSession, base: str, index: int) -> User:
    body = {
        "email": f"chaos-{index}-{uuid.uuid4().hex[:8]}@example.com",
        "password": DEFAULT_PASSWORD,
        "name": f"Chaos {index}",
    }
    async with session.post(f"{base}/api/v1/auth/register", json=body) as resp:
        assert resp.status == 201, await resp.text()
        reg = await resp.json()
    return User(index, reg["user"]["id"], reg["access_token"])


# --- load ----------------------------------------------------------------------------------


async def reads(client: Client, user: User, rng: random.Random, stop_at: float) -> None:
    """Reads of every plug-in: mostly workouts and notifications (two workers each), some
    users and ai (one worker each)."""
    while time.monotonic() < stop_at:
        pick = rng.random()
        if pick < 0.25:
            await client.call("GET", "/api/v1/exercises?q=bench&limit=5", "workouts", "search", user)
        elif pick < 0.45 and user.workout_ids:
            workout_id = user.workout_ids[-1]
            await client.call("GET", f"/api/v1/workouts/{workout_id}", "workouts", "workout", user)
        elif pick < 0.65:
            await client.call("GET", "/api/v1/progress/records", "workouts", "records", user)
        elif pick < 0.8:
            await client.call("GET", "/api/v1/notifications?limit=5", "notifications", "inbox", user)
        elif pick < 0.92:
            await client.call("GET", "/api/v1/profiles/me", "users", "profile", user)
        else:
            await client.call("GET", "/api/v1/ai/recovery", "ai", "recovery", user)
        await asyncio.sleep(READ_PAUSE_S)


async def writes(client: Client, user: User, stop_at: float, lane: int = 0) -> None:
    """A user's writes, one after another: workouts of warm-up sets with a working set now and
    then (a new record each time), finished after a dozen sets; lane 0 also updates the
    profile every 7th turn. Lanes of one user run side by side, each on its own workouts."""
    workout_id: str | None = None
    in_workout = working = 0
    turn = lane * 20_000  # set markers (duration_s) stay unique per user across lanes
    every_s = max(1 / MAX_WRITES_PER_S, (stop_at - time.monotonic()) / MAX_WRITES)
    while (began := time.monotonic()) < stop_at:
        turn += 1
        if workout_id is None:
            call, body = await client.call("POST", "/api/v1/workouts", "workouts", "start", user, {})
            if call.status == 201:
                workout_id = body["id"]
                user.workout_ids.append(body["id"])
                in_workout = 0
        elif in_workout >= SETS_PER_WORKOUT:
            path = f"/api/v1/workouts/{workout_id}/finish"
            call, _ = await client.call("POST", path, "workouts", "finish", user)
            user.finishes.append((call, workout_id))
            workout_id = None  # finished or not (a 503), the next sets go to a new workout
        elif lane == 0 and turn % 7 == 0:
            weight = round(40 + turn * 0.1, 1)
            call, _ = await client.call(
                "PATCH", "/api/v1/profiles/me", "users", "profile update", user, {"weight_kg": weight}
            )
            user.profiles.append((call, weight))
        else:
            in_workout += 1
            heavy = turn % 10 == 0
            working += heavy
            payload = {
                "exercise_id": BENCH,
                "reps": 5 if heavy else 10,
                "weight_kg": 40.0 + 2.5 * working if heavy else 20.0,
                "set_type": "normal" if heavy else "warmup",
                "duration_s": turn,
            }
            path = f"/api/v1/workouts/{workout_id}/sets"
            call, body = await client.call("POST", path, "workouts", "set", user, payload, set_key(turn))
            set_id = body["id"] if call.status == 201 else None
            user.sets.append(SetWrite(call, workout_id, turn, set_id, payload))
        await asyncio.sleep(max(0.0, began + every_s - time.monotonic()))


# --- live stream ---------------------------------------------------------------------------


@dataclass
class Listener:
    """One WebSocket client of a user: reconnects with ``last_event_id`` after every drop."""

    user: User
    name: str
    start: int | None = None  # where the stream stood when it first connected
    last: int | None = None  # the last stream id received
    seen: list[int] = field(default_factory=list)
    set_ids: set[str] = field(default_factory=set)  # of the workout.set_logged messages
    connects: int = 0
    handshake_failures: list[int] = field(default_factory=list)
    replayed: int = 0
    problems: list[str] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: bool = False
    ws: aiohttp.ClientWebSocketResponse | None = None

    def take(self, message: dict[str, Any]) -> None:
        if message["id"] is None:
            data = message["data"]
            if message["type"] == "ready":
                if self.start is not None:
                    self.problems.append(f"a fresh stream on a resume: {message}")
                self.start = self.last = int(data["last_event_id"])
                self.ready.set()
            elif message["type"] == "recovery":
                if not data.get("recovered"):
                    self.problems.append(f"could not resume after {self.last}: {data}")
                self.replayed += int(data.get("replayed", 0))
            elif message["type"] == "error":
                self.problems.append(f"error message: {data}")
            return
        seq = int(message["id"])
        if self.last is not None and seq <= self.last:
            self.problems.append(f"stream id {seq} after {self.last} (duplicate or out of order)")
            return
        self.seen.append(seq)
        self.last = seq
        item = message["data"]
        if message["type"] == "progress" and item.get("type") == "workout.set_logged":
            self.set_ids.add(item["data"]["set"]["id"])

    async def run(self, session: aiohttp.ClientSession, base: str) -> None:
        while not self.stopping:
            query = "" if self.last is None else f"?last_event_id={self.last}"
            try:
                ws = await session.ws_connect(base + WS + query, headers=self.user.headers, heartbeat=5.0)
            except aiohttp.WSServerHandshakeError as exc:
                self.handshake_failures.append(exc.status)
                await asyncio.sleep(0.2)
                continue
            except (aiohttp.ClientError, OSError) as exc:
                self.handshake_failures.append(0)
                self.problems.append(f"could not reach the router: {exc!r}")
                await asyncio.sleep(0.2)
                continue
            self.ws = ws
            self.connects += 1
            async with ws:
                async for msg in ws:
                    if msg.type != WSMsgType.TEXT:
                        break
                    self.take(msg.json())
            self.ws = None

    async def caught_up(self, stream_id: int, within_s: float) -> None:
        """Wait until this client received ``stream_id`` (or later)."""
        await eventually(
            lambda: (self.last or 0) >= stream_id,
            within_s,
            lambda: f"{self.name} stopped at {self.last}, the stream is at {stream_id}",
        )

    async def stop(self) -> None:
        self.stopping = True
        if self.ws is not None:
            await self.ws.close()


async def stored_stream(session: aiohttp.ClientSession, base: str, user: User, after: int) -> list[int]:
    """The ids of every stored stream entry after ``after``: a resume's replay."""
    ids: list[int] = []
    async with session.ws_connect(f"{base}{WS}?last_event_id={after}", headers=user.headers) as ws:
        while True:
            message = await ws.receive_json(timeout=10)
            if message["type"] == "recovery":
                assert message["data"]["recovered"], message
                return ids
            ids.append(int(message["id"]))


# --- workers -------------------------------------------------------------------------------


class Monitor:
    """Polls ``/health/services``: the workers now, and when each killed one was replaced."""

    def __init__(self, session: aiohttp.ClientSession, base: str) -> None:
        self.session = session
        self.base = base
        self.workers: dict[str, list[dict[str, Any]]] = {}
        self.kills: list[Kill] = []

    async def poll(self) -> None:
        async with self.session.get(self.base + "/health/services") as resp:
            services = (await resp.json())["services"]
        now = time.monotonic()
        self.workers = {name: services[name]["workers"] for name in (*MULTI, *SINGLE)}
        for kill in self.kills:
            if kill.back_at is None and any(
                slot_of(w["id"]) == kill.slot and w["state"] == "ready" and w["pid"] != kill.pid
                for w in self.workers[kill.plugin]
            ):
                kill.back_at = now

    def ready(self, plugin: str) -> list[dict[str, Any]]:
        return [w for w in self.workers[plugin] if w["state"] == "ready"]

    async def run(self, stop_at: float) -> None:
        while time.monotonic() < stop_at:
            await self.poll()
            await asyncio.sleep(0.2)

    async def until_all_ready(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while True:
            await self.poll()
            if all(w["state"] == "ready" for workers in self.workers.values() for w in workers) and all(
                kill.back_at is not None for kill in self.kills
            ):
                return
            assert time.monotonic() < deadline, f"workers not all back: {self.workers}"
            await asyncio.sleep(0.2)

    def down(self, plugin: str, started: float, ended: float) -> bool:
        """Whether ``plugin`` had a killed worker not yet replaced at some time in [started, ended]."""
        return any(
            kill.plugin == plugin and kill.at <= ended and (kill.back_at is None or kill.back_at >= started)
            for kill in self.kills
        )


async def killer(
    server: SplitServer, monitor: Monitor, rng: random.Random, stop_at: float, single_every: int = 5
) -> None:
    """Every 2-5 s, SIGKILL a random ready worker: of workouts or notifications while another
    of its workers is ready, or (every ``single_every``-th kill) the only users or ai worker."""
    while True:
        pause = rng.uniform(2.0, 5.0)
        if time.monotonic() + pause >= stop_at:
            return
        await asyncio.sleep(pause)
        now = time.monotonic()
        await monitor.poll()
        plugins = SINGLE if (len(monitor.kills) + 1) % single_every == 0 else MULTI
        victims: dict[str, list[dict[str, Any]]] = {}
        for plugin in plugins:
            ready = monitor.ready(plugin)
            if plugin in MULTI and len(ready) < 2:
                continue
            for worker in ready:
                slot = slot_of(worker["id"])
                recent = [k for k in monitor.kills if k.slot == slot and now - k.at < CRASH_LOOP_WINDOW_S]
                if len(recent) < CRASH_LOOP_LIMIT:
                    victims.setdefault(plugin, []).append(worker)
        if not victims:
            continue
        plugin = rng.choice(sorted(victims))
        worker = rng.choice(sorted(victims[plugin], key=lambda w: str(w["id"])))
        pid = int(worker["pid"])
        if pid not in await asyncio.to_thread(server.worker_pids, plugin):  # only our server's
            continue
        monitor.kills.append(Kill(time.monotonic(), plugin, slot_of(worker["id"]), pid))
        os.kill(pid, signal.SIGKILL)


async def gather_until_done(*tasks: Awaitable[Any]) -> None:
    """Run the load tasks together; the first failure cancels the rest."""
    running = [asyncio.ensure_future(t) for t in tasks]
    try:
        await asyncio.gather(*running)
    finally:
        for task in running:
            task.cancel()
        for task in running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


Check = Callable[[], bool]


async def eventually(check: Check, within_s: float, what: Callable[[], str]) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, what()
        await asyncio.sleep(0.2)
