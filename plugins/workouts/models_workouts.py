"""Request and response models of workout logging (``/api/v1/workouts``).

Requests forbid unknown fields and take numbers strictly (``"5"`` is not 5). Weights come as
exactly one of ``weight_kg`` / ``weight_lb`` and are stored in kg; the 0-1000 kg bound is
checked after conversion (so up to 2204.62 lb).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from fittracker import ValidationFailed
from fittracker.http import parse_model
from fittracker.validators import Day

Q = TypeVar("Q", bound=BaseModel)
Units = Literal["kg", "lb"]
SetType = Literal["normal", "warmup", "drop", "failure"]
Status = Literal["in_progress", "finished", "discarded"]

MAX_WEIGHT_KG = 1000.0
Reps = Annotated[int, Field(ge=0, le=1000, strict=True)]
WeightKg = Annotated[float, Field(ge=0, le=MAX_WEIGHT_KG, strict=True)]
WeightLb = Annotated[float, Field(ge=0, le=2300, strict=True, description="converted to kg, then 0-1000 kg")]
Rpe = Annotated[float, Field(ge=1, le=10, strict=True, multiple_of=0.5, description="1-10, half steps")]
DurationS = Annotated[int, Field(ge=0, le=86_400, strict=True, description="seconds, at most a day")]
DistanceM = Annotated[float, Field(ge=0, le=1_000_000, strict=True, description="metres, at most 1000 km")]
ExerciseId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Notes = Annotated[str, Field(max_length=2000)]
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)


def check_started_at(value: datetime | None) -> datetime | None:
    """A start time: zone-less means UTC; from 2000 up to one day ahead (clock skew)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value < EARLIEST:
        raise ValueError("must not be before 2000-01-01")
    if value > datetime.now(UTC) + timedelta(days=1):
        raise ValueError("must not be in the future")
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _drop_optional(schema: dict[str, Any], cls: type) -> None:
    """Fields listed in ``OPTIONAL`` appear only sometimes (e.g. pounds): not required."""
    optional = getattr(cls, "OPTIONAL", ())
    schema["required"] = [name for name in schema.get("required", []) if name not in optional]


class _Response(BaseModel):
    model_config = ConfigDict(
        json_schema_serialization_defaults_required=True, json_schema_extra=_drop_optional
    )
    OPTIONAL: ClassVar[tuple[str, ...]] = ()


# --- requests ----------------------------------------------------------------------------------


class WorkoutCreate(_Request):
    """Start a workout, optionally from a day of a routine (its exercises become the ``plan``)."""

    name: Name | None = None
    notes: Notes | None = None
    started_at: datetime | None = Field(default=None, description="defaults to now; zone-less means UTC")
    routine_id: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    day_index: Annotated[int, Field(ge=0, le=50, strict=True)] | None = Field(
        default=None, description="which day of the routine (0-based, default 0)"
    )

    @field_validator("started_at")
    @classmethod
    def _started(cls, value: datetime | None) -> datetime | None:
        return check_started_at(value)

    @model_validator(mode="after")
    def _day_needs_routine(self) -> WorkoutCreate:
        if self.day_index is not None and self.routine_id is None:
            raise ValueError("day_index needs a routine_id")
        return self


class WorkoutUpdate(_Request):
    """Rename, annotate or re-date a workout (only the fields sent change)."""

    name: Name | None = None
    notes: Notes | None = None
    started_at: datetime | None = None

    @field_validator("started_at")
    @classmethod
    def _started(cls, value: datetime | None) -> datetime | None:
        return check_started_at(value)


class _SetFields(_Request):
    reps: Reps | None = None
    weight_kg: WeightKg | None = None
    weight_lb: WeightLb | None = None
    rpe: Rpe | None = None
    duration_s: DurationS | None = None
    distance_m: DistanceM | None = None

    @model_validator(mode="after")
    def _one_weight(self) -> _SetFields:
        if self.weight_kg is not None and self.weight_lb is not None:
            raise ValueError("give the weight once: weight_kg or weight_lb, not both")
        return self


class SetCreate(_SetFields):
    """Log one set. Exactly one of ``weight_kg`` / ``weight_lb`` (0 for body-weight work)."""

    exercise_id: ExerciseId
    reps: Reps
    set_type: SetType = "normal"

    @model_validator(mode="after")
    def _needs_weight(self) -> SetCreate:
        if self.weight_kg is None and self.weight_lb is None:
            raise ValueError("give the weight: weight_kg or weight_lb (0 for body weight)")
        return self


