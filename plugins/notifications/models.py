"""Request and response models of the notifications API (inbox, preferences, stream messages)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from fittracker.validators import storable, time_zone

CATEGORIES = ("achievements", "social", "coaching", "reminders", "system")
# Live-only mirror of the user's own activity: never in the inbox, never pushed or emailed.
PROGRESS = "progress"
CHANNELS = ("in_app", "push", "email")

Category = Literal["achievements", "social", "coaching", "reminders", "system"]
AnyCategory = Literal["achievements", "social", "coaching", "reminders", "system", "progress"]
Clock = Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]
_ID = re.compile(r"^[0-9a-f]{32}$")
# Free-form data a sender attaches to a notification: stored and passed on as it came.
Data = Annotated[dict[str, Any], AfterValidator(storable)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- inbox ------------------------------------------------------------------------------------


class Notification(BaseModel):
    """One inbox item (also the ``data`` of a ``notification`` stream message)."""

    id: str
    stream_id: str = Field(description="the item's id in the user's live stream (`last_event_id`)")
    category: AnyCategory
    type: str = Field(description="what happened, e.g. `achievement.record`, `social.workout_completed`")
    title: str
    body: str
    data: dict[str, Any]
    created_at: str
    read_at: str | None


class NotificationPage(BaseModel):
    items: list[Notification]
    next_cursor: str | None = Field(description="pass as `cursor` for the next (older) page; null at the end")


class InboxQuery(_Strict):
    unread: bool = Field(default=False, description="only unread notifications")
    cursor: str | None = Field(default=None, description="`next_cursor` of the previous page")
    limit: int = Field(default=20, ge=1, le=100, description="items per page (1-100)")


class UnreadCount(BaseModel):
    count: int


class MarkedRead(BaseModel):
    updated: int = Field(description="how many notifications changed from unread to read")


# --- preferences ------------------------------------------------------------------------------


class ChannelPrefs(_Strict):
    in_app: bool = Field(strict=True)
    push: bool = Field(strict=True)
    email: bool = Field(strict=True)


class ChannelPrefsUpdate(_Strict):
    in_app: bool | None = Field(default=None, strict=True)
    push: bool | None = Field(default=None, strict=True)
    email: bool | None = Field(default=None, strict=True)


class QuietHours(_Strict):
    """A daily window (local time, ``HH:MM``) in which push and email wait; may wrap midnight."""

    start: Clock
    end: Clock

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class Preferences(BaseModel):
    categories: dict[Category, ChannelPrefs] = Field(
        description="per category (achievements, social, coaching, reminders, system): channels on/off"
    )
    quiet_hours: QuietHours | None
    timezone: str = Field(description="the IANA time zone of the quiet hours")
    timezone_source: Literal["preferences", "profile", "default"] = Field(
        description="where `timezone` comes from: set here, the profile's time zone, or UTC"
    )


class PreferencesUpdate(_Strict):
    """Fields left out keep their value; ``quiet_hours: null`` turns quiet hours off and
    ``timezone: null`` follows the profile's time zone again."""

    categories: dict[Category, ChannelPrefsUpdate] | None = None
    quiet_hours: QuietHours | None = None
    timezone: str | None = Field(default=None, description="an IANA time zone name, e.g. Europe/Paris")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        return time_zone(value)


# --- the live stream --------------------------------------------------------------------------


class StreamQuery(_Strict):
    access_token: str | None = Field(
        default=None, description="the access token, for browsers that cannot set `Authorization`"
    )
    last_event_id: Annotated[str, StringConstraints(pattern=r"^\d{1,18}$")] | None = Field(
        default=None, description="the `id` of the last stream message received: resume after it"
    )


class StreamMessage(BaseModel):
    """A message from the server: stream messages carry the user's stream id, control ones null."""

    id: str | None
    type: Literal["notification", "progress", "notification.read", "ready", "recovery", "pong", "error"]
    time: str
    data: dict[str, Any]


def is_notification_id(value: object) -> bool:
    return isinstance(value, str) and bool(_ID.match(value))
