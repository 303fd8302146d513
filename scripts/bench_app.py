"""The in-process app the endpoint benchmarks (``bench_progress.py``, ``bench_ai.py``) time."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from fittracker.app import build_app
from fittracker.config import build_schema, load_settings
from fittracker.plugins import discover


def make_app(data_dir: Path, plugins: str) -> web.Application:
    """``plugins`` (comma-separated) on ``data_dir``, no rate limits, fast hashing, quiet logs."""
    found = discover(environ={"FITTRACKER_PLUGINS": plugins})
    overrides: dict[str, dict[str, Any]] = {
        "server": {"data_dir": str(data_dir)},
        "ratelimit": {"enabled": False},
        "log": {"format": "text", "level": "WARNING", "access_log": False},
        "users": {"argon2_time_cost": 1, "argon2_memory_kib": 1024, "argon2_parallelism": 1},
    }
    settings = load_settings(build_schema(found.config_defaults()), environ={}, overrides=overrides)
    return build_app(settings, found)
