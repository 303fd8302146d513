"""Reading request bodies and query strings into validated models, with problem+json errors."""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from pydantic import BaseModel, ValidationError

from fittracker.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed

M = TypeVar("M", bound=BaseModel)
# For refusals that leave the body unread or unreadable: the connection cannot carry another
# request, and aiohttp closes it after the answer; say so, or a client would reuse it.
CLOSE = {"Connection": "close"}


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def validation_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Pydantic's errors as ``[{field, message}]``."""
    return [{"field": _field(err["loc"]), "message": err["msg"]} for err in exc.errors(include_url=False)]


def unreadable(exc: web.RequestPayloadError) -> str:
    """Why aiohttp could not read a request body (a content coding or a chunking gone wrong)."""
    cause = exc.__cause__
    return cause.message if isinstance(cause, HttpProcessingError) else str(exc)


async def read_json(request: web.Request) -> Any:
    """The request body as JSON: 415 unless it is JSON, 400 if malformed, 413 if too big."""
    if request.content_type != "application/json":
        raise UnsupportedMediaType(
            f"send the body as application/json, not {request.content_type or 'nothing'}"
        )
    limit = request.client_max_size
    if request.content_length is not None and request.content_length > limit:
        # Refused on the declared length: the client need not send (nor we wait for) the rest.
        raise PayloadTooLarge(
            f"the request body is too large: at most {limit} bytes are accepted", headers=CLOSE
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge(exc.text or "the request body is too large") from None
    except web.RequestPayloadError as exc:
        # e.g. ``Content-Encoding: gzip`` on a body that is not gzip: the client's error, not ours.
        raise BadRequest(f"the request body cannot be read: {unreadable(exc)}", headers=CLOSE) from None
    if not raw:
        raise BadRequest("the request body is empty; a JSON document was expected")
    try:
        return orjson.loads(raw)  # strict: no NaN/Infinity, UTF-8 only, bounded nesting
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON: {exc}") from None


def parse_model(model: type[M], data: Any) -> M:
    """Validate already-decoded data; 422 with ``errors: [{field, message}]`` on failure."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("the request is not valid", errors=validation_errors(exc)) from None


async def read_model(request: web.Request, model: type[M]) -> M:
    """Read the JSON body and validate it against ``model``."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed(
            "the body must be a JSON object", errors=[{"field": "body", "message": "not an object"}]
        )
    return parse_model(model, data)


def read_query(request: web.Request, model: type[M]) -> M:
    """Validate the query string against ``model`` (repeated keys are not supported)."""
    unknown = set(request.query) - set(model.model_fields)
    if unknown:
        raise ValidationFailed(
            "unknown query parameters",
            errors=[{"field": name, "message": "unknown query parameter"} for name in sorted(unknown)],
        )
    return parse_model(model, dict(request.query))
