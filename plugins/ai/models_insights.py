"""Response models of ``GET /api/v1/ai/insights`` (they also make the OpenAPI schemas).

The endpoint takes no query parameters: it uses :class:`.models.NoQuery`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

InsightKind = Literal["plateau", "load_spike", "imbalance", "consistency", "best_times"]
Severity = Literal["info", "low", "medium", "high"]


class Insight(BaseModel):
    kind: InsightKind
    severity: Severity
    title: str
    reason: str = Field(description="one or two sentences with the numbers behind the insight")
    data: dict[str, Any] = Field(
        description="the figures: plateau {exercise_id, slope_pct_per_week, best_e1rm_kg, ...}; "
        "load_spike {acute, chronic, ratio, days}; imbalance {pair, sets, ratio, more, add}; "
        "consistency {sessions_per_week, cv, streak_weeks, ...}; best_times {by_weekday, by_band, ...}"
    )


class InsightsReport(BaseModel):
    insights: list[Insight] = Field(description="most severe first, then by kind")
    model: dict[str, Any] = Field(description="the parameters and formulas used")
