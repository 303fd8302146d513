"""The supervisor: keeps N worker processes per plug-in ready in the router's pools.

Each worker slot (``<plugin>-<n>``) has a keeper task: start a process, wait until it is
ready (ready line seen AND a health probe over its socket passes), mark it ready in the pool,
then probe it every ``health_interval_s``. A process that exits, or stops answering probes for
``hung_after_s`` (then it is SIGKILLed), is replaced after a backoff; a slot that crashes too
often rests (crash-loop guard). Every process gets a new generation and socket, so an old
incarnation never shadows a new one, and a rolling restart can run both side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from fittracker.router.pool import Upstream, UpstreamPool
from fittracker.supervisor.policy import RestartPolicy
from fittracker.supervisor.process import WorkerProcess, describe_exit

log = logging.getLogger("fittracker.supervisor")
# How workers learn the signing secret (config key internal.secret, set through the env).
SIGNING_ENV_VAR = "FITTRACKER__INTERNAL__SECRET"


@dataclass(slots=True, eq=False)
class _Slot:
    plugin: str
    index: int
    policy: RestartPolicy
    generation: int = 0
    restarts: int = 0
    last_error: str | None = None
    current: WorkerProcess | None = None
    # Held while the slot's process is being started or swapped (keeper vs rolling restart).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def worker_id(self) -> str:
        return f"{self.plugin}-{self.index}"


class Supervisor:
    """Spawns, watches, restarts and drains the local worker processes of plug-ins."""

    def __init__(
        self,
        *,
        config_file: Path | None,
        data_dir: Path,
        socket_dir: Path,
        pools: Mapping[str, UpstreamPool],
        workers: Mapping[str, int],
        secret: str = "",
        probe_path: Mapping[str, str] | None = None,
        health_interval_s: float = 1.0,
        probe_timeout_s: float | None = None,
        hung_after_s: float = 5.0,
        ready_timeout_s: float = 20.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        crash_loop_window_s: float = 60.0,
        crash_loop_limit: int = 5,
        crash_loop_cooldown_s: float = 300.0,
        drain_timeout_s: float = 10.0,
        term_timeout_s: float = 15.0,
        extra_env: Mapping[str, str] | None = None,
        log_stream: TextIO | None = None,
    ) -> None:
        missing = sorted(set(workers) - set(pools))
        if missing:
            raise ValueError(f"no upstream pool for plug-in(s): {', '.join(missing)}")
        self._config_file = config_file
        self._data_dir = data_dir
        self._socket_dir = socket_dir
        self._pools = pools
        self._secret = secret
        self._probe_path = dict(probe_path or {})
        self._health_interval_s = health_interval_s
        self._probe_timeout_s = probe_timeout_s or min(hung_after_s, max(1.0, health_interval_s))
        self._hung_after_s = hung_after_s
        self._ready_timeout_s = ready_timeout_s
        self._drain_timeout_s = drain_timeout_s
        self._term_timeout_s = term_timeout_s
        self._extra_env = dict(extra_env or {})
        self._log_stream = log_stream
        self._slots = [
            _Slot(
                plugin,
                index,
                RestartPolicy(
                    backoff_initial_s=backoff_initial_s,
                    backoff_max_s=backoff_max_s,
                    window_s=crash_loop_window_s,
                    crash_loop_limit=crash_loop_limit,
                    cooldown_s=crash_loop_cooldown_s,
                ),
            )
            for plugin, count in workers.items()
            for index in range(1, count + 1)
        ]
        self._live: set[WorkerProcess] = set()
        self._keepers: list[asyncio.Task[None]] = []
        self._rolling = asyncio.Lock()
        self._rolling_task: asyncio.Task[None] | None = None
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------

    def set_env(self, name: str, value: str) -> None:
        """Set ``name=value`` in the environment of every worker process started from now on."""
        self._extra_env[name] = value

    async def start(self) -> None:
        """Start every worker; returns at once (see :meth:`wait_ready`)."""
        self._socket_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self._socket_dir, 0o700)  # the sockets are only for this user
        self._keepers = [
            asyncio.create_task(self._keep(slot), name=f"keep-{slot.worker_id}") for slot in self._slots
        ]

    async def wait_ready(self, within_s: float) -> bool:
        """Whether every worker slot has a ready process within ``within_s`` seconds."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if all(s.current is not None and s.current.upstream.state == "ready" for s in self._slots):
                return True
            await asyncio.sleep(0.05)
        return False

    async def stop(self) -> None:
        """Drain and stop every worker: no new requests, in-flight ones finish, then SIGTERM."""
        self._stopping = True
        tasks = [*self._keepers, *([self._rolling_task] if self._rolling_task else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # Only now is the set complete: nothing can start a new process any more.
        await asyncio.gather(*(self._retire(w, remove=False) for w in list(self._live)))
        log.info("all workers stopped")

    async def rolling_restart(self) -> None:
        """Replace every running worker, one at a time: the new one is ready before the old drains.

        A stop() during the restart cancels it (and stops whatever it had started).
        """
        async with self._rolling:
            if self._stopping:
                return
            self._rolling_task = asyncio.create_task(self._roll(), name="rolling-restart")
            try:
                await self._rolling_task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # our caller was cancelled, not just the restart
            finally:
                self._rolling_task = None

    async def _roll(self) -> None:
        log.info("rolling restart: starting")
        for slot in self._slots:
            async with slot.lock:
                old = slot.current
                if old is None or not old.running:
                    continue  # its keeper is starting a fresh process anyway
                outcome = await self._launch(slot, replace=True)
                if isinstance(outcome, str):
                    log.error(
                        "rolling restart: replacement for %s failed (%s); keeping the old one",
                        slot.worker_id,
                        outcome,
                        extra={"worker_id": slot.worker_id, "plugin": slot.plugin},
                    )
                    continue
                slot.current = outcome
            await self._retire(old, remove=True)
        log.info("rolling restart: done")

    # -- one slot ----------------------------------------------------------------------------

    async def _keep(self, slot: _Slot) -> None:
        first = True
        while True:
            outcome: WorkerProcess | str
            async with slot.lock:
                current = slot.current
                if current is not None and current.running:
                    outcome = current
                else:
                    outcome = await self._launch(slot, restart=not first)
                    first = False
            if isinstance(outcome, str):
                await self._crashed(slot, outcome)
                continue
            error = await self._watch(slot, outcome)
            async with slot.lock:
                if error is None or slot.current is not outcome:
                    continue  # retired by a rolling restart: watch its replacement
            await self._crashed(slot, error)

    async def _launch(
        self, slot: _Slot, *, restart: bool = False, replace: bool = False
    ) -> WorkerProcess | str:
        """Start a process for ``slot`` and wait until it is ready: the process or an error."""
        slot.generation += 1
        if restart:
            slot.restarts += 1
        name = f"{slot.worker_id}-{slot.generation}"
        socket_path = self._socket_dir / f"{name}.sock"
        upstream = Upstream(
            id=name,
            plugin=slot.plugin,
            url=f"unix://{socket_path}",
            kind="process",
            restarts=slot.restarts,
            last_error=slot.last_error,
        )
        worker = WorkerProcess(
            plugin=slot.plugin,
            worker_id=slot.worker_id,
            generation=slot.generation,
            socket_path=socket_path,
            argv=self._argv(slot, socket_path),
            env=self._env(),
            upstream=upstream,
            sink=self._emit,
        )
        pool = self._pools[slot.plugin]
        if not replace:
            if slot.current is not None:
                pool.remove(slot.current.upstream.id)
            slot.current = worker
        self._live.add(worker)
        pool.add(upstream)  # visible as "starting"; the router only uses ready ones
        try:
            await worker.start()
            error = await self._until_ready(worker)
        except OSError as exc:
            error = f"could not start: {exc}"
        if error is None:
            upstream.state, upstream.started_at = "ready", time.time()
            log.info(
                "worker %s ready (pid %s)",
                name,
                worker.pid,
                extra={"worker_id": slot.worker_id, "plugin": slot.plugin, "pid": worker.pid},
            )
            return worker
        await worker.kill()
        await worker.close()
        self._live.discard(worker)
        upstream.state, upstream.last_error, upstream.last_error_at = "stopped", error, time.time()
        if replace:
            pool.remove(upstream.id)
        return error

    async def _until_ready(self, worker: WorkerProcess) -> str | None:
        deadline = time.monotonic() + self._ready_timeout_s
        if not await worker.wait_ready_line(self._ready_timeout_s):
            code = worker.returncode
            if code is not None:
                return f"{describe_exit(code)} before it was ready"
            return f"no ready line within {self._ready_timeout_s:g} s"
        problem: str | None = "not probed"
        while time.monotonic() < deadline:
            problem = await worker.probe(self._probe(worker.plugin), self._secret, self._probe_timeout_s)
            if problem is None:
                return None
            if not worker.running:
                break
            await asyncio.sleep(0.1)
        code = worker.returncode
        if code is not None:
            return f"{describe_exit(code)} before it was ready"
        return f"not healthy within {self._ready_timeout_s:g} s: {problem}"

    async def _watch(self, slot: _Slot, worker: WorkerProcess) -> str | None:
        """Probe a ready worker until it dies or hangs (the reason) or is replaced (None)."""
        last_ok = time.monotonic()
        while True:
            code = await worker.wait_exit(self._health_interval_s)
            if slot.current is not worker:
                return None
            if code is not None:
                return describe_exit(code)
            problem = await worker.probe(self._probe(worker.plugin), self._secret, self._probe_timeout_s)
            if problem is None:
                last_ok = time.monotonic()
                continue
            silent_for = time.monotonic() - last_ok
            if silent_for < self._hung_after_s:
                continue
            if slot.current is not worker or not worker.running:
                continue  # replaced or exited meanwhile: the next turn says which
            log.error(
                "worker %s is hung (%s for %.1f s): killing it",
                worker.upstream.id,
                problem,
                silent_for,
                extra={"worker_id": slot.worker_id, "plugin": slot.plugin, "pid": worker.pid},
            )
            await worker.kill()
            return f"hung: no healthy answer for {silent_for:.1f} s ({problem})"

    async def _crashed(self, slot: _Slot, error: str) -> None:
        """Record a crash of the slot's current process, then wait before the next start."""
        worker = slot.current
        slot.last_error = error
        if worker is not None:
            worker.upstream.state = "stopped"
            worker.upstream.last_error, worker.upstream.last_error_at = error, time.time()
            await worker.close()
            self._live.discard(worker)
        slot.policy.record_crash()
        delay = slot.policy.delay()
        extra = {"worker_id": slot.worker_id, "plugin": slot.plugin, "restart_in_s": delay}
        if slot.policy.crash_looping():
            message = (
                f"crash loop: {slot.policy.recent_crashes()} failures within "
                f"{slot.policy.window_s:g} s; resting {delay:g} s (last: {error})"
            )
            slot.last_error = message
            if worker is not None:
                worker.upstream.last_error = message
            log.error("worker %s: %s", slot.worker_id, message, extra=extra)
            await asyncio.sleep(delay)
            slot.policy.reset()
            return
        log.warning("worker %s %s; restarting in %.1f s", slot.worker_id, error, delay, extra=extra)
        await asyncio.sleep(delay)

    async def _retire(self, worker: WorkerProcess, *, remove: bool) -> None:
        """Drain (no new requests, wait for the router's in-flight ones), then stop."""
        upstream = worker.upstream
        if worker.running:
            upstream.state = "draining"
            deadline = time.monotonic() + self._drain_timeout_s
            # The router counts in-flight requests on the upstream; it has no event to await.
            while upstream.in_flight > 0 and time.monotonic() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            code = await worker.terminate(self._term_timeout_s)
            log.info(
                "worker %s stopped (%s)",
                upstream.id,
                describe_exit(code) if code is not None else "did not exit",
                extra={"worker_id": worker.worker_id, "plugin": worker.plugin, "pid": worker.pid},
            )
        upstream.state = "stopped"
        await worker.close()
        self._live.discard(worker)
        if remove:
            self._pools[worker.plugin].remove(upstream.id)

    # -- helpers -----------------------------------------------------------------------------

    def _probe(self, plugin: str) -> str:
        return self._probe_path.get(plugin, "/health")

    def _argv(self, slot: _Slot, socket_path: Path) -> list[str]:
        argv = [sys.executable, "-m", "fittracker", "worker", "--plugin", slot.plugin]
        argv += ["--unix", str(socket_path), "--worker-id", slot.worker_id]
        argv += ["--parent-pid", str(os.getpid()), "--data-dir", str(self._data_dir)]
        if self._config_file is not None:
            argv += ["--config", str(self._config_file)]
        return argv

    def _env(self) -> dict[str, str]:
        env = {**os.environ, **self._extra_env}
        if self._secret:
            env[SIGNING_ENV_VAR] = self._secret  # the environment, not argv: ps shows argv to everyone
        return env

    def _emit(self, record: dict[str, Any]) -> None:
        stream = self._log_stream or sys.stderr
        with contextlib.suppress(OSError, ValueError):  # a closed stderr must not stop the pumps
            stream.write(json.dumps(record, default=str) + "\n")
            stream.flush()

    def describe(self) -> dict[str, dict[str, Any]]:
        """Per plug-in: overall status and every worker (pid, state, restarts, uptime, …)."""
        out: dict[str, dict[str, Any]] = {}
        for plugin in dict.fromkeys(s.plugin for s in self._slots):
            slots = [s for s in self._slots if s.plugin == plugin]
            ready = sum(1 for s in slots if s.current is not None and s.current.upstream.state == "ready")
            workers = []
            owned = {w.upstream.id: w for w in self._live} | {
                s.current.upstream.id: s.current for s in slots if s.current is not None
            }
            for upstream in self._pools[plugin].all():
                worker = owned.get(upstream.id)
                if worker is not None:
                    workers.append(
                        {
                            **upstream.describe(),
                            "worker_id": worker.worker_id,
                            "generation": worker.generation,
                        }
                    )
            status = "ok" if ready == len(slots) else "degraded" if ready else "down"
            out[plugin] = {"status": status, "mode": "process", "workers": workers}
        return out
