"""Field checks every plug-in's request models share (pydantic validators raise ValueError)."""

from __future__ import annotations

import unicodedata
import zoneinfo
from datetime import date
from typing import Annotated, Any

from pydantic import AfterValidator

from fittracker.storage.base import InvalidQuery
from fittracker.storage.query import check_value

# Days a query may name: others are typos, and date arithmetic near the ends of the calendar
# (the day after 9999-12-31, weeks before 0001-01-01) would overflow.
FIRST_DAY = date(1900, 1, 1)
LAST_DAY = date(2999, 12, 31)
# Levels of objects and arrays in free-form JSON a plug-in stores: the documents that hold it
# nest it further, within the storage port's own bound.
MAX_DATA_DEPTH = 8


def printable(value: str) -> str:
    """Refuse control and invisible format characters (they hide text and break logs)."""
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise ValueError("must not contain control or invisible format characters")
    return value


def time_zone(value: str | None) -> str | None:
    """An IANA time zone name (``Europe/Paris``) or None."""
    if value is None:
        return None
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError("not a known IANA time zone name") from None
    return value


def plausible_day(value: date) -> date:
    """A day between ``FIRST_DAY`` and ``LAST_DAY``."""
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"must be between {FIRST_DAY} and {LAST_DAY}")
    return value


# A date in a query string (``?from=``, ``?to=``).
Day = Annotated[date, AfterValidator(plausible_day)]


def storable(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Free-form JSON a plug-in stores as it came: keys that neither start with '$' nor hold '.'
    or NUL, integers within 64 bits, at most ``MAX_DATA_DEPTH`` levels deep. Checked here, a bad
    object is the client's 422 instead of a storage error (a 500) once it is written."""
    if value is None:
        return None
    try:
        check_value(value, "data", max_depth=MAX_DATA_DEPTH)  # the storage port's rules, tighter
    except InvalidQuery as exc:
        raise ValueError(str(exc)) from None
    return value
