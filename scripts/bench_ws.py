"""10,000 live WebSockets on ONE notifications worker, and one notification fanned out to all.

    .venv/bin/python scripts/bench_ws.py [--connections 10000] [--clients 4] [--json]

Scenario E of issue #7. Starts ``fittracker serve`` in split mode (notifications ``mode =
"process"``, ``workers = 1``; users in-process; rate limits off) on a fresh data dir, registers
200 users and an admin (``fittracker users create-admin``), then spawns ``--clients`` client
processes (this file re-run with ``--role client``). Each opens its share of the connections
to ``GET /api/v1/notifications/ws?access_token=...`` through the router (50 per user, in
batches), counts one as connected when its ``ready`` message arrives, and tells the parent.
With every connection open, the parent records the RSS of the notifications worker and of the
router (the router relays each WebSocket, so it holds two sockets per connection), notes the
wall-clock time and POSTs ONE admin bulk send (``/api/v1/notifications/bulk``) to the 200
users: every connection should receive that ``notification``. Each client records, per
connection, when it arrived; delivery latency = arrival - trigger (``time.time()``, same
machine). Prints p50 / p99 / max of the delivery, how many of the connections got it within
``--timeout`` seconds, and the memory per connection (target: <= 30 KB on the worker). Once
connected, each client process freezes its heap and turns its garbage collector off, so that
the measuring side adds no collection pauses of its own to the delivery times.

The open-file limit is raised (soft to hard, and hard too when running as root) before
anything is spawned, so that the server, its worker and the clients inherit it. Timings are
reported, never asserted; every process started here is stopped before the script exits
(errors and Ctrl-C included) and the temporary directory is removed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import aiohttp
from bench_common import Row, open_files, percentile, report, rss_mb
from bench_router import free_port
from bench_split import (
    FAST_HASHING,
    FITTRACKER,
    PASSWORD,
    ROOT,
    children,
    clean_env,
    register,
    running,
    serve_argv,
    wait_workers,
)

WS_PATH = "/api/v1/notifications/ws"
BULK_PATH = "/api/v1/notifications/bulk"
USERS = 200
CLIENTS = 4
HANDSHAKES_IN_FLIGHT = 32  # per client process
TITLE = "Bench fan-out"
ADMIN_EMAIL = "bench-admin@example.com"


# -- open files ---------------------------------------------------------------------------


def raise_nofile(wanted: int) -> int:
    """Raise RLIMIT_NOFILE for us and every process we spawn; the soft limit reached."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:  # root (CAP_SYS_RESOURCE) may raise the hard limit too, up to fs.nr_open
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            pass
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def worker_pid(serve_pid: int, plugin: str) -> int:
    """The pid of ``serve_pid``'s worker process for ``plugin`` (from /proc)."""
    for pid in children(serve_pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in argv and plugin.encode() in argv:
            return pid
    raise RuntimeError(f"no {plugin} worker under process {serve_pid}")


# -- the client processes -----------------------------------------------------------------


async def client(url: str, tokens: list[str], per_user: int, timeout_s: float, unix: str = "") -> None:
    """Open ``per_user`` sockets for each token, report, then record the broadcast's arrivals.

    Talks to the parent in JSON lines: prints ``{"connected", "failed", "errors"}`` once every
    connection was tried, reads ``go`` from stdin once the event was triggered, and prints
    ``{"arrivals": [...], "closed": n}`` when every open socket has the message or
    ``timeout_s`` has passed since ``go``.
    """
    total = len(tokens) * per_user
    arrivals: list[float | None] = [None] * total
    opened: list[bool] = [False] * total
    closed = attempted = 0
    errors: Counter[str] = Counter()
    all_tried, all_arrived = asyncio.Event(), asyncio.Event()
    waiting = 0
    gate = asyncio.Semaphore(HANDSHAKES_IN_FLIGHT)
    timeout = aiohttp.ClientTimeout(total=None, connect=60.0, sock_connect=60.0, sock_read=None)
    connector: aiohttp.BaseConnector = (
        aiohttp.UnixConnector(path=unix, limit=0, force_close=True)
        if unix
        else aiohttp.TCPConnector(limit=0, force_close=True)
    )
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        def tried() -> None:
            nonlocal attempted
            attempted += 1
            if attempted == total:
                all_tried.set()

        async def one(n: int, token: str) -> None:
            nonlocal closed, waiting
            async with gate:
                try:
                    ws = await session.ws_connect(
                        f"{url}{WS_PATH}?access_token={token}",
                        autoping=True,
                        heartbeat=None,
                        timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=5.0),
                    )
                except aiohttp.WSServerHandshakeError as exc:
                    errors[f"handshake {exc.status}"] += 1
                    return tried()
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                    return tried()
                try:
                    first = await ws.receive(timeout=60.0)
                except TimeoutError:
                    first = None
                if first is None or first.type != aiohttp.WSMsgType.TEXT or _kind(first.data) != "ready":
                    errors["no ready message" if first is None else f"first message: {first.data!s:.60}"] += 1
                    await ws.close()
                    return tried()
            opened[n] = True
            waiting += 1
            tried()
            async for msg in ws:
                received = time.time()  # on receipt: the check below is the client's own cost
                if msg.type == aiohttp.WSMsgType.TEXT and arrivals[n] is None and _is_broadcast(msg.data):
                    arrivals[n] = received
                    waiting -= 1
                    if waiting == 0 and all_tried.is_set():
                        all_arrived.set()
            if arrivals[n] is None:  # closed by the server before the message came
                closed += 1
                waiting -= 1
                if waiting == 0 and all_tried.is_set():
                    all_arrived.set()

        pending = [
            asyncio.create_task(one(n, token))
            for n, token in enumerate(t for t in tokens for _ in range(per_user))
        ]
        await all_tried.wait()
        connected = sum(opened)
        report = {"connected": connected, "failed": total - connected, "errors": dict(errors)}
        print(json.dumps(report), flush=True)
        if waiting == 0:
            all_arrived.set()
        # The measuring side must not add pauses of its own: a full collection over thousands
        # of client sockets would be counted as delivery time. This process ends after the run.
        gc.collect()
        gc.freeze()
        gc.disable()
        line = await asyncio.to_thread(sys.stdin.readline)
        if line.strip() == "go":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_arrived.wait(), timeout_s)
        print(json.dumps({"arrivals": [a for a in arrivals if a is not None], "closed": closed}), flush=True)
        del pending  # the reading tasks end with the process
    # Leaving: the OS closes the sockets; the server sees the peers go.


