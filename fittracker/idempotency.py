"""``Idempotency-Key``: a create the client may safely send again.

A client on a gym's patchy network, or one that got a 503 from the router after its request
was sent, cannot know whether its write was applied. With an ``Idempotency-Key`` header
(draft-ietf-httpapi-idempotency-key-header) it sends the same request again with the same
key and gets the first answer, never a second copy.

The key is not kept in a table of its own: the id of the object the request creates is derived
from (user, scope, key), so the write itself is the claim. Two copies of one request racing
each other create one object, because the second insert of the same id fails in the same
atomic write that would have created it, whichever process or host runs it. A plug-in using
this:

1. reads the key with :func:`key_of` (malformed: 400);
2. creates the object with ``derived_id(user_id, scope, key)`` as its id, atomically refusing
   an id that exists;
3. when the id exists, compares the stored object with the request (:func:`check_same`: the
   same key with a different request is a 422) and answers what the first request answered,
   with :data:`REPLAYED` set.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from aiohttp import web

from fittracker.errors import BadRequest, ValidationFailed

HEADER: Final = "Idempotency-Key"
REPLAYED: Final = "Idempotent-Replayed"  # "true" on an answer given again, not made again
# Visible ASCII, as the draft allows; long enough for a UUID or a client's own scheme.
_KEY: Final = re.compile(r"[\x21-\x7e]{1,255}")

OPENAPI_PARAMETER: Final[dict[str, Any]] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": "Any string of 1-255 visible ASCII characters (a UUID, say). Send the same request "
    "again with the same key (after a timeout or a 503) and you get the first answer, with "
    f"`{REPLAYED}: true`, never a second copy; the same key with a different request is a 422. "
    "Keys are per user and per collection.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
}
OPENAPI_REPLAYED_HEADER: Final[dict[str, Any]] = {
    "description": "`true` when this is the stored answer to an earlier request with the same key.",
    "schema": {"type": "string", "enum": ["true"]},
}


def key_of(request: web.Request) -> str | None:
    """The request's idempotency key, or None; a malformed one is a 400."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not _KEY.fullmatch(key):
        raise BadRequest(f"{HEADER} must be 1-255 visible ASCII characters")
    return key


def derived_id(user_id: str, scope: str, key: str) -> str:
    """The id of the object that ``user_id``'s request with ``key`` creates in ``scope``.

    32 hex digits like every other id; a hash, so keys never show in ids or URLs and one
    user's key cannot name another user's object.
    """
    digest = hashlib.sha256("\0".join((user_id, scope, key)).encode()).hexdigest()
    return digest[:32]


def check_same(stored: Mapping[str, Any], asked: Mapping[str, Any], fields: Iterable[str]) -> None:
    """422 unless ``stored`` has the values the repeated request ``asks`` for, in ``fields``."""
    differ = sorted(f for f in fields if f in asked and stored.get(f) != asked[f])
    if differ:
        raise ValidationFailed(
            f"this {HEADER} was used for a different request (it differs in {', '.join(differ)}); "
            "use a new key for a new request"
        )
