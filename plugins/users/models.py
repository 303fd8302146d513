"""Pydantic models: every request body and query string, and every response of the plug-in.

Request models forbid unknown fields (a typo is a 422, not a silently ignored field).
Response models list every field as required in their JSON schema, so the OpenAPI spec
describes exactly what the handlers send.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from fittracker.validators import printable, time_zone

PASSWORD_MIN = 8
PASSWORD_MAX = 128
MIN_AGE = 13
MAX_AGE = 120

Role = Literal["user", "admin"]
Sex = Literal["male", "female", "other", "unspecified"]
Experience = Literal["beginner", "intermediate", "advanced"]
Units = Literal["kg", "lb"]
Goal = Literal["strength", "hypertrophy", "endurance", "fat_loss", "general", "mobility"]
GOALS: tuple[str, ...] = ("strength", "hypertrophy", "endurance", "fat_loss", "general", "mobility")
# The exercise catalog's muscle names (an injured or excluded muscle must be one of them).
Muscle = Literal[
    "abdominals", "abductors", "adductors", "biceps", "calves", "chest", "forearms", "glutes", "hamstrings",
    "lats", "lower back", "middle back", "neck", "quadriceps", "shoulders", "traps", "triceps",
]  # fmt: skip

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")

Email = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=3, max_length=254)]
Password = Annotated[str, Field(min_length=PASSWORD_MIN, max_length=PASSWORD_MAX)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
EquipmentItem = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
Timezone = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


# --- auth ------------------------------------------------------------------------------------


class RegisterRequest(_Request):
    """Create an account."""

    email: Email
    password: Password
    name: Name

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str) -> str:
        return _check_email(value)

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str) -> str:
        return printable(value)


class LoginRequest(_Request):
    """Exchange credentials for tokens."""

    email: Email
    password: Annotated[str, Field(min_length=1, max_length=PASSWORD_MAX)]


class RefreshRequest(_Request):
    """Exchange a refresh token for a new pair of tokens (the old refresh token is used up)."""

    refresh_token: Annotated[str, Field(min_length=1, max_length=256)]


class UserAccount(_Response):
    """The caller's own account."""

    id: str
    email: str
    name: str
    role: Role
    created_at: datetime


class TokenPair(_Response):
    """What register, login and refresh answer."""

    user: UserAccount
    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(description="seconds until the access token expires")


# --- profiles --------------------------------------------------------------------------------


NOT_NULLABLE = ("name", "goals", "equipment", "excluded_muscles", "units", "public")


def _not_nullable_schema(schema: dict[str, Any]) -> None:
    """Drop the ``null`` branch pydantic documents for fields that refuse an explicit null."""
    properties = schema.get("properties", {})
    for name in NOT_NULLABLE:
        prop = properties.get(name, {})
        branches = [b for b in prop.pop("anyOf", []) if b != {"type": "null"}]
        if len(branches) == 1:
            prop.update(branches[0])
        prop.pop("default", None)


class ProfileUpdate(_Request):
    """A partial update of the caller's profile: only the fields sent change.

    Optional body data (height, weight, birth date, sex, experience, bio, timezone) can be
    cleared with ``null``; ``goals`` and ``equipment`` are cleared with ``[]``.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_not_nullable_schema)

    name: Name | None = None
    height_cm: Annotated[float, Field(ge=50, le=260)] | None = None
    weight_kg: Annotated[float, Field(ge=20, le=400)] | None = None
    birth_date: date | None = None
    sex: Sex | None = None
    experience: Experience | None = None
    goals: Annotated[list[Goal], Field(max_length=6)] | None = None
    equipment: Annotated[list[EquipmentItem], Field(max_length=30)] | None = None
    excluded_muscles: Annotated[list[Muscle], Field(max_length=17)] | None = Field(
        default=None, description="muscles to leave out of suggestions (an injury, say)"
    )
    units: Units | None = None
    days_per_week: Annotated[int, Field(ge=1, le=7, strict=True)] | None = None
    bio: Annotated[str, Field(max_length=500)] | None = None
    timezone: Timezone | None = Field(default=None, description="an IANA time zone name, e.g. Europe/Paris")
    public: Annotated[bool, Field(strict=True)] | None = None

    @field_validator(*NOT_NULLABLE)
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("name")
    @classmethod
    def _printable_name(cls, value: str | None) -> str | None:
        return None if value is None else printable(value)

    @field_validator("goals", "equipment", "excluded_muscles")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _dedupe(value)

    @field_validator("birth_date")
    @classmethod
    def _age(cls, value: date | None) -> date | None:
        if value is None:
            return None
        today = datetime.now(UTC).date()
        if value > today:
            raise ValueError("must not be in the future")
        age = age_on(value, today)
        if age < MIN_AGE:
            raise ValueError(f"you must be at least {MIN_AGE} years old")
        if age > MAX_AGE:
            raise ValueError(f"an age above {MAX_AGE} years is not plausible")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return time_zone(value)


def age_on(born: date, today: date) -> int:
    """Completed years between ``born`` and ``today``."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


class Profile(_Response):
    """The caller's own profile, with body data."""

    id: str
    name: str
    height_cm: float | None
    weight_kg: float | None
    birth_date: date | None
    age: int | None
    sex: Sex | None
    experience: Experience | None
    goals: list[Goal]
    equipment: list[str]
    excluded_muscles: list[str]
    units: Units
    days_per_week: int | None
    bio: str | None
    timezone: str | None
    public: bool
    followers_count: int
    following_count: int
    created_at: datetime
    updated_at: datetime


class PublicProfile(_Response):
    """What anybody may see of another user's public profile."""

    id: str
    name: str
    bio: str | None
    experience: Experience | None
    goals: list[Goal]
    followers_count: int
    following_count: int
    is_following: bool = Field(description="whether the caller follows this user (false when anonymous)")


# --- social ----------------------------------------------------------------------------------

Limit = Annotated[int, Field(ge=1, le=100)]
Cursor = Annotated[str, Field(min_length=1, max_length=512)]


class SearchQuery(_Request):
    """``GET /api/v1/users`` query string."""

    q: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] = ""
    limit: Limit = 20
    cursor: Cursor | None = None


class PageQuery(_Request):
    """Query string of the followers/following lists."""

    limit: Limit = 20
    cursor: Cursor | None = None


class UserSummary(_Response):
    id: str
    name: str


class UserSummaryPage(_Response):
    items: list[UserSummary]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")


class FollowEntry(_Response):
    id: str
    name: str
    followed_at: datetime


class FollowPage(_Response):
    items: list[FollowEntry]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last page")
