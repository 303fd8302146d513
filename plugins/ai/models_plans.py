"""Request and response models of ``/api/v1/ai/plans`` (they also make the OpenAPI schemas).

A plan request names a goal and the days a week; the rest defaults from the profile the AI
keeps (equipment, experience, excluded muscles) or from here (60-minute sessions, 6 weeks).
The response is the saved plan: the request as it was resolved, and :func:`.plans.build_plan`'s
weeks, days and exercises, each with its reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from fittracker.validators import printable

Goal = Literal["strength", "hypertrophy", "endurance", "fat_loss", "general"]
Experience = Literal["beginner", "intermediate", "advanced"]
# The exercise catalog's muscle names.
Muscle = Literal[
    "abdominals", "abductors", "adductors", "biceps", "calves", "chest", "forearms", "glutes", "hamstrings",
    "lats", "lower back", "middle back", "neck", "quadriceps", "shoulders", "traps", "triceps",
]  # fmt: skip
EquipmentItem = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
PlanName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Scheme = Literal["linear", "double_progression", "rpe_undulating"]


class PlanRequest(BaseModel):
    """``POST /api/v1/ai/plans``."""

    model_config = ConfigDict(extra="forbid")

    goal: Goal
    days_per_week: Annotated[int, Field(ge=1, le=7, strict=True)]
    session_minutes: Annotated[int, Field(ge=15, le=180, strict=True)] = Field(
        default=60, description="the time a session may take, warm-up included"
    )
    equipment: Annotated[list[EquipmentItem], Field(min_length=1, max_length=30)] | None = Field(
        default=None,
        description='default: your profile\'s (none there: a full gym); ["bodyweight"] for no equipment',
    )
    experience: Experience | None = Field(default=None, description="default: your profile's, else beginner")
    weeks: Annotated[int, Field(ge=4, le=12, strict=True)] = Field(
        default=6, description="plan length; the last week is a deload (and the middle one from 8 weeks)"
    )
    excluded_muscles: Annotated[list[Muscle], Field(max_length=17)] | None = Field(
        default=None, description="left out on top of your profile's excluded muscles"
    )
    name: PlanName | None = Field(default=None, description="default: goal, days a week and weeks")

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return None if value is None else printable(value)


class PlanListQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(min_length=1, max_length=512)] | None = None


class PlanInputs(BaseModel):
    """The request as it was resolved against the profile."""

    goal: Goal
    days_per_week: int
    session_minutes: int
    equipment: list[str] = Field(description="as given, or the profile's; empty means a full gym")
    experience: Experience
    weeks: int
    excluded_muscles: list[str] = Field(description="the request's and the profile's")


class PlanExercise(BaseModel):
    exercise_id: str
    exercise_name: str
    pattern: str = Field(description="its movement pattern, e.g. squat, hinge, horizontal_push")
    sets: int
    reps_min: int | None = Field(description="null for timed holds")
    reps_max: int | None = Field(description="null for timed holds")
    duration_s: int | None = Field(description="seconds per set of a static hold (a plank), else null")
    rest_s: int
    target_rpe: float = Field(description="effort on the 1-10 RPE scale (10 - reps in reserve)")
    reason: str


class PlanDay(BaseModel):
    day: int = Field(description="1-based training day of the week")
    name: str
    focus: str = Field(description="full body, upper, lower, push, pull, legs or core")
    exercises: list[PlanExercise]
    minutes: int = Field(description="estimated length: warm-up, sets, rests and set-ups")


class PlanWeek(BaseModel):
    week: int
    phase: Literal["build", "deload"]
    reason: str
    weekly_sets: dict[str, float] = Field(description="sets per muscle: primary 1, secondary 0.5")
    days: list[PlanDay]


class PlanVolume(BaseModel):
    min: int = Field(description="bottom of the weekly-sets range for the experience")
    max: int = Field(description="top of the weekly-sets range for the experience")
    muscles: list[str] = Field(description="the major muscles the range applies to")
    reason: str


class PlanProgression(BaseModel):
    scheme: Scheme
    reason: str


class PlanSummary(BaseModel):
    id: str
    name: str
    created_at: datetime
    request: PlanInputs
    routine_id: str | None = Field(description="the routine made from it; null until then")
    split: str
    reason: str


class Plan(PlanSummary):
    weeks: list[PlanWeek]
    weekly_sets: dict[str, float] = Field(description="week 1's sets per muscle")
    volume: PlanVolume
    progression: PlanProgression


class PlanPage(BaseModel):
    items: list[PlanSummary] = Field(description="newest first; GET a plan by id for its weeks")
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class PlanRoutine(BaseModel):
    plan_id: str
    routine_id: str
    routine: dict[str, Any] = Field(description="the routine as the workouts plug-in answered it")
