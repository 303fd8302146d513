"""Pydantic models of the routines API: bodies, query strings and responses.

A routine holds 1-7 days; a day holds 1-20 exercises, each with a target: ``sets`` and
either ``reps`` (a fixed count), ``reps_min``/``reps_max`` (a range, e.g. 8-12) or
``duration_s`` (timed work such as intervals or planks). Consecutive exercises of one day
sharing a ``superset`` label are done back to back as a superset.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from fittracker.validators import printable

Visibility = Literal["private", "public"]
Reps = Annotated[int, Field(ge=1, le=100, strict=True)]
Label = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
DayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
RoutineName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


# --- bodies ------------------------------------------------------------------------------------


class PlannedExercise(_Request):
    """One exercise of a day with its target."""

    exercise_id: Annotated[str, StringConstraints(min_length=1, max_length=120)] = Field(
        description="a built-in exercise or one of your custom ones"
    )
    sets: Annotated[int, Field(ge=1, le=20, strict=True)]
    reps: Reps | None = Field(default=None, description="a fixed rep target")
    reps_min: Reps | None = Field(default=None, description="a rep range: lower end (with reps_max)")
    reps_max: Reps | None = Field(default=None, description="a rep range: upper end (with reps_min)")
    duration_s: Annotated[int, Field(ge=1, le=3600, strict=True)] | None = Field(
        default=None, description="timed work per set, instead of reps"
    )
    weight_kg: Annotated[float, Field(ge=0, le=1000)] | None = None
    rest_s: Annotated[int, Field(ge=0, le=900, strict=True)] = 90
    superset: Label | None = Field(
        default=None, description="consecutive exercises of a day with the same label form a superset"
    )
    notes: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> PlannedExercise:
        ranged = self.reps_min is not None or self.reps_max is not None
        chosen = [self.reps is not None, ranged, self.duration_s is not None]
        if sum(chosen) != 1:
            raise ValueError("give exactly one target: reps, reps_min and reps_max, or duration_s")
        if ranged:
            if self.reps_min is None or self.reps_max is None:
                raise ValueError("a rep range needs both reps_min and reps_max")
            if self.reps_min > self.reps_max:
                raise ValueError("reps_min must not exceed reps_max")
        return self


class RoutineDay(_Request):
    name: DayName
    exercises: Annotated[list[PlannedExercise], Field(min_length=1, max_length=20)]


Days = Annotated[list[RoutineDay], Field(min_length=1, max_length=7)]


class RoutineCreate(_Request):
    """A new routine of the caller."""

    name: RoutineName
    description: Description | None = None
    visibility: Visibility = "private"
    days: Days

    _printable = field_validator("name")(printable)


def _drop_null_branch(schema: dict[str, Any]) -> None:
    for name in ("name", "visibility", "days"):
        prop = schema.get("properties", {}).get(name, {})
        branches = [b for b in prop.pop("anyOf", []) if b != {"type": "null"}]
        if len(branches) == 1:
            prop.update(branches[0])
        prop.pop("default", None)


class RoutineUpdate(_Request):
    """A partial update: only the fields sent change (``days`` is replaced as a whole)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null_branch)

    name: RoutineName | None = None
    description: Description | None = Field(default=None, description="null clears it")
    visibility: Visibility | None = None
    days: Days | None = None

    @field_validator("name", "visibility", "days")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("name")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        return None if value is None else printable(value)


class RatingRequest(_Request):
    stars: Annotated[int, Field(ge=1, le=5, strict=True)]


def superset_errors(days: Sequence[RoutineDay]) -> list[dict[str, str]]:
    """Supersets are runs of consecutive exercises: a label may not reappear later in a day,
    and a run needs at least two exercises."""
    errors: list[dict[str, str]] = []
    for d, day in enumerate(days):
        closed: set[str] = set()
        labels = [ex.superset for ex in day.exercises]
        for e, label in enumerate(labels):
            if label is None:
                continue
            field = f"days.{d}.exercises.{e}.superset"
            previous = labels[e - 1] if e else None
            following = labels[e + 1] if e + 1 < len(labels) else None
            if label in closed:
                errors.append({"field": field, "message": f"superset {label!r} must be consecutive"})
            elif label != previous and label != following:
                errors.append({"field": field, "message": f"superset {label!r} needs two or more exercises"})
            if label != following:
                closed.add(label)
    return errors


# --- queries -----------------------------------------------------------------------------------

Limit = Annotated[int, Field(ge=1, le=100)]


class RoutineListQuery(_Request):
    """``GET /api/v1/routines``: one of ``template=true``, ``mine=true``, or neither."""

    template: bool = Field(default=False, description="only the built-in templates, by name")
    mine: bool = Field(default=False, description="only your own routines, newest first")
    limit: Limit = 20
    cursor: Annotated[str, Field(min_length=1, max_length=512)] | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> RoutineListQuery:
        if self.template and self.mine:
            raise ValueError("template=true and mine=true cannot be combined")
        return self


class PopularQuery(_Request):
    limit: Limit = 20
    offset: Annotated[int, Field(ge=0, le=10_000)] = 0


# --- responses ---------------------------------------------------------------------------------


class RoutineExercise(_Response):
    exercise_id: str
    exercise_name: str
    sets: int
    reps: int | None
    reps_min: int | None
    reps_max: int | None
    duration_s: int | None
    weight_kg: float | None
    rest_s: int
    superset: str | None
    notes: str | None


class RoutineDayView(_Response):
    name: str
    exercises: list[RoutineExercise]


class RatingSummary(_Response):
    average: float | None = Field(description="mean stars (2 decimals); null when unrated")
    count: int


class Routine(_Response):
    id: str
    owner_id: str | None = Field(description="null for built-in templates")
    name: str
    description: str | None
    visibility: Visibility
    is_template: bool
    days: list[RoutineDayView]
    copied_from: str | None = Field(description="the routine this one was copied from")
    rating: RatingSummary
    uses: int = Field(description="workouts started from it plus copies made of it")
    popularity: float = Field(description="the score of the popular list")
    created_at: datetime
    updated_at: datetime


class RoutinePage(_Response):
    items: list[Routine]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class PopularPage(_Response):
    items: list[Routine]
    total: int
    limit: int
    offset: int


class MyRating(_Response):
    routine_id: str
    stars: int
    created_at: datetime
    updated_at: datetime


class RatingResult(_Response):
    routine_id: str
    stars: int
    previous_stars: int | None = Field(description="your stars before this rating; null if new")
    average: float | None
    count: int
