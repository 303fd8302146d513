"""Request and response models of ``/api/v1/progress``.

Every weight is given in kg; when shown in pounds (``?units=lb`` or the profile unit) each kg
quantity also gets an ``_lb`` sibling and the response says ``units: "lb"``.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fittracker_plugins.workouts.models_workouts import ExerciseId, Units, UnitsQuery, _Response
from pydantic import ConfigDict, Field

from fittracker.validators import Day

LB = ("weight_lb", "value_lb", "e1rm_lb", "volume_lb", "heaviest_lb")


class _PeriodQuery(UnitsQuery):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: Day | None = Field(default=None, alias="from", description="first day (UTC), inclusive")
    to: Day | None = Field(default=None, description="last day (UTC), inclusive; default today")


class RecordsQuery(UnitsQuery):
    exercise_id: ExerciseId | None = None


class HistoryQuery(_PeriodQuery):
    limit: Annotated[int, Field(ge=1, le=1000, description="the latest sessions, at most")] = 200


class VolumeQuery(_PeriodQuery):
    group: Literal["muscle", "exercise"] = Field(default="muscle", description="split volume by this")


class SummaryQuery(_PeriodQuery):
    pass


class Record(_Response):
    OPTIONAL = LB
    exercise_id: str
    exercise_name: str
    record_type: Literal["heaviest_weight", "best_e1rm", "most_reps", "session_volume"]
    value: float
    unit: Literal["kg", "reps"]
    weight_kg: float | None = Field(description="for most_reps: the weight")
    workout_id: str
    set_id: str | None
    achieved_at: str
    value_lb: float | None = None
    weight_lb: float | None = None


class RecordList(_Response):
    units: Units
    items: list[Record]


class SessionBest(_Response):
    OPTIONAL = LB
    set_id: str
    weight_kg: float
    reps: int
    e1rm: float | None
    weight_lb: float | None = None
    e1rm_lb: float | None = None


class SessionPoint(_Response):
    OPTIONAL = LB
    workout_id: str
    date: date
    started_at: str
    finished: bool
    best_set: SessionBest | None
    e1rm: float | None = Field(description="the session's best estimated 1RM, kg")
    heaviest_kg: float | None
    volume_kg: float
    sets: int
    work_sets: int
    reps: int
    e1rm_lb: float | None = None
    heaviest_lb: float | None = None
    volume_lb: float | None = None


class ExerciseRef(_Response):
    id: str
    name: str
    primary_muscles: list[str]
    secondary_muscles: list[str]


class ExerciseHistory(_Response):
    exercise: ExerciseRef
    units: Units
    sessions: list[SessionPoint]


class VolumeGroup(_Response):
    OPTIONAL = LB
    key: str = Field(description="a muscle, or an exercise id")
    name: str
    volume_kg: float
    sets: float = Field(description="working sets (muscles: primary 1.0, secondary 0.5 each)")
    volume_lb: float | None = None


class VolumeWeek(_Response):
    OPTIONAL = LB
    week: str = Field(description="ISO week, e.g. 2024-W05")
    week_start: date
    volume_kg: float
    sets: int
    groups: list[VolumeGroup]
    volume_lb: float | None = None


class VolumeReport(_Response):
    OPTIONAL = LB
    from_: date = Field(alias="from")
    to: date
    group: Literal["muscle", "exercise"]
    units: Units
    weeks: list[VolumeWeek]
    totals: list[VolumeGroup]
    volume_kg: float
    volume_lb: float | None = None


class SummaryWeek(_Response):
    OPTIONAL = LB
    week: str
    week_start: date
    started: int
    finished: int
    volume_kg: float
    volume_lb: float | None = None


class E1rmPoint(_Response):
    OPTIONAL = LB
    date: date
    e1rm_kg: float
    e1rm_lb: float | None = None


class StrengthChange(_Response):
    exercise_id: str
    exercise_name: str
    first: E1rmPoint
    last: E1rmPoint
    change_kg: float
    change_pct: float | None


class Streak(_Response):
    current_weeks: int = Field(description="consecutive ISO weeks up to now with a finished workout")
    longest_weeks: int = Field(description="longest such run inside the period")


class Summary(_Response):
    OPTIONAL = LB
    from_: date = Field(alias="from")
    to: date
    units: Units
    weeks: list[SummaryWeek]
    workouts_per_week: float = Field(description="finished workouts per week over the period")
    started: int
    finished: int
    volume_kg: float
    sets: int
    streak: Streak
    strength: list[StrengthChange]
    volume_lb: float | None = None
