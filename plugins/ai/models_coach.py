"""Models of the recommendation and alternatives endpoints (they also make the OpenAPI schemas)."""

from __future__ import annotations

from typing import Any

from fittracker_plugins.ai.models import Units
from pydantic import BaseModel, ConfigDict, Field


class RecommendationQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    count: int | None = Field(
        default=None, ge=3, le=10, description="how many exercises; default ai.exercises_per_session"
    )
    units: Units | None = Field(default=None, description="kg or lb; default the profile's units")


class RecommendedExercise(BaseModel):
    exercise_id: str
    exercise_name: str
    pattern: str = Field(description="movement pattern, e.g. squat, hinge, horizontal_push")
    equipment: str | None
    primary_muscles: list[str]
    sets: int
    reps: int = Field(description="today's rep target")
    reps_min: int
    reps_max: int
    rest_s: int
    target_rpe: float
    weight_kg: float | None = Field(description="null without history of this exercise")
    weight: float | None = Field(description="weight_kg in `units`")
    units: Units
    score: float
    reason: str


class Recovering(BaseModel):
    muscle: str
    recovery_pct: float
    ready_at: str


class Week(BaseModel):
    push_sets: float
    pull_sets: float
    muscles: dict[str, float] = Field(description="hard sets per muscle in the last 7 days")


class Recommendation(BaseModel):
    date: str = Field(description="today in the user's time zone")
    goal: str
    rest_day: bool
    focus: str
    exercises: list[RecommendedExercise]
    recovering: list[Recovering] = Field(description="muscles under the recovery threshold, left out")
    week: Week
    ranked_by: list[str] = Field(description="builtin, then every recommender plug-in that re-ranked")
    overridden: list[dict[str, str]] = Field(
        description="entries a recommender put forward that the hard rules refused, and skipped recommenders"
    )
    reason: str
    model: dict[str, Any]


class AlternativesQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=5, ge=1, le=20)


class Alternative(BaseModel):
    exercise_id: str
    exercise_name: str
    pattern: str
    equipment: str | None
    primary_muscles: list[str]
    same_pattern: bool
    score: float
    reason: str


class Alternatives(BaseModel):
    exercise_id: str
    exercise_name: str
    pattern: str
    primary_muscles: list[str]
    items: list[Alternative]
    reason: str
