"""Request and response models of ``/api/v1/ai`` (they also make the OpenAPI schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Units = Literal["kg", "lb"]


class MuscleRecovery(BaseModel):
    muscle: str
    recovery_pct: float = Field(ge=0, le=100)
    fatigue: float = Field(ge=0, description="fatigue units left now (see the model)")
    last_trained_at: str
    ready_at: str = Field(description="when recovery reaches the model's ready_pct")
    reason: str


class RecoveryReport(BaseModel):
    muscles: list[MuscleRecovery]
    model: dict[str, Any] = Field(description="the parameters and formula used")


class NoQuery(BaseModel):
    """An endpoint without query parameters (unknown ones are refused)."""

    model_config = ConfigDict(extra="forbid")


class UnitsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    units: Units | None = Field(default=None, description="kg or lb; default kg")


class Target(BaseModel):
    weight: float = Field(description="in `units`")
    weight_kg: float
    reps: int
    sets: int


class LastSession(BaseModel):
    workout_id: str
    date: str
    top_weight_kg: float
    reps: list[int]
    e1rm_kg: float


class Progression(BaseModel):
    exercise_id: str
    exercise_name: str
    units: Units
    method: Literal["double_progression", "rpe", "deload"]
    target: Target
    reason: str
    last_session: LastSession
    sessions: int
    model: dict[str, Any]


class PredictionQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weeks: int = Field(default=8, ge=1, le=26, description="how many weeks ahead to project")


class HistoryPoint(BaseModel):
    date: str
    e1rm_kg: float


class ProjectionPoint(BaseModel):
    week: int
    date: str
    e1rm_kg: float
    low_kg: float
    high_kg: float


class Prediction(BaseModel):
    exercise_id: str
    exercise_name: str
    history: list[HistoryPoint]
    slope_kg_per_week: float
    sigma_kg: float = Field(description="robust spread of sessions around the trend (1.4826 x MAD)")
    projection: list[ProjectionPoint]
    reason: str
    model: dict[str, Any]
