"""Active and passive health checks for one plug-in's upstreams.

Passive: the proxy reports every transport failure; ``eject_after`` consecutive ones take a
ready upstream out of rotation ("ejected"). Active: every ``interval_s`` the prober GETs the
plug-in's health path on each ready or ejected upstream. A failed probe counts like a failed
request (a hung worker gets ejected even with no traffic); an ejected upstream returns to
"ready" only when a probe passes. Upstreams that are starting, draining or stopped belong to
the supervisor and are left alone, but it may call :meth:`HealthProber.probe` to decide
when a fresh worker is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aiohttp

from fittracker.ids import random_hex
from fittracker.router.headers import probe_headers
from fittracker.router.pool import Upstream, UpstreamPool

log = logging.getLogger("fittracker.router")

SessionFor = Callable[[Upstream], aiohttp.ClientSession]


class HealthProber:
    def __init__(
        self,
        pool: UpstreamPool,
        session_for: SessionFor,
        *,
        probe_path: str,
        interval_s: float = 2.0,
        timeout_s: float = 2.0,
        eject_after: int = 3,
        secret: str | None = None,
        on_readmit: Callable[[Upstream], None] | None = None,
        after_round: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if not probe_path.startswith("/"):
            raise ValueError(f"probe_path must start with '/': {probe_path!r}")
        if eject_after < 1:
            raise ValueError("eject_after must be at least 1")
        self.pool = pool
        self.probe_path = probe_path
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.eject_after = eject_after
        self._session_for = session_for
        self._secret = secret
        self._on_readmit = on_readmit
        self._after_round = after_round
        self._task: asyncio.Task[None] | None = None

    # -- passive -------------------------------------------------------------------------

    def report_failure(self, upstream: Upstream, error: str) -> None:
        """A request to ``upstream`` failed at the transport level (refused, reset, timeout)."""
        upstream.fail(error)
        if upstream.state == "ready" and upstream.consecutive_failures >= self.eject_after:
            upstream.state = "ejected"
            log.warning(
                "ejected upstream %s of %s after %d consecutive failures: %s",
                upstream.id,
                upstream.plugin,
                upstream.consecutive_failures,
                error,
                extra={"upstream": upstream.id, "plugin": upstream.plugin},
            )

    def report_success(self, upstream: Upstream) -> None:
        upstream.succeed()

    # -- active --------------------------------------------------------------------------

    async def probe(self, upstream: Upstream) -> bool:
        """One health probe: True when the upstream answers the probe path with a 2xx."""
        request_id = f"probe-{random_hex()}"
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            session = self._session_for(upstream)
            async with session.get(
                upstream.base_url + self.probe_path,
                headers=probe_headers(self.probe_path, request_id, self._secret),
                timeout=timeout,
                allow_redirects=False,
            ) as response:
                await response.read()
                return 200 <= response.status < 300
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def check(self, upstream: Upstream) -> None:
        """Probe one upstream and apply the verdict to its state."""
        before = upstream.state
        if before not in ("ready", "ejected"):
            return
        passed = await self.probe(upstream)
        if upstream.state != before or self.pool.get(upstream.id) is not upstream:
            return  # the supervisor moved it meanwhile (draining, replaced): its call wins
        if passed:
            upstream.succeed()
            if before == "ejected":
                upstream.state = "ready"
                log.info(
                    "re-admitted upstream %s of %s after a passing probe",
                    upstream.id,
                    upstream.plugin,
                    extra={"upstream": upstream.id, "plugin": upstream.plugin},
                )
                if self._on_readmit is not None:
                    self._on_readmit(upstream)
        else:
            self.report_failure(upstream, f"health probe GET {self.probe_path} failed")

    async def check_all(self) -> None:
        await asyncio.gather(*(self.check(u) for u in self.pool.all()))

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"router-prober-{self.pool.plugin}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check_all()
                if self._after_round is not None:
                    await self._after_round()
            except Exception:
                # A bug in one round must not end health checking for good.
                log.exception("health probe round for %s failed", self.pool.plugin)
