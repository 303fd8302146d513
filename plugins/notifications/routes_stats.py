"""``GET /api/v1/notifications/stats`` (admins): delivery counts and rates (see :mod:`.stats`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web
from fittracker_plugins.notifications import stats
from fittracker_plugins.notifications.stats import DeliveryStats
from pydantic import BaseModel, ConfigDict, Field

from fittracker import PluginContext, ValidationFailed, require_admin
from fittracker.http import json_response, parse_model
from fittracker.openapi import ADMIN, operation, query_parameters, schemas
from fittracker.openapi import json_response as json_doc
from fittracker.validators import Day

PATH = "/api/v1/notifications/stats"
TAG = "notifications"
DEFAULT_DAYS = 7
MAX_DAYS = 366


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: Day | None = Field(
        default=None,
        alias="from",
        description=f"first UTC day (YYYY-MM-DD); default: `to` - {DEFAULT_DAYS - 1} days",
    )
    to: Day | None = Field(default=None, description="last UTC day, included; default: today")


class Rates(BaseModel):
    delivery_rate: float | None = Field(description="(delivered + read) / (sent + delivered + read)")
    read_rate: float | None = Field(description="read / (delivered + read)")
    failure_rate: float | None = Field(
        description="(failed + dead) / (sent + delivered + read + failed + dead)"
    )


class StateCounts(BaseModel):
    queued: int
    sent: int
    delivered: int
    read: int
    failed: int
    dead: int
    total: int
    rates: Rates


class DayCounts(StateCounts):
    date: str


class DeliveryStatsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    totals: StateCounts
    channels: dict[str, StateCounts] = Field(description="in_app, push, email (always present)")
    categories: dict[str, StateCounts] = Field(description="every preference category (always present)")
    days: list[DayCounts] = Field(description="one per day of the window, oldest first, zeros included")


def _window(request: web.Request) -> tuple[date, date]:
    unknown = set(request.query) - {"from", "to"}
    if unknown:
        raise ValidationFailed(
            "unknown query parameters",
            errors=[{"field": name, "message": "unknown query parameter"} for name in sorted(unknown)],
        )
    query = parse_model(StatsQuery, dict(request.query))
    last = query.to or datetime.now(UTC).date()
    first = query.from_ or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise ValidationFailed(
            "invalid window", errors=[{"field": "from", "message": "must not be after `to`"}]
        )
    if (last - first).days >= MAX_DAYS:
        message = f"the window is at most {MAX_DAYS} days"
        raise ValidationFailed("invalid window", errors=[{"field": "from", "message": message}])
    return first, last


async def delivery_stats(request: web.Request) -> web.Response:
    require_admin(request)
    first, last = _window(request)
    return json_response(await request.app[STATS].compute(first, last))


STATS = web.AppKey("fittracker_plugins.notifications.stats", DeliveryStats)


def setup(app: web.Application, ctx: PluginContext) -> None:
    computer = DeliveryStats(ctx.db.collection("deliveries"))
    app[STATS] = computer

    async def lifecycle(_app: web.Application) -> AsyncIterator[None]:
        await computer.create_indexes()
        yield

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get(PATH, delivery_stats)


def openapi() -> dict[str, Any]:
    definitions = (stats.__doc__ or "").split("Definitions (also in the OpenAPI description):", 1)[-1]
    paths = {
        PATH: {
            "get": operation(
                "notifications_stats",
                "Delivery counts and rates per channel, category and day (admin)",
                TAG,
                {"200": json_doc("The window's statistics", DeliveryStatsOut)},
                errors=(401, 403, 422),
                parameters=query_parameters(StatsQuery),
                security=ADMIN,
                description="Definitions:\n" + definitions.split("The records are read", 1)[0].strip(),
            )
        }
    }
    return {"paths": paths, "schemas": schemas(DeliveryStatsOut, mode="serialization")}
