"""Pydantic models of the exercises API: query strings, custom-exercise bodies, responses.

The vocabulary a custom exercise may use (categories, levels, forces, mechanics, equipment,
muscles) is derived from the shipped catalog, so it can never drift from the built-ins, and
is published as ``enum`` lists in the OpenAPI spec. Search filters are NOT checked against
it: an unknown filter value simply matches nothing (only malformed values are a 422).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fittracker_plugins.workouts.catalog import Shipped
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from fittracker.validators import printable


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The values the shipped catalog uses for each classifying field (sorted, no nulls)."""

    category: tuple[str, ...]
    level: tuple[str, ...]
    force: tuple[str, ...]
    mechanic: tuple[str, ...]
    equipment: tuple[str, ...]
    muscle: tuple[str, ...]

    @classmethod
    def of(cls, exercises: Iterable[Mapping[str, Any]]) -> Vocabulary:
        values: dict[str, set[str]] = {
            f: set() for f in ("category", "level", "force", "mechanic", "equipment")
        }
        muscles: set[str] = set()
        for ex in exercises:
            for field, seen in values.items():
                if ex.get(field):
                    seen.add(ex[field])
            muscles.update(ex.get("primary_muscles") or [], ex.get("secondary_muscles") or [])
        return cls(**{f: tuple(sorted(v)) for f, v in values.items()}, muscle=tuple(sorted(muscles)))


# Immutable and derived from package data: safe to compute once at import.
VOCAB = Vocabulary.of(Shipped.load().exercises)


def _term(field: str, allowed: tuple[str, ...]) -> Any:
    """A string restricted to ``allowed``, documented as an OpenAPI enum."""

    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"unknown {field} {value!r}; expected one of: {', '.join(allowed)}")
        return value

    return Annotated[str, AfterValidator(check), WithJsonSchema({"type": "string", "enum": list(allowed)})]


Category = _term("category", VOCAB.category)
Level = _term("level", VOCAB.level)
Force = _term("force", VOCAB.force)
Mechanic = _term("mechanic", VOCAB.mechanic)
Equipment = _term("equipment", VOCAB.equipment)
Muscle = _term("muscle", VOCAB.muscle)

ExerciseName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
FilterValue = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
PrimaryMuscles = Annotated[list[Muscle], Field(min_length=1, max_length=5)]  # type: ignore[valid-type]
SecondaryMuscles = Annotated[list[Muscle], Field(max_length=8)]  # type: ignore[valid-type]


def _unique(value: list[str]) -> list[str]:
    if len(set(value)) != len(value):
        raise ValueError("lists a muscle more than once")
    return value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


# --- queries -----------------------------------------------------------------------------------


class FacetsQuery(_Request):
    """Filters shared by the search and the facets: ``q`` plus exact-match classifiers."""

    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = Field(
        default="", description="every word must begin a word of the name (case-insensitive)"
    )
    category: FilterValue | None = None
    muscle: FilterValue | None = Field(default=None, description="matches primary or secondary muscles")
    equipment: FilterValue | None = None
    level: FilterValue | None = None


class ExerciseQuery(FacetsQuery):
    """``GET /api/v1/exercises`` query string."""

    limit: Annotated[int, Field(ge=1, le=100)] = 20
    offset: Annotated[int, Field(ge=0, le=100_000)] = 0


# --- custom exercises --------------------------------------------------------------------------


class ExerciseCreate(_Request):
    """A custom exercise, visible only to its owner."""

    name: ExerciseName
    category: Category  # type: ignore[valid-type]
    level: Level = "beginner"  # type: ignore[valid-type]
    force: Force | None = None  # type: ignore[valid-type]
    mechanic: Mechanic | None = None  # type: ignore[valid-type]
    equipment: Equipment | None = None  # type: ignore[valid-type]
    primary_muscles: PrimaryMuscles
    secondary_muscles: SecondaryMuscles = []

    _printable = field_validator("name")(printable)
    _distinct = field_validator("primary_muscles", "secondary_muscles")(_unique)

    @field_validator("secondary_muscles")
    @classmethod
    def _not_primary(cls, value: list[str], info: ValidationInfo) -> list[str]:
        both = set(value) & set(info.data.get("primary_muscles") or [])
        if both:
            raise ValueError(f"already a primary muscle: {', '.join(sorted(both))}")
        return value


NOT_NULLABLE = ("name", "category", "level", "primary_muscles", "secondary_muscles")


def _drop_null_branch(schema: dict[str, Any]) -> None:
    """Fields that refuse an explicit null are documented without the ``null`` branch."""
    for name in NOT_NULLABLE:
        prop = schema.get("properties", {}).get(name, {})
        branches = [b for b in prop.pop("anyOf", []) if b != {"type": "null"}]
        if len(branches) == 1:
            prop.update(branches[0])
        prop.pop("default", None)


class ExerciseUpdate(_Request):
    """A partial update of a custom exercise: only the fields sent change.

    ``force``, ``mechanic`` and ``equipment`` can be cleared with ``null``.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_drop_null_branch)

    name: ExerciseName | None = None
    category: Category | None = None  # type: ignore[valid-type]
    level: Level | None = None  # type: ignore[valid-type]
    force: Force | None = None  # type: ignore[valid-type]
    mechanic: Mechanic | None = None  # type: ignore[valid-type]
    equipment: Equipment | None = None  # type: ignore[valid-type]
    primary_muscles: PrimaryMuscles | None = None
    secondary_muscles: SecondaryMuscles | None = None

    @field_validator(*NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value


# --- responses ---------------------------------------------------------------------------------


class Exercise(BaseModel):
    """An exercise: a built-in of the catalog, or (with ``owner_id``) the caller's custom one."""

    # owner_id is absent (not null) on built-ins: documented as optional, without a default.
    model_config = ConfigDict(json_schema_extra=lambda s: s["properties"]["owner_id"].pop("default"))

    id: str
    name: str
    category: str
    level: str
    force: str | None
    mechanic: str | None
    equipment: str | None
    primary_muscles: list[str]
    secondary_muscles: list[str]
    owner_id: str = Field(default="", description="only on custom exercises: their owner")


class ExercisePage(_Response):
    items: list[Exercise]
    total: int = Field(description="how many exercises match, over all pages")
    limit: int
    offset: int


class Facets(_Response):
    """How many matching exercises fall in each value (muscles count primary and secondary)."""

    total: int
    category: dict[str, int]
    muscle: dict[str, int]
    equipment: dict[str, int]
    level: dict[str, int]


def vocabulary_text() -> str:
    """The vocabulary as Markdown, for the OpenAPI description of custom exercises."""
    fields = ("category", "level", "force", "mechanic", "equipment", "muscle")
    return "; ".join(f"`{f}`: {', '.join(getattr(VOCAB, f))}" for f in fields)