def _kind(raw: str) -> Any:
    message = json.loads(raw)
    return message.get("type") if isinstance(message, dict) else None


def _is_broadcast(raw: str) -> bool:
    if TITLE not in raw:  # most messages are not it: no parse
        return False
    message = json.loads(raw)
    return bool(message.get("type") == "notification" and message["data"].get("title") == TITLE)


def run_client(args: argparse.Namespace) -> None:
    tokens: list[str] = json.loads(Path(args.tokens).read_text(encoding="utf-8"))
    try:
        import uvloop

        uvloop.run(client(args.url, tokens, args.per_user, args.timeout, args.unix))
    except ImportError:  # pragma: no cover - uvloop is a dependency of the server
        asyncio.run(client(args.url, tokens, args.per_user, args.timeout, args.unix))
    os._exit(0)  # no orderly close of thousands of sockets: the parent is waiting


class Client:
    """One client process, talking JSON lines over its stdin/stdout."""

    def __init__(
        self, url: str, unix: str, tokens: list[str], per_user: int, timeout_s: float, tmp: Path, n: int
    ) -> None:
        tokens_file = tmp / f"tokens-{n}.json"
        tokens_file.write_text(json.dumps(tokens), encoding="utf-8")
        self.log = (tmp / f"client-{n}.log").open("wb")
        self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter running this very file
            [sys.executable, __file__, "--role", "client", "--url", url, "--tokens", str(tokens_file),
             "--per-user", str(per_user), "--timeout", str(timeout_s), "--unix", unix],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
            text=True, cwd=ROOT, start_new_session=True,
        )  # fmt: skip

    def read(self) -> dict[str, Any]:
        stdout: IO[str] | None = self.proc.stdout
        assert stdout is not None
        line = stdout.readline()
        if not line:
            raise RuntimeError(f"a client process ended early (exit {self.proc.wait()}); see {self.log.name}")
        result: dict[str, Any] = json.loads(line)
        return result

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()


# -- the parent ---------------------------------------------------------------------------


async def sign_up_all(url: str, count: int) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(8)
    async with aiohttp.ClientSession() as session:

        async def one(n: int) -> dict[str, Any]:
            async with gate:
                return await register(url, n + 1, session)

        return await asyncio.gather(*(one(n) for n in range(count)))