class SetUpdate(_SetFields):
    """Change some fields of a set; ``rpe``, ``duration_s`` and ``distance_m`` clear with null."""

    exercise_id: ExerciseId | None = None
    set_type: SetType | None = None


class UnitsQuery(_Request):
    units: Units | None = Field(
        default=None, description="weights also in this unit (default: your profile's)"
    )


class WorkoutListQuery(UnitsQuery):
    from_: Day | None = Field(default=None, alias="from", description="first start date (UTC), inclusive")
    to: Day | None = Field(default=None, description="last start date (UTC), inclusive")
    status: Status | None = None
    limit: Annotated[int, Field(ge=1, le=100)] = 20
    cursor: Annotated[str, Field(min_length=1, max_length=512)] | None = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --- responses ---------------------------------------------------------------------------------


class WorkoutSet(_Response):
    """A stored set. ``weight`` and ``units`` appear when weights are shown in pounds."""

    OPTIONAL = ("weight", "units")
    id: str
    exercise_id: str
    reps: int
    weight_kg: float
    rpe: float | None
    duration_s: int | None
    distance_m: float | None
    set_type: SetType
    logged_at: datetime
    updated_at: datetime
    weight: float | None = Field(default=None, description="the weight in `units`")
    units: Units | None = None


class RecordAchieved(_Response):
    """A record broken (also the ``record.achieved`` event's payload)."""

    OPTIONAL = ("value_lb",)
    user_id: str
    workout_id: str
    exercise_id: str
    exercise_name: str
    record_type: Literal["heaviest_weight", "best_e1rm", "most_reps", "session_volume"]
    value: float
    unit: Literal["kg", "reps"]
    weight_kg: float | None = Field(description="for most_reps: the weight the reps were done at")
    previous: float | None = Field(description="the record before (null for a first)")
    set_id: str | None = Field(description="null for session_volume")
    achieved_at: datetime
    value_lb: float | None = Field(default=None, description="a kg value in pounds, when shown in pounds")


class LoggedSet(WorkoutSet):
    """The stored set and the records it broke."""

    records: list[RecordAchieved]


class BestSet(_Response):
    set_id: str
    weight_kg: float
    reps: int
    e1rm: float | None = Field(description="Epley estimate in kg")


class ExerciseSummary(_Response):
    exercise_id: str
    exercise_name: str
    sets: int
    work_sets: int = Field(description="sets that are not warm-ups")
    reps: int
    volume_kg: float
    best_set: BestSet | None


class WorkoutSummary(_Response):
    """What a finished workout adds up to (stored: finishing again answers the same)."""

    OPTIONAL = ("volume_lb", "units")
    workout_id: str
    status: Status
    started_at: datetime
    finished_at: datetime | None
    duration_s: int
    sets: int
    work_sets: int
    volume_kg: float = Field(description="Σ weight_kg x reps of the non-warm-up sets")
    exercises: list[ExerciseSummary]
    records: list[RecordAchieved] = Field(description="records achieved in this workout")
    volume_lb: float | None = None
    units: Units | None = None


class WorkoutItem(_Response):
    """A workout in a list (without its sets)."""

    OPTIONAL = ("volume_lb", "units")
    id: str
    user_id: str
    name: str | None
    notes: str | None
    status: Status
    started_at: datetime
    finished_at: datetime | None
    routine_id: str | None
    day_index: int | None
    set_count: int
    volume_kg: float
    created_at: datetime
    updated_at: datetime
    volume_lb: float | None = None
    units: Units | None = None


class Workout(WorkoutItem):
    """A workout with its sets, its plan (when started from a routine) and its summary once finished."""

    plan: dict[str, Any] | None = Field(description="the routine day's targets: routine, day and exercises")
    sets: list[WorkoutSet]
    summary: WorkoutSummary | None


class WorkoutPage(_Response):
    items: list[WorkoutItem]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


def read_query_by_alias(request: web.Request, model: type[Q]) -> Q:
    """Like ``fittracker.http.read_query`` but for models whose query keys are aliases (``from``)."""
    known = {field.alias or name for name, field in model.model_fields.items()}
    unknown = sorted(set(request.query) - known)
    if unknown:
        raise ValidationFailed(
            "unknown query parameters",
            errors=[{"field": name, "message": "unknown query parameter"} for name in unknown],
        )
    return parse_model(model, dict(request.query))
