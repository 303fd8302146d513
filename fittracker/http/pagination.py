"""Cursor pagination: opaque cursors and the filter that starts the next page after one.

A cursor encodes the sort key and a tie-breaker of the last item of a page, so a page is
stable while items are added or removed (unlike offsets).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any

import orjson

from fittracker.errors import ValidationFailed


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[str]:
    """The parts of a cursor made by :func:`encode_cursor`; 422 on anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        # orjson, not json: it refuses lone surrogates ("\ud800"), which no database can store.
        parts = orjson.loads(raw)
    except (binascii.Error, ValueError):
        parts = None
    if not isinstance(parts, list) or len(parts) != size or not all(isinstance(p, str) for p in parts):
        raise ValidationFailed(
            "invalid cursor", errors=[{"field": "cursor", "message": "not a cursor of this list"}]
        )
    return parts


def after_cursor(
    sort_field: str, tie_field: str, cursor: str | None, descending: bool
) -> list[Mapping[str, Any]]:
    """Filter clauses that start a page after ``cursor`` in (sort_field, tie_field) order."""
    if cursor is None:
        return []
    value, tie = decode_cursor(cursor, 2)
    op = "$lt" if descending else "$gt"
    return [{"$or": [{sort_field: {op: value}}, {sort_field: value, tie_field: {op: tie}}]}]
