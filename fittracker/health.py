"""Health checks: the core's own (database, bus) plus what each plug-in adds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from fittracker.context import PluginContext
from fittracker.hookspecs import HealthCheck

CHECK_TIMEOUT_S = 2.0
HEALTH_CHECKS_KEY = "fittracker.health_checks"


def core_checks(ctx: PluginContext) -> dict[str, HealthCheck]:
    return {"database": ctx.db.ping, "bus": ctx.bus.ping}


async def _run_one(check: HealthCheck) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except TimeoutError:
        return {"status": "error", "error": f"timed out after {CHECK_TIMEOUT_S:g} s"}
    except Exception as exc:
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    return {"status": "ok", "duration_ms": round((time.perf_counter() - started) * 1000, 3)}


async def run_checks(checks: Mapping[str, HealthCheck]) -> tuple[str, dict[str, Any]]:
    """Run checks concurrently; overall status is "ok" only if all pass."""
    names = list(checks)
    results = await asyncio.gather(*(_run_one(checks[n]) for n in names))
    report = dict(zip(names, results, strict=True))
    status = "ok" if all(r["status"] == "ok" for r in results) else "error"
    return status, report
