"""The exercises area of the workouts plug-in (being built)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from fittracker import PluginContext


def setup(app: web.Application, ctx: PluginContext) -> None:
    """Register this area's routes and resources on the plug-in's sub-app."""


def openapi() -> dict[str, Any]:
    """This area's paths, schemas and tags."""
    return {"paths": {}, "schemas": {}, "tags": []}
