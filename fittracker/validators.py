"""Field checks every plug-in's request models share (pydantic validators raise ValueError)."""

from __future__ import annotations

import unicodedata
import zoneinfo


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