def make_admin(config: Path, data: Path) -> None:
    for attempt in range(3):  # the CLI shares the users database with the running server
        done = subprocess.run(  # noqa: S603 - a fixed argument list
            [str(FITTRACKER), "users", "create-admin", "--email", ADMIN_EMAIL, "--password", PASSWORD,
             "--config", str(config), "--data-dir", str(data)],
            capture_output=True, text=True, cwd=ROOT, env=clean_env(FITTRACKER_PLUGINS="users"), timeout=60,
        )  # fmt: skip
        if done.returncode == 0:
            return
        time.sleep(1.0 + attempt)
    raise RuntimeError(f"fittracker users create-admin failed ({done.returncode}): {done.stderr[-2000:]}")


async def login(url: str, email: str) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url + "/api/v1/auth/login", json={"email": email, "password": PASSWORD}) as resp,
    ):
        if resp.status != 200:
            raise RuntimeError(f"admin login: {resp.status} {await resp.text()}")
        return str((await resp.json())["access_token"])


async def trigger(url: str, unix: str, admin_token: str, user_ids: list[str]) -> tuple[float, str]:
    """POST the bulk send through the router, or straight to the worker's socket when the router
    refuses it; the wall-clock time just before the accepted POST, and what the router said."""
    body = {"audience": {"user_ids": user_ids}, "category": "coaching", "title": TITLE, "body": "One to all"}
    headers = {"Authorization": f"Bearer {admin_token}"}
    timeout = aiohttp.ClientTimeout(total=10.0)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout) as session:
        started = time.time()
        try:
            async with session.post(url + BULK_PATH, json=body) as resp:
                if resp.status == 202:
                    return started, ""
                problem = await resp.json(content_type=None)
                refusal = f"{resp.status} {problem.get('detail', '') if isinstance(problem, dict) else ''}"
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            refusal = f"{type(exc).__name__}: {exc}"
    connector = aiohttp.UnixConnector(path=unix)
    async with aiohttp.ClientSession(headers=headers, timeout=timeout, connector=connector) as session:
        started = time.time()
        async with session.post("http://localhost" + BULK_PATH, json=body) as resp:
            if resp.status != 202:
                raise RuntimeError(f"bulk send refused by the worker too: {resp.status} {await resp.text()}")
    return started, refusal


async def worker_of(url: str, plugin: str) -> dict[str, Any]:
    """The plug-in's first worker as ``/health/services`` describes it (pid, url, state)."""
    async with aiohttp.ClientSession() as session, session.get(url + "/health/services") as resp:
        worker: dict[str, Any] = (await resp.json())["services"][plugin]["workers"][0]
        return worker


