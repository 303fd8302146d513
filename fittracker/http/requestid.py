"""Request ids: keep a valid incoming ``X-Request-ID`` or make one; echo it; log it."""

from __future__ import annotations

import re

from fittracker.ids import random_hex

HEADER = "X-Request-ID"
# Ids travel into logs and other services: accept only short, plain tokens.
_VALID = re.compile(r"[A-Za-z0-9._:\-]{8,128}")


def accept_or_make(incoming: str | None) -> str:
    if incoming and _VALID.fullmatch(incoming):
        return incoming
    return random_hex()