def run_ws(
    connections: int = 10_000, *, via: str = "router", clients: int = CLIENTS, timeout_s: float = 60.0
) -> list[Row]:
    """Scenario E: ``connections`` WebSockets on one notifications worker, one broadcast to all.

    ``via="router"`` connects the clients to ``fittracker serve``, which relays every
    WebSocket to the worker; ``via="worker"`` connects them straight to the worker's Unix
    socket, leaving the router out of the socket path. No internal secret is set, so the bulk
    send can go straight to the worker when the router refuses it.
    """
    if via not in ("router", "worker"):
        raise ValueError("via is 'router' or 'worker'")
    users = min(USERS, connections)
    per_user = max(1, -(-connections // users))  # ceil
    connections = users * per_user
    limit = raise_nofile(2 * connections + 4096)
    needed = (2 if via == "router" else 1) * connections + 100  # the router holds two per WebSocket
    if limit < needed:
        print(
            f"E via {via}: the open-file limit is {limit} (hard limit, cannot be raised here); "
            f"{connections} WebSockets need about {needed} in the {via}",
            file=sys.stderr,
        )
    with tempfile.TemporaryDirectory(prefix="fittracker-bench-ws-") as name:
        tmp = Path(name)
        data, config, port = tmp / "data", tmp / "ws.toml", free_port()
        config.write_text(
            f'[ratelimit]\nenabled = false\n\n[log]\nlevel = "WARNING"\n\n[internal]\nsecret = ""\n\n'
            f'[users]\nmode = "inprocess"\n{FAST_HASHING}\n[notifications]\nmode = "process"\nworkers = 1\n',
            encoding="utf-8",
        )
        url = f"http://127.0.0.1:{port}"
        spawned: list[Client] = []
        with running(
            "server",
            serve_argv(config, data, port),
            tmp / "server.log",
            r"listening on http://",
            env=clean_env(FITTRACKER_PLUGINS="users,notifications"),
        ) as (server, _):
            try:
                asyncio.run(wait_workers(url, "notifications", 1))
                worker = worker_pid(server.pid, "notifications")
                described = asyncio.run(worker_of(url, "notifications"))
                socket_path = str(described["url"]).removeprefix("unix://")
                unix = socket_path if via == "worker" else ""
                people = asyncio.run(sign_up_all(url, users))
                make_admin(config, data)
                admin_token = asyncio.run(login(url, ADMIN_EMAIL))
                time.sleep(1.0)  # settle: start-up work done before the "before" RSS
                before = {"worker": rss_mb(worker), "router": rss_mb(server.pid)}

                tokens = [str(p["access_token"]) for p in people]
                shares = [tokens[n::clients] for n in range(clients)]
                connect_started = time.monotonic()
                target = "http://localhost" if unix else url
                for n, share in enumerate(shares):
                    if share:  # appended one by one: an interruption still stops those started
                        spawned.append(Client(target, unix, share, per_user, timeout_s, tmp, n))
                reports = [c.read() for c in spawned]
                connect_s = time.monotonic() - connect_started
                connected = sum(int(r["connected"]) for r in reports)
                failures: Counter[str] = Counter()
                for r in reports:
                    failures.update(r["errors"])
                print(
                    f"E via {via}: {connected} of {connections} connected in {connect_s:.1f} s; "
                    f"failures: {dict(failures) or 'none'}",
                    file=sys.stderr,
                )
                time.sleep(2.0)  # let the last handshakes' buffers settle before measuring
                after = {"worker": rss_mb(worker), "router": rss_mb(server.pid)}
                fds = {"worker": open_files(worker), "router": open_files(server.pid)}

                user_ids = [str(p["user"]["id"]) for p in people]
                started, refused = asyncio.run(trigger(url, socket_path, admin_token, user_ids))
                for c in spawned:
                    c.go()
                results = [c.read() for c in spawned]
            finally:
                for c in spawned:
                    c.stop()

    latencies = sorted((a - started) * 1000 for r in results for a in r["arrivals"])
    delivered = len(latencies)
    closed = sum(int(r["closed"]) for r in results)

    def per_connection(key: str) -> float:
        return round((after[key] - before[key]) * 1024 / connected, 1) if connected else float("nan")

    extra: dict[str, Any] = {
        "path": "client -> router -> worker" if via == "router" else "client -> worker (Unix socket)",
        "connected": connected,
        "delivered": delivered,
        "kb_per_connection_worker": per_connection("worker"),
        "kb_per_connection_router": per_connection("router"),
        "max_ms": round(latencies[-1], 1) if latencies else float("nan"),
        "rss_mb_worker_router_before": f"{before['worker']:.1f} / {before['router']:.1f}",
        "rss_mb_worker_router_connected": f"{after['worker']:.1f} / {after['router']:.1f}",
        "open_files_worker_router": f"{fds['worker']} / {fds['router']} (limit {limit})",
        "connect_all_s": round(connect_s, 1),
    }
    if failures:
        extra["connect_errors"] = dict(failures.most_common(5))
    if closed:
        extra["closed_before_delivery"] = closed
    if refused:
        extra["bulk_post_refused_by_router"] = f"{refused} (sent to the worker's socket instead)"
    size = f"{connections // 1000}k" if connections >= 1000 and connections % 1000 == 0 else str(connections)
    name = f"E {size} WebSockets fan-out" if via == "router" else f"E {size} WebSockets, no router"
    row = Row(
        name,
        float("nan"),
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        connections - delivered,
        after["worker"],
        "target <= 30 KB/connection (worker)",
    )
    row.extra = extra
    return [row]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument(
        "--via",
        choices=("router", "worker", "both"),
        default="both",
        help="clients connect through the router, straight to the worker, or one run of each",
    )
    parser.add_argument("--clients", type=int, default=CLIENTS, help="client processes")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the delivery")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--role", choices=("bench", "client"), default="bench")
    parser.add_argument("--url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", default="", help=argparse.SUPPRESS)
    parser.add_argument("--per-user", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--unix", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "client":
        run_client(args)
        return 0
    # SIGTERM (e.g. from a CI timeout) unwinds like Ctrl-C: the finally blocks stop the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows: list[Row] = []
    for via in ("router", "worker") if args.via == "both" else (args.via,):
        rows += run_ws(
            max(1, args.connections),
            via=via,
            clients=max(1, args.clients),
            timeout_s=min(max(args.timeout, 1.0), 600.0),
        )
    report(
        rows,
        args.json,
        "E: p50/p99 = delivery latency, trigger to arrival; errors = not delivered; RSS = the worker's",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
